"""The package builds without setuptools' deprecation banner: its licence is an SPDX
expression (a table, ``{text = ...}``, made setuptools warn on every install)."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_wheel_builds_quietly_and_states_its_licence_as_spdx(tmp_path: Path) -> None:
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-w",
                            str(tmp_path), str(ROOT)], capture_output=True, text=True,
                           timeout=300)  # fmt: skip
    assert built.returncode == 0, built.stderr
    said = (built.stdout + built.stderr).lower()
    assert "deprecat" not in said and "license classifiers" not in said, said
    (wheel,) = tmp_path.glob("workflow-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        (metadata,) = [n for n in archive.namelist() if n.endswith(".dist-info/METADATA")]
        assert "License-Expression: MIT" in archive.read(metadata).decode()

"""The rules of ``workflow watch`` that need no server: which files count, what a file's
work and id are (the watcher itself runs in ``tests/acceptance/test_watch.py``)."""

from __future__ import annotations

from pathlib import Path, PurePath

import pytest

from workflow.client import Client
from workflow.watch import Selection, Stamp, Watcher, file_id
from workflow.work import ID_PATTERN


@pytest.mark.parametrize(("patterns", "below", "wanted"), [
    (("*",), "scan.h5", True),
    (("*",), "run1/scan.h5", True),
    (("*.h5",), "scan.cbf", False),
    (("*.h5", "*.cbf"), "scan.cbf", True),
    (("scan*/*.h5",), "scan1/a.h5", True),
    (("scan*/*.h5",), "a.h5", False),
    (("*",), ".scan.h5", False),
    (("*",), "scan.h5.part", False),
    (("*",), "scan.h5.tmp", False),
    (("*",), "scan.h5~", False),
    (("*.h5",), ".snapshot/hourly/scan.h5", False),
    ((".*.h5",), ".scan.h5", True),
    (("*.part",), "scan.h5.part", True),
    (("*.h5", "*.part"), ".snapshot/scan.h5", False),
])  # fmt: skip
def test_patterns_and_hidden_or_temporary_names(patterns: tuple[str, ...], below: str,
                                                wanted: bool) -> None:  # fmt: skip
    assert Selection(patterns).wanted(PurePath(below)) is wanted


def test_a_file_id_is_stable_fits_the_id_rules_and_changes_with_the_file() -> None:
    path, stamp = Path("/data/scan.h5"), Stamp(1000, 1_700_000_000_123_456_789)
    id = file_id("azint", path, stamp)
    assert id == file_id("azint", Path("/data/scan.h5"), Stamp(1000, 1_700_000_000_123_456_789))
    assert id.startswith("file-") and ID_PATTERN.match(id)
    others = {file_id("other", path, stamp), file_id("azint", Path("/data/b.h5"), stamp),
              file_id("azint", path, Stamp(1001, stamp.mtime_ns)),
              file_id("azint", path, Stamp(1000, stamp.mtime_ns + 1))}  # fmt: skip
    assert id not in others and len(others) == 4


@pytest.mark.parametrize(("command", "argv"), [
    (["h5check", "--strict"], ["h5check", "--strict", "/d/scan.h5"]),
    (["reduce", "--in={path}", "-v"], ["reduce", "--in=/d/scan.h5", "-v"]),
])  # fmt: skip
def test_a_file_s_work_has_its_path_as_parameter_and_in_its_command(
        tmp_path: Path, command: list[str], argv: list[str]) -> None:  # fmt: skip
    with Client("http://127.0.0.1:9") as client:
        watcher = Watcher(client, tmp_path, {"pipeline": "azint", "command": command,
                                             "parameters": {"poni": "calib.poni"}})
        work = watcher.work_for(Path("/d/scan.h5"), "file-1")
    assert (work.id, work.command) == ("file-1", argv)
    assert work.parameters == {"poni": "calib.poni", "path": "/d/scan.h5"}

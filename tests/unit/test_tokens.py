"""Tokens: where they come from, what each role may do, and the file of digests."""

from __future__ import annotations

import hashlib
import re
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from workflow.errors import ConfigurationError
from workflow.settings import ServerSettings
from workflow.tokens import ROLES, Keyring, allows, entry, read_file

PLAIN = "a-long-enough-token-1"


def test_each_role_includes_the_ones_below() -> None:
    assert [r for r in ROLES if allows("operator", r)] == ["viewer", "runner", "operator"]
    assert allows("admin", "admin") and not allows("runner", "operator")


def test_tokens_from_the_environment_plain_or_as_digests() -> None:
    hexed = hashlib.sha256(b"another-long-token-2").hexdigest()
    keyring = Keyring.from_env({"WORKFLOW_RUNNER_TOKENS": f"ci={PLAIN}, sha256:{hexed}",
                                "WORKFLOW_TOKENS": "the-admins-token-000"})  # fmt: skip
    runner = keyring.find(PLAIN)
    assert runner is not None and (runner.name, runner.role) == ("ci", "runner")
    second = keyring.find("another-long-token-2")
    assert second is not None and (second.name, second.role) == ("runner-token-2", "runner")
    admin = keyring.find("the-admins-token-000")
    assert admin is not None and (admin.name, admin.role) == ("token-1", "admin")
    assert keyring.find("sha256:" + hexed) is None, "a digest is no token"
    assert keyring.find(PLAIN[:-1]) is None
    assert PLAIN not in repr(keyring) and hexed not in repr(keyring)


@pytest.mark.parametrize("environ, message", [
    ({"WORKFLOW_VIEWER_TOKENS": "short"}, "at least 16 characters"),
    ({"WORKFLOW_VIEWER_TOKENS": "sha256:abc"}, "64 lowercase hex digits"),
    ({"WORKFLOW_VIEWER_TOKENS": f"no spaces={PLAIN}"}, "a token's name"),
    ({"WORKFLOW_VIEWER_TOKENS": f"x={PLAIN}", "WORKFLOW_TOKENS": f"x={PLAIN}2"}, "given twice: x"),
])  # fmt: skip
def test_bad_tokens_are_refused_at_start_up(environ: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        Keyring.from_env(environ)


def test_the_tokens_file_holds_digests_only(tmp_path: Path) -> None:
    path = tmp_path / "tokens.toml"
    path.write_text(entry("ada", "admin", PLAIN) + entry("vic", "viewer", PLAIN + "x"))
    assert PLAIN not in path.read_text()
    keyring = Keyring.from_env({"WORKFLOW_TOKENS_FILE": str(path)})
    found = keyring.find(PLAIN)
    assert found is not None and (found.name, found.role) == ("ada", "admin")
    assert keyring.roles() == {"viewer": 1, "runner": 0, "operator": 0, "admin": 1}


@pytest.mark.parametrize("text, message", [
    ("[[token]]\nname = 'a'\nrole = 'boss'\nsha256 = '" + "0" * 64 + "'\n", "role must be one of"),
    ("[[token]]\nname = 'a'\nrole = 'admin'\n", "exactly name, role and sha256"),
    ("[[token]]\nname = 'a'\nrole = 'admin'\nsha256 = 'zz'\n", "64 lowercase hex digits"),
    ("[[token]]\nname = 'a'\nrole = 'admin'\ntoken = 'plain'\nsha256 = '00'\n", "exactly name"),
    ("[other]\n", "only [[token]] entries"),
    ("not toml [", "WORKFLOW_TOKENS_FILE"),
])  # fmt: skip
def test_a_bad_tokens_file_is_refused_naming_the_entry(tmp_path: Path, text: str,
                                                       message: str) -> None:  # fmt: skip
    path = tmp_path / "tokens.toml"
    path.write_text(text)
    with pytest.raises(ConfigurationError, match=re.escape(message)):
        read_file(path)


def test_tokens_without_an_operator_or_admin_are_refused() -> None:
    keyring = Keyring.from_env({"WORKFLOW_VIEWER_TOKENS": PLAIN})
    with pytest.raises(ConfigurationError, match="no token has the operator or admin role"):
        ServerSettings(keyring=keyring).check()


def test_token_new_writes_the_digest_to_a_private_file(tmp_path: Path) -> None:
    path = tmp_path / "tokens.toml"
    made = subprocess.run([sys.executable, "-m", "workflow", "token", "new", "ada", "--role",
                           "operator", "--file", str(path)], capture_output=True, text=True,
                          timeout=60)  # fmt: skip
    assert made.returncode == 0, made.stderr
    token = made.stdout.strip()
    assert len(token) >= 40 and token not in path.read_text()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    (found,) = read_file(path)
    assert (found.name, found.role, found.sha256) == (
        "ada", "operator", hashlib.sha256(token.encode()).digest())
    again = subprocess.run([sys.executable, "-m", "workflow", "token", "new", "ada", "--role",
                            "viewer", "--file", str(path)], capture_output=True, text=True,
                           timeout=60)  # fmt: skip
    assert again.returncode == 1
    assert again.stderr.strip() == f"error: {path} has a token called ada already (name)"

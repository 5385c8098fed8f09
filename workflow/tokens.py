"""Access tokens and their roles: who may call the service, and what each may do.

Roles, each allowed what the one before it is, and more:

- ``viewer``: read buckets, results, the dashboard and archived files;
- ``runner``: deposit, claim, heartbeat, report outcomes, release (what runners and
  CHIME's transfer and audit daemons do);
- ``operator``: change priority and retries, cancel, retry, pause and resume pipelines,
  bulk actions, delete works from the buckets;
- ``admin``: delete finished works from the results.

The server keeps only SHA-256 digests of tokens (tokens are long random strings, so a
plain digest is enough; nothing to salt or stretch) and compares a presented token's
digest with every known one in constant time. Tokens come from a TOML file
(``WORKFLOW_TOKENS_FILE``) that holds only digests, and from the environment:
``WORKFLOW_ADMIN_TOKENS``, ``WORKFLOW_OPERATOR_TOKENS``, ``WORKFLOW_RUNNER_TOKENS``,
``WORKFLOW_VIEWER_TOKENS`` (and ``WORKFLOW_TOKENS``, the same as admin), each a comma-
separated list of ``name=TOKEN`` or ``name=sha256:HEX`` (the name is optional).
``workflow token new`` makes a token and prints its file entry.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import secrets
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, get_args

from workflow.errors import ConfigurationError

Role = Literal["viewer", "runner", "operator", "admin"]
ROLES: tuple[Role, ...] = get_args(Role)
#: Environment variables of tokens, with the role of each.
ENVIRONMENT: dict[str, Role] = {"WORKFLOW_ADMIN_TOKENS": "admin", "WORKFLOW_TOKENS": "admin",
                                "WORKFLOW_OPERATOR_TOKENS": "operator",
                                "WORKFLOW_RUNNER_TOKENS": "runner",
                                "WORKFLOW_VIEWER_TOKENS": "viewer"}  # fmt: skip
_DIGEST = re.compile(r"sha256:([0-9a-f]{64})")
_NAME = re.compile(r"[A-Za-z0-9_.@-]{1,64}")
#: Fewer characters than this is no token but a password: refused at start-up.
SHORTEST = 16


def allows(role: Role, needed: Role) -> bool:
    """True when ``role`` may do what ``needed`` may."""
    return ROLES.index(role) >= ROLES.index(needed)


def digest(token: str) -> bytes:
    """The SHA-256 digest of ``token``."""
    return hashlib.sha256(token.encode()).digest()


def entry(name: str, role: Role, token: str) -> str:
    """The tokens file's entry for ``token`` (its digest, never the token)."""
    return (f'[[token]]\nname = "{name}"\nrole = "{role}"\n'
            f'sha256 = "{digest(token).hex()}"\n')  # fmt: skip


def new_token() -> str:
    """A fresh random token (256 bits)."""
    return secrets.token_urlsafe(32)


@dataclass(frozen=True)
class Token:
    """A known token: its name (who acts), role and digest."""

    name: str
    role: Role
    sha256: bytes


class Keyring:
    """The known tokens; empty means the server runs open (loopback only)."""

    def __init__(self, tokens: list[Token]):
        names = [t.name for t in tokens]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ConfigurationError(f"token names must differ; given twice: {', '.join(twice)}",
                                     field="tokens")  # fmt: skip
        self.tokens = tuple(tokens)

    def __bool__(self) -> bool:
        return bool(self.tokens)

    def __len__(self) -> int:
        return len(self.tokens)

    def __repr__(self) -> str:  # never the digests either
        return f"Keyring({len(self.tokens)} tokens)"

    def find(self, token: str) -> Token | None:
        """The known token ``token`` is, or None; every digest is compared, each in
        constant time, so the time taken tells nothing of which matched or how nearly."""
        given = digest(token)
        found = None
        for known in self.tokens:
            if hmac.compare_digest(given, known.sha256):
                found = known
        return found

    def roles(self) -> dict[Role, int]:
        """How many tokens each role has."""
        return {role: sum(t.role == role for t in self.tokens) for role in ROLES}

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> Keyring:
        """The tokens of ``WORKFLOW_TOKENS_FILE`` and the role variables."""
        environ = dict(os.environ if environ is None else environ)
        tokens: list[Token] = []
        if path := environ.get("WORKFLOW_TOKENS_FILE"):
            tokens += read_file(Path(path))
        for variable, role in ENVIRONMENT.items():
            # Unnamed ones are called after the variable: viewer-token-1, token-2, ...
            stem = variable.removeprefix("WORKFLOW_").removesuffix("S").lower().replace("_", "-")
            items = [i.strip() for i in environ.get(variable, "").split(",") if i.strip()]
            for n, item in enumerate(items, 1):
                tokens.append(_from_text(item, role, f"{variable}, token {n}", f"{stem}-{n}"))
        return cls(tokens)


def _from_text(item: str, role: Role, where: str, unnamed: str) -> Token:
    name, sep, value = item.partition("=")
    if not sep:
        name, value = unnamed, item
    elif not _NAME.fullmatch(name):
        raise ConfigurationError(f"{where}: a token's name is 1 to 64 letters, digits or "
                                 "'_.@-'", field="tokens")  # fmt: skip
    if value.startswith("sha256:"):
        return Token(name, role, _parse_digest(value, where))
    return Token(name, role, digest(long_enough(value, where)))


def long_enough(token: str, where: str) -> str:
    """``token``, if it is long enough to be one.

    Raises:
        ConfigurationError: it has fewer than ``SHORTEST`` characters.
    """
    if len(token) < SHORTEST:
        raise ConfigurationError(f"{where}: a token needs at least {SHORTEST} characters "
                                 "(see 'workflow token new')", field="tokens")  # fmt: skip
    return token


def _parse_digest(value: str, where: str) -> bytes:
    match = _DIGEST.fullmatch(value)
    if match is None:
        raise ConfigurationError(f"{where}: a digest is 'sha256:' and 64 lowercase hex digits",
                                 field="tokens")  # fmt: skip
    return bytes.fromhex(match.group(1))


def read_file(path: Path) -> list[Token]:
    """The ``[[token]]`` entries of a tokens file (``name``, ``role``, ``sha256``).

    Raises:
        ConfigurationError: the file cannot be read, is not TOML, or an entry is wrong.
    """
    try:
        data = tomllib.loads(path.read_text())
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigurationError(f"WORKFLOW_TOKENS_FILE {path}: {exc}", field="tokens") from None
    entries = data.get("token", [])
    if not isinstance(entries, list) or set(data) - {"token"}:
        raise ConfigurationError(f"{path}: only [[token]] entries belong here", field="tokens")
    tokens = []
    for n, item in enumerate(entries, 1):
        where = f"{path}, token {n}"
        if not isinstance(item, dict) or set(item) != {"name", "role", "sha256"}:
            raise ConfigurationError(f"{where}: needs exactly name, role and sha256",
                                     field="tokens")  # fmt: skip
        name, role, value = item["name"], item["role"], item["sha256"]
        if not isinstance(name, str) or not _NAME.fullmatch(name):
            raise ConfigurationError(f"{where}: a name is 1 to 64 letters, digits or '_.@-'",
                                     field="tokens")  # fmt: skip
        if role not in ROLES:
            raise ConfigurationError(f"{where}: role must be one of {', '.join(ROLES)}",
                                     field="tokens")  # fmt: skip
        hexed = value if isinstance(value, str) else ""
        tokens.append(Token(name, role, _parse_digest(f"sha256:{hexed}", where)))
    return tokens


def add_to_file(path: Path, name: str, text: str) -> None:
    """Add the entry ``text`` of the token ``name`` to the tokens file ``path``; a new file
    is made readable by its owner only, and so is a missing folder (mode 0700).

    Raises:
        ConfigurationError: the file has a token called ``name``, or the file or its
            folder cannot be read, made or written.
    """
    try:
        if path.exists():
            if any(known.name == name for known in read_file(path)):
                raise ConfigurationError(f"{path} has a token called {name} already",
                                         field="name")  # fmt: skip
            with path.open("a") as out:
                out.write(f"\n{text}")
            return
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w") as out:
            out.write(text)
    except OSError as exc:
        where = exc.filename or path
        raise ConfigurationError(f"cannot write the tokens file {path}: {where}: "
                                 f"{exc.strerror or exc}; create the folder (mode 0700) as "
                                 "the server's user, or choose another --file",
                                 field="file") from None  # fmt: skip

"""How a runner behaves: the options of ``workflow run``, and where its spool lies."""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass, field
from pathlib import Path


def default_spool() -> Path:
    """``$XDG_DATA_HOME/workflow/spool``: outcomes not yet delivered."""
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "workflow" / "spool"


@dataclass
class RunnerOptions:
    """How a runner behaves (see ``workflow run --help``)."""

    pipelines: list[str]
    function: str | None = None
    site: str | None = None
    tags: list[str] = field(default_factory=list)
    lives: int | None = None
    burst: bool = False
    sleep: float = 1.0
    max_sleep: float = 30.0
    concurrency: int = 1
    prefetch: int | None = None  # None: the runner chooses (runner/pace.py)
    lease: float = 60.0
    grace: float = 30.0
    archive: Path | None = None
    graph_engine: str | None = None
    spool: Path = field(default_factory=default_spool)
    runner: str = field(default_factory=lambda: f"{socket.gethostname()}-{os.getpid()}")
    name: str | None = None  # shown in the registry; None: the runner's id

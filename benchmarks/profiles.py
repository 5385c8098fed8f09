"""Where the CPU goes: ``py-spy`` and ``perf`` on live processes, summed up by kind.

py-spy samples the Python stack of the thread holding the GIL 100 times a second. Each
sample is charged to its innermost Python frame, which includes the C code that frame
called while holding the GIL (``json.dumps``, pydantic-core), and that frame's file says
what kind of work it was. SQLite and socket calls release the GIL, so py-spy sees only
part of them; perf, sampling on-CPU time per shared object, sees all of it. Multiplied
by the process's CPU seconds per work, the shares become milliseconds of CPU per work.
"""

from __future__ import annotations

import re
import shutil
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

#: (pattern on the innermost frame's file, kind); first match wins.
KINDS = [
    (r"workflow/store/", "SQLite statements (workflow.store)"),
    (r"/json/", "JSON encode/decode (stdlib json)"),
    (r"fastapi/encoders\.py", "FastAPI jsonable_encoder"),
    (r"pydantic", "pydantic validation/serialization"),
    (r"fastapi/", "FastAPI routing, dependencies, responses"),
    (r"starlette/|uvicorn/|httptools/", "HTTP server (uvicorn, starlette)"),
    (r"h11/", "HTTP/1.1 parsing (h11; server and client)"),
    (r"anyio/|asyncio/|concurrent/futures|threading\.py|selectors\.py|queue\.py",
     "thread hand-offs, queues, event loop"),
    (r"urllib3/|httpx/|httpcore/|socket\.py|ssl\.py|http/|urllib",
     "HTTP client (urllib3, http.client)"),
    (r"rich/", "runner's report lines (rich)"),
    (r"multiprocessing/", "child pipe and pickling (multiprocessing)"),
    (r"workflow/runner/outbox\.py", "outbox: journal, delivery"),
    (r"workflow/", "other workflow code"),
    (r"logging/", "logging"),
    (r"email/|uuid\.py|enum\.py|typing\.py|inspect\.py|dataclasses\.py|copy\.py|abc\.py",
     "stdlib helpers (enum, typing, uuid, ...)"),
]  # fmt: skip
_ROOT = str(Path(__file__).resolve().parent.parent) + "/"
_FRAME = re.compile(r"^(?P<func>.*) \((?P<file>[^()]*?)(?::(?P<line>\d+))?\)$")


def py_spy() -> str:
    """The py-spy executable next to this Python, or on PATH.

    Raises:
        RuntimeError: py-spy is not installed.
    """
    here = Path(sys.executable).parent / "py-spy"
    found = str(here) if here.exists() else shutil.which("py-spy")
    if not found:
        raise RuntimeError("--profile needs py-spy: .venv/bin/pip install py-spy")
    return found


class Recording:
    """py-spy and perf sampling one process tree (``pids[0]`` and its descendants).

    py-spy (``--gil``: only the thread holding the GIL, i.e. running Python) tells which
    Python code runs; perf (``cpu-clock``, 499 Hz, on-CPU only) tells which native code
    runs, the interpreter being one lump, SQLite, json's C part, pydantic-core and the
    kernel others.
    """

    def __init__(self, name: str, pids: list[int], folder: Path):
        self.pyspy_path = folder / f"{name}.pyspy.txt"
        self.perf_path = folder / f"{name}.perf.data"
        command = [py_spy(), "record", "--pid", str(pids[0]), "--format", "raw", "--gil",
                   "--rate", "100", "--full-filenames", "--output", str(self.pyspy_path)]
        if len(pids) > 1:
            command.append("--subprocesses")
        self._processes = [_start(command, folder / f"{name}.pyspy.log")]
        perf = shutil.which("perf")
        if perf:
            self._processes.append(_start(
                [perf, "record", "-e", "cpu-clock", "-F", "499", "-p",
                 ",".join(map(str, pids)), "-o", str(self.perf_path)],
                folder / f"{name}.perf.log"))

    def finish(self, timeout: float = 30.0) -> None:
        """Stop sampling (both write their files on SIGINT, or when the target exits)."""
        for process in self._processes:
            if process.poll() is None:
                process.send_signal(signal.SIGINT)
        for process in self._processes:
            try:
                process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()

    def summary(self, cpu_s: float, works: float) -> dict[str, Any]:
        """Both views, shares also as CPU ms per work (see ``summarize``, ``native``)."""
        out = summarize(self.pyspy_path, cpu_s, works)
        if self.perf_path.exists():
            out["native"] = native(self.perf_path, cpu_s, works)
        return out


def _start(command: list[str], log: Path) -> subprocess.Popen:
    with open(log, "wb") as out:
        return subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)


#: perf's shared objects, named by what runs in them.
DSOS = [
    (r"kernel", "kernel: system calls (sockets, futex, files), scheduling"),
    (r"libpython", "Python interpreter (every Python-level line)"),
    (r"libsqlite3", "SQLite library"),
    (r"_sqlite3", "sqlite3 module glue"),
    (r"_json", "json C accelerator"),
    (r"pydantic_core", "pydantic-core (Rust)"),
    (r"libc\.so|libc-", "libc (malloc, memcpy, ...)"),
    (r"_pickle", "pickle C accelerator"),
]


def native(path: Path, cpu_s: float, works: float, top: int = 15) -> dict[str, Any]:
    """perf's on-CPU samples by shared object and by symbol."""
    per_work_ms = 1000 * cpu_s / works if works else 0.0

    def report(sort: str) -> list[tuple[float, str]]:
        text = subprocess.run(["perf", "report", "-i", str(path), "--stdio", "--no-children",
                               "--sort", sort, "--percent-limit", "0.2"],
                              capture_output=True, text=True).stdout  # fmt: skip
        found = []
        for line in text.splitlines():
            if match := re.match(r"^\s+([\d.]+)%\s+(.+?)\s*$", line):
                found.append((float(match[1]) / 100, re.sub(r"\s+", " ", match[2])))
        return found

    kinds: dict[str, float] = {}
    for share, dso in report("dso"):
        kind = next((k for pattern, k in DSOS if re.search(pattern, dso)), dso)
        kinds[kind] = kinds.get(kind, 0.0) + share
    return {
        "kinds": [{"name": k, "share": round(v, 4), "ms_per_work": round(per_work_ms * v, 4)}
                  for k, v in sorted(kinds.items(), key=lambda kv: -kv[1])],
        "symbols": [{"name": name, "share": round(v, 4),
                     "ms_per_work": round(per_work_ms * v, 4)}
                    for v, name in report("dso,sym")[:top]],
    }  # fmt: skip


def kind_of(file: str) -> str:
    """The kind of work done in ``file`` (see ``KINDS``)."""
    for pattern, kind in KINDS:
        if re.search(pattern, file):
            return kind
    parts = Path(file).parts
    package = next((p for p in reversed(parts[:-1]) if p == "site-packages"), None)
    if package and parts.index(package) + 1 < len(parts):
        return f"other: {parts[parts.index(package) + 1]}"
    return f"other: {Path(file).name}"


def summarize(path: Path, cpu_s: float, works: float, top: int = 12) -> dict[str, Any]:
    """Shares of the samples in ``path`` by kind and by innermost function.

    Args:
        path: py-spy's raw output: one ``frame;frame;...;innermost count`` per line.
        cpu_s: CPU seconds the sampled process(es) used in the measured stretch.
        works: Works done in that stretch, to express shares as ms of CPU per work.
        top: How many innermost functions to list.
    """
    kinds: Counter[str] = Counter()
    leaves: Counter[str] = Counter()
    routes: Counter[str] = Counter()
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        frames = [f for f in stack.split(";") if not f.startswith(("process ", "thread "))]
        if not frames:
            continue
        total += n
        match = _FRAME.match(frames[-1])
        func, file = (match["func"], match["file"]) if match else (frames[-1], "")
        if not file:  # the forkserver's ``python -c`` code, under which children run
            func, file = "<python -c>", "multiprocessing/forkserver"
        kinds[kind_of(file)] += n
        leaves[f"{func[:60]} ({_short(file)})"] += n
        # The route (request handler) or runner thread each sample belongs to.
        for frame in frames:
            m = _FRAME.match(frame)
            if m and re.search(r"workflow/(service/\w+_api|runner/\w+)\.py", m["file"]):
                routes[f"{m['func']} ({_short(m['file'])})"] += n
                break
        else:
            routes["(outside request handlers and runner code)"] += n
    per_work_ms = 1000 * cpu_s / works if works else 0.0

    def rows(counter: Counter[str], limit: int | None = None) -> list[dict[str, Any]]:
        return [{"name": name, "share": round(n / total, 4),
                 "ms_per_work": round(per_work_ms * n / total, 4)}
                for name, n in counter.most_common(limit)]  # fmt: skip

    return {"samples": total, "cpu_s": round(cpu_s, 3), "cpu_ms_per_work": round(per_work_ms, 4),
            "kinds": rows(kinds) if total else [], "innermost": rows(leaves, top) if total else [],
            "entry": rows(routes, top) if total else []}  # fmt: skip


def _short(file: str) -> str:
    """``site-packages/x/y.py`` -> ``x/y.py``; a project file relative to the project."""
    for marker in ("site-packages/", _ROOT, "lib/python3"):
        if marker in file:
            return re.sub(r"^[/\d.]+", "", file.split(marker, 1)[1])
    return file

"""The server process's C heap: glibc's malloc, set so that the server's memory stays flat.

Under many clients the server's resident memory used to climb for as long as it ran
(``benchmarks/memory_soak.py`` with 8 clients: +0.85 MB/min over 20 minutes) while
Python's objects and the bytes malloc had handed out stayed put: most of the growth was
free memory that glibc kept inside its heaps, for three reasons undone here. (The rest
was text search gathering every match in memory, see ``workflow.store.sqlite_text``.)

- **The mmap threshold moves.** glibc maps a block above the threshold (128 KiB at
  first) on its own, and unmaps it when it is freed; but freeing such a block raises
  the threshold to its size. A buffer that grows with the data, such as the one in
  which SQLite gathers the matches of a prefix search (256 KiB at 70,000 works), so
  raised it again and again, and the next such buffers came out of the heaps, leaving
  holes as large as the largest so far. ``configure`` fixes the threshold at glibc's
  starting value.
- **Every thread may get its own heap** (an arena; up to eight per core), and each heap
  keeps the most it ever held. The server's worker threads come and go and spread over
  all of them; ``configure`` allows two, so their peaks are shared.
- **Freed memory inside a heap stays resident** until ``malloc_trim`` hands its pages
  back; only the top of a heap is given back by itself. The server's reaper calls
  ``trim`` on every pass (a fraction of a millisecond).

Elsewhere (musl, macOS, Windows) both functions do nothing.
"""

from __future__ import annotations

import ctypes
import platform
import sys
from functools import cache

#: glibc's mallopt parameters (malloc.h).
M_MMAP_THRESHOLD = -3
M_ARENA_MAX = -8
#: Blocks this large or larger are mapped on their own (glibc's starting value); setting
#: it also stops glibc from raising it, and the trim threshold with it.
MMAP_THRESHOLD = 128 * 1024
#: Heaps (arenas) the threads share, instead of up to eight per core.
ARENAS = 2


@cache
def _glibc() -> ctypes.CDLL | None:
    if not sys.platform.startswith("linux") or platform.libc_ver()[0] != "glibc":
        return None
    try:
        return ctypes.CDLL("libc.so.6")
    except OSError:
        return None


def configure() -> bool:
    """Fix malloc's mmap threshold and cap its arenas, for the whole process.

    Call it when the server starts, before its worker threads do: glibc settles how
    many arenas there may be once it has made a few.

    Returns:
        Whether both settings took (False off glibc).
    """
    libc = _glibc()
    if libc is None:
        return False
    took = [libc.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD), libc.mallopt(M_ARENA_MAX, ARENAS)]
    return all(took)


def trim() -> bool:
    """Hand the free pages inside malloc's heaps back to the operating system.

    Returns:
        Whether any memory was given back (False off glibc).
    """
    libc = _glibc()
    return bool(libc.malloc_trim(0)) if libc is not None else False

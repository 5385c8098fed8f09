"""The server's malloc settings (``workflow.service.heap``), each tried in a fresh
interpreter: they hold for a whole process, and glibc's state must start clean."""

from __future__ import annotations

import platform
import subprocess
import sys

import pytest

from workflow.service import heap

glibc = pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc's malloc only")

PRELUDE = """
import ctypes
from workflow.service import heap

libc = ctypes.CDLL("libc.so.6")
libc.malloc.restype = ctypes.c_void_p
libc.malloc.argtypes = [ctypes.c_size_t]
libc.free.argtypes = [ctypes.c_void_p]
libc.memset.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_size_t]


class Mallinfo(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in ("arena", "ordblks", "smblks", "hblks",
                "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost")]


libc.mallinfo2.restype = Mallinfo


def resident():
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * 4096


heap.configure()
"""


def _run(body: str) -> str:
    done = subprocess.run([sys.executable, "-c", PRELUDE + body], capture_output=True,
                          text=True, timeout=60)  # fmt: skip
    assert done.returncode == 0, done.stderr
    return done.stdout


@glibc
def test_a_freed_large_block_leaves_the_next_ones_mapped_apart() -> None:
    # A text search's match buffer grows with the results; once one was freed, glibc
    # used to take every smaller large block from its heaps, where they leave holes.
    out = _run("""
search = libc.malloc(4 << 20)
libc.free(search)
before = libc.mallinfo2().hblkhd
block = libc.malloc(256 << 10)
print(libc.mallinfo2().hblkhd - before)
""")
    assert int(out) >= 256 << 10, "a 256 KiB block came out of the heap"


@glibc
def test_trim_gives_the_free_pages_inside_the_heap_back() -> None:
    # 8 MiB freed under a block still in use (the last one taken from the heap's top):
    # the heap cannot shrink from its top.
    out = _run("""
*blocks, pinned = [libc.malloc(64 << 10) for _ in range(129)]
for block in blocks:
    libc.memset(block, 1, 64 << 10)
    libc.free(block)
before = resident()
gave = heap.trim()
print(gave, before - resident())
""")
    gave, returned = out.split()
    assert int(returned) >= 6 << 20, f"only {int(returned) >> 10} KiB went back"
    assert gave == "True"


@glibc
def test_threads_share_two_heaps() -> None:
    # Each new thread used to get a heap of its own (up to eight per core), each keeping
    # the most it ever held.
    out = _run("""
import threading
started = threading.Barrier(9)

def hold():
    block = libc.malloc(1024)
    started.wait()
    started.wait()
    libc.free(block)

threads = [threading.Thread(target=hold) for _ in range(8)]
for thread in threads:
    thread.start()
started.wait()
stdout = ctypes.c_void_p.in_dll(libc, "stdout")
libc.malloc_info(0, stdout)
libc.fflush(stdout)
started.wait()
""")
    heaps = out.count("<heap nr=")
    assert heaps == heap.ARENAS, f"{heaps} heaps for 9 threads"


def test_off_glibc_both_do_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(heap, "_glibc", lambda: None)
    assert (heap.configure(), heap.trim()) == (False, False)

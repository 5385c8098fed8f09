"""Python's cyclic garbage collector, set for a long-running process that handles many
small messages: the server and a runner.

By default the collector looks at the youngest objects every 700 allocations and, now
and then, walks everything alive, modules and classes included. A server or a runner
allocates a few dozen short-lived dicts and lists per work, almost none of them in
reference cycles (plain reference counting frees them), so at thousands of works a
second those walks cost about a tenth of the server's CPU (``benchmarks/lifecycle.py
--profile``: ``gc_collect_main``). ``settle`` moves what start-up loaded out of the
collector's sight (``gc.freeze``) and looks at young objects every ``YOUNG`` allocations.
"""

from __future__ import annotations

import gc

#: Allocations (net of frees) between collections of the youngest generation.
YOUNG = 10_000
#: Collections of a generation between collections of the next one.
OLDER = (50, 100)


def settle() -> None:
    """Call once start-up is done, before the process's main work begins."""
    gc.freeze()
    gc.set_threshold(YOUNG, *OLDER)

"""How many works a runner keeps in hand when left to choose (runner/pace.py)."""

from __future__ import annotations

from workflow.runner.pace import CAP, FRACTION, Pace


def test_a_pinned_prefetch_is_kept_whatever_the_attempts_take() -> None:
    pace = Pace(concurrency=2, prefetch=50)
    pace.ran(100.0, 3600)
    assert pace.backlog() == 50
    assert Pace(concurrency=4, prefetch=1).backlog() == 4  # every attempt thread gets one


def test_it_starts_at_one_work_per_thread_and_at_most_doubles() -> None:
    pace = Pace(concurrency=1)
    assert pace.backlog() == 1
    seen = []
    for _ in range(12):
        pace.ran(0.00002, 3600)
        seen.append(pace.backlog())
    assert seen[:9] == [2, 4, 8, 16, 32, 64, 128, 256, 500]
    assert seen[9:] == [CAP] * 3


def test_no_work_waits_longer_than_its_share_of_the_shortest_timeout() -> None:
    pace = Pace(concurrency=2)
    for _ in range(20):
        pace.ran(0.05, 10)
        backlog = pace.backlog()
    # The last of them waits backlog / concurrency attempts of 0.05 s: <= 5% of 10 s.
    assert backlog == int(FRACTION * 10 * 2 / 0.05) == 20
    assert backlog / 2 * 0.05 <= FRACTION * 10
    pace.ran(0.01, 2)  # a work with a shorter timeout comes: the bound follows it
    assert pace.backlog() == int(FRACTION * 2 * 2 / 0.05)


def test_one_slow_attempt_brings_the_backlog_down_at_once() -> None:
    pace = Pace(concurrency=1)
    for _ in range(15):
        pace.ran(0.001, 3600)
        pace.backlog()
    assert pace.backlog() == CAP
    pace.ran(30.0, 3600)
    assert pace.backlog() == int(FRACTION * 3600 / 30.0) == 6
    pace.ran(200.0, 3600)
    assert pace.backlog() == 1, "never below one work per attempt thread"

"""Deleting finished works: what comes after is recorded as if they had never been."""

from __future__ import annotations

from typing import Any

from asking import delete_results, ended, find, want


def test_a_completion_after_deleting_the_newest_result_is_recorded(
    buckets: Any, results: Any, make_work: Any, pipeline: str
) -> None:
    # The newest result is deleted before the background text indexing has seen it
    # (in process, nothing indexes until a search; over HTTP the server's sweep may).
    first = make_work(parameters={"source": "crab"})
    second = make_work(parameters={"source": "frb"})
    buckets.deposit([first])
    (taken,) = buckets.withdraw(want(pipeline))
    buckets.complete(ended(taken["id"], taken["attempt"], "success", results={"snr": 1}))
    assert delete_results(results, pipeline, [first["id"]]) == 1

    buckets.deposit([second])
    (taken,) = buckets.withdraw(want(pipeline))
    done = buckets.complete(ended(taken["id"], taken["attempt"], "success", results={"snr": 2}))
    assert done["status"] == "success"
    assert buckets.get(second["id"])["status"] == "success"
    assert results.result(second["id"])["results"] == {"snr": 2}
    assert buckets.counts()[pipeline] == {"success": 1}
    assert [w["id"] for w in results.search(find(pipeline=[pipeline], text="frb"))[0]] == [
        second["id"]
    ]
    assert results.search(find(pipeline=[pipeline], text="crab")) == ([], 0)

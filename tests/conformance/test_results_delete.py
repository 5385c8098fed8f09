"""Deleting finished works: what comes after is recorded as if they had never been."""

from __future__ import annotations

from typing import Any

from workflow.local import LocalClient


def _delete_results(api: Any, pipeline: str, ids: list[str]) -> int:
    """Delete finished works the way an admin does: over HTTP
    ``DELETE /results/results?PIPELINE=ID``, in process the results verb."""
    if isinstance(api, LocalClient):
        return api.results.delete(ids)
    reply = api.call("DELETE", "/results/results", params=[(pipeline, id) for id in ids])
    return int(reply[pipeline])


def test_a_completion_after_deleting_the_newest_result_is_recorded(
    api: Any, make_work: Any, pipeline: str
) -> None:
    # The newest result is deleted before the background text indexing has seen it
    # (in process, nothing indexes until a search; over HTTP the server's sweep may).
    first = make_work(parameters={"source": "crab"})
    second = make_work(parameters={"source": "frb"})
    api.deposit([first])
    (taken,) = api.withdraw(pipeline)
    api.complete(taken.id, taken.attempt, "success", results={"snr": 1})
    assert _delete_results(api, pipeline, [first.id]) == 1

    api.deposit([second])
    (taken,) = api.withdraw(pipeline)
    done = api.complete(taken.id, taken.attempt, "success", results={"snr": 2})
    assert done.status == "success"
    assert api.get(second.id).status == "success"
    assert api.result(second.id).results == {"snr": 2}
    assert api.counts()[pipeline] == {"success": 1}
    assert [w.id for w in api.search(pipeline=[pipeline], text="frb")[0]] == [second.id]
    assert api.search(pipeline=[pipeline], text="crab") == ([], 0)

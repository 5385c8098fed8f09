"""Operator actions and results search: the same on every backend."""

from __future__ import annotations

import time
from typing import Any

import pytest
from asking import bulk, ended, find, want, who

from workflow.errors import CountChanged, InvalidWork, NotFound, TransitionConflict


def test_cancel_queued_and_running(
    buckets: Any, results: Any, make_work: Any, pipeline: str
) -> None:
    queued, running = make_work(priority=1), make_work(priority=5)
    buckets.deposit([queued, running])
    (taken,) = buckets.withdraw(want(pipeline))
    assert buckets.cancel(queued["id"])["status"] == "cancelled"
    cancelled = buckets.cancel(taken["id"])
    assert cancelled["status"] == "cancelled"
    assert [e["kind"] for e in cancelled["history"]] == ["attempt", "action"]
    assert cancelled["history"][0]["outcome"] == "cancelled"
    assert cancelled["history"][1]["by"] == who(buckets)
    assert buckets.counts()[pipeline] == {"cancelled": 2}
    with pytest.raises(NotFound):
        buckets.cancel(queued["id"])
    with pytest.raises(TransitionConflict):
        buckets.complete(ended(taken["id"], taken["attempt"], "success", results={"late": 1}))
    assert results.result(taken["id"])["status"] == "cancelled"


def test_change_priority_and_retries_of_queued_work(
    buckets: Any, make_work: Any, pipeline: str
) -> None:
    low, other = make_work(priority=1), make_work(priority=3)
    buckets.deposit([low, other])
    changed = buckets.change(low["id"], priority=5, retries=4)
    assert (changed["priority"], changed["retries"]) == (5, 4)
    assert changed["history"][-1]["action"] == "change"
    assert changed["history"][-1]["changes"] == {"priority": 5, "retries": 4}
    assert changed["history"][-1]["by"] == who(buckets)
    assert buckets.withdraw(want(pipeline))[0]["id"] == low["id"]
    with pytest.raises(TransitionConflict):
        buckets.change(low["id"], priority=2)
    with pytest.raises(InvalidWork):
        buckets.change(other["id"], priority=9)


def test_pause_and_resume(buckets: Any, make_work: Any, pipeline: str) -> None:
    buckets.deposit([make_work()])
    assert buckets.configure(pipeline, {"paused": True}).paused is True
    assert buckets.withdraw(want(pipeline)) == []
    assert buckets.withdraw(want(None)) == [] or all(
        w["pipeline"] != pipeline for w in buckets.withdraw(want(None))
    )
    buckets.configure(pipeline, {"paused": False})
    assert len(buckets.withdraw(want(pipeline))) == 1


def test_pipeline_defaults_apply_to_deposits_that_do_not_set_them(
    buckets: Any, make_work: Any, pipeline: str
) -> None:
    buckets.configure(pipeline, {"defaults": {"priority": 5, "retries": 0, "timeout": 60}})
    plain = make_work()
    own = make_work(priority=2, retries=3)
    buckets.deposit([plain, own])
    assert (buckets.get(plain["id"])["priority"], buckets.get(plain["id"])["retries"]) == (5, 0)
    assert buckets.get(plain["id"])["timeout"] == 60
    assert (buckets.get(own["id"])["priority"], buckets.get(own["id"])["retries"]) == (2, 3)
    with pytest.raises(InvalidWork):
        buckets.configure(pipeline, {"defaults": {"retries": 9}})


def test_delete(buckets: Any, make_work: Any, pipeline: str) -> None:
    works = [make_work(), make_work()]
    buckets.deposit(works)
    assert buckets.delete([works[0]["id"]]) == 1
    assert buckets.counts()[pipeline] == {"queued": 1}
    with pytest.raises(NotFound):
        buckets.get(works[0]["id"])


@pytest.fixture
def finished(buckets: Any, make_work: Any, pipeline: str) -> dict[str, Any]:
    """Five finished works with varied fields, by name."""
    now = time.time()
    named = {
        "crab": make_work(
            parameters={"source": "crab nebula"},
            tags=["pulsar"],
            event=[1],
            site="chime",
            user="ann",
            creation=now - 500,
        ),
        "vela": make_work(
            parameters={"source": "vela"},
            tags=["pulsar", "south"],
            event=[2],
            user="bob",
            creation=now - 400,
        ),
        "frb": make_work(
            parameters={"source": "frb121102"},
            tags=["frb"],
            event=[3],
            user="ann",
            creation=now - 300,
        ),
        "bad": make_work(parameters={"source": "noise"}, retries=0, creation=now - 200),
        "gone": make_work(parameters={"source": "moon"}, creation=now - 100),
    }
    buckets.deposit(list(named.values()))
    for name, work in named.items():
        if name == "gone":
            buckets.cancel(work["id"])
            continue
        (taken,) = buckets.withdraw(want(pipeline, limit=1))
        name = next(n for n, w in named.items() if w["id"] == taken["id"])
        status = "failure" if name == "bad" else "success"
        buckets.complete(
            ended(
                taken["id"],
                taken["attempt"],
                status,
                results={"snr": len(name)},
                error={"type": "RuntimeError", "message": "detector saturated"}
                if status == "failure"
                else None,
            )
        )
    return {name: work["id"] for name, work in named.items()}


def _names(found: list[Any], ids: dict[str, str]) -> list[str]:
    by_id = {v: k for k, v in ids.items()}
    return [by_id[w["id"]] for w in found]


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({}, ["gone", "bad", "frb", "vela", "crab"]),
        ({"status": ["failure", "cancelled"]}, ["gone", "bad"]),
        ({"tag": ["pulsar"]}, ["vela", "crab"]),
        ({"event": [3, 1]}, ["frb", "crab"]),
        ({"site": "chime"}, ["crab"]),
        ({"user": "ann"}, ["frb", "crab"]),
        ({"text": "nebula"}, ["crab"]),
        ({"text": "saturated"}, ["bad"]),
        ({"order": "asc", "limit": 2}, ["crab", "vela"]),
        ({"skip": 1, "limit": 2}, ["bad", "frb"]),
        ({"sort": "priority", "order": "asc", "limit": 1}, ["crab"]),
    ],
)
def test_search(
    buckets: Any,
    results: Any,
    pipeline: str,
    finished: dict[str, str],
    params: dict[str, Any],
    expected: list[str],
) -> None:
    found, total = results.search(find(pipeline=[pipeline], **params))
    assert _names(found, finished) == expected
    if "limit" not in params:
        assert total == len(expected)


def test_search_time_range(
    buckets: Any, results: Any, pipeline: str, finished: dict[str, str]
) -> None:
    now = time.time()
    found, total = results.search(find(pipeline=[pipeline], since=now - 450, until=now - 250))
    assert _names(found, finished) == ["frb", "vela"] and total == 2


def test_counts_per_pipeline_and_status(
    buckets: Any, pipeline: str, finished: dict[str, str]
) -> None:
    assert buckets.counts()[pipeline] == {"success": 3, "failure": 1, "cancelled": 1}


def test_retry_of_a_finished_work_queues_a_linked_copy(
    buckets: Any, results: Any, make_work: Any, pipeline: str
) -> None:
    original = make_work(priority=4, parameters={"dm": 1.0}, tags=["t"])
    buckets.deposit([original])
    (taken,) = buckets.withdraw(want(pipeline))
    buckets.complete(
        ended(taken["id"], taken["attempt"], "failure", error={"type": "E", "message": "m"})
    )
    while buckets.get(original["id"])["status"] == "queued":  # retries left: finish it off
        (again,) = buckets.withdraw(want(pipeline))
        buckets.complete(
            ended(again["id"], again["attempt"], "failure", error={"type": "E", "message": "m"})
        )
    copy = buckets.retry(original["id"], parameters={"dm": 2.5})
    assert copy["id"] != original["id"] and copy["status"] == "queued" and copy["attempt"] == 0
    assert (copy["pipeline"], copy["priority"], copy["tags"], copy["parameters"]) == (
        pipeline,
        4,
        ["t"],
        {"dm": 2.5},
    )
    assert [(e["action"], e["changes"], e["by"]) for e in copy["history"]] == [
        ("retry-of", {"of": original["id"]}, who(buckets))
    ]
    linked = results.result(original["id"])
    assert linked["history"][-1]["action"] == "retried-as"
    assert linked["history"][-1]["changes"] == {"as": copy["id"]}
    same = buckets.retry(original["id"])
    assert same["parameters"] == {"dm": 1.0}, "without new parameters, the original's"
    with pytest.raises(NotFound):
        buckets.retry(copy["id"])  # still queued: not a finished work
    with pytest.raises(InvalidWork):
        buckets.retry(original["id"], parameters=["not", "an", "object"])


def test_bulk_actions_state_the_count_and_never_touch_more(
    buckets: Any, results: Any, make_work: Any, pipeline: str
) -> None:
    works = [make_work(priority=1, site="north") for _ in range(5)] + [make_work(site="south")]
    buckets.deposit(works)
    (running,) = buckets.withdraw(want(pipeline, site="south"))
    asked = buckets.bulk(bulk("change", pipeline=[pipeline], site="north", priority=4))
    assert asked.model_dump() == {"matched": 5, "done": 0, "skipped": 0, "reasons": []}
    assert {buckets.get(w["id"])["priority"] for w in works[:5]} == {1}, "a count changes nothing"
    buckets.deposit([make_work(site="north")])  # a sixth match since the count
    with pytest.raises(CountChanged) as refused:
        buckets.bulk(bulk("change", pipeline=[pipeline], site="north", priority=4, confirm=5))
    assert refused.value.details["matched"] == 6
    assert {buckets.get(w["id"])["priority"] for w in works[:5]} == {1}, "refused: nothing done"
    done = buckets.bulk(
        bulk("change", pipeline=[pipeline], site="north", priority=4, retries=0, confirm=6)
    )
    assert (done.matched, done.done, done.skipped) == (6, 6, 0)
    changed = buckets.get(works[0]["id"])
    assert (changed["priority"], changed["retries"]) == (4, 0)
    assert (changed["history"][-1]["action"], changed["history"][-1]["by"]) == (
        "change",
        who(buckets),
    )
    only_queued = buckets.bulk(bulk("change", pipeline=[pipeline], priority=2))
    assert only_queued.matched == 6, "a change is about queued works only"
    cancelled = buckets.bulk(bulk("cancel", pipeline=[pipeline], status=["running"], confirm=1))
    assert cancelled.done == 1
    assert results.result(running["id"])["status"] == "cancelled"
    assert results.result(running["id"])["history"][-1]["action"] == "cancel"
    with pytest.raises(InvalidWork):
        buckets.bulk(bulk("change", pipeline=[pipeline], confirm=6))  # nothing to change


def test_retry_of_every_finished_work_a_search_matches(
    buckets: Any, results: Any, pipeline: str, finished: dict[str, str]
) -> None:
    asked = results.retry_matching(find(pipeline=[pipeline], status=["failure", "cancelled"]))
    assert asked.matched == 2 and asked.done == 0
    with pytest.raises(CountChanged):
        results.retry_matching(find(pipeline=[pipeline]), confirm=4)
    done = results.retry_matching(
        find(pipeline=[pipeline], status=["failure", "cancelled"]), confirm=2
    )
    assert (done.done, done.skipped) == (2, 0)
    for name in ("bad", "gone"):
        link = results.result(finished[name])["history"][-1]
        assert link["action"] == "retried-as" and link["by"] == who(buckets)
        copy = buckets.get(link["changes"]["as"])
        assert copy["status"] == "queued" and copy["history"][0]["changes"] == {
            "of": finished[name]
        }
    assert buckets.counts()[pipeline]["queued"] == 2
    by_text = results.retry_matching(find(pipeline=[pipeline], text="nebula"), confirm=1)
    assert by_text.done == 1


def test_pipeline_changes_are_kept_with_who_made_them(buckets: Any, pipeline: str) -> None:
    buckets.configure(pipeline, {"paused": True})
    buckets.configure(pipeline, {"paused": False})
    settings = buckets.configure(pipeline, {"defaults": {"priority": 4}})
    assert [(e["action"], e["by"]) for e in settings.model_dump()["history"]] == [
        ("pause", who(buckets)),
        ("resume", who(buckets)),
        ("configure", who(buckets)),
    ]
    assert settings.model_dump()["history"][-1]["changes"]["defaults"]["priority"] == 4
    with pytest.raises(InvalidWork) as refused:
        buckets.configure(pipeline, {"history": []})
    assert refused.value.field == "history"

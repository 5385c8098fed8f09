"""Operator actions and results search: the same on every backend."""

from __future__ import annotations

import time
from typing import Any

import pytest

from workflow.errors import CountChanged, InvalidWork, NotFound, TransitionConflict
from workflow.work import default_user


def test_cancel_queued_and_running(api: Any, make_work: Any, pipeline: str) -> None:
    queued, running = make_work(priority=1), make_work(priority=5)
    api.deposit([queued, running])
    (taken,) = api.withdraw(pipeline)
    assert api.cancel(queued.id).status == "cancelled"
    cancelled = api.cancel(taken.id)
    assert cancelled.status == "cancelled"
    assert [e.kind for e in cancelled.history] == ["attempt", "action"]
    assert cancelled.history[0].outcome == "cancelled"
    assert cancelled.history[1].by == default_user()
    assert api.counts()[pipeline] == {"cancelled": 2}
    with pytest.raises(NotFound):
        api.cancel(queued.id)
    with pytest.raises(TransitionConflict):
        api.complete(taken.id, taken.attempt, "success", results={"late": 1})
    assert api.result(taken.id).status == "cancelled"


def test_change_priority_and_retries_of_queued_work(api: Any, make_work: Any, pipeline: str
                                                    ) -> None:  # fmt: skip
    low, other = make_work(priority=1), make_work(priority=3)
    api.deposit([low, other])
    changed = api.change(low.id, priority=5, retries=4)
    assert (changed.priority, changed.retries) == (5, 4)
    assert changed.history[-1].action == "change"
    assert changed.history[-1].changes == {"priority": 5, "retries": 4}
    assert changed.history[-1].by == default_user()
    assert api.withdraw(pipeline)[0].id == low.id
    with pytest.raises(TransitionConflict):
        api.change(low.id, priority=2)
    with pytest.raises(InvalidWork):
        api.change(other.id, priority=9)


def test_pause_and_resume(api: Any, make_work: Any, pipeline: str) -> None:
    api.deposit([make_work()])
    assert api.configure(pipeline, {"paused": True}).paused is True
    assert api.withdraw(pipeline) == []
    assert api.withdraw(None) == [] or all(w.pipeline != pipeline for w in api.withdraw(None))
    api.configure(pipeline, {"paused": False})
    assert len(api.withdraw(pipeline)) == 1


def test_pipeline_defaults_apply_to_deposits_that_do_not_set_them(
    api: Any, make_work: Any, pipeline: str
) -> None:
    api.configure(pipeline, {"defaults": {"priority": 5, "retries": 0, "timeout": 60}})
    plain = make_work()
    own = make_work(priority=2, retries=3)
    api.deposit([plain, own])
    assert (api.get(plain.id).priority, api.get(plain.id).retries) == (5, 0)
    assert api.get(plain.id).timeout == 60
    assert (api.get(own.id).priority, api.get(own.id).retries) == (2, 3)
    with pytest.raises(InvalidWork):
        api.configure(pipeline, {"defaults": {"retries": 9}})


def test_delete(api: Any, make_work: Any, pipeline: str) -> None:
    works = [make_work(), make_work()]
    api.deposit(works)
    assert api.delete([works[0].id]) == 1
    assert api.counts()[pipeline] == {"queued": 1}
    with pytest.raises(NotFound):
        api.get(works[0].id)


@pytest.fixture
def finished(api: Any, make_work: Any, pipeline: str) -> dict[str, Any]:
    """Five finished works with varied fields, by name."""
    now = time.time()
    named = {
        "crab": make_work(parameters={"source": "crab nebula"}, tags=["pulsar"], event=[1],
                          site="chime", user="ann", creation=now - 500),
        "vela": make_work(parameters={"source": "vela"}, tags=["pulsar", "south"], event=[2],
                          user="bob", creation=now - 400),
        "frb": make_work(parameters={"source": "frb121102"}, tags=["frb"], event=[3],
                         user="ann", creation=now - 300),
        "bad": make_work(parameters={"source": "noise"}, retries=0, creation=now - 200),
        "gone": make_work(parameters={"source": "moon"}, creation=now - 100),
    }  # fmt: skip
    api.deposit(list(named.values()))
    for name, work in named.items():
        if name == "gone":
            api.cancel(work.id)
            continue
        (taken,) = api.withdraw(pipeline, limit=1)
        name = next(n for n, w in named.items() if w.id == taken.id)
        status = "failure" if name == "bad" else "success"
        api.complete(taken.id, taken.attempt, status, results={"snr": len(name)},
                     error={"type": "RuntimeError", "message": "detector saturated"}
                     if status == "failure" else None)  # fmt: skip
    return {name: work.id for name, work in named.items()}


def _names(found: list[Any], ids: dict[str, str]) -> list[str]:
    by_id = {v: k for k, v in ids.items()}
    return [by_id[w.id] for w in found]


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
def test_search(api: Any, pipeline: str, finished: dict[str, str], params: dict[str, Any],
                expected: list[str]) -> None:  # fmt: skip
    found, total = api.search(pipeline=[pipeline], **params)
    assert _names(found, finished) == expected
    if "limit" not in params:
        assert total == len(expected)


def test_search_time_range(api: Any, pipeline: str, finished: dict[str, str]) -> None:
    now = time.time()
    found, total = api.search(pipeline=[pipeline], since=now - 450, until=now - 250)
    assert _names(found, finished) == ["frb", "vela"] and total == 2


def test_counts_per_pipeline_and_status(api: Any, pipeline: str, finished: dict[str, str]
                                        ) -> None:  # fmt: skip
    assert api.counts()[pipeline] == {"success": 3, "failure": 1, "cancelled": 1}


def test_retry_of_a_finished_work_queues_a_linked_copy(api: Any, make_work: Any,
                                                       pipeline: str) -> None:  # fmt: skip
    original = make_work(priority=4, parameters={"dm": 1.0}, tags=["t"])
    api.deposit([original])
    (taken,) = api.withdraw(pipeline)
    api.complete(taken.id, taken.attempt, "failure", error={"type": "E", "message": "m"})
    while api.get(original.id).status == "queued":  # retries left: finish it off
        (again,) = api.withdraw(pipeline)
        api.complete(again.id, again.attempt, "failure", error={"type": "E", "message": "m"})
    copy = api.retry(original.id, parameters={"dm": 2.5})
    assert copy.id != original.id and copy.status == "queued" and copy.attempt == 0
    assert (copy.pipeline, copy.priority, copy.tags, copy.parameters) == (
        pipeline, 4, ["t"], {"dm": 2.5})
    assert [(e.action, e.changes, e.by) for e in copy.history] == [
        ("retry-of", {"of": original.id}, default_user())]
    linked = api.result(original.id)
    assert linked.history[-1].action == "retried-as"
    assert linked.history[-1].changes == {"as": copy.id}
    same = api.retry(original.id)
    assert same.parameters == {"dm": 1.0}, "without new parameters, the original's"
    with pytest.raises(NotFound):
        api.retry(copy.id)  # still queued: not a finished work
    with pytest.raises(InvalidWork):
        api.retry(original.id, parameters=["not", "an", "object"])


def test_bulk_actions_state_the_count_and_never_touch_more(api: Any, make_work: Any,
                                                           pipeline: str) -> None:  # fmt: skip
    works = [make_work(priority=1, site="north") for _ in range(5)] + [make_work(site="south")]
    api.deposit(works)
    (running,) = api.withdraw(pipeline, site="south")
    asked = api.bulk("change", pipeline=[pipeline], site="north", priority=4)
    assert asked == {"matched": 5, "done": 0, "skipped": 0, "reasons": []}
    assert {api.get(w.id).priority for w in works[:5]} == {1}, "a count changes nothing"
    api.deposit([make_work(site="north")])  # a sixth match since the count
    with pytest.raises(CountChanged) as refused:
        api.bulk("change", pipeline=[pipeline], site="north", priority=4, confirm=5)
    assert refused.value.details["matched"] == 6
    assert {api.get(w.id).priority for w in works[:5]} == {1}, "refused: nothing done"
    done = api.bulk("change", pipeline=[pipeline], site="north", priority=4, retries=0,
                    confirm=6)  # fmt: skip
    assert (done["matched"], done["done"], done["skipped"]) == (6, 6, 0)
    changed = api.get(works[0].id)
    assert (changed.priority, changed.retries) == (4, 0)
    assert (changed.history[-1].action, changed.history[-1].by) == ("change", default_user())
    only_queued = api.bulk("change", pipeline=[pipeline], priority=2)
    assert only_queued["matched"] == 6, "a change is about queued works only"
    cancelled = api.bulk("cancel", pipeline=[pipeline], status=["running"], confirm=1)
    assert cancelled["done"] == 1
    assert api.result(running.id).status == "cancelled"
    assert api.result(running.id).history[-1].action == "cancel"
    with pytest.raises(InvalidWork):
        api.bulk("change", pipeline=[pipeline], confirm=6)  # nothing to change


def test_retry_of_every_finished_work_a_search_matches(
    api: Any, pipeline: str, finished: dict[str, str]
) -> None:
    asked = api.retry_matching(pipeline=[pipeline], status=["failure", "cancelled"])
    assert asked["matched"] == 2 and asked["done"] == 0
    with pytest.raises(CountChanged):
        api.retry_matching(pipeline=[pipeline], confirm=4)
    done = api.retry_matching(pipeline=[pipeline], status=["failure", "cancelled"], confirm=2)
    assert (done["done"], done["skipped"]) == (2, 0)
    for name in ("bad", "gone"):
        link = api.result(finished[name]).history[-1]
        assert link.action == "retried-as" and link.by == default_user()
        copy = api.get(link.changes["as"])
        assert copy.status == "queued" and copy.history[0].changes == {"of": finished[name]}
    assert api.counts()[pipeline]["queued"] == 2
    by_text = api.retry_matching(pipeline=[pipeline], text="nebula", confirm=1)
    assert by_text["done"] == 1


def test_pipeline_changes_are_kept_with_who_made_them(api: Any, pipeline: str) -> None:
    api.configure(pipeline, {"paused": True})
    api.configure(pipeline, {"paused": False})
    settings = api.configure(pipeline, {"defaults": {"priority": 4}})
    assert [(e.action, e.by) for e in settings.history] == [
        ("pause", default_user()), ("resume", default_user()), ("configure", default_user())]
    assert settings.history[-1].changes["defaults"]["priority"] == 4
    with pytest.raises(InvalidWork) as refused:
        api.configure(pipeline, {"history": []})
    assert refused.value.field == "history"

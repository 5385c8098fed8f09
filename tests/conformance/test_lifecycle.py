"""Deposit, withdraw, heartbeat, complete, retry and expiry: the same on every backend."""

from __future__ import annotations

import time
from typing import Any

import pytest

from workflow.errors import (
    DuplicateWork,
    InvalidWork,
    NotFound,
    ResultsTooLarge,
    TransitionConflict,
)


def test_deposit_returns_ids_in_order_and_queues(api: Any, make_work: Any) -> None:
    works = [make_work(parameters={"i": i}, tags=["t"]) for i in range(3)]
    ids = api.deposit(works)
    assert ids == [w.id for w in works]
    stored = api.get(ids[1])
    assert (stored.status, stored.attempt, stored.parameters) == ("queued", 0, {"i": 1})
    assert stored.tags == ["t"] and stored.history == []


def test_repeated_deposit_is_idempotent(api: Any, make_work: Any, pipeline: str) -> None:
    work = make_work(parameters={"x": 1})
    first = api.deposit([work])
    again = api.deposit([work.model_copy()])
    assert first == again
    assert api.counts()[pipeline] == {"queued": 1}


def test_taken_id_with_other_content_is_refused_and_nothing_changes(
    api: Any, make_work: Any, pipeline: str
) -> None:
    (taken,) = api.deposit([make_work(parameters={"x": 1})])
    batch = [make_work(parameters={"y": 1}), make_work(id=taken, parameters={"x": 2})]
    with pytest.raises(DuplicateWork):
        api.deposit(batch)
    assert api.counts()[pipeline] == {"queued": 1}
    assert api.get(taken).parameters == {"x": 1}


def test_invalid_work_in_a_batch_deposits_nothing(api: Any, make_work: Any, pipeline: str
                                                 ) -> None:  # fmt: skip
    good = make_work()
    bad = make_work()
    bad.__dict__["priority"] = 9  # bypass local validation: the server must refuse it
    bad.model_fields_set.add("priority")
    with pytest.raises(InvalidWork) as caught:
        api.deposit([good, bad])
    assert "priority" in (caught.value.field or "")
    assert pipeline not in api.counts()


def test_withdraw_highest_priority_then_oldest(api: Any, make_work: Any, pipeline: str
                                               ) -> None:  # fmt: skip
    now = time.time()
    works = [
        make_work(priority=2, creation=now - 50),
        make_work(priority=5, creation=now - 10),
        make_work(priority=5, creation=now - 20),
        make_work(priority=1, creation=now - 99),
        make_work(priority=3, creation=now - 5),
    ]
    api.deposit(works)
    order = [api.withdraw(pipeline)[0].id for _ in works]
    expected = [works[2].id, works[1].id, works[4].id, works[0].id, works[3].id]
    assert order == expected
    assert api.withdraw(pipeline) == []


def test_withdraw_order_spans_pipelines(api: Any, make_work: Any, pipeline: str) -> None:
    other = f"{pipeline}-b"
    low = make_work(priority=1)
    high = make_work(pipeline=other, priority=4)
    api.deposit([low, high])
    taken = api.withdraw([pipeline, other], limit=2)
    assert [w.id for w in taken] == [high.id, low.id]


def test_batch_withdraw_claims_distinct_running_works(api: Any, make_work: Any, pipeline: str
                                                      ) -> None:  # fmt: skip
    api.deposit([make_work(parameters={"i": i}) for i in range(7)])
    first = api.withdraw(pipeline, limit=5, runner="r1", host="h1")
    second = api.withdraw(pipeline, limit=5)
    assert len(first) == 5 and len(second) == 2
    assert len({w.id for w in first + second}) == 7
    assert all(w.status == "running" and w.attempt == 1 for w in first)
    assert first[0].lease is not None and first[0].lease.runner == "r1"
    assert api.counts()[pipeline] == {"running": 7}


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        ({"site": "chime"}, {"b"}),
        ({"tags": ["x", "nope"]}, {"a", "c"}),
        ({"event": [7]}, {"c"}),
        ({"user": "ann"}, {"a"}),
        ({"priority": 4}, {"b"}),
        ({"parent": ["pp"]}, {"c"}),
        ({"site": "local", "tags": ["x"]}, {"a", "c"}),
    ],
)
def test_withdraw_filters(api: Any, make_work: Any, pipeline: str,
                          filters: dict[str, Any], expected: set[str]) -> None:  # fmt: skip
    named = {
        "a": make_work(tags=["x", "y"], user="ann", priority=3),
        "b": make_work(site="chime", priority=4),
        "c": make_work(tags=["x"], event=[7, 8], config={"parent": "pp"}),
    }
    api.deposit(list(named.values()))
    taken = api.withdraw(pipeline, limit=10, **filters)
    by_id = {w.id: name for name, w in named.items()}
    assert {by_id[w.id] for w in taken} == expected


def test_heartbeat_extends_the_lease_and_refuses_stale_attempts(api: Any, make_work: Any,
                                                                pipeline: str) -> None:  # fmt: skip
    api.deposit([make_work()])
    (work,) = api.withdraw(pipeline, lease=5)
    before = work.lease.expires
    time.sleep(0.05)
    beat = api.heartbeat(work.id, work.attempt, lease=30)
    assert beat.lease.expires > before + 20
    with pytest.raises(TransitionConflict):
        api.heartbeat(work.id, work.attempt + 1)
    with pytest.raises(NotFound):
        api.heartbeat("no-such-work", 1)


def test_many_heartbeats_extend_each_lease_or_refuse_it_alone(api: Any, make_work: Any,
                                                               pipeline: str) -> None:  # fmt: skip
    api.deposit([make_work() for _ in range(2)])
    first, second = api.withdraw(pipeline, limit=2, lease=5)
    time.sleep(0.05)
    replies = api.heartbeat_many([
        {"id": first.id, "attempt": first.attempt},
        {"id": second.id, "attempt": second.attempt + 1},  # stale
        {"id": "no-such-work", "attempt": 1},
    ], lease=30)  # fmt: skip
    assert [(r["id"], r["ok"], r.get("status_code")) for r in replies] == [
        (first.id, True, None), (second.id, False, 409), ("no-such-work", False, 404)]
    assert replies[0]["expires"] > first.lease.expires + 20
    assert api.get(first.id).lease.expires == replies[0]["expires"]
    assert api.get(second.id).lease.expires == second.lease.expires  # refused: unchanged


def test_success_moves_to_results_with_history(api: Any, make_work: Any, pipeline: str) -> None:
    api.deposit([make_work(results={"seed": 1})])
    (work,) = api.withdraw(pipeline, runner="r9", host="hostA")
    done = api.complete(work.id, work.attempt, "success", results={"answer": 42},
                        products=["/data/a.h5"])  # fmt: skip
    assert done.status == "success"
    assert done.results == {"seed": 1, "answer": 42}
    assert done.products == ["/data/a.h5"]
    (entry,) = done.history
    assert (entry.attempt, entry.outcome, entry.runner, entry.host) == (1, "success", "r9", "hostA")
    assert api.counts()[pipeline] == {"success": 1}
    assert api.result(work.id).results == {"seed": 1, "answer": 42}


def test_repeated_completion_is_recorded_once(api: Any, make_work: Any, pipeline: str) -> None:
    api.deposit([make_work()])
    (work,) = api.withdraw(pipeline)
    api.complete(work.id, work.attempt, "success", results={"n": 1})
    again = api.complete(work.id, work.attempt, "success", results={"n": 1})
    assert again.status == "success" and len(again.history) == 1
    assert api.search(pipeline=[pipeline])[1] == 1


def test_stale_update_gets_conflict_and_changes_nothing(api: Any, make_work: Any,
                                                        pipeline: str) -> None:  # fmt: skip
    api.deposit([make_work(retries=2)])
    (first,) = api.withdraw(pipeline, lease=0.2)
    time.sleep(0.3)
    api.expire()  # the server's own sweep may have been first
    (second,) = api.withdraw(pipeline)
    assert second.attempt == first.attempt + 1
    before = api.get(first.id)
    with pytest.raises(TransitionConflict) as caught:
        api.complete(first.id, first.attempt, "success", results={"late": True})
    assert caught.value.status_code == 409
    assert api.get(first.id) == before


def test_failure_retries_then_fails_after_one_plus_retries(api: Any, make_work: Any,
                                                           pipeline: str) -> None:  # fmt: skip
    api.deposit([make_work(retries=2)])
    for attempt in (1, 2, 3):
        (work,) = api.withdraw(pipeline)
        assert work.attempt == attempt
        outcome = api.complete(work.id, attempt, "failure",
                               error={"type": "ValueError", "message": f"bad {attempt}",
                                      "traceback": "Traceback ..."})  # fmt: skip
    assert outcome.status == "failure"
    assert api.withdraw(pipeline) == []
    final = api.result(work.id)
    assert [e.outcome for e in final.history] == ["failure"] * 3
    assert final.history[2].error.message == "bad 3"


def test_failure_backs_off_before_the_next_attempt(api: Any, make_work: Any, pipeline: str
                                                   ) -> None:  # fmt: skip
    api.deposit([make_work(retries=1, backoff=60)])
    (work,) = api.withdraw(pipeline)
    queued = api.complete(work.id, work.attempt, "failure")
    assert queued.status == "queued"
    assert queued.not_before is not None and queued.not_before > time.time() + 50
    assert api.withdraw(pipeline) == []


def test_requested_retry_does_not_use_up_an_attempt(api: Any, make_work: Any, pipeline: str
                                                    ) -> None:  # fmt: skip
    api.deposit([make_work(retries=0)])
    (work,) = api.withdraw(pipeline)
    again = api.complete(work.id, work.attempt, "retry", retry_delay=0)
    assert again.status == "queued" and again.history[0].outcome == "retry"
    (work,) = api.withdraw(pipeline)
    assert work.attempt == 2
    assert api.complete(work.id, 2, "failure").status == "failure"


def test_release_returns_work_without_using_an_attempt(api: Any, make_work: Any, pipeline: str
                                                       ) -> None:  # fmt: skip
    api.deposit([make_work(retries=0)])
    (work,) = api.withdraw(pipeline)
    released = api.release(work.id, work.attempt, reason="runner-stopping")
    assert released.status == "queued"
    assert released.history[0].reason == "runner-stopping"
    (work,) = api.withdraw(pipeline)
    assert api.complete(work.id, work.attempt, "success").status == "success"


def test_lost_lease_is_requeued_then_finished_as_failure(api: Any, make_work: Any,
                                                         pipeline: str) -> None:  # fmt: skip
    api.deposit([make_work(retries=1)])
    api.withdraw(pipeline, lease=0.1, runner="gone")
    time.sleep(0.2)
    api.expire()
    requeued = api.withdraw(pipeline, lease=0.1)[0]
    assert requeued.attempt == 2
    assert requeued.history[0].outcome == "lost"
    assert requeued.history[0].reason == "lease-expired"
    assert requeued.history[0].runner == "gone"
    time.sleep(0.2)
    api.expire()
    final = api.result(requeued.id)
    assert final.status == "failure"
    assert [e.outcome for e in final.history] == ["lost", "lost"]


def test_oversized_results_are_refused_and_nothing_changes(api: Any, make_work: Any,
                                                           pipeline: str) -> None:  # fmt: skip
    big = {"blob": "x" * 200_000}
    with pytest.raises(ResultsTooLarge):
        api.deposit([make_work(results=big)])
    api.deposit([make_work()])
    (work,) = api.withdraw(pipeline)
    with pytest.raises(ResultsTooLarge) as caught:
        api.complete(work.id, work.attempt, "success", results=big)
    assert caught.value.field == "results"
    assert api.get(work.id).status == "running"


def test_whole_state_update_completes_the_attempt(api: Any, make_work: Any, pipeline: str
                                                  ) -> None:  # fmt: skip
    api.deposit([make_work(products=["/a"])])
    (work,) = api.withdraw(pipeline)
    work.status = "success"
    work.results = {"via": "update"}
    work.products = ["/a", "/b"]
    done = api.update(work)
    assert done.status == "success" and done.results == {"via": "update"}
    assert done.products == ["/a", "/b"]


def test_exchange_records_outcomes_then_claims_in_one_call(api: Any, make_work: Any,
                                                           pipeline: str) -> None:  # fmt: skip
    ids = api.deposit([make_work(parameters={"i": i}, priority=3 - i, retries=0)
                       for i in range(3)])
    (first,) = api.withdraw(pipeline, runner="r1")
    assert first.id == ids[0]
    outcomes = [
        {"id": first.id, "attempt": 1, "status": "success", "results": {"n": 1}},
        {"id": first.id, "attempt": 2, "status": "success"},  # not its attempt: refused
        {"id": "no-such-work", "attempt": 1, "status": "success"},
    ]
    replies, works = api.exchange(outcomes, pipeline, limit=5, runner="r1", host="h")
    assert [(r["id"], r["ok"]) for r in replies] == [
        (first.id, True), (first.id, False), ("no-such-work", False)]
    assert replies[0]["status"] == "success"
    assert (replies[1]["status_code"], replies[1]["error"]) == (409, "TransitionConflict")
    assert replies[2]["status_code"] == 404
    assert [w["id"] for w in works] == ids[1:]
    assert all(w["status"] == "running" and w["attempt"] == 1 for w in works)
    assert (works[0]["lease"]["runner"], works[0]["lease"]["host"]) == ("r1", "h")
    done = api.get(first.id)
    assert (done.status, done.results, len(done.history)) == ("success", {"n": 1}, 1)
    # The outcome of a work that failed with attempts left may queue it again at once:
    # the same call can claim it.
    second = works[0]
    replies, again = api.exchange(
        [{"id": second["id"], "attempt": 1, "status": "retry", "retry_delay": 0}],
        pipeline, limit=1)  # fmt: skip
    assert replies[0]["ok"] and [w["id"] for w in again] == [second["id"]]
    assert again[0]["attempt"] == 2
    assert [e["outcome"] for e in again[0]["history"]] == ["retry"]
    replies, none = api.exchange([{"id": ids[2], "attempt": 1, "status": "failure"}],
                                 pipeline, limit=5)  # fmt: skip
    assert replies[0]["ok"] and none == []  # recorded, though there was nothing to claim
    assert api.get(ids[2]).status == "failure"
    replies, none = api.exchange([], pipeline, limit=5)  # nothing to report: a withdraw
    assert replies == [] and none == []

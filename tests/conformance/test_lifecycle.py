"""Deposit, withdraw, heartbeat, complete, retry and expiry: the same on every backend."""

from __future__ import annotations

import time
from typing import Any

import pytest
from asking import HeldAttempt, ended, find, want

from workflow.client import Client
from workflow.errors import (
    DuplicateWork,
    InvalidWork,
    NotFound,
    ResultsTooLarge,
    TransitionConflict,
)
from workflow.work import Work


def test_deposit_returns_ids_in_order_and_queues(buckets: Any, make_work: Any) -> None:
    works = [make_work(parameters={"i": i}, tags=["t"]) for i in range(3)]
    ids = buckets.deposit(works)
    assert ids == [w["id"] for w in works]
    stored = buckets.get(ids[1])
    assert (stored["status"], stored["attempt"], stored["parameters"]) == ("queued", 0, {"i": 1})
    assert stored["tags"] == ["t"] and stored["history"] == []


def test_repeated_deposit_is_idempotent(buckets: Any, make_work: Any, pipeline: str) -> None:
    work = make_work(parameters={"x": 1})
    first = buckets.deposit([work])
    again = buckets.deposit([work.model_copy()])
    assert first == again
    assert buckets.counts()[pipeline] == {"queued": 1}


def test_taken_id_with_other_content_is_refused_and_nothing_changes(
    buckets: Any, make_work: Any, pipeline: str
) -> None:
    (taken,) = buckets.deposit([make_work(parameters={"x": 1})])
    batch = [make_work(parameters={"y": 1}), make_work(id=taken, parameters={"x": 2})]
    with pytest.raises(DuplicateWork):
        buckets.deposit(batch)
    assert buckets.counts()[pipeline] == {"queued": 1}
    assert buckets.get(taken)["parameters"] == {"x": 1}


def test_invalid_work_in_a_batch_deposits_nothing(
    buckets: Any, make_work: Any, pipeline: str
) -> None:
    good = make_work()
    bad = make_work()
    bad.__dict__["priority"] = 9  # bypass local validation: the server must refuse it
    bad.model_fields_set.add("priority")
    with pytest.raises(InvalidWork) as caught:
        buckets.deposit([good, bad])
    assert "priority" in (caught.value.field or "")
    assert pipeline not in buckets.counts()


def test_withdraw_highest_priority_then_oldest(buckets: Any, make_work: Any, pipeline: str) -> None:
    now = time.time()
    works = [
        make_work(priority=2, creation=now - 50),
        make_work(priority=5, creation=now - 10),
        make_work(priority=5, creation=now - 20),
        make_work(priority=1, creation=now - 99),
        make_work(priority=3, creation=now - 5),
    ]
    buckets.deposit(works)
    order = [buckets.withdraw(want(pipeline))[0]["id"] for _ in works]
    expected = [works[2]["id"], works[1]["id"], works[4]["id"], works[0]["id"], works[3]["id"]]
    assert order == expected
    assert buckets.withdraw(want(pipeline)) == []


def test_withdraw_order_spans_pipelines(buckets: Any, make_work: Any, pipeline: str) -> None:
    other = f"{pipeline}-b"
    low = make_work(priority=1)
    high = make_work(pipeline=other, priority=4)
    buckets.deposit([low, high])
    taken = buckets.withdraw(want([pipeline, other], limit=2))
    assert [w["id"] for w in taken] == [high["id"], low["id"]]


def test_batch_withdraw_claims_distinct_running_works(
    buckets: Any, make_work: Any, pipeline: str
) -> None:
    buckets.deposit([make_work(parameters={"i": i}) for i in range(7)])
    first = buckets.withdraw(want(pipeline, limit=5, runner="r1", host="h1"))
    second = buckets.withdraw(want(pipeline, limit=5))
    assert len(first) == 5 and len(second) == 2
    assert len({w["id"] for w in first + second}) == 7
    assert all(w["status"] == "running" and w["attempt"] == 1 for w in first)
    assert first[0]["lease"] is not None and first[0]["lease"]["runner"] == "r1"
    assert buckets.counts()[pipeline] == {"running": 7}


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
def test_withdraw_filters(
    buckets: Any, make_work: Any, pipeline: str, filters: dict[str, Any], expected: set[str]
) -> None:
    named = {
        "a": make_work(tags=["x", "y"], user="ann", priority=3),
        "b": make_work(site="chime", priority=4),
        "c": make_work(tags=["x"], event=[7, 8], config={"parent": "pp"}),
    }
    buckets.deposit(list(named.values()))
    taken = buckets.withdraw(want(pipeline, limit=10, **filters))
    by_id = {w["id"]: name for name, w in named.items()}
    assert {by_id[w["id"]] for w in taken} == expected


def test_heartbeat_extends_the_lease_and_refuses_stale_attempts(
    buckets: Any, make_work: Any, pipeline: str
) -> None:
    buckets.deposit([make_work()])
    (work,) = buckets.withdraw(want(pipeline, lease=5))
    before = work["lease"]["expires"]
    time.sleep(0.05)
    beat = buckets.heartbeat(work["id"], work["attempt"], lease=30)
    assert beat["lease"]["expires"] > before + 20
    with pytest.raises(TransitionConflict):
        buckets.heartbeat(work["id"], work["attempt"] + 1)
    with pytest.raises(NotFound):
        buckets.heartbeat("no-such-work", 1)


def test_many_heartbeats_extend_each_lease_or_refuse_it_alone(
    buckets: Any, make_work: Any, pipeline: str
) -> None:
    buckets.deposit([make_work() for _ in range(2)])
    first, second = buckets.withdraw(want(pipeline, limit=2, lease=5))
    time.sleep(0.05)
    replies = buckets.heartbeat_many(
        [
            HeldAttempt(id=first["id"], attempt=first["attempt"]),
            HeldAttempt(id=second["id"], attempt=second["attempt"] + 1),  # stale
            HeldAttempt(id="no-such-work", attempt=1),
        ],
        lease=30,
    )
    assert [(r["id"], r["ok"], r.get("status_code")) for r in replies] == [
        (first["id"], True, None),
        (second["id"], False, 409),
        ("no-such-work", False, 404),
    ]
    assert replies[0]["expires"] > first["lease"]["expires"] + 20
    assert buckets.get(first["id"])["lease"]["expires"] == replies[0]["expires"]
    assert (
        buckets.get(second["id"])["lease"]["expires"] == second["lease"]["expires"]
    )  # refused: unchanged


def test_success_moves_to_results_with_history(
    buckets: Any, results: Any, make_work: Any, pipeline: str
) -> None:
    buckets.deposit([make_work(results={"seed": 1})])
    (work,) = buckets.withdraw(want(pipeline, runner="r9", host="hostA"))
    done = buckets.complete(
        ended(
            work["id"], work["attempt"], "success", results={"answer": 42}, products=["/data/a.h5"]
        )
    )
    assert done["status"] == "success"
    assert done["results"] == {"seed": 1, "answer": 42}
    assert done["products"] == ["/data/a.h5"]
    (entry,) = done["history"]
    assert (entry["attempt"], entry["outcome"], entry["runner"], entry["host"]) == (
        1,
        "success",
        "r9",
        "hostA",
    )
    assert buckets.counts()[pipeline] == {"success": 1}
    assert results.result(work["id"])["results"] == {"seed": 1, "answer": 42}


def test_repeated_completion_is_recorded_once(
    buckets: Any, results: Any, make_work: Any, pipeline: str
) -> None:
    buckets.deposit([make_work()])
    (work,) = buckets.withdraw(want(pipeline))
    buckets.complete(ended(work["id"], work["attempt"], "success", results={"n": 1}))
    again = buckets.complete(ended(work["id"], work["attempt"], "success", results={"n": 1}))
    assert again["status"] == "success" and len(again["history"]) == 1
    assert results.search(find(pipeline=[pipeline]))[1] == 1


def test_stale_update_gets_conflict_and_changes_nothing(
    buckets: Any, make_work: Any, pipeline: str
) -> None:
    buckets.deposit([make_work(retries=2)])
    (first,) = buckets.withdraw(want(pipeline, lease=0.2))
    time.sleep(0.3)
    buckets.expire()  # the server's own sweep may have been first
    (second,) = buckets.withdraw(want(pipeline))
    assert second["attempt"] == first["attempt"] + 1
    before = buckets.get(first["id"])
    with pytest.raises(TransitionConflict) as caught:
        buckets.complete(ended(first["id"], first["attempt"], "success", results={"late": True}))
    assert caught.value.status_code == 409
    assert buckets.get(first["id"]) == before


def test_failure_retries_then_fails_after_one_plus_retries(
    buckets: Any, results: Any, make_work: Any, pipeline: str
) -> None:
    buckets.deposit([make_work(retries=2)])
    for attempt in (1, 2, 3):
        (work,) = buckets.withdraw(want(pipeline))
        assert work["attempt"] == attempt
        outcome = buckets.complete(
            ended(
                work["id"],
                attempt,
                "failure",
                error={
                    "type": "ValueError",
                    "message": f"bad {attempt}",
                    "traceback": "Traceback ...",
                },
            )
        )
    assert outcome["status"] == "failure"
    assert buckets.withdraw(want(pipeline)) == []
    final = results.result(work["id"])
    assert [e["outcome"] for e in final["history"]] == ["failure"] * 3
    assert final["history"][2]["error"]["message"] == "bad 3"


def test_failure_backs_off_before_the_next_attempt(
    buckets: Any, make_work: Any, pipeline: str
) -> None:
    buckets.deposit([make_work(retries=1, backoff=60)])
    (work,) = buckets.withdraw(want(pipeline))
    queued = buckets.complete(ended(work["id"], work["attempt"], "failure"))
    assert queued["status"] == "queued"
    assert queued["not_before"] is not None and queued["not_before"] > time.time() + 50
    assert buckets.withdraw(want(pipeline)) == []


def test_requested_retry_does_not_use_up_an_attempt(
    buckets: Any, make_work: Any, pipeline: str
) -> None:
    buckets.deposit([make_work(retries=0)])
    (work,) = buckets.withdraw(want(pipeline))
    again = buckets.complete(ended(work["id"], work["attempt"], "retry", retry_delay=0))
    assert again["status"] == "queued" and again["history"][0]["outcome"] == "retry"
    (work,) = buckets.withdraw(want(pipeline))
    assert work["attempt"] == 2
    assert buckets.complete(ended(work["id"], 2, "failure"))["status"] == "failure"


def test_release_returns_work_without_using_an_attempt(
    buckets: Any, make_work: Any, pipeline: str
) -> None:
    buckets.deposit([make_work(retries=0)])
    (work,) = buckets.withdraw(want(pipeline))
    released = buckets.release(work["id"], work["attempt"], reason="runner-stopping")
    assert released["status"] == "queued"
    assert released["history"][0]["reason"] == "runner-stopping"
    (work,) = buckets.withdraw(want(pipeline))
    assert buckets.complete(ended(work["id"], work["attempt"], "success"))["status"] == "success"


def test_lost_lease_is_requeued_then_finished_as_failure(
    buckets: Any, results: Any, make_work: Any, pipeline: str
) -> None:
    buckets.deposit([make_work(retries=1)])
    buckets.withdraw(want(pipeline, lease=0.1, runner="gone"))
    time.sleep(0.2)
    buckets.expire()
    requeued = buckets.withdraw(want(pipeline, lease=0.1))[0]
    assert requeued["attempt"] == 2
    assert requeued["history"][0]["outcome"] == "lost"
    assert requeued["history"][0]["reason"] == "lease-expired"
    assert requeued["history"][0]["runner"] == "gone"
    time.sleep(0.2)
    buckets.expire()
    final = results.result(requeued["id"])
    assert final["status"] == "failure"
    assert [e["outcome"] for e in final["history"]] == ["lost", "lost"]


def test_oversized_results_are_refused_and_nothing_changes(
    buckets: Any, make_work: Any, pipeline: str
) -> None:
    big = {"blob": "x" * 200_000}
    with pytest.raises(ResultsTooLarge):
        buckets.deposit([make_work(results=big)])
    buckets.deposit([make_work()])
    (work,) = buckets.withdraw(want(pipeline))
    with pytest.raises(ResultsTooLarge) as caught:
        buckets.complete(ended(work["id"], work["attempt"], "success", results=big))
    assert caught.value.field == "results"
    assert buckets.get(work["id"])["status"] == "running"


def test_whole_state_update_completes_the_attempt(
    buckets: Any, make_work: Any, pipeline: str
) -> None:
    if not isinstance(buckets, Client):
        pytest.skip("CHIME's whole-work update is an HTTP route (workflow.service.chime_buckets)")
    buckets.deposit([make_work(products=["/a"])])
    (taken,) = buckets.withdraw(want(pipeline))
    work = Work.model_validate(taken)
    work.status = "success"
    work.results = {"via": "update"}
    work.products = ["/a", "/b"]
    buckets.update([work])
    done = buckets.get(work.id)
    assert done["status"] == "success" and done["results"] == {"via": "update"}
    assert done["products"] == ["/a", "/b"]


def test_exchange_records_outcomes_then_claims_in_one_call(
    buckets: Any, make_work: Any, pipeline: str
) -> None:
    ids = buckets.deposit(
        [make_work(parameters={"i": i}, priority=3 - i, retries=0) for i in range(3)]
    )
    (first,) = buckets.withdraw(want(pipeline, runner="r1"))
    assert first["id"] == ids[0]
    outcomes = [
        ended(first["id"], 1, "success", results={"n": 1}),
        ended(first["id"], 2, "success"),  # not its attempt: refused
        ended("no-such-work", 1, "success"),
    ]
    replies, works = buckets.exchange(outcomes, want(pipeline, limit=5, runner="r1", host="h"))
    assert [(r["id"], r["ok"]) for r in replies] == [
        (first["id"], True),
        (first["id"], False),
        ("no-such-work", False),
    ]
    assert replies[0]["status"] == "success"
    assert (replies[1]["status_code"], replies[1]["error"]) == (409, "TransitionConflict")
    assert replies[2]["status_code"] == 404
    assert [w["id"] for w in works] == ids[1:]
    assert all(w["status"] == "running" and w["attempt"] == 1 for w in works)
    assert (works[0]["lease"]["runner"], works[0]["lease"]["host"]) == ("r1", "h")
    done = buckets.get(first["id"])
    assert (done["status"], done["results"], len(done["history"])) == ("success", {"n": 1}, 1)
    # The outcome of a work that failed with attempts left may queue it again at once:
    # the same call can claim it.
    second = works[0]
    replies, again = buckets.exchange(
        [ended(second["id"], 1, "retry", retry_delay=0)], want(pipeline, limit=1)
    )
    assert replies[0]["ok"] and [w["id"] for w in again] == [second["id"]]
    assert again[0]["attempt"] == 2
    assert [e["outcome"] for e in again[0]["history"]] == ["retry"]
    replies, none = buckets.exchange([ended(ids[2], 1, "failure")], want(pipeline, limit=5))
    assert replies[0]["ok"] and none == []  # recorded, though there was nothing to claim
    assert buckets.get(ids[2])["status"] == "failure"
    replies, none = buckets.exchange([], want(pipeline, limit=5))  # nothing to report: a withdraw
    assert replies == [] and none == []

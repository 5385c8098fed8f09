"""The outbox, in process on SQLite and MongoDB: a work's notifications go in with the
state change that causes them and never without it, are delivered each target's in
order with backoff, are recorded in the work's history, and a rule fires once per
crossing."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from mongo_stores import MONGO_URL, mongo_store

from workflow.buckets import Buckets
from workflow.errors import InvalidWork, TransitionConflict
from workflow.notices import note
from workflow.notify import Deliverer, Watch
from workflow.notify.targets import Sent
from workflow.store import open_store
from workflow.store.base import Store
from workflow.wire import Outcome, Withdraw


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


class Fake:
    """A target that answers as told and keeps what it got."""

    def __init__(self, *answers: Sent) -> None:
        self.answers = list(answers)
        self.got: list[Any] = []

    def send(self, message: Any, http: Any) -> Sent:
        self.got.append(message)
        return self.answers.pop(0) if self.answers else Sent(True, "ok")


@pytest.fixture(params=["sqlite", "mongo"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    store = open_store(f"sqlite:///{tmp_path / 'outbox.db'}") if request.param == "sqlite" \
        else mongo_store()  # fmt: skip
    yield store
    store.close()


def _deliverer(store: Store, targets: dict[str, Any], **options: Any) -> Deliverer:
    """A deliverer; on mongomock, which is not thread-safe, one target at a time."""
    mock = store.url.startswith("mongodb") and not MONGO_URL
    return Deliverer(store, targets, **({"senders": 1} if mock else {}), **options)


def _buckets(store: Store, clock: Clock) -> Buckets:
    return Buckets(store, clock=clock, targets=frozenset({"slack", "hook", "mail"}))


def _fail(buckets: Buckets, pipeline: str = "p") -> dict[str, Any]:
    work = buckets.withdraw(Withdraw(pipelines=[pipeline]))[0]
    error = {"type": "ValueError", "message": "bad input"}
    return buckets.complete(Outcome(id=work["id"], attempt=work["attempt"], status="failure",
                                    error=error))  # fmt: skip


def test_a_work_failing_for_good_puts_one_note_per_target_with_its_move(store: Store) -> None:
    clock = Clock()
    buckets = _buckets(store, clock)
    to = [{"target": "hook", "on": ["failure", "retrying"]}, {"target": "mail", "on": ["success"]}]
    [id] = buckets.deposit([{"pipeline": "p", "retries": 1, "backoff": 0, "notify": {
        "slack": {"channel_id": "C1"}, "to": to}}])  # fmt: skip
    _fail(buckets)
    first = store.outbox.find(work=id)
    assert [(d["key"], d["event"], d["state"]) for d in first] == [
        (f"{id}/1/retrying/hook", "retrying", "pending")]
    done = _fail(buckets)
    assert done["status"] == "failure"
    keys = sorted(d["key"] for d in store.outbox.find(work=id))
    assert keys == sorted([f"{id}/1/retrying/hook", f"{id}/2/failure/slack",
                           f"{id}/2/failure/hook"])  # fmt: skip
    failure = store.outbox.get(f"{id}/2/failure/hook")
    assert failure is not None and failure["idempotency"] == f"{id}/2/failure"
    assert failure["subject"]["error"] == {"type": "ValueError", "message": "bad input",
                                           "traceback": None}  # fmt: skip
    assert store.outbox.get(f"{id}/2/failure/slack")["slack"]["channel_id"] == "C1"  # type: ignore[index]


def test_no_notify_and_events_not_asked_for_put_nothing(store: Store) -> None:
    buckets = _buckets(store, Clock())
    buckets.deposit([{"pipeline": "p", "retries": 0}, {"pipeline": "p", "retries": 0,
                     "notify": {"to": [{"target": "hook", "on": ["success"]}]}}])  # fmt: skip
    _fail(buckets)
    _fail(buckets)
    assert store.outbox.find() == []


def test_an_unknown_target_is_refused_at_deposit_naming_the_field(store: Store) -> None:
    buckets = _buckets(store, Clock())
    with pytest.raises(InvalidWork) as refused:
        buckets.deposit([{"pipeline": "p", "notify": {"to": [{"target": "hook"},
                                                             {"target": "nowhere"}]}}])  # fmt: skip
    assert refused.value.field == "works[0].notify.to.1.target"
    assert "hook, mail, slack" in str(refused.value)
    assert store.work.count({}) == 0


def test_a_lost_compare_and_set_puts_no_note(store: Store) -> None:
    buckets = _buckets(store, Clock())
    [id] = buckets.deposit([{"pipeline": "p", "retries": 1, "notify": {
        "to": [{"target": "hook", "on": ["failure", "retrying"]}]}}])  # fmt: skip
    work = buckets.withdraw(Withdraw(pipelines=["p"]))[0]
    entry = {"kind": "attempt", "attempt": 1, "outcome": "failure", "stopped": 1.0}
    stale = {**work, "attempt": 7}
    for status in ("failure", "queued"):  # a finish, and a swap (retrying)
        with pytest.raises(TransitionConflict):
            buckets.move(stale, {**work, "status": status, "history": [entry]})
    # Nothing to deliver: SQLite wrote nothing; MongoDB without transactions holds the
    # note back until a look after the grace finds another entry in its place (the
    # work moved on without that change), and drops it.
    assert store.outbox.heads() == []
    if not MONGO_URL and store.url.startswith("mongodb"):
        from workflow.store import mongo_outbox

        mongo_outbox.GRACE, grace = -1.0, mongo_outbox.GRACE
        try:
            assert store.outbox.heads() == []
            # (The finish was refused before it wrote anything: the swap left its note.)
            assert len(store.outbox.find(work=id)) == 1  # kept: the work may still move so
            buckets.complete(Outcome(id=id, attempt=1, status="success"))
            assert store.outbox.heads() == []
            assert store.outbox.find(work=id) == []  # dropped
        finally:
            mongo_outbox.GRACE = grace


def test_each_targets_messages_go_in_order_and_wait_behind_a_failed_one(store: Store) -> None:
    clock = Clock()
    for n in range(3):
        store.outbox.add([note(f"k{n}/hook", f"k{n}", "hook", "test", clock.now + n)])
    store.outbox.add([note("other/slack", "other", "slack", "test", clock.now)])
    hook = Fake(Sent(False, "HTTP 503: down"), Sent(False, "HTTP 503: down"))
    slack = Fake()
    deliverer = _deliverer(store, {"hook": hook, "slack": slack}, public_url=None, clock=clock)
    deliverer.run()
    assert [m.key for m in slack.got] == ["other"]
    assert [m.key for m in hook.got] == ["k0"]  # the first failed: the others wait
    head = store.outbox.get("k0/hook")
    assert head is not None and head["state"] == "pending" and head["tries"] == 1
    assert head["due"] == clock.now + 1 and head["detail"] == "HTTP 503: down"
    deliverer.run()
    assert [m.key for m in hook.got] == ["k0"]  # not due yet
    clock.now += 1
    deliverer.run()
    assert [m.key for m in hook.got] == ["k0", "k0"]
    assert store.outbox.get("k0/hook")["due"] == clock.now + 2  # type: ignore[index]
    clock.now += 2
    deliverer.run()
    assert [m.key for m in hook.got] == ["k0", "k0", "k0", "k1", "k2"]
    assert {d["state"] for d in store.outbox.find()} == {"done"}  # (no works to record in)


def test_a_final_refusal_and_the_last_try_give_up_and_say_so_in_the_history(store: Store) -> None:
    clock = Clock()
    buckets = _buckets(store, clock)
    to = [{"target": "hook", "on": ["failure"]}, {"target": "mail", "on": ["failure"]}]
    [id] = buckets.deposit([{"pipeline": "p", "retries": 0, "notify": {"to": to}}])
    _fail(buckets)
    hook = Fake(Sent(False, "HTTP 404: no such hook", final=True))
    mail = Fake(Sent(False, "timed out"), Sent(False, "timed out"))
    deliverer = _deliverer(store, {"hook": hook, "mail": mail}, public_url="http://ui.example",
                          tries=2, clock=clock)  # fmt: skip
    deliverer.run()
    clock.now += 1
    deliverer.run()
    assert hook.got[0].link == f"http://ui.example/#/work/{id}"
    entries = [e for e in buckets.get(id)["history"] if e["kind"] == "delivery"]
    assert sorted((e["target"], e["outcome"], e["tries"], e["detail"]) for e in entries) == [
        ("hook", "failed", 1, "HTTP 404: no such hook"), ("mail", "failed", 2, "timed out")]
    assert all(e["key"] == f"{id}/1/failure" and e["attempt"] == 1 for e in entries)
    clock.now += 11
    deliverer.run()  # looked for again, found: done
    assert {d["state"] for d in store.outbox.find(work=id)} == {"done"}


def test_an_entry_undone_by_a_write_of_the_whole_work_is_appended_again(store: Store) -> None:
    clock = Clock()
    buckets = _buckets(store, clock)
    to = [{"target": "hook", "on": ["retrying"]}]
    [id] = buckets.deposit([{"pipeline": "p", "retries": 1, "backoff": 0, "notify": {"to": to}}])
    _fail(buckets)
    before = store.work.get(id)
    deliverer = _deliverer(store, {"hook": Fake()}, public_url=None, clock=clock)
    deliverer.run()
    assert [e["kind"] for e in store.work.get(id)["history"]] == ["attempt", "delivery"]  # type: ignore[index]
    store.work.swap(id, {"status": "queued"}, before)  # read before, written after
    clock.now += 11
    deliverer.run()
    assert [e["kind"] for e in store.work.get(id)["history"]] == ["attempt", "delivery"]  # type: ignore[index]
    clock.now += 11
    deliverer.run()
    assert store.outbox.get(f"{id}/1/retrying/hook")["state"] == "done"  # type: ignore[index]


def test_a_message_being_sent_when_its_server_died_is_sent_again_with_the_same_key(
        store: Store) -> None:  # fmt: skip
    clock = Clock()
    store.outbox.add([note("k/hook", "k", "hook", "test", clock.now)])
    doc = store.outbox.get("k/hook")
    assert doc is not None
    assert store.outbox.put({**doc, "state": "sending", "taken": clock.now,
                             "lease": clock.now + 150, "version": 2}, 1)  # fmt: skip
    hook = Fake()
    clock.now += 1
    _deliverer(store, {"hook": hook}, public_url=None, clock=clock).run()
    if store.shared:  # another server may still be sending it: its lease decides
        assert hook.got == []
        clock.now += 150
        _deliverer(store, {"hook": hook}, public_url=None, clock=clock).run()
    assert [m.key for m in hook.got] == ["k"]


def test_a_failure_rate_rule_fires_once_and_again_only_after_it_cleared(store: Store) -> None:
    clock = Clock()
    buckets = _buckets(store, clock)
    buckets.configure("p", {"rules": [{"name": "failing", "kind": "failure-rate",
                                       "threshold": 0.5, "window": 600, "minimum": 4,
                                       "to": ["slack"]}]})  # fmt: skip
    watch = Watch(buckets, clock=clock)

    def finish(status: str, n: int) -> None:
        buckets.deposit([{"pipeline": "p", "retries": 0} for _ in range(n)])
        for work in buckets.withdraw(Withdraw(pipelines=["p"], limit=n)):
            error = {"type": "E", "message": "x"} if status == "failure" else None
            buckets.complete(Outcome(id=work["id"], attempt=work["attempt"],
                                     status=status, error=error))  # type: ignore[arg-type]

    finish("success", 3)
    finish("failure", 1)
    assert watch.run() == 0  # 1 of 4: under the threshold
    finish("failure", 2)
    assert watch.run() == 1  # 3 of 6
    assert watch.run() == 0
    finish("failure", 5)
    assert watch.run() == 0  # still firing: not again
    fired = [d for d in store.outbox.find() if d["event"] == "fired"]
    assert [d["key"] for d in fired] == ["rule:p/failing/1/fired/slack"]
    assert fired[0]["subject"]["failed"] == 3 and fired[0]["subject"]["finished"] == 6
    clock.now += 3600  # the window passes: nothing finished in it
    assert watch.run() == 1
    assert [d["key"] for d in store.outbox.find()][0] == "rule:p/failing/1/cleared/slack"
    finish("failure", 4)
    assert watch.run() == 1
    assert sorted(d["key"] for d in store.outbox.find() if d["event"] == "fired") == [
        "rule:p/failing/1/fired/slack", "rule:p/failing/2/fired/slack"]


def test_oldest_queued_and_no_runner_rules(store: Store) -> None:
    clock = Clock()
    buckets = _buckets(store, clock)
    buckets.configure("q", {"rules": [
        {"name": "stale", "kind": "oldest-queued", "limit": 60, "to": ["hook"]},
        {"name": "nobody", "kind": "no-runner", "to": ["mail"]}]})  # fmt: skip
    watch = Watch(buckets, clock=clock)
    assert watch.run() == 0
    buckets.deposit([{"pipeline": "q", "creation": clock.now}])
    assert watch.run() == 1  # nobody runs q
    clock.now += 61
    assert watch.run() == 1  # and the work waited a minute
    states = {d["id"]: d["status"] for d in store.documents.find("alerts")}
    assert states == {"q/stale": "firing", "q/nobody": "firing"}
    buckets.withdraw(Withdraw(pipelines=["q"], runner="r1"))
    assert watch.run() == 2  # nothing queued now: both clear
    assert {d["key"] for d in store.outbox.find()} == {
        "rule:q/nobody/1/fired/mail", "rule:q/stale/1/fired/hook",
        "rule:q/nobody/1/cleared/mail", "rule:q/stale/1/cleared/hook"}


def test_rules_are_checked_naming_the_field(store: Store) -> None:
    buckets = _buckets(store, Clock())
    for rules, field in (
        ([{"name": "x", "kind": "failure-rate", "to": ["slack"]}], "rules.0"),
        ([{"name": "x", "kind": "no-runner", "to": ["nowhere"]}], "rules.0.to.0"),
        ([{"name": "x", "kind": "oldest-queued", "limit": 5, "window": 60, "to": ["hook"]}],
         "rules.0"),
        ([{"name": "x", "kind": "no-runner", "to": ["hook"]}] * 2, "rules"),
    ):  # fmt: skip
        with pytest.raises(InvalidWork) as refused:
            buckets.configure("p", {"rules": rules})
        assert refused.value.field == field, refused.value
    assert buckets.settings("p").rules == []


@pytest.mark.skipif(bool(MONGO_URL), reason="a replica set writes notes in the transaction")
def test_mongo_without_transactions_keeps_a_note_whose_change_was_made(
        monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    """The server died between the change and taking the mark off its note: the note
    holds its target back until a look finds the change made, then goes."""
    from workflow.store import mongo_outbox

    store = mongo_store()
    buckets = _buckets(store, Clock())
    to = [{"target": "hook"}]
    [id] = buckets.deposit([{"pipeline": "p", "retries": 0, "notify": {"to": to}}])
    raw = store.outbox.raw
    monkeypatch.setattr(raw, "update_many", lambda *a, **k: None)  # the mark stays on
    _fail(buckets)
    monkeypatch.undo()
    assert store.outbox.heads() == []  # held back
    monkeypatch.setattr(mongo_outbox, "GRACE", -1.0)
    assert [d["key"] for d in store.outbox.heads()] == [f"{id}/1/failure/hook"]
    assert "_check" not in raw.find_one({"_id": f"{id}/1/failure/hook"})


def test_a_removed_rule_takes_its_state_with_it(store: Store) -> None:
    clock = Clock()
    buckets = _buckets(store, clock)
    buckets.configure("q", {"rules": [{"name": "nobody", "kind": "no-runner", "to": ["mail"]}]})
    buckets.deposit([{"pipeline": "q"}])
    watch = Watch(buckets, clock=clock)
    assert watch.run() == 1
    assert [d["status"] for d in store.documents.find("alerts")] == ["firing"]
    buckets.configure("q", {"rules": []})
    assert watch.run() == 0
    assert store.documents.find("alerts") == []
    assert len(store.outbox.find()) == 1  # the fired one; no cleared message


def test_a_pipelines_default_notify_tells_of_works_that_ask_for_nothing(store: Store) -> None:
    buckets = _buckets(store, Clock())
    with pytest.raises(InvalidWork) as refused:
        buckets.configure("p", {"defaults": {"notify": {"to": [{"target": "nowhere"}]}}})
    assert refused.value.field == "defaults.notify.to.0.target"
    buckets.configure("p", {"defaults": {"notify": {"to": [{"target": "mail", "on": ["failure"]}]},
                                         "retries": 0}})  # fmt: skip
    blank = {"slack": {"channel_id": None, "member_ids": None, "message": None}}  # CHIME's
    ids = buckets.deposit([{"pipeline": "p"}, {"pipeline": "p", "notify": blank},
                           {"pipeline": "p", "notify": {"to": [{"target": "hook"}]}}])  # fmt: skip
    for _ in ids:
        _fail(buckets)
    told = sorted((d["work"], d["target"]) for d in store.outbox.find())
    assert told == sorted([(ids[0], "mail"), (ids[1], "mail"), (ids[2], "hook")])
    buckets.configure("p", {"defaults": {"priority": 4}})  # the others stay
    assert buckets.settings("p").defaults.notify is not None
    buckets.configure("p", {"defaults": {"notify": None}})
    assert buckets.settings("p").defaults.notify is None


def test_two_servers_delivering_at_once_send_and_record_each_message_once(store: Store) -> None:
    import threading

    if store.url.startswith("mongodb") and not MONGO_URL:
        pytest.skip("mongomock is not thread-safe: a real server, or SQLite, shows this")
    clock = Clock()
    buckets = _buckets(store, clock)
    ids = buckets.deposit([{"pipeline": "p", "retries": 0, "notify": {"to": [{"target": "hook"}]}}
                           for _ in range(20)])  # fmt: skip
    for _ in ids:
        _fail(buckets)

    class Slow(Fake):
        def send(self, message: Any, http: Any) -> Sent:
            time.sleep(0.002)
            return super().send(message, http)

    hook = Slow()
    servers = [_deliverer(store, {"hook": hook}, public_url=None, clock=clock) for _ in range(2)]
    for _ in range(3):
        threads = [threading.Thread(target=server.run) for server in servers]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        clock.now += 11
    assert sorted(m.key for m in hook.got) == sorted(f"{id}/1/failure" for id in ids)
    for id in ids:
        assert [e["kind"] for e in buckets.get(id)["history"]] == ["attempt", "delivery"]
    assert {d["state"] for d in store.outbox.find(limit=1000)} == {"done"}

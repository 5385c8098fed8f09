"""A runner's outcomes ride its next withdraw (``POST /buckets/exchange``): one request
per work at prefetch 1, and nothing lost when that request fails."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import orjson
from harness import Server

from workflow import errors
from workflow.client import Client
from workflow.runner.loop import Runner
from workflow.runner.options import RunnerOptions
from workflow.runner.outbox import RIDE_WAIT, Outbox
from workflow.runner.report import Reporter
from workflow.wire import Outcome, Withdraw
from workflow.work import Work

#: Importable in the runner's children as it is: ``dict(**parameters)`` is the result.
FUNCTION = "builtins.dict"


class Counting(Client):
    """A client that counts its calls per path, and can fail the first exchanges."""

    def __init__(self, url: str, fail_exchanges: int = 0):
        super().__init__(url, retry_for=2)
        self.calls: Counter[str] = Counter()
        self.fail_exchanges = fail_exchanges

    def call(self, method: str, path: str, **kwargs: Any) -> Any:
        self.calls[path] += 1
        if path == "/buckets/exchange" and self.fail_exchanges:
            self.fail_exchanges -= 1
            raise errors.ServerUnreachable("the exchange is lost on its way (test)")
        return super().call(method, path, **kwargs)


def _run(server: Server, tmp_path: Path, client: Counting, works: int) -> list[str]:
    with Client(server.url) as depositor:
        ids = depositor.deposit([Work(pipeline="ride", function=FUNCTION, retries=0,
                                      parameters={"i": i}) for i in range(works)])  # fmt: skip
    options = RunnerOptions(pipelines=["ride"], burst=True, prefetch=1, sleep=0.05,
                            spool=tmp_path / "spool")  # fmt: skip
    assert Runner(client, options, Reporter()).run() == 0
    return ids


def _outbox(client: Client, tmp_path: Path, settled: list[tuple[str, str]]) -> Outbox:
    """A started outbox spooling in ``tmp_path`` that notes each settled outcome."""
    outbox = Outbox(client, tmp_path / "spool", lambda id, _, note: settled.append((id, note)))
    outbox.start()
    return outbox


def _each_done_once(server: Server, ids: list[str]) -> None:
    with Client(server.url) as reader:
        for n, id in enumerate(ids):
            done = reader.get(id)
            assert (done["status"], done["results"]) == ("success", {"i": n})
            assert [e["outcome"] for e in done["history"]] == ["success"]


def test_at_prefetch_1_each_outcome_rides_the_next_withdraw(server: Server,
                                                            tmp_path: Path) -> None:  # fmt: skip
    with Counting(server.url) as client:
        ids = _run(server, tmp_path, client, works=30)
    _each_done_once(server, ids)
    # One request per work: the first withdraw carries nothing, each later one the
    # outcome before it; the last outcome rides the withdraw that finds the bucket
    # empty, and the burst's final look finds it empty again. Besides: the runner's
    # hello and goodbye (the registry of runners).
    goodbye = next(path for path in client.calls if path.endswith("/goodbye"))
    assert client.calls == {"/buckets/withdraw": 2, "/buckets/exchange": 30,
                            "/buckets/runners": 1, goodbye: 1}  # fmt: skip


def test_outcomes_of_a_failed_exchange_go_on_their_own(server: Server, tmp_path: Path) -> None:
    with Counting(server.url, fail_exchanges=3) as client:
        ids = _run(server, tmp_path, client, works=10)
    _each_done_once(server, ids)
    assert client.calls["/buckets/complete"] >= 1  # what the lost exchanges carried
    assert list((tmp_path / "spool").glob("*.journal")) == []  # all settled, none left


def test_riders_are_journaled_before_they_go_and_sent_alone_if_no_withdraw_takes_them(
    server: Server, tmp_path: Path
) -> None:
    with Client(server.url) as depositor:
        depositor.deposit([Work(pipeline="alone", retries=0) for _ in range(2)])
        first, second = depositor.withdraw(Withdraw(pipelines=["alone"], limit=2))
    settled: list[tuple[str, str]] = []
    with Counting(server.url) as client:
        outbox = _outbox(client, tmp_path, settled)
        ride = Outcome(id=first["id"], attempt=1, status="success", results={"n": 1})
        outbox.put_many([ride], ride=True)
        taken = outbox.take_riders()
        assert [r.id for r in taken] == [first["id"]]
        (journal,) = (tmp_path / "spool").glob("*.journal")
        lines = [orjson.loads(line) for line in journal.read_bytes().splitlines()]
        assert [line["id"] for line in lines] == [first["id"]]  # on disk before it is sent
        replies, _ = client.exchange([ride], Withdraw(pipelines=["none"]))
        outbox.riders_answered(taken, replies)
        # A rider no withdraw takes goes out by itself.
        outbox.put_many([ride.model_copy(update={"id": second["id"]})], ride=True)
        assert outbox.wait(timeout=10 * RIDE_WAIT + 2)
        outbox.close()
    assert settled == [(first["id"], "delivered"), (second["id"], "delivered")]
    assert client.calls == {"/buckets/exchange": 1, "/buckets/complete": 1}
    with Client(server.url) as reader:
        assert {reader.get(w["id"])["status"] for w in (first, second)} == {"success"}


def test_an_outcome_the_server_cannot_read_fails_alone(server: Server, tmp_path: Path) -> None:
    """A batch the server refuses as a whole (here: a NUL character in one outcome's
    results) is split: the good outcome is recorded, the bad one ends its attempt as a
    failure naming why, and the outbox is not stuck resending the batch."""
    with Client(server.url) as depositor:
        depositor.deposit([Work(pipeline="unreadable", retries=0) for _ in range(2)])
        good, bad = depositor.withdraw(Withdraw(pipelines=["unreadable"], limit=2))
    settled: list[tuple[str, str]] = []
    with Counting(server.url) as client:
        outbox = _outbox(client, tmp_path, settled)
        outbox.put_many([
            Outcome(id=good["id"], attempt=1, status="success", results={"n": 1}),
            Outcome(id=bad["id"], attempt=1, status="success", results={"text": "a\x00b"}),
        ])  # fmt: skip
        assert outbox.wait(timeout=20)
        outbox.close()
    assert sorted(settled) == sorted([(good["id"], "delivered"), (bad["id"], "delivered")])
    with Client(server.url) as reader:
        assert reader.get(good["id"])["status"] == "success"
        failed = reader.get(bad["id"])
        assert failed["status"] == "failure" and failed["results"] is None
        error = failed["history"][-1]["error"]
        assert error is not None and "NUL" in str(error["message"])

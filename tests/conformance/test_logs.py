"""Each attempt's log and a running graph's nodes: kept the same way on every backend."""

from __future__ import annotations

from typing import Any

import pytest
from asking import delete_results, ended, want

from workflow.errors import NotFound, TransitionConflict
from workflow.wire import LogChunk, Progress


def _running(buckets: Any, make_work: Any, pipeline: str, **fields: Any) -> dict[str, Any]:
    buckets.deposit([make_work(**fields)])
    (work,) = buckets.withdraw(want(pipeline))
    return work  # type: ignore[no-any-return]


def _said(work: dict[str, Any], offset: int, text: str, **fields: Any) -> Progress:
    chunk = LogChunk(offset=offset, end=offset + len(text.encode()), text=text)
    return Progress(id=work["id"], attempt=work["attempt"], log=chunk, **fields)


def test_a_running_attempts_log_is_read_whole_and_after_a_cursor(
        buckets: Any, make_work: Any, pipeline: str) -> None:  # fmt: skip
    work = _running(buckets, make_work, pipeline)
    empty = buckets.logs(work["id"])
    assert (empty["text"], empty["size"], empty["attempt"], empty["running"]) == ("", 0, 1, True)
    (reply,) = buckets.progress([_said(work, 0, "first line\n")])
    assert reply == {"id": work["id"], "ok": True, "size": 11}
    buckets.progress([_said(work, 11, "second line\n")])
    log = buckets.logs(work["id"])
    assert log["text"] == "first line\nsecond line\n"
    assert (log["size"], log["written"], log["attempts"]) == (23, 23, [1])
    assert buckets.logs(work["id"], after=11)["text"] == "second line\n"
    assert buckets.logs(work["id"], after=23)["text"] == ""
    # Sent again (the reply was lost): kept once; partly sent again: the rest only.
    buckets.progress([_said(work, 0, "first line\n")])
    buckets.progress([_said(work, 11, "second line\nthird\n")])
    assert buckets.logs(work["id"])["text"] == "first line\nsecond line\nthird\n"


def test_bytes_never_sent_are_marked_and_counted(
        buckets: Any, make_work: Any, pipeline: str) -> None:  # fmt: skip
    work = _running(buckets, make_work, pipeline)
    buckets.progress([_said(work, 0, "start\n"), _said(work, 1006, "later\n")])
    log = buckets.logs(work["id"])
    assert log["skipped"] == 1000 and log["size"] == 1012
    assert log["text"].startswith("start\n") and log["text"].endswith("later\n")
    assert "1000 bytes of this log were not sent" in log["text"]


def test_the_rest_comes_with_the_outcome_and_the_log_moves_with_the_work(
        buckets: Any, make_work: Any, pipeline: str) -> None:  # fmt: skip
    work = _running(buckets, make_work, pipeline)
    buckets.progress([_said(work, 0, "one\n")])
    rest = LogChunk(offset=4, end=8, text="two\n", file="/archive/x/log-1.txt")
    buckets.complete(ended(work["id"], 1, "success", log=rest))
    log = buckets.logs(work["id"])
    assert (log["text"], log["running"]) == ("one\ntwo\n", False)
    assert log["file"] == "/archive/x/log-1.txt"
    (entry,) = [e for e in buckets.get(work["id"])["history"] if e.get("kind") == "attempt"]
    assert entry["log"] == {"size": 8, "file": "/archive/x/log-1.txt"}


def test_each_attempt_has_its_own_log_and_deleting_the_work_forgets_them(
        buckets: Any, results: Any, make_work: Any, pipeline: str) -> None:  # fmt: skip
    work = _running(buckets, make_work, pipeline, retries=1)
    buckets.progress([_said(work, 0, "attempt one\n")])
    buckets.complete(ended(work["id"], 1, "failure", error={"type": "E", "message": "m"},
                           retry_delay=0))  # fmt: skip
    (again,) = buckets.withdraw(want(pipeline))
    buckets.progress([_said(again, 0, "attempt two\n")])
    assert buckets.logs(work["id"])["text"] == "attempt two\n"
    assert buckets.logs(work["id"], attempt=1)["text"] == "attempt one\n"
    assert buckets.logs(work["id"])["attempts"] == [1, 2]
    buckets.complete(ended(work["id"], 2, "success"))
    assert delete_results(results, pipeline, [work["id"]]) == 1
    with pytest.raises(NotFound):
        buckets.logs(work["id"])
    other = _running(buckets, make_work, pipeline)
    buckets.progress([_said(other, 0, "x\n")])
    buckets.delete([other["id"]])
    buckets.deposit([make_work(id=other["id"])])
    assert buckets.logs(other["id"])["attempts"] == []


def test_a_running_graphs_nodes_show_until_the_attempt_ends(
        buckets: Any, make_work: Any, pipeline: str) -> None:  # fmt: skip
    work = _running(buckets, make_work, pipeline)
    nodes = {"a": "success", "b": "running"}
    (reply,) = buckets.progress([Progress(id=work["id"], attempt=1, nodes=nodes)])
    assert reply["ok"] and buckets.get(work["id"])["progress"] == {"nodes": nodes}
    buckets.complete(ended(work["id"], 1, "success"))
    assert buckets.get(work["id"]).get("progress") is None


def test_progress_of_an_attempt_not_running_is_refused_alone(
        buckets: Any, make_work: Any, pipeline: str) -> None:  # fmt: skip
    work = _running(buckets, make_work, pipeline)
    stale = {**work, "attempt": 2}
    replies = buckets.progress([_said(stale, 0, "late\n"), _said(work, 0, "kept\n")])
    assert not replies[0]["ok"] and replies[0]["error"] == TransitionConflict.__name__
    assert replies[1]["ok"] and buckets.logs(work["id"])["text"] == "kept\n"


def test_the_store_keeps_the_last_megabyte_of_a_log_from_a_line_on(
        buckets: Any, make_work: Any, pipeline: str) -> None:  # fmt: skip
    work = _running(buckets, make_work, pipeline)
    line = "x" * 99 + "\n"
    offset = 0
    for n in range(3):
        text = line * 6000 + f"end of chunk {n}\n"
        buckets.progress([_said(work, offset, text)])
        offset += len(text)
    log = buckets.logs(work["id"])
    assert log["size"] == offset and log["written"] == offset
    kept = log["text"].encode()
    assert 1_000_000 < len(kept) <= 1 << 20
    assert log["text"].endswith("end of chunk 2\n") and log["text"].startswith("x" * 99 + "\n")
    # A reader behind what is kept gets all that is, marked.
    assert buckets.logs(work["id"], after=10)["text"].startswith("[... earlier lines")

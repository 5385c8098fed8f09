"""The runner's pure parts: the return contract, its arguments, the archive layout."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from workflow.cli_run import pipelines_and_function
from workflow.errors import InvalidWork
from workflow.runner.archive import archive_outcome, destination
from workflow.runner.outcome import Retry, from_exception, from_return, tail
from workflow.runner.report import Reporter
from workflow.wire import Outcome
from workflow.work import Work


@pytest.mark.parametrize(
    ("value", "status", "results", "products", "plots"),
    [
        (None, "success", None, None, None),
        ({"a": 1}, "success", {"a": 1}, None, None),
        (({"a": 1},), "success", {"a": 1}, None, None),
        (({"a": 1}, ["p.h5"]), "success", {"a": 1}, ["p.h5"], None),
        (({"a": 1}, ["p.h5"], ["q.png"]), "success", {"a": 1}, ["p.h5"], ["q.png"]),
        ((None, None, ["q.png"]), "success", None, None, ["q.png"]),
    ],
)
def test_return_contract(value: object, status: str, results: object, products: object,
                         plots: object) -> None:  # fmt: skip
    outcome = from_return(value)
    assert (outcome.status, outcome.results, outcome.products, outcome.plots) == (
        status, results, products, plots)


@pytest.mark.parametrize(("value", "named"), [([1, 2], "list"), ("text", "str"), (3, "int"),
                                              (({"a": 1}, "p.h5"), "products is str"),
                                              ((["x"], None), "results is list"),
                                              (({}, [1]), "file paths"),
                                              ((1, 2, 3, 4), "tuple")])  # fmt: skip
def test_anything_else_is_an_error_naming_the_type(value: object, named: str) -> None:
    outcome = from_return(value)
    assert outcome.status == "failure" and outcome.error is not None
    assert outcome.error.type == "TypeError" and named in outcome.error.message


def test_exceptions_keep_type_message_and_traceback_and_retry_is_not_a_failure() -> None:
    try:
        raise KeyError("missing")
    except KeyError as exc:
        outcome = from_exception(exc)
    assert outcome.error is not None and outcome.error.type == "KeyError"
    assert "raise KeyError" in outcome.error.traceback
    retry = from_exception(Retry(delay=12, reason="disk busy"))
    assert (retry.status, retry.retry_delay, retry.reason) == ("retry", 12, "disk busy")
    assert Retry(delay=-5).delay == 0
    assert tail("x" * 10, 4) == "…xxxx" and tail(None) == ""


@pytest.mark.parametrize(
    ("args", "pipeline", "function", "expected"),
    [
        (("a",), (), None, (["a"], None)),
        (("a,b", "pkg.mod.fn"), (), None, (["a", "b"], "pkg.mod.fn")),
        (("pkg.mod:fn",), ("a", "b,c"), None, (["a", "b", "c"], "pkg.mod:fn")),
        (("a",), (), "pkg.fn", (["a"], "pkg.fn")),
        (("saxs-integrate",), ("saxs-graph",), None, (["saxs-integrate", "saxs-graph"], None)),
        (("a", "m.f"), ("b",), None, (["a", "b"], "m.f")),
        (("a,b",), ("c",), "m:f", (["a", "b", "c"], "m:f")),
    ],
)
def test_run_arguments(args: tuple[str, ...], pipeline: tuple[str, ...], function: str | None,
                       expected: tuple[list[str], str | None]) -> None:  # fmt: skip
    assert pipelines_and_function(args, pipeline, function) == expected


@pytest.mark.parametrize(
    ("args", "pipeline", "function", "field"),
    [((), (), None, "PIPELINE"), (("a", "m.f", "x"), (), None, "FUNCTION"),
     (("a", "m.f"), (), "m.g", "function"), (("a", "not a path"), (), None, "function"),
     (("a", "justname"), (), None, "function"), (("a", "b"), ("c",), None, "function"),
     (("m.f",), ("a",), "m.g", "function")],
)  # fmt: skip
def test_bad_run_arguments(args: tuple[str, ...], pipeline: tuple[str, ...],
                           function: str | None, field: str) -> None:  # fmt: skip
    with pytest.raises(InvalidWork) as caught:
        pipelines_and_function(args, pipeline, function)
    assert caught.value.field == field


def test_archive_copies_moves_deletes_and_stays_inside_the_root(tmp_path: Path) -> None:
    root = tmp_path / "archive"
    made = {name: tmp_path / name for name in ("a.h5", "b.png", "c.png", "d.h5")}
    for path in made.values():
        path.write_text(path.name)
    work = Work(pipeline="arch", id="w1", creation=0,
                config={"archive": {"products": "move", "plots": "copy"}})  # fmt: skip
    outcome = Outcome(status="success", products=[str(made["a.h5"]), str(tmp_path / "gone.h5")],
                      plots=[str(made["b.png"]), str(made["c.png"])])  # fmt: skip
    archive_outcome(work, outcome, root)
    place = root / "19700101" / "arch" / "w1"
    assert outcome.products == [str(place / "a.h5"), str(tmp_path / "gone.h5")]
    assert outcome.plots == [str(place / "b.png"), str(place / "c.png")]
    assert not made["a.h5"].exists() and made["b.png"].exists()
    assert (place / "a.h5").read_text() == "a.h5"
    assert outcome.results is not None and "gone.h5" in outcome.results["archive_errors"][0]
    assert destination(root, work) == place.resolve()

    deleting = Work(pipeline="arch", id="w2", config={"archive": {"products": "delete"}})
    gone = Outcome(status="success", products=[str(made["d.h5"])])
    archive_outcome(deleting, gone, root)
    assert gone.products == [] and not made["d.h5"].exists()


def test_json_log_lines() -> None:
    stream = io.StringIO()
    report = Reporter("json", stream)
    work = {"pipeline": "logs", "id": "w9", "attempt": 2}
    report.attempt(work, Outcome(status="failure", error={"type": "E", "message": "m"},
                                 started=1.0, stop=1.5))  # fmt: skip
    report.problem("server away")
    first, second = (json.loads(line) for line in stream.getvalue().splitlines())
    assert (first["event"], first["id"], first["attempt"], first["status"]) == (
        "attempt", "w9", 2, "failure")
    assert first["seconds"] == 0.5 and first["error"]["type"] == "E"
    assert second == {"time": second["time"], "event": "notice", "message": "server away"}

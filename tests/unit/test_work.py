"""The Work model: CHIME's fields and constraints, ours on top."""

from __future__ import annotations

import json

import pytest

from workflow.errors import ConfigurationError, DuplicateWork, InvalidWork, ResultsTooLarge
from workflow.settings import ServerSettings, is_loopback
from workflow.tokens import Keyring, Token, digest
from workflow.work import (
    CHIME_FIELDS,
    TERMINAL,
    TRANSITIONS,
    Work,
    check_results_size,
    new_id,
    parse_work,
    results_size,
)


def test_payload_starts_with_chime_fields_in_chime_order() -> None:
    payload = Work(pipeline="a", site="s", user="u").payload()
    assert tuple(payload)[: len(CHIME_FIELDS)] == CHIME_FIELDS
    assert payload["status"] == "created" and payload["creation"] > 0
    assert payload["config"]["archive"] == {"results": True, "products": "copy",
                                            "plots": "copy", "logs": "move"}  # fmt: skip


@pytest.mark.parametrize(
    ("fields", "bad"),
    [
        ({"pipeline": "a b"}, "pipeline"),
        ({"pipeline": "a_b"}, "pipeline"),
        ({"pipeline": "x" * 129}, "pipeline"),
        ({"priority": 0}, "priority"),
        ({"priority": 6}, "priority"),
        ({"retries": -1}, "retries"),
        ({"retries": 6}, "retries"),
        ({"timeout": 0}, "timeout"),
        ({"timeout": 259201}, "timeout"),
        ({"status": "done"}, "status"),
        ({"id": "has space"}, "id"),
        ({"parameters": [1]}, "parameters"),
        ({"event": ["x"]}, "event"),
        ({"config": {"archive": {"plots": "shred"}}}, "config.archive.plots"),
        ({"notify": {"slack": {"channel": "x"}}}, "notify.slack.channel"),
        ({"priorty": 3}, "priorty"),
    ],
)
def test_invalid_fields_are_named(fields: dict[str, object], bad: str) -> None:
    with pytest.raises(InvalidWork) as caught:
        parse_work({"pipeline": "ok", **fields}, "works[2]")
    assert (caught.value.field or "").startswith(f"works[2].{bad}")


def test_function_command_and_graph_are_exclusive() -> None:
    with pytest.raises(InvalidWork, match="one of function, command or graph, not function "
                       "and command"):  # fmt: skip
        parse_work({"pipeline": "a", "function": "m.f", "command": ["ls"]})
    with pytest.raises(InvalidWork, match="not command and graph"):
        parse_work({"pipeline": "a", "command": ["ls"], "graph": "g.json"})


def test_old_pass_archive_strategy_means_bypass() -> None:
    work = Work(pipeline="a", config={"archive": {"products": "pass"}})
    assert work.config.archive.products == "bypass"


def test_results_size_is_serialized_json() -> None:
    results = {"k": "x" * 100}
    assert results_size(results) == len(json.dumps(results, separators=(",", ":")))
    check_results_size(results, 200)
    with pytest.raises(ResultsTooLarge) as caught:
        check_results_size(results, 50)
    assert caught.value.field == "results" and caught.value.status_code == 413


def test_ids_sort_in_creation_order_and_are_unique() -> None:
    ids = [new_id() for _ in range(2000)]
    assert ids == sorted(ids) and len(set(ids)) == 2000
    assert all(len(i) == 24 and int(i, 16) >= 0 for i in ids)


def test_transitions_end_in_terminal_states() -> None:
    assert all(not TRANSITIONS[status] for status in TERMINAL)
    assert TRANSITIONS["running"] >= {"success", "failure", "queued", "cancelled"}


@pytest.mark.parametrize(("host", "loopback"), [("127.0.0.1", True), ("127.3.4.5", True),
                                                ("::1", True), ("localhost", True),
                                                ("0.0.0.0", False), ("10.1.2.3", False),
                                                ("example.org", False)])  # fmt: skip
def test_loopback(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


def test_server_refuses_public_address_without_tokens() -> None:
    with pytest.raises(ConfigurationError, match="without access tokens"):
        ServerSettings.from_env(host="0.0.0.0")
    keyring = Keyring([Token("ops", "operator", digest("operator-token-0123"))])
    assert ServerSettings.from_env(host="0.0.0.0", keyring=keyring).host == "0.0.0.0"


@pytest.mark.parametrize("value", [float("nan"), float("inf"), -float("inf")])
def test_a_work_refuses_non_finite_numbers_naming_the_field(value: float) -> None:
    for field in ("creation", "stop", "backoff"):
        with pytest.raises(InvalidWork) as refused:
            parse_work({"pipeline": "p", field: value}, "work")
        assert refused.value.field == f"work.{field}", refused.value.to_dict()


def test_a_constraint_the_store_refuses_names_its_column_not_a_duplicate() -> None:
    import sqlite3

    from workflow.store.sqlite_schema import integrity_error

    missing = integrity_error(sqlite3.IntegrityError("NOT NULL constraint failed: work.creation"))
    assert isinstance(missing, InvalidWork) and missing.field == "creation"
    taken = integrity_error(sqlite3.IntegrityError("UNIQUE constraint failed: work.id"))
    assert isinstance(taken, DuplicateWork)

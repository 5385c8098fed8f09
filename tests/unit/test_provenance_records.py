"""Provenance records (``workflow.runner.provenance``) and what text search sees of them."""

from __future__ import annotations

import hashlib
import importlib.metadata
from collections.abc import Iterator

import orjson
import pytest

from workflow.runner import provenance
from workflow.store.text import text_of, words


@pytest.fixture(autouse=True)
def _forget() -> Iterator[None]:
    """Each test starts with the process's caches empty (the environment is its own)."""
    provenance.basic.cache_clear()
    provenance._functions.clear()
    provenance._graphs.clear()
    yield
    provenance.basic.cache_clear()


def test_the_image_is_the_first_variable_that_names_one(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CONTAINER_IMAGE", "last:1")
    monkeypatch.setenv("APPTAINER_CONTAINER", "/images/beamline.sif")
    assert provenance.basic()["image"] == "/images/beamline.sif"
    provenance.basic.cache_clear()
    monkeypatch.setenv("WORKFLOW_IMAGE", "first:2")
    assert provenance.basic()["image"] == "first:2"
    provenance.basic.cache_clear()
    for name in provenance.IMAGE_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    assert "image" not in provenance.basic()


def test_a_distribution_in_a_checkout_is_the_distribution_and_the_stdlib_is_named() -> None:
    # This virtualenv may sit inside the project's checkout: PyYAML is still PyYAML.
    assert provenance.origin("yaml") == {"distribution": "PyYAML",
                                         "version": importlib.metadata.version("PyYAML")}
    assert provenance.origin("json") == "stdlib"
    assert provenance.origin("no_such_module_anywhere") == "unknown"
    assert list(provenance.code(["json.dumps", "yaml:safe_load", "json.loads"])) == ["json", "yaml"]


def test_a_function_and_a_graph_are_worked_out_once() -> None:
    first = provenance.of_function("json.dumps")
    assert first["code"] == {"json": "stdlib"}
    assert provenance.of_function("json.dumps") is first
    graph = {"nodes": [{"id": "a", "task_type": "method", "task_identifier": "json.dumps"},
                       {"id": "b", "task_type": "script", "task_identifier": "echo"}],
             "links": [], "graph": {"id": "g"}}  # fmt: skip
    record = provenance.of_graph(graph)
    assert record["graph"] == hashlib.sha256(orjson.dumps(graph, option=orjson.OPT_SORT_KEYS)
                                             ).hexdigest()  # fmt: skip
    assert record["code"] == {"json": "stdlib"}
    assert provenance.of_graph(orjson.loads(orjson.dumps(graph))) is record
    # The same graph as JSON text hashes the same; a graph that cannot be read has none.
    assert provenance.of_graph(orjson.dumps(graph).decode())["graph"] == record["graph"]
    assert provenance.of_graph("no/such/graph.json") == provenance.basic()


def test_text_search_sees_provenance_values_and_module_names_once() -> None:
    record = {"python": "3.11.7", "host": "beamline-7", "runner": "0.1.0",
              "code": {"usertasks": {"git": "abc1234-dirty"},
                       "yaml": {"distribution": "PyYAML", "version": "6.0.4"}}}  # fmt: skip
    doc = {"history": [{"kind": "attempt", "provenance": record},
                       {"kind": "attempt", "provenance": record}]}  # fmt: skip
    text = text_of(doc)
    assert text.count("abc1234-dirty") == 1
    assert {"beamline", "7", "usertasks", "abc1234", "dirty", "pyyaml", "6", "yaml"} \
        <= set(words(doc))  # fmt: skip
    assert not {"python", "git", "distribution", "version", "code"} & set(words(doc))

"""``GET /results/export``: no cell a spreadsheet could run as a formula, a header row
even when nothing matches, and a failing store answered with an error reply, not a
broken-off one."""

from __future__ import annotations

import asyncio
import csv
import io
import re
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from harness import Server

from workflow.errors import StoreUnavailable
from workflow.service.app import create_app
from workflow.settings import ServerSettings
from workflow.store import open_store

#: What a spreadsheet reads as the start of a formula (OWASP, "CSV Injection").
TRIGGERS = ("=", "+", "-", "@", "\t", "\r")
#: A field of a CSV that is quoted: nothing outside its double quotes, quotes doubled.
QUOTED = r'"(?:[^"]|"")*"'


def _hostile(trigger: str) -> str:
    return f'{trigger}HYPERLINK("http://evil.example","x")'


def _rows(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text, newline="")))


def _every_cell_quoted(text: str) -> bool:
    return re.fullmatch(rf"(?:{QUOTED}(?:,{QUOTED})*\r\n)*", text) is not None


def test_export_neutralises_every_text_cell_that_could_be_a_formula(server: Server) -> None:
    works = [{"pipeline": "inject", "user": _hostile(t), "site": _hostile(t),
              "tags": [_hostile(t), "plain"], "command": [_hostile(t), "arg"], "retries": 0}
             for t in TRIGGERS]  # fmt: skip
    with httpx.Client(base_url=server.url, timeout=10) as http:
        ids = http.post("/buckets/work", params={"return_ids": "true"}, json=works).json()
        claimed = http.post("/buckets/withdraw",
                            json={"pipelines": ["inject"], "limit": len(ids)}).json()  # fmt: skip
        outcomes = [{"id": w["id"], "attempt": w["attempt"], "status": "failure",
                     "error": {"type": _hostile(TRIGGERS[ids.index(w["id"])]), "message": "m"}}
                    for w in claimed]  # fmt: skip
        assert all(r["ok"] for r in http.post("/buckets/complete",
                                               json={"works": outcomes}).json())  # fmt: skip
        # CHIME's transfer daemon deposits finished works straight into the results.
        deposited = [{"id": f"dep-{n}", "pipeline": "inject", "status": "success",
                      "user": _hostile(t), "site": _hostile(t), "tags": [_hostile(t)],
                      "function": _hostile(t), "event": [-5, 3], "creation": time.time()}
                     for n, t in enumerate(TRIGGERS)]  # fmt: skip
        http.post("/results/results", json=deposited).raise_for_status()
        text = http.get("/results/export", params={"pipeline": "inject"}).text
    assert _every_cell_quoted(text), text[:300]
    rows = _rows(text)
    assert len(rows) == 2 * len(TRIGGERS)
    for row in rows:
        trigger = _hostile(TRIGGERS[int(row["id"][4:])] if row["id"].startswith("dep-")
                           else TRIGGERS[ids.index(row["id"])])  # fmt: skip
        assert row["user"] == row["site"] == "'" + trigger, row
        assert row["tags"].startswith("'" + trigger), row
        if row["id"].startswith("dep-"):
            assert row["function"] == "'" + trigger and row["event"] == "'-5;3", row
        else:
            assert row["command"] == f"'{trigger} arg" and row["error"] == f"'{trigger}: m", row
        for name, cell in row.items():
            assert not cell.startswith(TRIGGERS), f"{name} could run as a formula: {cell!r}"


def test_an_export_with_no_match_is_just_the_header(server: Server) -> None:
    with httpx.Client(base_url=server.url, timeout=10) as http:
        reply = http.get("/results/export", params={"pipeline": "nothing-here"})
        assert reply.status_code == 200
        lines = reply.text.splitlines()
        assert len(lines) == 1 and lines[0].startswith('"id","pipeline","status","user"')
        assert http.get("/results/export", params={"pipeline": "nothing-here",
                                                   "format": "json"}).json() == []  # fmt: skip


def test_a_store_failing_at_the_first_read_gets_an_error_reply(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = open_store(f"sqlite:///{tmp_path / 'broken.db'}")
    app = create_app(ServerSettings(), store)

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise StoreUnavailable("the disk went away")

    async def export(format: str) -> httpx.Response:
        async with app.router.lifespan_context(app):
            monkeypatch.setattr(store.results, "find", broken)
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                         base_url="http://workflow") as http:  # fmt: skip
                return await http.get("/results/export", params={"format": format})

    for format in ("csv", "json"):
        # In a thread of its own: the browser tests' driver may hold this thread's loop.
        with ThreadPoolExecutor(1) as thread:
            reply = thread.submit(asyncio.run, export(format)).result()
        assert reply.status_code == 503, reply.text
        assert reply.json()["error"] == "StoreUnavailable", reply.text

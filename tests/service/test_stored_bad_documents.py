"""Whatever is already stored, one bad document never stops other work: a store written
before bodies were checked (a ``creation`` that was Infinity, parameters nested 250
levels) or by hand (nested past what the JSON reader takes) still hands out every
work, answers CHIME's withdraw, views and the dashboard; a work that cannot be written
into a reply is set aside as failed, never left running."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path

import httpx
from harness import Server

from workflow.buckets import Buckets
from workflow.store import open_store


def _nested(levels: int) -> str:
    return '{"d": ' * levels + "1" + "}" * levels


def _seed(path: Path) -> None:
    """Three plain works, then three that earlier versions or a hand could leave."""
    store = open_store(f"sqlite:///{path}")
    buckets = Buckets(store)
    buckets.deposit([{"id": f"good-{i}", "pipeline": "p", "priority": 1} for i in range(3)])
    buckets.deposit([{"id": name, "pipeline": "p", "priority": 5}
                     for name in ("infinite", "deep-250", "deep-1100")])  # fmt: skip
    store.close()
    db = sqlite3.connect(path)
    for id, parameters in (("deep-250", _nested(250)), ("deep-1100", _nested(1100))):
        (doc,) = db.execute("SELECT doc FROM work WHERE id = ?", (id,)).fetchone()
        doc = doc.replace('"parameters":null', f'"parameters":{parameters}')
        assert parameters in doc
        db.execute("UPDATE work SET doc = ? WHERE id = ?", (doc, id))
    # What a deposit with "creation": Infinity left: inf in the column, null in the JSON.
    (doc,) = db.execute("SELECT doc FROM work WHERE id = 'infinite'").fetchone()
    doc = doc.split('"creation":')[0] + '"creation":null,' + doc.split('"creation":')[1] \
        .split(",", 1)[1]
    db.execute("UPDATE work SET doc = ?, creation = 9e999 WHERE id = 'infinite'", (doc,))
    db.commit()
    db.close()


def test_bad_documents_never_stop_the_others(make_server: Callable[..., Server],
                                             tmp_path: Path) -> None:  # fmt: skip
    path = tmp_path / "old.db"
    _seed(path)
    server = make_server(store=f"sqlite:///{path}")
    with httpx.Client(base_url=server.url, timeout=30) as http:
        assert http.get("/ui/dashboard").status_code == 200
        assert http.post("/buckets/view", json={"query": {}}).status_code == 200
        chime = http.post("/buckets/work/withdraw", json={"pipeline": "p"})
        assert chime.status_code == 200, chime.text
        rest = http.post("/buckets/withdraw", json={"pipelines": ["p"], "limit": 10})
        assert rest.status_code == 200, rest.text
        handed = {chime.json()["id"], *(work["id"] for work in rest.json())}
        assert handed == {"good-0", "good-1", "good-2", "infinite", "deep-250"}
        deep = next(w for w in [chime.json(), *rest.json()] if w["id"] == "deep-250")
        assert str(deep["parameters"]).count("{") == 250

        aside = http.get("/buckets/work/deep-1100").json()
        assert aside["status"] == "failure", aside
        (entry,) = aside["history"]
        assert entry["error"]["type"] == "UnwritableWork" and entry["outcome"] == "failure"
        running = http.get("/buckets/work", params={"status": "running"}).json()
        assert "deep-1100" not in {work["id"] for work in running}
        assert http.get("/ui/dashboard").status_code == 200
        assert http.post("/results/view", json={"query": {}}).status_code == 200

"""An admin's deletion of finished works, over real HTTP."""

from __future__ import annotations

from collections.abc import Callable

import httpx
from harness import Server


def test_a_completion_after_deleting_the_newest_result_is_recorded(
    make_server: Callable[..., Server],
) -> None:
    # No background sweep during the test: the deleted result is never text-indexed.
    server = make_server(env={"WORKFLOW_REAP_INTERVAL": "3600"})
    with httpx.Client(base_url=server.url, timeout=10) as http:

        def finish(source: str) -> httpx.Response:
            http.post("/buckets/work", json=[{"pipeline": "del", "parameters": {"s": source}}])
            work = http.post("/buckets/work/withdraw", json={"pipeline": "del"}).json()
            return http.post(f"/buckets/work/{work['id']}/complete",
                             json={"attempt": work["attempt"], "status": "success"})  # fmt: skip

        first = finish("crab").json()
        assert http.delete("/results/results", params={"del": first["id"]}).json() == {"del": 1}
        reply = finish("frb")
        assert reply.status_code == 200, reply.text
        second = reply.json()["id"]
        assert http.get(f"/buckets/work/{second}").json()["status"] == "success"
        found = http.get("/results/works", params={"text": "frb"}).json()
        assert [w["id"] for w in found["items"]] == [second]
        assert http.get("/results/works", params={"text": "crab"}).json()["total"] == 0

"""The edge against a real server: the token is checked before a byte of the body is
read, the body's size is counted on the bytes received whatever the headers say, and
NaN, Infinity, overflowing numbers, NUL characters and deep nesting are refused with a
4xx naming the field, on every route."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from harness import Server, running

ADMIN = "edge-admin-token-0000000001"
VIEWER = "edge-viewer-token-000000002"
MAX_BODY = 64 * 1024


@pytest.fixture(scope="module")
def guarded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A server with an admin and a viewer token and a 64 KiB body limit."""
    with running(tmp_path_factory.mktemp("edge"), {
            "WORKFLOW_ADMIN_TOKENS": f"ada={ADMIN}", "WORKFLOW_VIEWER_TOKENS": f"vic={VIEWER}",
            "WORKFLOW_MAX_BODY": str(MAX_BODY)}) as server:  # fmt: skip
        yield server


@pytest.fixture(scope="module")
def admin(guarded: Server) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=guarded.url, headers={"x-access-token": ADMIN},
                      timeout=30) as client:  # fmt: skip
        yield client


def _raw(server: Server, head: str, body: bytes = b"", wait: float = 5.0) -> str:
    """Send ``head`` and ``body`` as they are on a socket; the status line of the reply
    (empty when none came within ``wait`` seconds)."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=wait) as sock:
        sock.sendall(head.replace("\n", "\r\n").encode() + b"\r\n" + body)
        try:
            reply = sock.recv(4096)
        except (TimeoutError, ConnectionResetError):
            return ""
    return reply.split(b"\r\n", 1)[0].decode()


def _chunked(body: bytes, size: int = 8192) -> bytes:
    parts = [b"%x\r\n%s\r\n" % (len(body[i:i + size]), body[i:i + size])
             for i in range(0, len(body), size)]  # fmt: skip
    return b"".join(parts) + b"0\r\n\r\n"


@pytest.mark.parametrize("encoding", ["chunked", "gzip, chunked", "identity, chunked",
                                      "deflate,chunked", "Chunked"])  # fmt: skip
def test_a_body_over_the_limit_is_refused_whatever_its_transfer_encoding(
        guarded: Server, admin: httpx.Client, encoding: str) -> None:  # fmt: skip
    pipeline = "big-" + encoding.replace(",", "").replace(" ", "").lower()
    works = json.dumps([{"pipeline": pipeline, "parameters": {"i": i}} for i in range(6000)])
    assert len(works) > 2 * MAX_BODY
    head = (f"POST /buckets/work HTTP/1.1\nHost: x\nx-access-token: {ADMIN}\n"
            f"Content-Type: application/json\nTransfer-Encoding: {encoding}\n")
    status = _raw(guarded, head, _chunked(works.encode()))
    assert status.startswith("HTTP/1.1 413"), status
    counts = admin.get("/buckets/counts").json()
    assert pipeline not in counts, "nothing of a refused body is deposited"


ROUTES = ["POST /no/such/route", "POST /buckets/work", "PUT /buckets/work", "POST /buckets/view",
          "POST /buckets/withdraw", "POST /buckets/exchange", "POST /results/view",
          "PATCH /buckets/pipelines/p", "POST /results/results", "POST /buckets/bulk",
          "POST /buckets/work/x/complete"]  # fmt: skip


@pytest.mark.parametrize("route", ROUTES)
def test_the_token_is_checked_before_a_byte_of_the_body_is_read(
        guarded: Server, route: str) -> None:  # fmt: skip
    method, path = route.split()
    # The body is announced but never sent: a server that reads it first never answers.
    head = (f"{method} {path} HTTP/1.1\nHost: x\nContent-Type: application/json\n"
            f"Content-Length: {MAX_BODY - 10}\n")
    expected = "HTTP/1.1 404" if path.startswith("/no/") else "HTTP/1.1 401"
    assert _raw(guarded, head, b"[{},{},").startswith(expected)
    if path.startswith("/no/"):
        return
    if not path.endswith("/view"):  # the rest need more than a viewer
        as_viewer = head + f"x-access-token: {VIEWER}\n"
        assert _raw(guarded, as_viewer, b"[{},{},").startswith("HTTP/1.1 403")


def _deep(levels: int) -> Any:
    value: Any = 1
    for _ in range(levels):
        value = {"d": value}
    return value


def _post(client: httpx.Client, method: str, path: str, raw: str) -> httpx.Response:
    return client.request(method, path, content=raw.encode(),
                          headers={"content-type": "application/json"})  # fmt: skip


@pytest.mark.parametrize(("method", "path", "raw", "field"), [
    ("POST", "/buckets/work", '[{"pipeline": "nan", "creation": Infinity}]', "0.creation"),
    ("POST", "/buckets/work", '{"pipeline": "nan", "parameters": {"x": NaN}}', "parameters.x"),
    ("POST", "/buckets/work", '[{"pipeline": "nan", "priority": 1e400}]', "0.priority"),
    ("PUT", "/buckets/work", '[{"id": "a", "pipeline": "nan", "creation": -Infinity}]',
     "0.creation"),
    ("POST", "/buckets/work/a/complete", '{"attempt": 1, "status": "success", "stop": NaN}',
     "stop"),
    ("POST", "/buckets/complete",
     '{"works": [{"id": "a", "attempt": 1, "status": "success", "stop": 1e400}]}',
     "works.0.stop"),
    ("POST", "/buckets/exchange",
     '{"complete": [{"id": "a", "attempt": 1, "status": "failure", "started": Infinity}], '
     '"withdraw": {"pipelines": ["nan"]}}', "complete.0.started"),
    ("POST", "/results/view", '{"query": {"creation": {"$gt": NaN}}}', "query.creation.$gt"),
    ("POST", "/buckets/work", '[{"pipeline": "nul", "parameters": {"a\\u0000": 1}}]',
     "0.parameters.a\x00"),
    ("POST", "/buckets/work", '[{"pipeline": "nul", "user": "x\\u0000y"}]', "0.user"),
])  # fmt: skip
def test_non_finite_numbers_and_nul_characters_are_refused_naming_the_field(
        admin: httpx.Client, method: str, path: str, raw: str, field: str) -> None:  # fmt: skip
    reply = _post(admin, method, path, raw)
    assert reply.status_code == 422, reply.text
    assert reply.json()["field"] == field, reply.json()
    assert "nan" not in admin.get("/buckets/counts").json()


def test_nesting_deeper_than_the_limit_is_refused_naming_it(admin: httpx.Client) -> None:
    for levels in (70, 250, 5000):
        raw = json.dumps([{"pipeline": "deep", "parameters": _deep(levels)}]) if levels < 900 \
            else '[{"pipeline": "deep", "parameters": ' + '{"d": ' * levels + "1" \
            + "}" * levels + "}]"
        reply = _post(admin, "POST", "/buckets/work", raw)
        assert reply.status_code == 413, (levels, reply.text)
        assert reply.json()["limit"] == 64 and "WORKFLOW_MAX_DEPTH" in reply.json()["message"]
    fits = [{"pipeline": "deep", "parameters": _deep(60)}]
    assert admin.post("/buckets/work", json=fits).status_code == 200
    (work,) = admin.post("/buckets/withdraw", json={"pipelines": ["deep"]}).json()
    assert work["parameters"] == _deep(60)


@pytest.mark.parametrize("url", [
    "/results/works?text=a%00b", "/results/export?text=%00", "/results/works?pipeline=%00",
    "/buckets/work?pipeline=p%00", "/files?path=a%00.png", "/buckets/status/details/a%00",
])  # fmt: skip
def test_a_nul_character_in_a_query_or_path_is_a_4xx_naming_it(
        admin: httpx.Client, url: str) -> None:  # fmt: skip
    reply = admin.get(url)
    assert reply.status_code == 422, reply.text
    assert reply.json()["error"] == "InvalidWork" and "NUL" in reply.json()["message"]


def test_a_malformed_body_is_a_422_naming_the_body(admin: httpx.Client) -> None:
    for raw in ('[{"pipeline": "x"', "{'a': 1}", "[1, 2,]"):
        reply = _post(admin, "POST", "/buckets/work", raw)
        assert reply.status_code == 422, reply.text
        assert reply.json()["field"] == "body" and "malformed JSON" in reply.json()["message"]


def test_a_body_not_declared_as_json_is_a_415_naming_the_header(admin: httpx.Client) -> None:
    # curl -d sends a form's type: the route would see no works at all and say so,
    # which misleads; the body is JSON or it is refused.
    raw = '[{"pipeline": "typed"}]'
    for declared in ("application/x-www-form-urlencoded", "text/plain", "multipart/form-data",
                     None):  # fmt: skip
        headers = {"Content-Type": declared} if declared else {}
        reply = admin.post("/buckets/work", content=raw, headers=headers)
        assert reply.status_code == 415, (declared, reply.text)
        assert reply.json()["field"] == "content-type" and "application/json" in reply.text
    assert admin.post("/buckets/view", json={"query": {"pipeline": "typed"}}).json() == []
    for declared in ("application/json; charset=utf-8", "Application/JSON",
                     "application/merge-patch+json"):  # fmt: skip
        reply = admin.post("/buckets/work", content=raw, headers={"Content-Type": declared})
        assert reply.status_code == 200, (declared, reply.text)


def test_routes_without_a_body_are_untouched(guarded: Server, admin: httpx.Client) -> None:
    assert httpx.get(f"{guarded.url}/version").status_code == 200
    assert httpx.get(f"{guarded.url}/docs").status_code == 200
    assert httpx.get(f"{guarded.url}/static/app.js").status_code == 200
    assert admin.get("/buckets/no-such-route").status_code == 404
    assert httpx.get(f"{guarded.url}/buckets/counts").status_code == 401


"""The client's HTTP stack on real sockets: what is repeated and what is not, errors by
class, proxies from the environment, verified https.

Besides a real ``workflow serve``, small stand-in servers on loopback answer as a test
needs: hang up after reading a request, answer 503 a few times, act as a proxy.
"""

from __future__ import annotations

import shutil
import ssl
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import orjson
import pytest
from harness import Server

from workflow import errors
from workflow.client import Client
from workflow.wire import Withdraw
from workflow.work import Work

#: How a stand-in answers one request (the handler has read it already).
Reply = Callable[[BaseHTTPRequestHandler], None]


class StandIn(ThreadingHTTPServer):
    """A loopback server that notes each request (method, target, headers by lower-case
    name) in ``seen``;
    bound to a free port at once, listening only once ``server_activate`` is called."""

    daemon_threads = True

    def __init__(self, reply: Reply):
        super().__init__(("127.0.0.1", 0), _Handler, bind_and_activate=False)
        self.server_bind()  # a bound socket that does not listen refuses connections
        self.reply = reply
        self.seen: list[tuple[str, str, dict[str, str]]] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_port}"


class _Handler(BaseHTTPRequestHandler):
    server: StandIn

    def _any(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        headers = {name.lower(): value for name, value in self.headers.items()}
        self.server.seen.append((self.command, self.path, headers))
        self.server.reply(self)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _any

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet."""


@contextmanager
def stand_in(reply: Reply, tls: ssl.SSLContext | None = None,
             listen_after: float = 0.0) -> Iterator[StandIn]:  # fmt: skip
    """A ``StandIn`` serving for the ``with`` block, from ``listen_after`` seconds on."""
    server = StandIn(reply)
    if tls is not None:
        server.socket = tls.wrap_socket(server.socket, server_side=True)
    listening = threading.Event()

    def serve() -> None:
        time.sleep(listen_after)
        server.server_activate()
        listening.set()
        server.serve_forever(poll_interval=0.05)

    threading.Thread(target=serve, daemon=True).start()
    if not listen_after:
        listening.wait()
    try:
        yield server
    finally:
        listening.wait(listen_after + 5)  # shutdown() waits for serve_forever to run
        server.shutdown()
        server.server_close()


def answer(status: int, body: object) -> Reply:
    """A reply of ``status`` with ``body`` as JSON (bytes as they are)."""
    content = body if isinstance(body, bytes) else orjson.dumps(body)

    def reply(handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(status)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(content)))
        handler.end_headers()
        handler.wfile.write(content)

    return reply


def hang_up(handler: BaseHTTPRequestHandler) -> None:
    """No reply: the request arrived, the connection closes."""
    handler.close_connection = True


def test_a_safe_call_is_retried_across_a_server_restart(server: Server) -> None:
    with Client(server.url, retry_for=30) as client:
        (id,) = client.deposit([Work(pipeline="restart", function="builtins.dict")])
        server.stop()
        restart = threading.Timer(1.0, server.start)
        restart.start()
        began = time.monotonic()
        try:
            work = client.get(id)  # the keep-alive connection is gone; so is the server
        finally:
            restart.join()
        assert (work["id"], work["status"]) == (id, "queued")
        assert time.monotonic() - began >= 1.0, "it waited for the server"


def test_an_unsafe_call_is_repeated_while_it_cannot_be_sent() -> None:
    with stand_in(answer(200, []), listen_after=0.5) as later, \
            Client(later.url, retry_for=20) as client:  # fmt: skip
        assert client.withdraw(Withdraw(pipelines=["nothing-yet"])) == []
    assert [method for method, _, _ in later.seen] == ["POST"]


def test_an_unsafe_call_that_was_sent_is_not_repeated() -> None:
    with stand_in(hang_up) as away, Client(away.url, retry_for=5) as client:
        began = time.monotonic()
        with pytest.raises(errors.ServerUnreachable):
            client.withdraw(Withdraw(pipelines=["lost-reply"]))
        assert len(away.seen) == 1, "a withdraw that reached the server is not sent again"
        assert time.monotonic() - began < 2
        client.retry_for = 1
        with pytest.raises(errors.ServerUnreachable):
            client.counts()
        assert len(away.seen) > 2, "a safe call is sent again"


def test_a_closed_client_fails_at_once() -> None:
    with stand_in(answer(200, {"ok": 1})) as up:
        client = Client(up.url, retry_for=30)
        assert client.counts() == {"ok": 1}
        client.close()
        began = time.monotonic()
        with pytest.raises(errors.ServerUnreachable, match="closed"):
            client.counts()
        assert time.monotonic() - began < 1, "not retried"
    assert len(up.seen) == 1


def test_503_is_retried_for_safe_calls_only() -> None:
    busy = errors.StoreUnavailable("busy").to_dict()
    replies = [answer(503, busy), answer(503, busy), answer(200, {"ok": 1})]
    with stand_in(lambda handler: replies.pop(0)(handler)) as flaky, \
            Client(flaky.url, retry_for=10) as client:  # fmt: skip
        with pytest.raises(errors.StoreUnavailable):
            client.withdraw(Withdraw(pipelines=["busy"]))
        assert client.counts() == {"ok": 1}
    assert len(flaky.seen) == 3


def test_an_error_body_is_raised_as_its_class() -> None:
    conflict = {"error": "TransitionConflict", "message": "attempt 2 is stale",
                "field": "attempt", "current": 3}  # fmt: skip
    with stand_in(answer(409, conflict)) as refusing, Client(refusing.url) as client, \
            pytest.raises(errors.TransitionConflict) as raised:  # fmt: skip
        client.heartbeat("w1", 2)
    assert (raised.value.message, raised.value.field) == ("attempt 2 is stale", "attempt")
    assert (raised.value.details, raised.value.status_code) == ({"current": 3}, 409)
    with stand_in(answer(502, b"<html>bad gateway</html>")) as odd, Client(odd.url) as client, \
            pytest.raises(errors.WorkflowError) as unnamed:  # fmt: skip
        client.call("POST", "/buckets/withdraw", json={})
    assert type(unnamed.value) is errors.WorkflowError
    assert (unnamed.value.message, unnamed.value.status_code) == ("<html>bad gateway</html>", 502)


def test_a_missing_work_is_not_found_from_the_real_server(server: Server) -> None:
    with Client(server.url) as client, pytest.raises(errors.NotFound):
        client.get("no-such-work")


def test_the_proxy_in_the_environment_carries_the_calls(monkeypatch: pytest.MonkeyPatch) -> None:
    with stand_in(answer(200, {"via": "proxy"})) as proxy, \
            stand_in(answer(200, {"via": "direct"})) as direct:  # fmt: skip
        monkeypatch.setenv("HTTP_PROXY", f"http://user:secret@127.0.0.1:{proxy.server_port}")
        with Client("http://workflow.invalid:8004/base") as client:
            assert client.call("GET", "/buckets/counts", safe=True) == {"via": "proxy"}
        ((method, target, headers),) = proxy.seen
        assert target == "http://workflow.invalid:8004/base/buckets/counts"  # absolute form
        assert headers["host"] == "workflow.invalid:8004"
        assert headers["proxy-authorization"] == "Basic dXNlcjpzZWNyZXQ="  # user:secret
        monkeypatch.setenv("NO_PROXY", "127.0.0.1")
        with Client(direct.url) as client:
            assert client.counts() == {"via": "direct"}
        assert [target for _, target, _ in direct.seen] == ["/buckets/counts"]
        assert len(proxy.seen) == 1


@pytest.fixture
def certificate(tmp_path: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and its key."""
    if shutil.which("openssl") is None:
        pytest.skip("making a test certificate needs the openssl command")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2",
                    "-keyout", str(key), "-out", str(cert), "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1"],
                   check=True, capture_output=True)  # fmt: skip
    return cert, key


def test_https_verifies_the_server_certificate(
        certificate: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    tls.load_cert_chain(*certificate)
    with stand_in(answer(200, {"secure": True}), tls=tls) as secure:
        url = f"https://127.0.0.1:{secure.server_port}"
        untrusted = pytest.raises(errors.ServerUnreachable, match="CERTIFICATE_VERIFY_FAILED")
        with Client(url, retry_for=0) as client, untrusted:
            client.counts()
        assert secure.seen == [], "nothing is sent to a server that is not trusted"
        monkeypatch.setenv("SSL_CERT_FILE", str(certificate[0]))  # now it is trusted
        with Client(url, retry_for=0) as client:
            assert client.counts() == {"secure": True}
        assert len(secure.seen) == 1

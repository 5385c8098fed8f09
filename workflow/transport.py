"""An httpx transport on urllib3: the same ``httpx.Client`` API at half the cost per call.

A runner makes a request every few works, so the client's own cost per request shows:
httpx's default transport (httpcore and h11, pure Python) spends about 0.5 ms of CPU on
a small request, urllib3's connection pool about 0.2 ms. Errors become the httpx
exceptions the client already handles: a connection that could not be made is
``ConnectError``/``ConnectTimeout`` (the request was not sent), anything later a
``ReadTimeout`` or ``ReadError``.
"""

from __future__ import annotations

import os

import httpx
import urllib3
from urllib3 import exceptions as failed

#: Environment variables that configure a proxy; httpx's own transport honours them.
PROXY_VARIABLES = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy",
                   "all_proxy")  # fmt: skip


class PooledTransport(httpx.BaseTransport):
    """HTTP/1.1 over a urllib3 pool (thread-safe, keep-alive, stale connections dropped).

    Args:
        connections: Connections kept open per host (one per thread that calls at once).
    """

    def __init__(self, connections: int = 8):
        self._pool = urllib3.PoolManager(maxsize=connections, block=False, retries=False)

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        limits = request.extensions.get("timeout", {})
        timeout = urllib3.Timeout(connect=limits.get("connect"), read=limits.get("read"))
        url = request.url
        headers = {name.decode("latin-1"): value.decode("latin-1")
                   for name, value in request.headers.raw}  # fmt: skip
        reply = self._open(url.host, url.port, request.method, url.raw_path.decode("ascii"),
                           request.read(), headers, timeout, request)  # fmt: skip
        return httpx.Response(reply.status, headers=list(reply.headers.items()),
                              content=reply.data, request=request)  # fmt: skip

    def post(self, host: str, port: int | None, path: str, body: bytes,
             headers: dict[str, str], timeout: urllib3.Timeout) -> tuple[int, bytes]:  # fmt: skip
        """A request with a body, without building httpx's request and response objects
        (about half a small call's cost); the same exceptions. Returns (status, body)."""
        reply = self._open(host, port, "POST", path, body, headers, timeout)
        return reply.status, reply.data

    def _open(self, host: str, port: int | None, method: str, path: str, body: bytes,
              headers: dict[str, str], timeout: urllib3.Timeout,
              request: httpx.Request | None = None) -> urllib3.BaseHTTPResponse:  # fmt: skip
        pool = self._pool.connection_from_host(host, port, "http")
        try:
            return pool.urlopen(
                method, path, body=body, headers=headers, timeout=timeout, retries=False,
                redirect=False, preload_content=True, decode_content=False,
                assert_same_host=False,
            )  # fmt: skip
        except failed.NewConnectionError as exc:  # before ConnectTimeoutError: a subclass
            raise httpx.ConnectError(str(exc), request=request) from exc
        except failed.ConnectTimeoutError as exc:
            raise httpx.ConnectTimeout(str(exc), request=request) from exc
        except failed.ReadTimeoutError as exc:
            raise httpx.ReadTimeout(str(exc), request=request) from exc
        except failed.HTTPError as exc:
            raise httpx.ReadError(str(exc), request=request) from exc

    def close(self) -> None:
        self._pool.clear()


def transport_for(url: str) -> PooledTransport | None:
    """``PooledTransport`` for plain ``http://`` without a proxy; otherwise None, so that
    httpx's own transport handles TLS settings and proxies as it documents."""
    if not url.startswith("http://") or any(os.environ.get(name) for name in PROXY_VARIABLES):
        return None
    return PooledTransport()

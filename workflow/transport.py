"""The client's one HTTP stack: HTTP/1.1 to the workflow server over urllib3.

A runner makes a request every few works, so the client's own cost per request shows:
on a small JSON call httpx (httpcore and h11) spends about 0.29 ms of CPU, a urllib3
connection pool about 0.135 ms (``benchmarks/http_stack.py``). So every call goes
straight to a urllib3 pool: keep-alive, thread-safe, stale connections dropped before
reuse, no retries or redirects of its own (the client decides what is repeated).

``https://`` is verified against the system's certificate store (``SSL_CERT_FILE`` and
``SSL_CERT_DIR`` honoured, as OpenSSL reads them). A proxy comes from the environment
as ``urllib.request`` reads it (``HTTP_PROXY``, ``HTTPS_PROXY``, ``ALL_PROXY``,
``NO_PROXY``, lower case too); credentials in its URL are sent as
``Proxy-Authorization``. Failures are urllib3's exceptions: ``ConnectTimeoutError``
(with its subclass ``NewConnectionError``) and ``ProxyError`` mean the request was not
sent; anything else under ``urllib3.exceptions.HTTPError`` may have reached the server.
"""

from __future__ import annotations

import urllib.request
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import unquote, urlencode

import urllib3
from urllib3.util import parse_url

from workflow import errors

#: A query: a mapping (a list value repeats its key) or (key, value) pairs.
Params = Mapping[str, Any] | Sequence[tuple[str, Any]]


def proxy_for(url: str) -> str | None:
    """The proxy URL the environment names for ``url``, or None (none set, or the host
    is in ``NO_PROXY``)."""
    parts = parse_url(url)
    proxies = urllib.request.getproxies()
    proxy = proxies.get(parts.scheme or "http") or proxies.get("all")
    if not proxy or urllib.request.proxy_bypass(parts.netloc or ""):
        return None
    return proxy if "://" in proxy else f"http://{proxy}"


def with_query(path: str, params: Params | None) -> str:
    """``path`` with ``params`` as its query, encoded as httpx did: list values repeat
    the key, booleans are ``true``/``false``, None is empty."""
    if not params:
        return path
    pairs = params.items() if isinstance(params, Mapping) else params
    flat = [(key, _text(item)) for key, value in pairs
            for item in (value if isinstance(value, list | tuple) else [value])]  # fmt: skip
    return f"{path}{'&' if '?' in path else '?'}{urlencode(flat)}"


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


class Transport:
    """Requests to one server (``url``, which may end in a path prefix).

    Args:
        url: Server base URL, ``http://`` or ``https://``.
        headers: Sent with every request.
        timeout: Seconds to connect, and seconds to wait for each read.
        connections: Connections kept open (one per thread that calls at once; more
            threads get a connection each, closed after their call).

    Raises:
        ConfigurationError: the environment names a proxy urllib3 cannot use (SOCKS).
    """

    def __init__(self, url: str, headers: Mapping[str, str], timeout: float,
                 connections: int = 8):  # fmt: skip
        self._headers = dict(headers)
        self._timeout = timeout
        self._json_headers = {**self._headers, "Content-Type": "application/json"}
        options: dict[str, Any] = {
            "maxsize": connections, "block": False, "retries": False,
            "timeout": urllib3.Timeout(connect=timeout, read=timeout),
        }  # fmt: skip
        self.proxy = proxy_for(url)
        #: Where a request goes: a pool given the path (the cheaper), or, through a
        #: proxy, a proxy manager given the whole URL (it picks tunnel or absolute form).
        self._via: urllib3.HTTPConnectionPool | urllib3.ProxyManager
        if self.proxy is None:
            self._via = urllib3.connection_from_url(url, **options)
            self._prefix = parse_url(url).path or ""
            return
        try:
            self._via = urllib3.ProxyManager(_bare(self.proxy),
                                             proxy_headers=_proxy_auth(self.proxy), **options)
        except urllib3.exceptions.ProxySchemeUnknown as exc:
            raise errors.ConfigurationError(
                f"proxy {_bare(self.proxy)}: only http:// and https:// proxies work") from exc
        self._prefix = url

    def send(self, method: str, target: str, body: bytes | None = None, *,
             held: float = 0.0) -> tuple[int, bytes]:  # fmt: skip
        """One request; ``body`` is sent as JSON.

        Args:
            method: HTTP method.
            target: Path (and query) below the server URL.
            body: The encoded JSON body, if any.
            held: Seconds the server may hold the request before it answers (a withdraw
                that waits for work); the reply is waited for that much longer.

        Returns:
            The reply's status and body.

        Raises:
            urllib3.exceptions.HTTPError: no reply (see the module docstring).
        """
        timeout = urllib3.Timeout(connect=self._timeout, read=self._timeout + held)
        reply = self._via.urlopen(method, self._prefix + target, body=body,
                                  headers=self._headers if body is None else self._json_headers,
                                  retries=False, redirect=False, assert_same_host=False,
                                  timeout=timeout)  # fmt: skip
        return reply.status, reply.data

    def close(self) -> None:
        """Close the open connections."""
        if isinstance(self._via, urllib3.ProxyManager):
            self._via.clear()
        else:
            self._via.close()


def _bare(proxy: str) -> str:
    """The proxy URL without credentials."""
    parts = parse_url(proxy)
    return parts._replace(auth=None).url


def _proxy_auth(proxy: str) -> dict[str, str] | None:
    """``Proxy-Authorization`` for credentials in the proxy URL, if any."""
    auth = parse_url(proxy).auth
    return urllib3.make_headers(proxy_basic_auth=unquote(auth)) if auth else None

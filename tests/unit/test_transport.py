"""The client's HTTP stack without a network: queries, proxies from the environment,
what the transport opens for a URL."""

from __future__ import annotations

import ssl

import pytest
import urllib3

from workflow.errors import ConfigurationError
from workflow.transport import Transport, proxy_for, with_query

PROXY_VARIABLES = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY", "REQUEST_METHOD")


@pytest.fixture(autouse=True)
def _no_proxy_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        (None, "/p"),
        ({}, "/p"),
        ({"limit": 5, "text": "a b&c"}, "/p?limit=5&text=a+b%26c"),
        ({"status": ["success", "failure"]}, "/p?status=success&status=failure"),
        ({"return_ids": True, "flag": False, "empty": None},
         "/p?return_ids=true&flag=false&empty="),
        ([("pipe", "id1"), ("pipe", "id2")], "/p?pipe=id1&pipe=id2"),
    ],
)
def test_query_encoding(params: object, expected: str) -> None:
    assert with_query("/p", params) == expected  # type: ignore[arg-type]


def test_query_added_to_a_path_that_has_one() -> None:
    assert with_query("/p?a=1", {"b": 2}) == "/p?a=1&b=2"


def test_no_proxy_unless_the_environment_names_one() -> None:
    assert proxy_for("http://server:8004") is None
    assert proxy_for("https://server") is None


def test_proxy_per_scheme_then_all_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTP_PROXY", "http://plain:3128")
    monkeypatch.setenv("HTTPS_PROXY", "http://secure:3128")
    assert proxy_for("http://server:8004") == "http://plain:3128"
    assert proxy_for("https://server") == "http://secure:3128"
    monkeypatch.delenv("HTTPS_PROXY")
    monkeypatch.setenv("all_proxy", "proxy.example:8080")  # lower case, no scheme
    assert proxy_for("https://server") == "http://proxy.example:8080"


def test_no_proxy_bypasses_listed_hosts(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTP_PROXY", "http://plain:3128")
    monkeypatch.setenv("NO_PROXY", "localhost,.facility.org")
    assert proxy_for("http://localhost:8004") is None
    assert proxy_for("http://queue.facility.org:8004") is None
    assert proxy_for("http://elsewhere.org:8004") == "http://plain:3128"


def test_a_proxy_in_the_environment_picks_the_proxy_manager(
        monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    direct = Transport("http://server:8004/prefix", {}, timeout=5)
    assert isinstance(direct._via, urllib3.HTTPConnectionPool)
    assert (direct.proxy, direct._prefix) == (None, "/prefix")
    monkeypatch.setenv("HTTPS_PROXY", "http://user:p%40ss@secure:3128")
    proxied = Transport("https://server", {}, timeout=5)
    assert isinstance(proxied._via, urllib3.ProxyManager)
    assert proxied._via.proxy is not None
    assert proxied._via.proxy.url == "http://secure:3128"
    assert proxied._via.proxy_headers == {"proxy-authorization": "Basic dXNlcjpwQHNz"}
    assert proxied._prefix == "https://server"


def test_a_socks_proxy_is_a_clear_configuration_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ALL_PROXY", "socks5://gateway:1080")
    with pytest.raises(ConfigurationError, match="socks5://gateway:1080"):
        Transport("http://server:8004", {}, timeout=5)


def test_https_is_verified() -> None:
    transport = Transport("https://server", {}, timeout=5)
    assert isinstance(transport._via, urllib3.HTTPSConnectionPool)
    connection = transport._via._new_conn()  # what a request would connect with
    assert connection.cert_reqs == ssl.CERT_REQUIRED
    assert connection.assert_hostname is not False

"""``GET /files``: only files inside the archive folder, whatever the path says."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from harness import Server


def test_files_come_only_from_the_archive(make_server: Callable[..., Server],
                                          tmp_path: Path) -> None:  # fmt: skip
    archive = tmp_path / "archive"
    (archive / "a").mkdir(parents=True)
    (archive / "a" / "plot.svg").write_text("<svg xmlns='http://www.w3.org/2000/svg'/>")
    (tmp_path / "outside.txt").write_text("secret")
    os.symlink(tmp_path / "outside.txt", archive / "a" / "link.txt")
    server = make_server(env={"WORKFLOW_ARCHIVE": str(archive)})
    with httpx.Client(base_url=server.url, timeout=10) as http:
        for path in (str(archive / "a" / "plot.svg"), "a/plot.svg"):
            reply = http.get("/files", params={"path": path})
            assert reply.status_code == 200 and reply.text.startswith("<svg")
            assert "sandbox" in reply.headers["content-security-policy"]
            assert reply.headers["x-content-type-options"] == "nosniff"
        for path in (str(tmp_path / "outside.txt"), "../outside.txt", "a/../../outside.txt",
                     "a/link.txt", "/etc/passwd"):
            refused = http.get("/files", params={"path": path})
            assert refused.status_code == 403, path
            assert refused.json()["error"] == "Forbidden" and refused.json()["field"] == "path"
            assert "secret" not in refused.text
        missing = http.get("/files", params={"path": "a/none.png"})
        assert missing.status_code == 404
        assert http.get("/files").status_code == 422


def test_without_an_archive_no_file_is_served(server: Server, tmp_path: Path) -> None:
    (tmp_path / "x.txt").write_text("x")
    reply = httpx.get(f"{server.url}/files", params={"path": str(tmp_path / "x.txt")}, timeout=10)
    assert reply.status_code == 403 and "WORKFLOW_ARCHIVE" in reply.json()["message"]


def test_a_nul_byte_an_overlong_name_or_a_symlink_loop_is_a_4xx_naming_the_path(
        make_server: Callable[..., Server], tmp_path: Path) -> None:  # fmt: skip
    archive = tmp_path / "archive"
    archive.mkdir()
    os.symlink(archive / "b", archive / "a")
    os.symlink(archive / "a", archive / "b")
    server = make_server(env={"WORKFLOW_ARCHIVE": str(archive)})
    with httpx.Client(base_url=server.url, timeout=10) as http:
        for path in ("x" * 300, "day/" + "y" * 300 + ".png", "a", "a/plot.png"):
            reply = http.get("/files", params={"path": path})
            assert 400 <= reply.status_code < 500, (path[:12], reply.status_code, reply.text)
            assert reply.json()["field"] == "path" and reply.json()["message"], path[:12]
        # The edge may refuse a NUL in a query string first: any 4xx JSON body will do.
        reply = http.get("/files", params={"path": "plot\x00.png"})
        assert 400 <= reply.status_code < 500, (reply.status_code, reply.text)
        assert {"error", "message", "field"} <= set(reply.json())


def test_files_api_alone_refuses_a_nul_byte_and_an_overlong_name(tmp_path: Path) -> None:
    from workflow.errors import InvalidWork, WorkflowError
    from workflow.service.files_api import inside

    for path, refusal in (("plot\x00.png", InvalidWork), ("x" * 300, InvalidWork),
                          ("../" + "x" * 300, WorkflowError)):  # fmt: skip
        with pytest.raises(refusal) as refused:
            inside(str(tmp_path), path)
        assert refused.value.status_code < 500 and refused.value.field == "path"


#: A file of each kind a runner might archive, and whether a browser may show it inline.
KINDS = {"report.html": ("text/html", "attachment"), "plot.svg": ("image/svg+xml", "inline"),
         "fit.png": ("image/png", "inline"), "notes.txt": ("text/plain", "inline"),
         "page.xhtml": ("application/xhtml+xml", "attachment"),
         "data.xml": ("xml", "attachment"), "code.js": ("javascript", "attachment"),
         "cube.h5": ("application/", "attachment"),
         "raw.unknown": ("application/octet-stream", "attachment")}  # fmt: skip


def test_no_file_can_run_script_wherever_it_is_opened(make_server: Callable[..., Server],
                                                      tmp_path: Path) -> None:  # fmt: skip
    archive = tmp_path / "archive"
    archive.mkdir()
    for name in KINDS:
        (archive / name).write_text("<script>alert(1)</script>")
    server = make_server(env={"WORKFLOW_ARCHIVE": str(archive)})
    with httpx.Client(base_url=server.url, timeout=10) as http:
        for name, (kind, disposition) in KINDS.items():
            reply = http.get("/files", params={"path": name})
            assert reply.status_code == 200, name
            policy = [p.strip() for p in reply.headers["content-security-policy"].split(";")]
            assert "sandbox" in policy and "allow-scripts" not in policy[0], name
            assert "default-src 'none'" in policy and "script-src" not in ";".join(policy)
            assert reply.headers["x-content-type-options"] == "nosniff"
            assert kind in reply.headers["content-type"], name
            assert reply.headers["content-disposition"].startswith(disposition), name
            assert reply.headers["referrer-policy"] == "no-referrer"


def _tokens(tmp_path: Path, **env: str) -> dict[str, str]:
    archive = tmp_path / "archive"
    (archive / "a").mkdir(parents=True)
    (archive / "a" / "plot.svg").write_text("<svg xmlns='http://www.w3.org/2000/svg'/>")
    (archive / "a" / "other.png").write_bytes(b"\x89PNG")
    (tmp_path / "outside.txt").write_text("secret")
    return {"WORKFLOW_ARCHIVE": str(archive), "WORKFLOW_VIEWER_TOKENS": VIEWER_TOKEN,
            "WORKFLOW_ADMIN_TOKENS": "ada=admin-secret-0000000001", **env}  # fmt: skip


VIEWER = {"x-access-token": "viewer-secret-000000004"}
VIEWER_TOKEN = "vic=viewer-secret-000000004"
SECRET = "files-secret-for-the-tests-0000000000"


def test_a_signed_link_opens_a_file_without_a_token_and_nothing_else(
        make_server: Callable[..., Server], tmp_path: Path) -> None:  # fmt: skip
    from workflow.service.files_api import sign

    server = make_server(env=_tokens(tmp_path, WORKFLOW_FILES_SECRET=SECRET))
    with httpx.Client(base_url=server.url, timeout=10) as http:
        assert http.get("/files/link", params={"path": "a/plot.svg"}).status_code == 401
        assert http.get("/files", params={"path": "a/plot.svg"}).status_code == 401
        assert http.get("/files", params={"path": "a/plot.svg"}, headers=VIEWER).text == (
            "<svg xmlns='http://www.w3.org/2000/svg'/>")
        link = http.get("/files/link", params={"path": str(tmp_path / "archive/a/plot.svg")},
                        headers=VIEWER).json()  # fmt: skip
        assert link["url"].startswith("/files/signed?") and 0 < link["lifetime"] <= 3600
        assert abs(link["expires"] - time.time() - link["lifetime"]) < 60
        opened = http.get(link["url"])  # no token: a new tab, an <img>
        assert opened.status_code == 200 and opened.text.startswith("<svg")
        assert "sandbox" in opened.headers["content-security-policy"]
        assert opened.headers["content-type"].startswith("image/svg+xml")
        assert opened.headers["x-content-type-options"] == "nosniff"

        query = dict(httpx.URL(link["url"]).params)
        assert query["path"] == "a/plot.svg", "the link names the file inside the archive"
        later = int(time.time()) + 300
        for changed, field in (({"signature": "0" * 64}, "signature"),
                               ({"path": "a/other.png"}, "signature"),
                               ({"expires": str(link["expires"] + 1)}, "signature"),
                               ({"expires": str(int(time.time()) - 1), "signature": sign(
                                   SECRET, "a/plot.svg", int(time.time()) - 1)}, "expires"),
                               ({"path": "../outside.txt", "expires": str(later),
                                 "signature": sign(SECRET, "../outside.txt", later)}, "path"),
                               ({"signature": ""}, "signature")):  # fmt: skip
            refused = http.get("/files/signed", params={**query, **changed})
            assert refused.status_code in (401, 403), changed
            assert refused.json()["field"] == field, (changed, refused.json())
            assert "secret" not in refused.text
        missing = http.get("/files/signed", params={"path": "a/plot.svg"})
        assert missing.status_code == 401 and missing.json()["field"] == "signature"
        for path, status in (("../outside.txt", 403), ("a/none.png", 404), ("x" * 300, 422)):
            refused = http.get("/files/link", params={"path": path}, headers=VIEWER)
            assert refused.status_code == status and refused.json()["field"] == "path", path
    other = make_server(env=_tokens(tmp_path / "elsewhere"))  # a random secret of its own
    assert httpx.get(other.url + link["url"], timeout=10).status_code == 403


def test_the_signing_key_is_random_unless_configured_and_never_short(
        monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    from workflow.errors import ConfigurationError
    from workflow.settings import ServerSettings

    first, second = ServerSettings.from_env(), ServerSettings.from_env()
    assert len(first.files_secret) >= 32 and first.files_secret != second.files_secret
    assert first.files_secret not in repr(first)
    monkeypatch.setenv("WORKFLOW_FILES_SECRET", SECRET)
    assert ServerSettings.from_env().files_secret == SECRET
    monkeypatch.setenv("WORKFLOW_FILES_SECRET", "short")
    with pytest.raises(ConfigurationError, match="16 characters"):
        ServerSettings.from_env()

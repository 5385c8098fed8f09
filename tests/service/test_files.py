"""``GET /files``: only files inside the archive folder, whatever the path says."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import httpx
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

"""``/files``: products and plots from the archive folder (``WORKFLOW_ARCHIVE``), and
from nowhere else: a path that resolves outside it (``..``, a symbolic link, another
absolute path) is refused with 403.

API clients send their token to ``GET /files``. A browser cannot put a token on an
``<img>`` or on a link opened in a new tab, so the web UI asks ``GET /files/link`` for a
short-lived link signed with the server's key (HMAC-SHA256 over the expiry and the path
inside the archive) and points them at ``GET /files/signed``, which needs no token.

Files come from user code, and this origin holds the UI and its token: every reply is
sandboxed (an opaque origin, no script, nothing fetched), never sniffed, and a type that
a browser would run as a page (HTML, XML, script, anything unknown) is a download.
"""

from __future__ import annotations

import errno
import hashlib
import hmac
import mimetypes
import time
from pathlib import Path
from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request
from fastapi.responses import FileResponse

from workflow.errors import Forbidden, InvalidWork, NotFound, Unauthorized
from workflow.service.access import needs, public

router = APIRouter(tags=["files"])

#: Seconds a signed link works; the web UI renews its links at half this.
LIFETIME = 600
#: Types a browser only displays, never runs: these open in a tab, the rest download.
#: SVG can hold script, but an ``<img>`` never runs it and the sandbox stops it in a tab.
INLINE = frozenset({"image/png", "image/jpeg", "image/gif", "image/webp", "image/avif",
                    "image/bmp", "image/svg+xml", "text/plain", "text/csv",
                    "application/json"})  # fmt: skip
#: What every reply carries. ``sandbox`` without ``allow-scripts`` gives the file an
#: opaque origin where no script runs; the rest stops it loading or sending anything.
HEADERS = {
    "Content-Security-Policy": "sandbox; default-src 'none'; img-src data:; "
    "style-src 'unsafe-inline'; form-action 'none'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Resource-Policy": "same-origin",
    "Cache-Control": "private, no-store",
}
#: The ``path`` query parameter of every route here.
FilePath = Annotated[str, Query(min_length=1, max_length=4096)]


def inside(root: str, path: str) -> Path:
    """``path`` (absolute, or relative to ``root``) resolved, if it lies inside ``root``.

    Raises:
        Forbidden: it resolves outside ``root``, or there is no archive (``root`` empty).
        InvalidWork: it holds a NUL byte, or a name longer than the file system allows.
        NotFound: it is inside but there is no such file (or a loop of symbolic links).
    """
    if not root:
        raise Forbidden("this server has no archive folder (WORKFLOW_ARCHIVE)", field="path")
    if "\x00" in path:
        raise InvalidWork("the path holds a NUL byte", field="path")
    base = Path(root).resolve()
    try:
        target = (base / path).resolve()  # an absolute path replaces base
    except RuntimeError:  # Python < 3.13 says "Symlink loop" so
        raise NotFound(f"{path} is a loop of symbolic links", field="path") from None
    if not target.is_relative_to(base):
        raise Forbidden(f"{path} is outside the archive folder", field="path")
    try:
        found = target.is_file()
    except OSError as exc:
        if exc.errno == errno.ENAMETOOLONG:
            raise InvalidWork("a name in the path is longer than the file system allows",
                              field="path") from None  # fmt: skip
        raise NotFound(f"cannot read {path} in the archive: {exc.strerror}",
                       field="path") from None  # fmt: skip
    if not found:
        raise NotFound(f"no file {path} in the archive", field="path")
    return target


def sign(secret: str, path: str, expires: int) -> str:
    """The signature of a link to ``path`` (inside the archive) until ``expires``.

    Args:
        secret: The server's key (``ServerSettings.files_secret``).
        path: The file's path relative to the archive folder, as the link names it.
        expires: Unix time in seconds after which the link is refused.

    Returns:
        HMAC-SHA256 of the expiry and the path, in hex.
    """
    message = f"{expires}\n{path}".encode("utf-8", "surrogateescape")
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def verify(secret: str, path: str, expires: int, signature: str, now: float) -> None:
    """Refuse a link that this server did not sign, or whose time is up.

    Raises:
        Unauthorized: the link has no signature.
        Forbidden: the signature does not match the path and expiry, or it has expired.
    """
    if not signature:
        raise Unauthorized("a signed link (GET /files/link) or a token (GET /files) is "
                           "required", field="signature")  # fmt: skip
    if not hmac.compare_digest(sign(secret, path, expires), signature):
        raise Forbidden("the link's signature does not match: it was not made by this "
                        "server, or was changed", field="signature")  # fmt: skip
    if expires < now:
        raise Forbidden("the link has expired: reload the page for a new one",
                        field="expires")  # fmt: skip


def serve(found: Path) -> FileResponse:
    """``found`` as a reply that can never run in this origin, whatever it holds."""
    kind = mimetypes.guess_type(found.name)[0] or "application/octet-stream"
    disposition = "inline" if kind in INLINE else "attachment"
    return FileResponse(found, media_type=kind, filename=found.name, headers=HEADERS,
                        content_disposition_type=disposition)  # fmt: skip


@router.get("/files", **needs("viewer"), summary="A product or plot from the archive folder")
def get_file(request: Request, path: FilePath) -> FileResponse:
    """The file at ``path``, for a caller with a token."""
    return serve(inside(request.app.state.settings.archive, path))


@router.get("/files/link", **needs("viewer"), summary="A signed link to a file, for a browser")
def get_link(request: Request, path: FilePath) -> dict[str, str | int]:
    """A link to the file at ``path`` that works without a token for ``LIFETIME`` s.

    Returns:
        ``url`` (``/files/signed?...``), ``expires`` (Unix seconds) and ``lifetime``.
    """
    settings = request.app.state.settings
    found = inside(settings.archive, path)
    relative = found.relative_to(Path(settings.archive).resolve()).as_posix()
    expires = int(time.time()) + LIFETIME
    query = urlencode({"path": relative, "expires": expires,
                       "signature": sign(settings.files_secret, relative, expires)})  # fmt: skip
    return {"url": f"/files/signed?{query}", "expires": expires, "lifetime": LIFETIME}


@router.get("/files/signed", **public(), summary="A file through a signed link")
def get_signed(request: Request, path: Annotated[str, Query(max_length=4096)] = "",
               expires: Annotated[int, Query(ge=0)] = 0,
               signature: Annotated[str, Query(max_length=128)] = "") -> FileResponse:  # fmt: skip
    """The file a link from ``GET /files/link`` names, while the link lasts.

    The signature is checked before the path is even looked at (so every parameter is
    optional here: a bare request gets 401, like a route that needs a token), and a
    link tells nothing about the archive unless this server made it.
    """
    settings = request.app.state.settings
    verify(settings.files_secret, path, expires, signature, time.time())
    return serve(inside(settings.archive, path))

"""``/files``: products and plots from the archive folder (``WORKFLOW_ARCHIVE``), and
from nowhere else: a path that resolves outside it (``..``, a symbolic link, another
absolute path) is refused with 403."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import FileResponse

from workflow.errors import Forbidden, NotFound
from workflow.service.access import needs

router = APIRouter(tags=["files"])


def inside(root: str, path: str) -> Path:
    """``path`` (absolute, or relative to ``root``) resolved, if it lies inside ``root``.

    Raises:
        Forbidden: it resolves outside ``root``, or there is no archive (``root`` empty).
        NotFound: it is inside but there is no such file.
    """
    if not root:
        raise Forbidden("this server has no archive folder (WORKFLOW_ARCHIVE)", field="path")
    base = Path(root).resolve()
    target = (base / path).resolve()  # an absolute path replaces base
    if not target.is_relative_to(base):
        raise Forbidden(f"{path} is outside the archive folder", field="path")
    if not target.is_file():
        raise NotFound(f"no file {path} in the archive", field="path")
    return target


@router.get("/files", **needs("viewer"), summary="A product or plot from the archive folder")
def get_file(request: Request, path: Annotated[str, Query(min_length=1, max_length=4096)]
             ) -> FileResponse:  # fmt: skip
    found = inside(request.app.state.settings.archive, path)
    # Files come from user code: never let one run as a page of this origin (an SVG
    # with a script, say), whatever its type.
    headers = {"Content-Security-Policy": "sandbox; default-src 'none'; style-src 'unsafe-inline'",
               "X-Content-Type-Options": "nosniff"}  # fmt: skip
    return FileResponse(found, filename=found.name, content_disposition_type="inline",
                        headers=headers)  # fmt: skip

"""The API's documentation pages, ``/docs`` (Swagger UI) and ``/redoc``, with their
scripts and styles served by the server itself.

FastAPI's own pages load Swagger UI and ReDoc from a CDN, so on a network without the
internet (a beamline's or an observatory's control network) they stay blank. The files
come from the ``fastapi-offline`` package, which ships both; the pages are FastAPI's
own, pointed at them. Neither page nor file holds data: they need no token.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

#: Where the pages find their scripts, styles and icon.
ASSETS = "/static-docs"


def _folder() -> Path:
    import fastapi_offline

    return Path(fastapi_offline.__file__).parent / "static"


def install(app: FastAPI) -> None:
    """Serve ``/docs`` and ``/redoc`` on ``app`` (made with ``docs_url=None`` and
    ``redoc_url=None``) and the files they load."""
    app.mount(ASSETS, StaticFiles(directory=_folder()), name="docs-assets")
    title = f"{app.title}: API"

    @app.get("/docs", include_in_schema=False)
    def swagger(request: Request) -> HTMLResponse:
        files, openapi = _where(app, request)
        return get_swagger_ui_html(openapi_url=openapi, title=title,
                                   swagger_js_url=f"{files}/swagger-ui-bundle.js",
                                   swagger_css_url=f"{files}/swagger-ui.css",
                                   swagger_favicon_url=f"{files}/favicon.png")  # fmt: skip

    @app.get("/redoc", include_in_schema=False)
    def redoc(request: Request) -> HTMLResponse:
        files, openapi = _where(app, request)
        return get_redoc_html(openapi_url=openapi, title=title,
                              redoc_js_url=f"{files}/redoc.standalone.js",
                              redoc_favicon_url=f"{files}/favicon.png",
                              with_google_fonts=False)  # fmt: skip


def _where(app: FastAPI, request: Request) -> tuple[str, str]:
    """Where the pages' files and the OpenAPI document are, behind any root path."""
    root = request.scope.get("root_path", "")
    return root + ASSETS, root + (app.openapi_url or "/openapi.json")

"""The HTTP service, built by ``create_app``: buckets under ``/buckets``, results under
``/results``. Nothing connects at import time; the store opens when the app starts."""

from __future__ import annotations

import logging
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from importlib.resources import files
from pathlib import Path
from types import FrameType

import uvicorn
from fastapi import APIRouter, FastAPI, Request, Response
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles

from workflow import __version__, collector
from workflow.buckets import Buckets
from workflow.errors import StoreUnavailable, WorkflowError
from workflow.notify import Deliverer, Watch
from workflow.pipelines import Pipelines
from workflow.results import Results
from workflow.service import (
    access,
    buckets_api,
    chime_buckets,
    chime_pipelines,
    chime_results,
    docs,
    errors,
    files_api,
    heap,
    notify_api,
    pipelines_api,
    results_api,
    schedules_api,
    ui_api,
)
from workflow.service.advancing import Advancer
from workflow.service.edge import Edge
from workflow.service.hot import HotPaths
from workflow.service.notifying import Notifier
from workflow.service.waiting import Finishes, WaitingRoom
from workflow.settings import ServerSettings
from workflow.store import Following, Store, open_store
from workflow.wire import Doc

log = logging.getLogger("workflow.serve")


def create_app(settings: ServerSettings | None = None, store: Store | None = None) -> FastAPI:
    """Build the service.

    Args:
        settings: How to run; default from the ``WORKFLOW_*`` environment.
        store: An open store to serve; by default ``settings.store`` is opened when the
            app starts. The app closes it when it stops.
    """
    settings = settings or ServerSettings.from_env()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        nonlocal store
        heap.configure()  # before the worker threads start (see heap)
        collector.settle()
        store = store or open_store(settings.store or None)
        buckets = Buckets(store, results_limit=settings.results_limit,
                          reap_interval=settings.reap_interval, log_limit=settings.log_limit,
                          targets=frozenset(settings.notify_targets),
                          slack_target=settings.notify_slack)  # fmt: skip
        app.state.buckets = buckets
        app.state.results = Results(store, results_limit=settings.results_limit)
        room = WaitingRoom(lambda want, by: buckets.withdraw(want, by=by),
                           lambda works: _give_back(buckets, works),
                           longest=settings.max_wait, promptly=store.promptly)  # fmt: skip
        room.start()
        finishes = Finishes()
        finishes.start()
        app.state.waiting, app.state.finishes = room, finishes
        app.state.pipelines = Pipelines(buckets)
        advancer = Advancer(app.state.pipelines, settings.reap_interval)

        def finished(id: str) -> None:
            finishes.finished(id)
            advancer.poke()

        notifier = app.state.notifier = Notifier(
            Deliverer(store, settings.notify_targets, public_url=settings.link_base(),
                      tries=settings.notify_tries, longest=settings.notify_backoff),
            Watch(buckets), settings.reap_interval)  # fmt: skip
        buckets.changed, buckets.finished, buckets.noted = room.changed, finished, notifier.poke
        advancer.start()
        notifier.start()
        following = _follow(app, store, room, finishes)
        stop = threading.Event()
        reaper = threading.Thread(target=_reap, args=(app.state.buckets, settings, stop),
                                  name="workflow-reaper", daemon=True)  # fmt: skip
        reaper.start()
        try:
            yield
        finally:
            room.close()
            finishes.close()
            advancer.close()
            notifier.close()
            if following is not None:
                following.stop()
            stop.set()
            reaper.join(timeout=10)
            with suppress(WorkflowError):
                buckets.write_runners()  # what was seen since the last pass
            store.close()

    app = FastAPI(title="workflow", version=__version__, lifespan=lifespan,
                  description="Buckets of work, runners, and their results.",
                  docs_url=None, redoc_url=None)  # served without a CDN: service/docs.py
    app.state.settings = settings
    app.state.wake = "local"  # until a shared store opens (_follow)
    errors.install(app)
    if settings.fast_paths:
        app.add_middleware(HotPaths, routes={**buckets_api.fast.table("/buckets"),
                                             **chime_buckets.fast.table("/buckets")})
    # Added last, so it runs first: no route reads a body the edge has not checked.
    app.add_middleware(Edge, max_body=settings.max_body, max_depth=settings.max_depth)
    app.include_router(pipelines_api.router, prefix="/pipelines")
    app.include_router(chime_pipelines.router)
    app.include_router(schedules_api.router, prefix="/schedules")
    app.include_router(notify_api.router, prefix="/notifications")
    for prefix, chime, ours in (("/buckets", chime_buckets, buckets_api),
                                ("/results", chime_results, results_api)):  # fmt: skip
        app.include_router(_version_router(prefix), prefix=prefix)
        app.include_router(chime.router, prefix=prefix)
        app.include_router(ours.router, prefix=prefix)
    app.include_router(_version_router(""))
    app.include_router(ui_api.router, prefix="/ui")
    app.include_router(files_api.router)
    _web_ui(app)
    docs.install(app)
    app.state.roles = access.roles(app)  # every route has declared its role, or this fails
    return app


class Serving(uvicorn.Server):
    """uvicorn's server, which on SIGINT or SIGTERM first answers the held withdraws:
    uvicorn waits for every open request before it stops the app, and a held one
    would keep it waiting for up to 30 s."""

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        super().handle_exit(sig, frame)
        state = getattr(self.config.app, "state", None)
        for held in (getattr(state, "waiting", None), getattr(state, "finishes", None)):
            if held is not None:
                held.close_soon()


def _follow(app: FastAPI, store: Store, room: WaitingRoom, finishes: Finishes
            ) -> Following | None:  # fmt: skip
    """How the held requests hear of changes other servers make to a shared store:
    through the store (``Store.follow``: a MongoDB change stream), or else by looking
    every 100 ms. Logs which, and keeps it in ``app.state.wake`` for ``/version``:
    ``local`` (no other servers), ``change-stream`` or ``poll``."""
    if not store.shared:
        return None

    def unheard(level: int, why: str) -> None:
        app.state.wake = "poll"
        log.log(level, "%s: held requests look every 100 ms", why)
        room.start_polling()
        finishes.start_polling()

    try:
        following = store.follow(room.changed, finishes.finished,
                                 lambda: unheard(logging.WARNING, "MongoDB change stream lost"))
    except StoreUnavailable as exc:  # unreachable at start-up
        unheard(logging.WARNING, str(exc))
        return None
    if following is None:
        unheard(logging.INFO, "MongoDB without change streams (not a replica set)")
    else:
        app.state.wake = "change-stream"
        log.info("MongoDB change stream: held requests wake on other servers' changes")
    return following


def _web_ui(app: FastAPI) -> None:
    """The web UI at ``/``; its files hold no data, so they need no token (the API calls
    they make do)."""
    folder = Path(str(files("workflow.webui")))
    app.mount("/static", StaticFiles(directory=folder), name="static")

    @app.get("/", include_in_schema=False, **access.public())
    def index() -> FileResponse:
        return FileResponse(folder / "index.html", headers={"Cache-Control": "no-cache"})


def _version_router(prefix: str) -> APIRouter:
    # CHIME's client probes HEAD /version without a token before anything else.
    router = APIRouter(tags=["version"])
    name = f"version{prefix.replace('/', '_')}"

    @router.get("/version", operation_id=name, **access.public())
    def version(request: Request) -> dict[str, str]:
        """The version, and how held requests hear of other servers' changes (``wake``:
        ``local``, ``change-stream`` or ``poll``)."""
        return {"version": __version__, "name": "workflow", "wake": request.app.state.wake}

    @router.head("/version", operation_id=f"{name}_head", **access.public())
    def version_head() -> Response:
        return Response(status_code=200)

    return router


def _give_back(buckets: Buckets, works: list[Doc]) -> None:
    """Hand back, uncounted, works claimed for a held withdraw that stopped waiting."""
    for work in works:
        with suppress(WorkflowError):  # finished or taken meanwhile: nothing to hand back
            buckets.release(work["id"], work["attempt"], "not-delivered")


def _reap(buckets: Buckets, settings: ServerSettings, stop: threading.Event) -> None:
    """Expire lost leases, write down what was seen of runners, tidy the store and hand
    the memory freed since the last pass back to the system (``heap.trim``) until
    ``stop`` is set; errors are logged, never fatal."""
    while not stop.wait(settings.reap_interval):
        try:
            while buckets.expire() > 0 and not stop.is_set():
                pass
            buckets.write_runners()
            buckets.store.tidy()
        except Exception:
            log.exception("lease expiry sweep failed; trying again")
        heap.trim()

"""The Python client: the bucket and results verbs over HTTP.

Every call has a timeout. Calls that are safe to repeat (reads, deposits with
client-chosen ids, heartbeats, completions, which the server records once) are retried
with backoff on connection errors and 503; a withdraw is retried only when the request
never reached the server. Errors come back as the same exception classes the server
raised (``workflow.errors``).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from http.client import responses
from typing import Any
from urllib.parse import quote

import orjson
from urllib3.exceptions import ClosedPoolError, ConnectTimeoutError, HTTPError, ProxyError

from workflow import __version__, errors
from workflow.policy import Backoff
from workflow.settings import ClientSettings
from workflow.transport import Params, Transport, with_query
from workflow.wire import (
    LONGEST_WAIT,
    Bulk,
    BulkReply,
    Doc,
    HeldAttempt,
    Outcome,
    PipelineSettings,
    Progress,
    RunnerInfo,
    Search,
    Withdraw,
    deposit_payloads,
)
from workflow.work import TERMINAL, Work, default_user

#: ``call`` without ``json``: no body (``json=None`` sends ``null``).
_NO_BODY: Any = object()


def _retryable(exc: BaseException) -> bool:
    """A safe call is repeated after this: no reply at all (unless the client was
    closed), or 503 (store unavailable)."""
    if isinstance(exc, HTTPError):
        return not isinstance(exc, ClosedPoolError)
    return isinstance(exc, errors.WorkflowError) and exc.status_code == 503


def _not_sent(exc: BaseException) -> bool:
    """Any call is repeated after this: the request never left (no connection to the
    server or the proxy could be made; ``NewConnectionError`` is a ``ConnectTimeoutError``)."""
    return isinstance(exc, ConnectTimeoutError | ProxyError)


def _decoded(status: int, content: bytes) -> Any:
    """A reply's JSON body; for an error status, the error the server named, raised."""
    if 200 <= status < 300:
        return orjson.loads(content) if content else None
    reason = responses.get(status, f"HTTP {status}")
    try:
        body = orjson.loads(content)
    except ValueError:
        body = {"message": content.decode("utf-8", "replace")[:500] or reason}
    if not isinstance(body, dict):
        body = {"message": str(body)}
    cls = errors.by_name(str(body.pop("error", "")))
    message = str(body.pop("message", reason))
    field = body.pop("field", None)
    error = cls(message, field=field, **body)
    error.status_code = status
    raise error


class Client:
    """A connection to a workflow server: the bucket and results verbs
    (``workflow.verbs``) over HTTP. Works come back as the JSON documents the server
    sends (``Work.model_validate`` makes a ``Work`` of one).

    Args:
        url: Server base URL, e.g. ``http://127.0.0.1:8004``.
        token: Access token, sent as ``Authorization: Bearer``.
        timeout: Seconds per HTTP call.
        retry_for: Seconds to keep retrying a safe call while the server is away.
        on_retry: Called before each repeat of a call with the error and the number of
            the repeat (1 first); the command line says with it, on a terminal, that it
            is waiting for the server. The library itself prints nothing.
    """

    def __init__(self, url: str | None = None, token: str | None = None,
                 timeout: float | None = None, retry_for: float = 30.0,
                 on_retry: Callable[[BaseException, int], None] | None = None):  # fmt: skip
        env = ClientSettings.from_env()
        self.url = (url or env.url).rstrip("/")
        token = token if token is not None else env.token
        # Operator actions are recorded in a work's history with this name.
        headers = {"X-Workflow-User": default_user(), "Accept": "application/json",
                   "User-Agent": f"workflow/{__version__}"}  # fmt: skip
        if token:
            headers["Authorization"] = f"Bearer {token}"
        self.retry_for = retry_for
        self.on_retry = on_retry
        seconds = timeout if timeout is not None else env.timeout
        self._http = Transport(self.url, headers, seconds)

    @classmethod
    def from_env(cls) -> Client:
        """A client for ``WORKFLOW_URL`` with ``WORKFLOW_TOKEN``."""
        return cls()

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- transport -----------------------------------------------------------------------

    def call(self, method: str, path: str, *, safe: bool = False, json: Any = _NO_BODY,
             params: Params | None = None, held: float = 0.0) -> Any:  # fmt: skip
        """One HTTP call; returns the decoded JSON body.

        Args:
            method: HTTP method.
            path: Path below the server URL.
            safe: The call may be repeated (retried on connection errors and 503 for
                ``retry_for`` seconds); otherwise it is repeated only when the request
                was never sent.
            json: The body, sent as JSON (``None`` as ``null``); none if not given.
            params: The query: a mapping (a list value repeats its key) or pairs.
            held: Seconds the server may hold the call before it answers; its reply is
                waited for that much longer than the timeout.

        Raises:
            WorkflowError: the subclass the server named, or ``ServerUnreachable``.
        """
        again = _retryable if safe else _not_sent
        target = with_query(path, params)
        body = None  # orjson: several times faster than the json module
        if json is not _NO_BODY:
            body = orjson.dumps(json, option=orjson.OPT_NON_STR_KEYS)
        deadline = time.monotonic() + self.retry_for
        backoff: Backoff | None = None
        repeats = 0
        while True:
            try:
                return self._once(method, target, body, held)
            except Exception as exc:
                if not again(exc) or time.monotonic() >= deadline:
                    if isinstance(exc, HTTPError):
                        raise errors.ServerUnreachable(f"{self.url}: {exc}") from exc
                    raise
                repeats += 1
                if self.on_retry is not None:
                    self.on_retry(exc, repeats)
            # Jittered, doubling from 0.1 s to at most 2 s: clients cut off together (a
            # server restart) come back spread out.
            backoff = backoff or Backoff(first=0.1, factor=2.0, cap=2.0, jitter=1.0)
            time.sleep(backoff.next())

    def _once(self, method: str, target: str, body: bytes | None, held: float = 0.0) -> Any:
        return _decoded(*self._http.send(method, target, body, held=held))

    # -- buckets -------------------------------------------------------------------------

    def deposit(self, works: Sequence[Work | Doc]) -> list[str]:
        """Deposit works; return their ids. Ids are chosen here, so retries are safe."""
        ids: list[str] = self.call("POST", "/buckets/work", safe=True,
                                   json=deposit_payloads(works),
                                   params={"return_ids": "true"})  # fmt: skip
        for work in works:
            if isinstance(work, Work):
                work.status = "queued"
        return ids

    def withdraw(self, want: Withdraw) -> list[Doc]:
        """Claim up to ``want.limit`` works; with ``want.wait``, the server may hold the
        call that long for works to come."""
        return self.call("POST", "/buckets/withdraw", json=want.wire(),  # type: ignore[no-any-return]
                         held=want.wait)  # fmt: skip

    def exchange(self, outcomes: Sequence[Outcome], want: Withdraw
                 ) -> tuple[list[Doc], list[Doc]]:  # fmt: skip
        """Report ``outcomes`` (as ``complete_many``) and claim (as ``withdraw``) in one
        request. Like a withdraw, it is repeated only when it never reached the server;
        the outcomes are then not recorded either.

        Returns:
            The reply per outcome, in order, and the claimed works.
        """
        body = {"complete": [o.wire() for o in outcomes], "withdraw": want.wire()}
        reply = self.call("POST", "/buckets/exchange", json=body, held=want.wait)
        return reply["completed"], reply["works"]

    def end_wait(self, runner: str) -> int:
        """End the held withdraws of ``runner`` (on this server) now; how many there were."""
        return int(self.call("POST", "/buckets/withdraw/end", safe=True,
                             json={"runner": runner})["ended"])  # fmt: skip

    def heartbeat(self, id: str, attempt: int, lease: float | None = None) -> Doc:
        """Extend the lease of a running attempt."""
        return self._doc("POST", f"/buckets/work/{id}/heartbeat",
                         {"attempt": attempt, "lease": lease})  # fmt: skip

    def heartbeat_many(self, held: Sequence[HeldAttempt], lease: float | None = None
                       ) -> list[Doc]:  # fmt: skip
        """Extend the leases of several running attempts in one call; the reply says per
        work ``ok`` (and the new ``expires``) or the error."""
        body = {"works": [{"id": w.id, "attempt": w.attempt} for w in held], "lease": lease}
        return self.call("POST", "/buckets/heartbeat", safe=True,  # type: ignore[no-any-return]
                         json=body)  # fmt: skip

    def complete(self, outcome: Outcome) -> Doc:
        """Report the outcome of a running attempt."""
        body = outcome.wire()
        return self._doc("POST", f"/buckets/work/{body.pop('id', '')}/complete", body)

    def complete_many(self, outcomes: Sequence[Outcome]) -> list[Doc]:
        """Report several outcomes in one call; the reply says per work ``ok`` or the
        error, in the order sent."""
        return self.call("POST", "/buckets/complete", safe=True,  # type: ignore[no-any-return]
                         json={"works": [o.wire() for o in outcomes]})  # fmt: skip

    def progress(self, reports: Sequence[Progress]) -> list[Doc]:
        """Say what running attempts wrote and how their graphs' nodes stand; the reply
        says per work ``ok`` (and ``size``, the bytes of the log the server has) or
        the error. Sending a report twice is harmless."""
        return self.call("POST", "/buckets/progress", safe=True,  # type: ignore[no-any-return]
                         json={"works": [r.wire() for r in reports]})  # fmt: skip

    def logs(self, id: str, attempt: int | None = None, after: int | None = None) -> Doc:
        """The log of an attempt of work ``id`` (default: its latest with a log), or only
        what came after ``after`` (an earlier reply's ``written``): ``{"id", "attempt",
        "attempts", "size", "skipped", "written", "text", "running", "file"}``."""
        params = {k: v for k, v in (("attempt", attempt), ("after", after)) if v is not None}
        return self.call("GET", f"/buckets/work/{id}/logs", safe=True,  # type: ignore[no-any-return]
                         params=params)  # fmt: skip

    def release(self, id: str, attempt: int, reason: str = "released") -> Doc:
        """Hand a running attempt back to the queue without using up an attempt."""
        return self._doc("POST", f"/buckets/work/{id}/release",
                         {"attempt": attempt, "reason": reason})  # fmt: skip

    def update(self, works: Sequence[Work | Doc]) -> None:
        """Send works' whole state (CHIME style): success or failure completes them."""
        self.call("PUT", "/buckets/work", safe=True,
                  json=[w.payload() if isinstance(w, Work) else w for w in works])  # fmt: skip

    def cancel(self, id: str) -> Doc:
        """Cancel a queued or running work."""
        return self._doc("POST", f"/buckets/work/{id}/cancel", None, safe=False)

    def retry(self, id: str, parameters: dict[str, Any] | None = None, *,
              from_failure: bool = False) -> Doc:  # fmt: skip
        """Queue a finished work again as a new, linked work (other parameters if given;
        a graph work reusing its nodes' outputs ``from_failure``); returns the new work."""
        body: dict[str, Any] = {"parameters": parameters} if parameters is not None else {}
        if from_failure:
            body["from_failure"] = True
        return self._doc("POST", f"/buckets/work/{id}/retry", body, safe=False)

    def change(self, id: str, *, priority: int | None = None, retries: int | None = None
               ) -> Doc:  # fmt: skip
        """Change priority and/or retries of a queued work."""
        body = {k: v for k, v in (("priority", priority), ("retries", retries)) if v is not None}
        return self._doc("PATCH", f"/buckets/work/{id}", body)

    def delete(self, ids: Sequence[str]) -> int:
        """Delete works from their bucket; return how many existed."""
        reply = self.call("POST", "/buckets/work/delete", safe=True, json={"ids": list(ids)})
        return int(reply["deleted"])

    def get(self, id: str, wait: float = 0.0) -> Doc:
        """A work by id, queued, running or finished; with ``wait`` (seconds, up to 30),
        the server answers once the work has finished, or as it is when the time is up."""
        if not wait:
            return self._doc("GET", f"/buckets/work/{id}", None)
        return self.call("GET", f"/buckets/work/{id}", safe=True,  # type: ignore[no-any-return]
                         params={"wait": min(wait, LONGEST_WAIT)}, held=wait)  # fmt: skip

    def announce(self, info: RunnerInfo) -> Doc:
        """Put this runner on record as it starts (``GET /buckets/runners`` lists it)."""
        return self._doc("POST", "/buckets/runners", info.wire())

    def goodbye(self, id: str) -> Doc:
        """Say that runner ``id`` has stopped."""
        return self._doc("POST", f"/buckets/runners/{quote(id, safe='')}/goodbye", None)

    def runners(self) -> list[Doc]:
        """Every runner on record, online ones first, with its state and works held."""
        return self.call("GET", "/buckets/runners")  # type: ignore[no-any-return]

    def why(self, id: str) -> Doc:
        """A work's status and, if queued, why it is not running (``reasons``)."""
        return self._doc("GET", f"/buckets/work/{id}/why", None)

    def wait(self, ids: Sequence[str], timeout: float | None = None) -> list[Doc]:
        """The works ``ids`` once each has finished, in order; after ``timeout`` seconds
        (None: no limit) those not finished yet as they are then. The server answers
        each as it finishes: no polling."""
        deadline = None if timeout is None else time.monotonic() + timeout
        done = []
        for id in ids:
            while True:
                left = LONGEST_WAIT if deadline is None else deadline - time.monotonic()
                doc = self.get(id, wait=max(0.0, min(left, LONGEST_WAIT)))
                if doc["status"] in TERMINAL or (deadline and time.monotonic() >= deadline):
                    break
            done.append(doc)
        return done

    def works(self, pipelines: Sequence[str] | None = None,
              statuses: Sequence[str] | None = None, *, skip: int = 0, limit: int = 100
              ) -> list[Doc]:  # fmt: skip
        """Works in the buckets, newest first."""
        params = {"pipeline": list(pipelines or []), "status": list(statuses or []),
                  "skip": skip, "limit": limit}  # fmt: skip
        return self.call("GET", "/buckets/work", safe=True,  # type: ignore[no-any-return]
                         params=params)  # fmt: skip

    def counts(self) -> dict[str, dict[str, int]]:
        """Counts per pipeline and status."""
        return self.call("GET", "/buckets/counts", safe=True)  # type: ignore[no-any-return]

    def pipelines(self) -> list[Doc]:
        """Every known pipeline with its settings and counts."""
        return self.call("GET", "/buckets/pipelines", safe=True)  # type: ignore[no-any-return]

    def settings(self, pipeline: str) -> PipelineSettings:
        """A pipeline's settings."""
        raw = self.call("GET", f"/buckets/pipelines/{pipeline}", safe=True)
        return PipelineSettings.model_validate(raw)

    def configure(self, pipeline: str, changes: dict[str, Any]) -> PipelineSettings:
        """Change a pipeline's ``defaults``, ``paused`` and/or ``rules``."""
        reply = self.call("PATCH", f"/buckets/pipelines/{pipeline}", safe=True, json=changes)
        return PipelineSettings.model_validate(reply)

    def bulk(self, request: Bulk) -> BulkReply:
        """Cancel or change every bucket work ``request.filter`` matches. Without
        ``confirm`` nothing is done and the reply's ``matched`` says how many match;
        with it, nothing is done if more than ``confirm`` match."""
        reply = self.call("POST", "/buckets/bulk", json=request.wire())
        return BulkReply.model_validate(reply)

    def expire(self) -> int:
        """Expire lost leases now (the server also does so by itself)."""
        return int(self.call("GET", "/buckets/audit/expired", safe=True))

    # -- results -------------------------------------------------------------------------

    def search(self, search: Search) -> tuple[list[Doc], int]:
        """One page of the finished works ``search`` matches, and how many match."""
        page = self.call("GET", "/results/works", safe=True, params=search.params())
        return page["items"], int(page["total"])

    def result(self, id: str) -> Doc:
        """A finished work by id."""
        return self._doc("GET", f"/results/works/{id}", None)

    def retry_matching(self, search: Search, confirm: int | None = None, *,
                       from_failure: bool = False) -> BulkReply:  # fmt: skip
        """Queue again every finished work ``search`` matches, each as a new linked
        work (graph works ``from_failure`` if asked); ``confirm`` as for ``bulk``."""
        body: dict[str, Any] = {"confirm": confirm}
        if from_failure:
            body["from_failure"] = True
        reply = self.call("POST", "/results/retry", params=search.params(), json=body)
        return BulkReply.model_validate(reply)

    # -- pipelines -----------------------------------------------------------------------

    def deploy_pipeline(self, config: dict[str, Any]) -> Doc:
        """Deploy a v2 pipeline configuration (a parsed YAML document): the new run."""
        return self._doc("POST", "/pipelines", config, safe=False)

    def pipeline_runs(self, *, status: Sequence[str] | None = None, name: str | None = None,
                      limit: int = 100) -> list[Doc]:  # fmt: skip
        """Pipeline runs, newest first."""
        params: dict[str, Any] = {"limit": limit, "status": list(status or [])}
        if name is not None:
            params["name"] = name
        return self.call("GET", "/pipelines", safe=True, params=params)  # type: ignore[no-any-return]

    def pipeline_run(self, id: str) -> Doc:
        return self._doc("GET", f"/pipelines/{id}", None)

    def cancel_pipeline(self, id: str) -> Doc:
        return self._doc("POST", f"/pipelines/{id}/cancel", None, safe=False)

    def retry_pipeline(self, id: str) -> Doc:
        return self._doc("POST", f"/pipelines/{id}/retry", None, safe=False)

    def schedules(self) -> list[Doc]:
        """Schedules, newest first."""
        return self.call("GET", "/schedules", safe=True)  # type: ignore[no-any-return]

    def schedule(self, id: str, action: str | None = None) -> Doc:
        """One schedule; with ``action`` (``pause``, ``resume``), after it."""
        if action is None:
            return self._doc("GET", f"/schedules/{id}", None)
        return self._doc("POST", f"/schedules/{id}/{action}", None)

    def remove_schedule(self, id: str) -> int:
        return int(self.call("DELETE", f"/schedules/{id}", safe=True)["removed"])

    def notifications(self, *, work: str | None = None, states: Sequence[str] = (),
                      target: str | None = None, limit: int = 100) -> list[Doc]:  # fmt: skip
        """The outbox's messages, newest first (``GET /notifications``)."""
        params = {"work": work, "state": list(states), "target": target, "limit": limit}
        return self.call("GET", "/notifications", safe=True,
                         params={k: v for k, v in params.items() if v is not None})  # type: ignore[no-any-return]

    def notification_targets(self) -> Doc:
        """The targets configured on the server: names, kinds, hosts."""
        return self._doc("GET", "/notifications/targets", None)

    def alerts(self) -> list[Doc]:
        """The pipelines' alert rules' states."""
        return self.call("GET", "/notifications/alerts", safe=True)  # type: ignore[no-any-return]

    def test_notification(self, target: str, message: str | None = None) -> Doc:
        """Send a test message to ``target`` now; how it went."""
        body = {"target": target, **({"message": message} if message else {})}
        return self._doc("POST", "/notifications/test", body, safe=False)

    def _doc(self, method: str, path: str, body: dict[str, Any] | None, safe: bool = True
             ) -> Doc:  # fmt: skip
        if body is None:
            return self.call(method, path, safe=safe)  # type: ignore[no-any-return]
        return self.call(method, path, safe=safe, json=body)  # type: ignore[no-any-return]


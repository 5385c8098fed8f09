"""The Python client: the bucket and results verbs over HTTP.

Every call has a timeout. Calls that are safe to repeat (reads, deposits with
client-chosen ids, heartbeats, completions, which the server records once) are retried
with backoff on connection errors and 503; a withdraw is retried only when the request
never reached the server. Errors come back as the same exception classes the server
raised (``workflow.errors``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit

import httpx
import orjson
import urllib3
from pydantic import BaseModel
from tenacity import (
    Retrying,
    retry_if_exception,
    stop_after_delay,
    wait_random_exponential,
)

from workflow import errors
from workflow.settings import ClientSettings
from workflow.transport import transport_for
from workflow.wire import (
    Bulk,
    BulkReply,
    Doc,
    HeldAttempt,
    Outcome,
    PipelineSettings,
    Search,
    Withdraw,
    deposit_payloads,
)
from workflow.work import Work, default_user

_JSON_BODY = {"Content-Type": "application/json"}


def _retryable(exc: BaseException) -> bool:
    if isinstance(exc, httpx.TransportError):
        return True
    return isinstance(exc, errors.WorkflowError) and exc.status_code == 503


def _not_sent(exc: BaseException) -> bool:
    return isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout)


def _decoded(status: int, content: bytes) -> Any:
    """A reply's JSON body; for an error status, the error the server named, raised."""
    if 200 <= status < 300:
        return orjson.loads(content) if content else None
    reason = httpx.codes.get_reason_phrase(status)
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
    """

    def __init__(self, url: str | None = None, token: str | None = None,
                 timeout: float | None = None, retry_for: float = 30.0):  # fmt: skip
        env = ClientSettings.from_env()
        self.url = (url or env.url).rstrip("/")
        token = token if token is not None else env.token
        # Operator actions are recorded in a work's history with this name.
        headers = {"X-Workflow-User": default_user()}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        self.retry_for = retry_for
        seconds = timeout if timeout is not None else env.timeout
        self._fast = transport_for(self.url)
        self._http = httpx.Client(base_url=self.url, headers=headers, timeout=seconds,
                                  transport=self._fast)  # fmt: skip
        # The runners' calls (POST with a JSON body) skip httpx's own objects when the
        # transport allows: its share of a call's cost is larger than the request's.
        parts = urlsplit(self.url)
        self._where = (parts.hostname or "", parts.port, parts.path)
        self._post_headers = {**headers, **_JSON_BODY}
        self._timeout = urllib3.Timeout(connect=seconds, read=seconds)

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

    def call(self, method: str, path: str, *, safe: bool = False, **kwargs: Any) -> Any:
        """One HTTP call; returns the decoded JSON body.

        Args:
            method: HTTP method.
            path: Path below the server URL.
            safe: The call may be repeated (retried on connection errors and 503).
            **kwargs: Passed to ``httpx.Client.request`` (json, params).

        Raises:
            WorkflowError: the subclass the server named, or ``ServerUnreachable``.
        """
        again = _retryable if safe else _not_sent
        try:  # once, without building the retry machinery: nearly every call succeeds
            return self._once(method, path, **kwargs)
        except Exception as exc:
            if not again(exc):
                if isinstance(exc, httpx.TransportError):
                    raise errors.ServerUnreachable(f"{self.url}: {exc}") from exc
                raise
        retrying = Retrying(
            retry=retry_if_exception(again),
            stop=stop_after_delay(self.retry_for),
            wait=wait_random_exponential(multiplier=0.1, max=2.0),
            reraise=True,
        )
        try:
            for attempt in retrying:
                with attempt:
                    return self._once(method, path, **kwargs)
        except httpx.TransportError as exc:
            raise errors.ServerUnreachable(f"{self.url}: {exc}") from exc
        raise AssertionError("unreachable")  # pragma: no cover

    def _once(self, method: str, path: str, **kwargs: Any) -> Any:
        if "json" in kwargs:  # orjson: several times faster than the json module
            content = orjson.dumps(kwargs.pop("json"), option=orjson.OPT_NON_STR_KEYS)
            if method == "POST" and not kwargs and self._fast is not None:
                host, port, prefix = self._where
                return _decoded(*self._fast.post(host, port, prefix + path, content,
                                                 self._post_headers, self._timeout))  # fmt: skip
            kwargs["content"] = content
            kwargs["headers"] = _JSON_BODY
        reply = self._http.request(method, path, **kwargs)
        return _decoded(reply.status_code, reply.content)

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
        """Claim up to ``want.limit`` works."""
        return self.call("POST", "/buckets/withdraw", json=_sent(want))  # type: ignore[no-any-return]

    def exchange(self, outcomes: Sequence[Outcome], want: Withdraw
                 ) -> tuple[list[Doc], list[Doc]]:  # fmt: skip
        """Report ``outcomes`` (as ``complete_many``) and claim (as ``withdraw``) in one
        request. Like a withdraw, it is repeated only when it never reached the server;
        the outcomes are then not recorded either.

        Returns:
            The reply per outcome, in order, and the claimed works.
        """
        body = {"complete": [o.wire() for o in outcomes], "withdraw": _sent(want)}
        reply = self.call("POST", "/buckets/exchange", json=body)
        return reply["completed"], reply["works"]

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

    def retry(self, id: str, parameters: dict[str, Any] | None = None) -> Doc:
        """Queue a finished work again as a new, linked work (other parameters if given);
        returns the new work."""
        body = {"parameters": parameters} if parameters is not None else {}
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

    def get(self, id: str) -> Doc:
        """A work by id, queued, running or finished."""
        return self._doc("GET", f"/buckets/work/{id}", None)

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
        """Change a pipeline's ``defaults`` and/or ``paused``."""
        reply = self.call("PATCH", f"/buckets/pipelines/{pipeline}", safe=True, json=changes)
        return PipelineSettings.model_validate(reply)

    def bulk(self, bulk: Bulk) -> BulkReply:
        """Cancel or change every bucket work ``bulk.filter`` matches. Without
        ``confirm`` nothing is done and the reply's ``matched`` says how many match;
        with it, nothing is done if more than ``confirm`` match."""
        reply = self.call("POST", "/buckets/bulk", json=_sent(bulk))
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

    def retry_matching(self, search: Search, confirm: int | None = None) -> BulkReply:
        """Queue again every finished work ``search`` matches, each as a new linked
        work; ``confirm`` as for ``bulk``."""
        reply = self.call("POST", "/results/retry", params=search.params(),
                          json={"confirm": confirm})  # fmt: skip
        return BulkReply.model_validate(reply)

    def _doc(self, method: str, path: str, body: dict[str, Any] | None, safe: bool = True
             ) -> Doc:  # fmt: skip
        sent = {} if body is None else {"json": body}
        return self.call(method, path, safe=safe, **sent)  # type: ignore[no-any-return]


def _sent(model: BaseModel) -> Doc:
    """A request model as its JSON body, without the fields left unset."""
    return model.model_dump(mode="json", exclude_none=True)

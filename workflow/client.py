"""The Python client: the bucket and results verbs over HTTP.

Every call has a timeout. Calls that are safe to repeat (reads, deposits with
client-chosen ids, heartbeats, completions, which the server records once) are retried
with backoff on connection errors and 503; a withdraw is retried only when the request
never reached the server. Errors come back as the same exception classes the server
raised (``workflow.errors``).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import httpx
import orjson
import urllib3
from tenacity import (
    Retrying,
    retry_if_exception,
    stop_after_delay,
    wait_random_exponential,
)

from workflow import errors
from workflow.buckets.settings import DEFAULTABLE, PipelineSettings
from workflow.settings import ClientSettings
from workflow.transport import transport_for
from workflow.work import Work, default_user, new_id

_JSON_BODY = {"Content-Type": "application/json"}


def _retryable(exc: BaseException) -> bool:
    if isinstance(exc, httpx.TransportError):
        return True
    return isinstance(exc, errors.WorkflowError) and exc.status_code == 503


def _not_sent(exc: BaseException) -> bool:
    return isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout)


def deposit_payload(work: Work) -> dict[str, Any]:
    """What a deposit sends: every field set, the id, and no unset pipeline defaults."""
    payload = work.payload()
    for name in DEFAULTABLE:
        if name not in work.model_fields_set:
            payload.pop(name)
    return payload


def deposit_payloads(works: list[Work]) -> list[dict[str, Any]]:
    """Give each work without an id one (so a repeated deposit is harmless) and return
    what depositing them sends."""
    for work in works:
        if work.id is None:
            work.id = new_id()
    return [deposit_payload(work) for work in works]


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


def outcome_items(outcomes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Outcomes as a batch completion sends them: without the fields left unset."""
    return [{k: v for k, v in item.items() if v is not None} for item in outcomes]


def split_pipelines(pipelines: str | list[str] | None) -> list[str] | None:
    """``"a,b"`` or ``["a", "b"]`` as a list (None: every pipeline)."""
    if isinstance(pipelines, str):
        return [p for p in pipelines.split(",") if p]
    return pipelines


def _withdraw_body(pipelines: str | list[str] | None, limit: int,
                   filters: dict[str, Any]) -> dict[str, Any]:  # fmt: skip
    return {"pipelines": split_pipelines(pipelines), "limit": limit,
            **{k: v for k, v in filters.items() if v is not None}}  # fmt: skip


class Client:
    """A connection to a workflow server.

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

    def deposit(self, works: list[Work]) -> list[str]:
        """Deposit works; return their ids. Ids are chosen here, so retries are safe."""
        body = deposit_payloads(works)
        ids: list[str] = self.call("POST", "/buckets/work", safe=True, json=body,
                                   params={"return_ids": "true"})  # fmt: skip
        for work in works:
            work.status = "queued"
        return ids

    def withdraw(self, pipelines: str | list[str] | None = None, *, limit: int = 1,
                 **filters: Any) -> list[Work]:  # fmt: skip
        """Claim up to ``limit`` works (filters: site, tags, event, user, priority,
        parent, lease, runner, host)."""
        return [Work.model_validate(d) for d in self.claim(pipelines, limit=limit, **filters)]

    def claim(self, pipelines: str | list[str] | None = None, *, limit: int = 1,
              **filters: Any) -> list[dict[str, Any]]:  # fmt: skip
        """``withdraw``, with the works as the plain dicts the server sent."""
        body = _withdraw_body(pipelines, limit, filters)
        return self.call("POST", "/buckets/withdraw", json=body)  # type: ignore[no-any-return]

    def exchange(self, outcomes: list[dict[str, Any]], pipelines: str | list[str] | None = None,
                 *, limit: int = 1, **filters: Any
                 ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:  # fmt: skip
        """Report ``outcomes`` (as ``complete_many``) and claim up to ``limit`` works (as
        ``claim``) in one request. Like a withdraw, it is repeated only when it never
        reached the server; the outcomes are then not recorded either.

        Returns:
            The reply per outcome, in order, and the claimed works.
        """
        body = {"complete": outcome_items(outcomes),
                "withdraw": _withdraw_body(pipelines, limit, filters)}
        reply = self.call("POST", "/buckets/exchange", json=body)
        return reply["completed"], reply["works"]

    def heartbeat(self, id: str, attempt: int, lease: float | None = None) -> Work:
        """Extend the lease of a running attempt."""
        body = {"attempt": attempt, "lease": lease}
        return self._work("POST", f"/buckets/work/{id}/heartbeat", body)

    def heartbeat_many(self, works: list[dict[str, Any]], lease: float | None = None
                       ) -> list[dict[str, Any]]:  # fmt: skip
        """Extend the leases of several running attempts (each ``{"id", "attempt"}``) in
        one call; the reply says per work ``ok`` (and the new ``expires``) or the error."""
        body = {"works": [{"id": w["id"], "attempt": w["attempt"]} for w in works],
                "lease": lease}  # fmt: skip
        return self.call("POST", "/buckets/heartbeat", safe=True,  # type: ignore[no-any-return]
                         json=body)  # fmt: skip

    def complete(self, id: str, attempt: int, status: str, **outcome: Any) -> Work:
        """Report the outcome of a running attempt (results, products, plots, error,
        started, stop, retry_delay)."""
        body = {"attempt": attempt, "status": status,
                **{k: v for k, v in outcome.items() if v is not None}}  # fmt: skip
        return self._work("POST", f"/buckets/work/{id}/complete", body)

    def complete_many(self, outcomes: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Report several outcomes (each with ``id``, ``attempt``, ``status``, ...) in one
        call; the reply says per work ``ok`` or the error, in the order sent."""
        return self.call("POST", "/buckets/complete", safe=True,  # type: ignore[no-any-return]
                         json={"works": outcome_items(outcomes)})  # fmt: skip

    def release(self, id: str, attempt: int, reason: str = "released") -> Work:
        """Hand a running attempt back to the queue without using up an attempt."""
        return self._work("POST", f"/buckets/work/{id}/release",
                          {"attempt": attempt, "reason": reason})  # fmt: skip

    def update(self, work: Work) -> Work:
        """Send a work's whole state (CHIME style): success or failure completes it."""
        self.call("PUT", "/buckets/work", safe=True, json=[work.payload()])
        assert work.id is not None
        return self.get(work.id)

    def cancel(self, id: str) -> Work:
        """Cancel a queued or running work."""
        return self._work("POST", f"/buckets/work/{id}/cancel", None, safe=False)

    def retry(self, id: str, parameters: dict[str, Any] | None = None) -> Work:
        """Queue a finished work again as a new, linked work (other parameters if given);
        returns the new work."""
        body = {"parameters": parameters} if parameters is not None else {}
        return self._work("POST", f"/buckets/work/{id}/retry", body, safe=False)

    def change(self, id: str, *, priority: int | None = None, retries: int | None = None
               ) -> Work:  # fmt: skip
        """Change priority and/or retries of a queued work."""
        body = {k: v for k, v in (("priority", priority), ("retries", retries)) if v is not None}
        return self._work("PATCH", f"/buckets/work/{id}", body)

    def delete(self, ids: list[str]) -> int:
        """Delete works from their bucket; return how many existed."""
        reply = self.call("POST", "/buckets/work/delete", safe=True, json={"ids": ids})
        return int(reply["deleted"])

    def get(self, id: str) -> Work:
        """A work by id, queued, running or finished."""
        return Work.model_validate(self.call("GET", f"/buckets/work/{id}", safe=True))

    def counts(self) -> dict[str, dict[str, int]]:
        """Counts per pipeline and status."""
        return self.call("GET", "/buckets/counts", safe=True)  # type: ignore[no-any-return]

    def pipelines(self) -> list[dict[str, Any]]:
        """Every known pipeline with its settings and counts."""
        return self.call("GET", "/buckets/pipelines", safe=True)  # type: ignore[no-any-return]

    def bulk(self, action: str, *, confirm: int | None = None, priority: int | None = None,
             retries: int | None = None, **filter: Any) -> dict[str, Any]:  # fmt: skip
        """Cancel (``action="cancel"``) or change priority and retries (``"change"``) of
        every bucket work matching ``filter`` (pipeline, status, site, user, tags,
        priority). Without ``confirm`` nothing is done and the reply's ``matched`` says
        how many match; with it, nothing is done if more than ``confirm`` match."""
        body = {"action": action, "confirm": confirm, "priority": priority, "retries": retries,
                "filter": {k: v for k, v in filter.items() if v is not None}}
        return self.call("POST", "/buckets/bulk",  # type: ignore[no-any-return]
                         json={k: v for k, v in body.items() if v is not None})  # fmt: skip

    def retry_matching(self, *, confirm: int | None = None, **search: Any) -> dict[str, Any]:
        """Queue again every finished work ``search`` matches (the parameters of
        ``search()``), each as a new linked work; ``confirm`` as for ``bulk``."""
        clean = {k: v for k, v in search.items() if v is not None and v != []}
        return self.call("POST", "/results/retry", params=clean,  # type: ignore[no-any-return]
                         json={"confirm": confirm})  # fmt: skip

    def configure(self, pipeline: str, changes: dict[str, Any]) -> PipelineSettings:
        """Change a pipeline's ``defaults`` and/or ``paused``."""
        reply = self.call("PATCH", f"/buckets/pipelines/{pipeline}", safe=True, json=changes)
        return PipelineSettings.model_validate(reply)

    def expire(self) -> int:
        """Expire lost leases now (the server also does so by itself)."""
        return int(self.call("GET", "/buckets/audit/expired", safe=True))

    # -- results -------------------------------------------------------------------------

    def search(self, **params: Any) -> tuple[list[Work], int]:
        """Search finished works: pipeline, status, tag, event, site, user, since, until,
        text, sort, order, skip, limit. Returns one page and the number of matches."""
        clean = {k: v for k, v in params.items() if v is not None and v != []}
        page = self.call("GET", "/results/works", safe=True, params=clean)
        return [Work.model_validate(d) for d in page["items"]], int(page["total"])

    def result(self, id: str) -> Work:
        """A finished work by id."""
        return Work.model_validate(self.call("GET", f"/results/works/{id}", safe=True))

    def _work(self, method: str, path: str, body: dict[str, Any] | None, safe: bool = True
              ) -> Work:  # fmt: skip
        return Work.model_validate(self.call(method, path, safe=safe, json=body))

"""Pipeline runs: a deployed configuration's steps deposited as works, stage by stage,
by the server.

A run records, per step: its status (``created``, ``running``, ``success``,
``failure``, ``skipped``, ``cancelled``), the works it deposited, when it planned them
and whether they are all deposited, and the results the next steps read. ``advance``
moves a run on: when every work of its current stage has finished, each step of the
stage gets its status (``success`` when the share of its works that succeeded reaches
its ``success_threshold``), and the next stage starts: each of its steps is skipped
when its ``if:`` does not hold (``success``, the default: no step failed so far;
``failure``: one did; ``always``; or ``${{ pipeline.STEP.status == '...' }}``), else its
works are planned and deposited. The run ends ``success``, or ``failure`` when a step
failed, after its last stage.

Crash-safe: a step's works are planned into the run record (a compare-and-set) before
any is deposited, with ids made of the run's id, the step's number, its try and the
combination's number, and a creation time fixed in the plan; depositing again the same
works is harmless (a deposit is idempotent), so a server killed between stages, or in
the middle of a stage's deposit, neither duplicates nor loses a work: the next
``advance`` deposits what the plan says, then marks the step deposited.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from workflow.errors import InvalidWork, TransitionConflict, WorkflowError
from workflow.pipelines.config import PipelineConfig, combinations, parse_config, substitute
from workflow.store.base import Doc, document
from workflow.work import new_id, parse_work

if TYPE_CHECKING:
    from workflow.buckets import Buckets

#: The kind of the run records in the store's documents.
RUNS = "pipeline_runs"
ACTIVE = ("running",)
#: Steps that ended.
ENDED = ("success", "failure", "skipped", "cancelled")
#: Compare-and-set tries of one change of a run.
TRIES = 20


class Pipelines:
    """Pipeline runs over the bucket verbs (``buckets``)."""

    def __init__(self, buckets: Buckets, clock: Callable[[], float] = time.time):
        from workflow.pipelines.schedules import Schedules

        self.buckets = buckets
        self.store = buckets.store
        self.clock = clock
        self.schedules = Schedules(self)

    # -- the verbs ------------------------------------------------------------------------

    def deploy(self, raw: Any, *, by: str | None = None) -> Doc:
        """Deploy the configuration ``raw`` (a parsed YAML document): a configuration
        with a ``schedule`` makes a schedule (``workflow.pipelines.schedules``), which
        spawns its runs; any other starts a run, its first stage deposited.

        Raises:
            InvalidWork: not a valid v2 configuration (naming the field).
        """
        config = parse_config(raw)
        if config.schedule is not None:
            return self.schedules.create(config, by=by)
        return self.start(raw, by=by)

    def start(self, raw: Any, *, id: str | None = None, by: str | None = None) -> Doc:
        """Start a run (of id ``id``, else a new one) of the configuration ``raw``.

        Raises:
            InvalidWork: not a valid v2 configuration (naming the field).
            TransitionConflict: a run ``id`` exists already.
        """
        config = parse_config(raw)
        now = self.clock()
        run: Doc = {
            "id": id or new_id(), "version": 1, "kind": "run", "name": config.name,
            "status": "running", "current_stage": None, "creation": now, "start": now,
            "stop": None, "user": by,
            "config": config.model_dump(mode="json", by_alias=True, exclude_none=True),
            "steps": [_step(step.name, step.stage) for step in config.pipeline.steps],
            "history": [{"at": now, "event": "deployed", "by": by}]}  # fmt: skip
        if not self.store.documents.put(RUNS, run, None):
            raise TransitionConflict(f"a run {run['id']} exists already", field="id")
        return self.advance(run["id"])

    def runs(self, *, status: list[str] | None = None, name: str | None = None,
             limit: int = 100) -> list[Doc]:  # fmt: skip
        """Runs, newest first."""
        return self.store.documents.find(RUNS, status=status, name=name, limit=limit)

    def run(self, id: str) -> Doc:
        """The run ``id``.

        Raises:
            NotFound: no such run.
        """
        return document(self.store.documents, RUNS, id, "pipeline run")

    def remove(self, ids: list[str]) -> int:
        """Forget these runs (their works stay); how many there were."""
        return self.store.documents.delete(RUNS, ids)

    def cancel(self, id: str, *, by: str | None = None) -> Doc:
        """Cancel a running run: its queued and running works are cancelled, its steps
        that have not ended too.

        Raises:
            NotFound: no such run. TransitionConflict: it has ended already.
        """
        def cancelled(run: Doc) -> Doc:
            if run["status"] not in ACTIVE:
                raise TransitionConflict(f"pipeline run {id} is {run['status']}; only a "
                                         "running one is cancelled", field="status", id=id)
            for step in run["steps"]:
                if step["status"] not in ENDED:
                    step["status"], step["reason"] = "cancelled", "the run was cancelled"
            return {**run, "status": "cancelled", "stop": self.clock(), "history": [
                *run["history"], {"at": self.clock(), "event": "cancelled", "by": by}]}

        run = self._change(id, cancelled)
        for step in run["steps"]:
            for work in step["works"]:
                try:
                    self.buckets.cancel(work, by=by)
                except WorkflowError:
                    continue  # it finished meanwhile, or was never deposited
        return run

    def retry(self, id: str, *, by: str | None = None) -> Doc:
        """Run the failed steps of an ended run again (new works), and what follows them.

        Raises:
            NotFound: no such run. TransitionConflict: it runs, or no step failed.
        """
        def again(run: Doc) -> Doc:
            failed = [s for s in run["steps"] if s["status"] in ("failure", "cancelled")]
            if run["status"] in ACTIVE or not failed:
                raise TransitionConflict(f"pipeline run {id} is {run['status']} with no failed "
                                         "step to retry", field="status", id=id)  # fmt: skip
            first = min(s["stage"] for s in failed)
            for step in run["steps"]:
                if step in failed or step["stage"] > first:
                    step.update(_step(step["name"], step["stage"], step["try"] + 1))
            return {**run, "status": "running", "stop": None, "current_stage": None,
                    "history": [*run["history"], {"at": self.clock(), "event": "retried",
                                                  "by": by, "stage": first}]}  # fmt: skip

        self._change(id, again)
        return self.advance(id)

    # -- moving a run on ------------------------------------------------------------------

    def advance_all(self) -> int:
        """Move every running run on; return how many changed."""
        moved = 0
        for run in self.runs(status=list(ACTIVE), limit=10_000):
            try:
                if self.advance(run["id"], run)["version"] != run["version"]:
                    moved += 1
            except WorkflowError:
                continue  # another server moved it, or the store is away: next time
        return moved

    def advance(self, id: str, read: Doc | None = None) -> Doc:
        """Move the run on as far as it goes now; the run (``read``: the run as just
        read, which saves reading it again first)."""
        while True:
            run, read = read or self.run(id), None
            if run["status"] not in ACTIVE:
                return run
            pending = [n for n, s in enumerate(run["steps"]) if s["planned"] and not s["deposited"]]
            if pending:
                self._deposit(run, pending)
                continue
            current = [s for s in run["steps"] if s["status"] == "running"]
            if current:
                if not self._settle(run):
                    return run
                continue
            if not self._start_next(run):
                return self.run(id)

    def _deposit(self, run: Doc, pending: list[int]) -> None:
        """Deposit the planned works of these steps (again, harmlessly, after a crash)."""
        config = PipelineConfig.model_validate(run["config"])
        for n in pending:
            works = self._payloads(run, config, n)
            self.buckets.deposit(works)

        def deposited(now: Doc) -> Doc:
            for n in pending:
                now["steps"][n]["deposited"] = True
            return now

        self._change(run["id"], deposited, expect=run["version"])

    def _settle(self, run: Doc) -> bool:
        """Give the running steps their status once all their works finished; False
        while some still run."""
        running = [s for s in run["steps"] if s["status"] == "running"]
        ids = [w for s in running for w in s["works"]]
        if ids and self.store.work.find({"id": {"$in": ids}}, limit=1):
            return False
        done = {d["id"]: d for d in self.store.results.find({"id": {"$in": ids}})} if ids else {}

        def settled(now: Doc) -> Doc:
            for step in now["steps"]:
                if step["status"] != "running":
                    continue
                finished = [done[w] for w in step["works"] if w in done]
                good = [d for d in finished if d["status"] == "success"]
                share = len(good) / len(step["works"]) if step["works"] else 1.0
                step["status"] = "success" if share >= step["threshold"] else "failure"
                step["succeeded"] = len(good)
                step["results"] = good[0].get("results") if good else None
            return now

        self._change(run["id"], settled, expect=run["version"])
        return True

    def _start_next(self, run: Doc) -> bool:
        """Plan the next stage's steps (or end the run); False when it ended."""
        later = sorted({s["stage"] for s in run["steps"] if s["status"] == "created"})
        if not later:
            failed = any(s["status"] in ("failure", "cancelled") for s in run["steps"])
            self._change(run["id"], lambda now: {
                **now, "status": "failure" if failed else "success", "stop": self.clock(),
                "history": [*now["history"], {"at": self.clock(), "event": "ended"}]},
                expect=run["version"])  # fmt: skip
            return False
        stage = later[0]
        config = PipelineConfig.model_validate(run["config"])
        now = self.clock()

        def planned(current: Doc) -> Doc:
            context = _context(current)
            failed = any(s["status"] in ("failure", "cancelled") for s in current["steps"])
            for n, step in enumerate(current["steps"]):
                if step["stage"] != stage or step["status"] != "created":
                    continue
                spec = config.pipeline.steps[n]
                if not _holds(spec.if_, failed, context):
                    step["status"], step["reason"] = "skipped", f"if: {spec.if_} does not hold"
                    continue
                step.update(status="running", planned=True, started=now,
                            threshold=spec.success_threshold)  # fmt: skip
                try:
                    step["works"] = [w["id"] for w in self._payloads(current, config, n)]
                except InvalidWork as exc:
                    step.update(status="failure", reason=exc.message, works=[], deposited=True)
            return {**current, "current_stage": stage}

        self._change(run["id"], planned, expect=run["version"])
        return True

    def _payloads(self, run: Doc, config: PipelineConfig, n: int) -> list[Doc]:
        """The works step ``n`` deposits, the same every time they are asked for."""
        spec, step = config.pipeline.steps[n], run["steps"][n]
        context = _context(run)
        matrix = {**(config.pipeline.matrix or {}), **(spec.matrix or {})}
        works = []
        for m, combo in enumerate(combinations(matrix, context)):
            work = {**config.defaults, **substitute(spec.work, combo, context)}
            work["pipeline"] = work.get("pipeline") or spec.name.replace("_", "-")
            work["config"] = {**(config.defaults.get("config") or {}),
                              **(work.get("config") or {}), "parent": run["id"]}  # fmt: skip
            work.update(id=f"{run['id']}-{n}-{step['try']}-{m}", creation=step["started"])
            parse_work(work, f"pipeline.steps.{n}.work")  # a bad one fails its step, named
            works.append(work)
        return works

    def _change(self, id: str, change: Callable[[Doc], Doc], expect: int | None = None) -> Doc:
        """Apply ``change`` to the run by compare-and-set (given ``expect``, only to that
        version: a run another server moved meanwhile is left to the next advance)."""
        for _ in range(TRIES):
            run = self.run(id)
            if expect is not None and run["version"] != expect:
                return run
            new = change({**run, "steps": [dict(s) for s in run["steps"]]})
            new["version"] = run["version"] + 1
            if self.store.documents.put(RUNS, new, run["version"]):
                return new
            if expect is not None:
                return self.run(id)
        raise TransitionConflict(f"pipeline run {id} kept changing; try again", field="id", id=id)


def _step(name: str, stage: int, attempt: int = 1) -> Doc:
    return {"name": name, "stage": stage, "status": "created", "try": attempt, "works": [],
            "planned": False, "deposited": False, "started": None, "threshold": 1.0,
            "succeeded": 0, "results": None, "reason": None}  # fmt: skip


def _context(run: Doc) -> dict[str, Doc]:
    """What the expressions of later steps read: each step's status and results."""
    return {s["name"]: {"status": s["status"], "results": s["results"]} for s in run["steps"]}


def _holds(condition: str, failed: bool, context: dict[str, Doc]) -> bool:
    if condition == "always":
        return True
    if condition == "success":
        return not failed
    if condition == "failure":
        return failed
    return bool(substitute(condition, {}, context))

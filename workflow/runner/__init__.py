"""Runners: ``workflow run`` withdraws work, runs it in isolation, reports the outcome.

The runner itself (``Runner``, ``RunnerOptions``) is imported when asked for, so that
work processes, which import ``workflow.runner.child``, stay light.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from workflow.runner.outcome import Outcome, Retry

if TYPE_CHECKING:
    from workflow.runner.loop import Runner, RunnerOptions

__all__ = ["Outcome", "Retry", "Runner", "RunnerOptions"]


def __getattr__(name: str) -> object:
    if name in ("Runner", "RunnerOptions"):
        from workflow.runner import loop

        return getattr(loop, name)
    raise AttributeError(name)

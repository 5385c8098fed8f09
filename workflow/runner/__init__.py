"""Runners: ``workflow run`` withdraws work, runs it in isolation, reports the outcome.

The runner itself (``Runner``, ``RunnerOptions``) is imported when asked for, so that
work processes, which import ``workflow.runner.child``, stay light.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from workflow.runner.outcome import Retry
from workflow.wire import Outcome

if TYPE_CHECKING:
    from workflow.runner.loop import Runner
    from workflow.runner.options import RunnerOptions

__all__ = ["Outcome", "Retry", "Runner", "RunnerOptions"]


def __getattr__(name: str) -> object:
    if name == "Runner":
        from workflow.runner.loop import Runner

        return Runner
    if name == "RunnerOptions":
        from workflow.runner.options import RunnerOptions

        return RunnerOptions
    raise AttributeError(name)

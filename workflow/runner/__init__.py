"""Runners: ``workflow run`` withdraws work, runs it in isolation, reports the outcome."""

from workflow.runner.loop import Runner, RunnerOptions
from workflow.runner.outcome import Outcome, Retry

__all__ = ["Outcome", "Retry", "Runner", "RunnerOptions"]

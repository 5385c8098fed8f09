"""workflow: bookkeeping for automated data processing at large instruments.

``Work(pipeline=..., parameters=...).deposit()`` queues work; ``workflow serve`` runs the
bucket and results service; ``workflow run`` executes work.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

__version__ = "0.1.0"

from workflow.errors import WorkflowError  # noqa: E402

if TYPE_CHECKING:
    from workflow.client import Client
    from workflow.runner.outcome import Retry
    from workflow.work import Work

__all__ = ["Client", "Retry", "Work", "WorkflowError", "__version__"]


def __getattr__(name: str) -> object:
    # Imported when asked for: a runner's work processes start from ``workflow`` and
    # must not pay for pydantic (Work) or the HTTP client (Client) unless they use them.
    if name == "Work":
        from workflow.work import Work

        return Work
    if name == "Client":
        from workflow.client import Client

        return Client
    if name == "Retry":
        from workflow.runner.outcome import Retry

        return Retry
    raise AttributeError(name)

"""workflow: bookkeeping for automated data processing at large instruments.

``Work(pipeline=..., parameters=...).deposit()`` queues work; ``workflow serve`` runs the
bucket and results service; ``workflow run`` executes work.
"""

from __future__ import annotations

__version__ = "0.1.0"

from workflow.errors import WorkflowError  # noqa: E402
from workflow.work import Work  # noqa: E402

__all__ = ["Client", "Retry", "Work", "WorkflowError", "__version__"]


def __getattr__(name: str) -> object:
    # The HTTP client pulls in httpx and tenacity; import it only when asked for.
    if name == "Client":
        from workflow.client import Client

        return Client
    if name == "Retry":
        from workflow.runner.outcome import Retry

        return Retry
    raise AttributeError(name)

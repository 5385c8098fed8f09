"""Buckets: queued and running work, handed out atomically."""

from workflow.buckets.verbs import Buckets
from workflow.wire import Defaults, PipelineSettings

__all__ = ["Buckets", "Defaults", "PipelineSettings"]

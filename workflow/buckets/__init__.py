"""Buckets: queued and running work, handed out atomically."""

from workflow.buckets.settings import Defaults, PipelineSettings
from workflow.buckets.verbs import Buckets

__all__ = ["Buckets", "Defaults", "PipelineSettings"]

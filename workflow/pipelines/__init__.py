"""Pipelines: configurations of steps in stages (CHIME's v2 YAML), run by the server."""

from workflow.pipelines.config import PipelineConfig, parse_config
from workflow.pipelines.runs import Pipelines

__all__ = ["PipelineConfig", "Pipelines", "parse_config"]

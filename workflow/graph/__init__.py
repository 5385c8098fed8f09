"""Workflow graphs in the Ewoks format, run as one work or from the command line."""

from workflow.graph.engine import ENGINES, Execution, GraphFailed, NodeRun, execute_graph
from workflow.graph.loading import load
from workflow.graph.model import Graph
from workflow.graph.tasks import MISSING_DATA, Task, TaskInputError

__all__ = ["ENGINES", "MISSING_DATA", "Execution", "Graph", "GraphFailed", "NodeRun", "Task",
           "TaskInputError", "execute_graph", "load"]

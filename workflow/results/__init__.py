"""Results: finished work with its full history, searchable."""

from workflow.results.verbs import Results
from workflow.wire import Search

__all__ = ["Results", "Search"]

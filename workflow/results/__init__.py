"""Results: finished work with its full history, searchable."""

from workflow.results.verbs import Results, Search

__all__ = ["Results", "Search"]

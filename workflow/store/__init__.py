"""Backends, picked by the scheme of a store URL."""

from __future__ import annotations

from workflow.errors import ConfigurationError
from workflow.store.base import Claim, Collection, Doc, Following, Query, Sort, Store

__all__ = ["Claim", "Collection", "Doc", "Following", "Query", "Sort", "Store", "open_store"]

DEFAULT_STORE = "sqlite:///"


def open_store(url: str | None = None) -> Store:
    """Open the store at ``url`` (default: SQLite in the user data directory).

    Args:
        url: ``sqlite:///path`` or ``mongodb://...``.

    Raises:
        ConfigurationError: unknown scheme, or the driver for it is not installed.
    """
    url = url or DEFAULT_STORE
    scheme = url.split(":", 1)[0].lower()
    if scheme == "sqlite":
        from workflow.store.sqlite import SqliteStore

        return SqliteStore(url)
    if scheme in ("mongodb", "mongodb+srv"):
        from workflow.store.mongo import MongoStore  # pymongo only when asked for

        return MongoStore(url)
    raise ConfigurationError(
        f"unknown store URL scheme {scheme!r}: use sqlite:///PATH or mongodb://HOST",
        field="store",
    )

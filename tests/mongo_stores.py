"""MongoDB stores for tests: a real server when ``WORKFLOW_TEST_MONGO_URL`` is set (a set
but unreachable URL fails the test, never skips it), else mongomock."""

from __future__ import annotations

import os
import uuid
from typing import Any

#: A real MongoDB for the "mongo" backend; without it, mongomock (query semantics only).
MONGO_URL = os.environ.get("WORKFLOW_TEST_MONGO_URL")


def mongo_store() -> Any:
    """A MongoDB store on a fresh database, on the real server or on mongomock."""
    from workflow.store.mongo import MongoStore

    name = f"conformance-{uuid.uuid4().hex[:12]}"
    if MONGO_URL:
        base, _, options = MONGO_URL.partition("?")
        host = base.split("://", 1)[1].split("/", 1)[0]
        scheme = base.split("://", 1)[0]
        return MongoStore(f"{scheme}://{host}/{name}" + (f"?{options}" if options else ""))
    import mongomock

    return MongoStore(f"mongodb://mongomock/{name}", client=mongomock.MongoClient())



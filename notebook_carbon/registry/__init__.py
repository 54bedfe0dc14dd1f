"""The experiment registry: every metered cell recorded as a run (SQLite by default, any SQLAlchemy URL).

``Registry`` reads and writes the database; ``BackgroundWriter`` runs its writes on a daemon thread
so the notebook never waits for them. The names are resolved lazily: importing this package (or
``registry.writer``) does not import SQLAlchemy, which costs ~300 ms and is only needed by the
thread that opens the database.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .schema import SCHEMA_VERSION, STATUSES
    from .store import Registry
    from .writer import BackgroundWriter

__all__ = ["SCHEMA_VERSION", "STATUSES", "BackgroundWriter", "Registry", "new_uid"]

_LAZY = {
    "Registry": "store",
    "BackgroundWriter": "writer",
    "SCHEMA_VERSION": "schema",
    "STATUSES": "schema",
}


def new_uid() -> str:
    """A fresh run uid (32 hex digits), made by the caller so a run can be named before it is written."""
    return uuid.uuid4().hex


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
        globals()[name] = value  # resolve once
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))

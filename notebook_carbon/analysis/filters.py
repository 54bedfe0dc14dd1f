"""A selection of runs (``analysis.runs``, ``analysis.totals``, statements): its registry and filters.

``opened`` gives the registry a selection reads; ``scope_of`` makes what a person gives (a date, an
ISO string, a status, a tag or several) what the registry takes (``registry.frames.Scope``: epoch
seconds, tuples), with a ``ConfigError`` saying what is valid. Without pandas, which only parses an
ISO string (its parser takes more forms than the standard library's), so a statement does not load it.
"""

from __future__ import annotations

import contextlib
import datetime
import math
import numbers
import os
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any

from ..errors import ConfigError
from ..record import STATUSES

if TYPE_CHECKING:
    from ..registry.store import Registry

__all__ = ["epoch_s", "is_cut", "opened", "scope_of"]


@contextlib.contextmanager
def opened(registry: Registry | str | os.PathLike[str] | None) -> Iterator[Registry]:
    """``registry`` if it is a ``Registry``; else the registry at that location (None: the settings'
    registry), opened read-only for the duration of the block."""
    from ..registry.store import Registry

    if isinstance(registry, Registry):
        yield registry
        return
    if registry is None:
        from ..settings import resolve

        location = resolve().registry_location()
    elif isinstance(registry, (str, os.PathLike)):
        location = os.fspath(registry)
    else:
        raise ConfigError(
            f"registry must be a Registry, a file path or a database URL (or None for the configured "
            f"one); got {type(registry).__name__}"
        )
    with Registry.open(location, read_only=True) as reg:
        yield reg


def scope_of(
    *,
    project: str | None = None,
    notebook: str | None = None,
    sweep: str | None = None,
    tags: str | Iterable[str] | None = None,
    since: Any = None,
    until: Any = None,
    status: str | Iterable[str] | None = None,
) -> dict[str, Any]:
    """The filters of ``analysis.runs`` checked, as ``registry.frames.Scope``'s keyword arguments."""
    if sweep is not None and (not isinstance(sweep, str) or not sweep):
        raise ConfigError(f"sweep must be a sweep name or a sweep key code:<fingerprint>; got {sweep!r}")
    return {
        "project": project,
        "notebook": notebook,
        "sweep": sweep,
        "statuses": _statuses(status),
        "since": epoch_s(since, "since"),
        "until": epoch_s(until, "until"),
        "tags": _tags(tags),
    }


def is_cut(scope: dict[str, Any]) -> bool:
    """Whether ``scope`` (``scope_of``) may keep part of a notebook's or sweep's runs."""
    return any(scope[name] is not None for name in ("statuses", "since", "until")) or bool(scope["tags"])


def _statuses(status: str | Iterable[str] | None) -> tuple[str, ...] | None:
    if status is None:
        return None
    wanted = (status,) if isinstance(status, str) else tuple(status)
    unknown = [s for s in wanted if s not in STATUSES]
    if unknown:
        raise ConfigError(f"status must be one or several of {', '.join(STATUSES)}; got {unknown!r}")
    return wanted


def _tags(tags: str | Iterable[str] | None) -> tuple[str, ...]:
    if tags is None:
        return ()
    found = (tags,) if isinstance(tags, str) else tuple(tags)
    if not all(isinstance(tag, str) for tag in found):
        raise ConfigError(f"tags must be a tag or several tags (strings); got {tags!r}")
    return tuple(sorted(set(found)))


def epoch_s(value: Any, name: str) -> float | None:
    """``value`` (datetime, date, ISO string, epoch seconds) as UTC epoch seconds; naive means UTC."""
    if value is None:
        return None
    if isinstance(value, numbers.Real) and not isinstance(value, bool) and type(value).__name__ != "bool_":
        if not math.isfinite(value):
            raise ConfigError(f"{name} must be a finite number of epoch seconds; got {value!r}")
        return float(value)
    if isinstance(value, datetime.datetime):
        aware = value if value.tzinfo is not None else value.replace(tzinfo=datetime.timezone.utc)
        return aware.timestamp()
    if isinstance(value, datetime.date):
        return datetime.datetime(value.year, value.month, value.day, tzinfo=datetime.timezone.utc).timestamp()
    if not isinstance(value, str) and type(value).__name__ != "datetime64":
        raise ConfigError(
            f"{name} must be a datetime, a date, an ISO 8601 string or epoch seconds; "
            f"got {type(value).__name__}"
        )
    import pandas as pd

    try:
        stamp = pd.Timestamp(value)
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"{name}: {value!r} is not a date or time (ISO 8601: 2025-03-01T12:00)") from exc
    if stamp is pd.NaT:
        raise ConfigError(f"{name}: {value!r} is not a date or time (ISO 8601: 2025-03-01T12:00)")
    if stamp.tzinfo is None:
        stamp = stamp.tz_localize("UTC")
    return stamp.timestamp()

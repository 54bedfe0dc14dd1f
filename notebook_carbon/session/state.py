"""What every run of this process shares: one writer per registry, the open runs, what was reported,
and the session in use (see ``session.current``).

Process-wide on purpose: a ``track()`` block and the magic's cell in one kernel must see each
other's open runs (a block inside a cell is a part of it) and share one writer per registry. After a
fork none of it belongs to the child (no run of the parent is open there, and a lock may be held by
a thread that does not exist there): ``os.register_at_fork`` starts the child afresh. The locks are
rebound then, so other modules use them as ``state._open_lock``, never by importing the name.
"""

from __future__ import annotations

import os
import threading
import weakref
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..registry.writer import BackgroundWriter
    from . import Session
    from .run import ActiveRun

_writers: dict[str, BackgroundWriter] = {}
_writers_lock = threading.Lock()

_open_runs: list[ActiveRun] = []  # runs open in this process, in the order they started
_open_lock = threading.Lock()
_reported: set[tuple[str | None, str]] = set()  # (registry, cause) already told to the user
_sessions: weakref.WeakSet[Session] = weakref.WeakSet()

# The session in use (``session.current``): a loaded extension's, by the id of its IPython shell;
# else one made on first use. A forked child keeps the parent's: a sweep's workers use its settings.
_attached: dict[int, Session] = {}
finish_listeners: list = []  # called with each finished run (``integrations.trackers``); each handles its errors
step_listeners: list = []  # called with an open run and the step it logged metrics at (the same)
_default: Session | None = None
_default_lock = threading.Lock()


def _reset_after_fork() -> None:
    """In a forked child (a sweep's worker): no run of the parent is open here, no lock is held."""
    global _writers_lock, _open_lock, _default_lock
    _writers_lock = threading.Lock()
    _open_lock = threading.Lock()
    _default_lock = threading.Lock()
    _open_runs.clear()
    for session in list(_sessions):
        session._lock = threading.Lock()
        if session._probed:  # the meters watch the parent's process tree, devices opened by the parent
            session._detection = None
            session._probed = False


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reset_after_fork)


def recorded_again() -> None:
    """A run was recorded: the causes said so far are over, and a cause that comes back is said again."""
    if _reported:
        with _open_lock:
            _reported.clear()


def first_report(exc: BaseException) -> bool:
    """True the first time this process meets ``exc``'s cause (per registry) since a run was last
    recorded: a registry that stays unwritable is said once, not once per run."""
    key = (getattr(exc, "where", None), getattr(exc, "cause", None) or f"{type(exc).__name__}: {exc}")
    with _open_lock:
        if key in _reported:
            return False
        _reported.add(key)
        return True


def shared_writer(location: str) -> BackgroundWriter:
    """One background writer (and so one connection and one thread) per registry location."""
    from ..registry.writer import BackgroundWriter

    with _writers_lock:
        writer = _writers.get(location)
        if writer is None:
            writer = _writers[location] = BackgroundWriter(location)
        return writer


"""``BackgroundWriter``: registry writes off the notebook's path, in order, on one daemon thread.

A metered one-line cell must cost about a millisecond in total, while importing SQLAlchemy alone
costs ~300 ms and a commit can wait on another process's lock. So the notebook never writes
synchronously: it submits ``Registry`` calls by name and gets a ``concurrent.futures.Future``
back at once. The thread imports SQLAlchemy and opens the registry itself, on the first call; this
module imports neither, so importing it stays cheap.

Failures never vanish: each is set on its future, and the failures of calls nobody waits for
(``submit``) are also kept in ``errors`` so the caller can show one warning for many; a caller that
waits for its future (``submit_awaited``) reports its own. A failed call does not stop the ones
after it. An ``atexit`` hook flushes pending writes, but pool workers and ``os._exit`` skip
``atexit``: whoever needs a write durable (a run's end) waits for its future.

Forks: a child process gets none of the parent's writer (its thread does not exist there, its lock
may be held by it, and its database connections are the parent's, which the child must neither use
nor close: closing them would release locks SQLite counts on). ``os.register_at_fork`` resets each
writer in the child, which then opens the registry afresh on its first call.
"""

from __future__ import annotations

import atexit
import collections
import os
import queue
import threading
import time
import weakref
from concurrent.futures import Future, wait
from collections.abc import Callable
from typing import Any

from ..errors import RegistryError

ATEXIT_TIMEOUT_S = 30.0
"""How long interpreter exit waits for pending writes (matches the registry's busy timeout)."""

MERGE_WINDOW_S = 0.02
"""How long a ``start_run`` waits for its own ``finish_run`` to merge with (see ``_await_finish``).
A kernel killed within this time of a cell's start leaves no ``running`` record of that cell."""

_STOP = object()

_all_writers: weakref.WeakSet[BackgroundWriter] = weakref.WeakSet()
_inherited: list[Any] = []  # in a forked child: the parent's registries, kept so they are never closed here


def _reset_after_fork() -> None:
    for writer in list(_all_writers):
        writer._forget_parent()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reset_after_fork)


def _take_finish(backlog: collections.deque[Any], start_args: tuple) -> Any:
    """Remove and return the queued ``finish_run`` of the run that ``start_run(*start_args)`` opens."""
    uid = start_args[0].get("uid") if start_args and isinstance(start_args[0], dict) else None
    for job in backlog:
        if job is _STOP:
            return None
        _, method_name, args, kwargs, _ = job
        if method_name == "finish_run" and not kwargs and args and args[0] == uid:
            backlog.remove(job)
            return job
    return None


class BackgroundWriter:
    """Runs ``Registry`` methods for the caller on one daemon thread, in submission order.

    ``location`` is what ``Registry.open`` takes (a file path or database URL). Nothing happens at
    construction: the thread starts on the first ``submit`` and opens the registry there (again on
    the next call if opening failed, so moving a damaged file aside is enough to recover).
    Arguments are handed to the thread as they are; do not mutate them after submitting.
    """

    def __init__(self, location: str, *, merge_window_s: float = MERGE_WINDOW_S) -> None:
        self.location = str(location)
        self.merge_window_s = merge_window_s
        self._lock = threading.Lock()
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._registry: Any = None  # a Registry, opened in the thread
        self._errors: list[BaseException] = []
        self._closed = False
        self._pid = os.getpid()
        _all_writers.add(self)

    # -- caller side -------------------------------------------------------------------------

    def submit(self, method_name: str | Callable[..., Any], *args: Any, **kwargs: Any) -> Future[Any]:
        """Queue ``Registry.<method_name>(*args, **kwargs)``; the future gets its result or error.

        ``method_name`` may also be a function, called as ``function(registry, *args, **kwargs)``
        in the writer thread (for queries and updates that live beside the store, e.g. sweeps).
        A failure is kept in ``errors`` too, for a caller that does not wait for the future.
        """
        return self._submit(True, method_name, args, kwargs)

    def submit_awaited(self, method_name: str | Callable[..., Any], *args: Any, **kwargs: Any) -> Future[Any]:
        """As ``submit``, for a caller that waits for the future and reports its failure itself."""
        return self._submit(False, method_name, args, kwargs)

    def _submit(self, report: bool, method_name: Any, args: tuple, kwargs: dict) -> Future[Any]:
        if isinstance(method_name, str) and method_name.startswith("_"):
            raise RegistryError(f"{method_name!r} is not a public Registry method")
        future: Future[Any] = Future()
        with self._lock:
            if self._closed:
                raise RegistryError(
                    f"the registry writer for {self.location} is closed; create a new BackgroundWriter"
                )
            self._ensure_thread()
            self._queue.put((future, method_name, args, kwargs, report))
        return future

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until everything submitted so far is done; False if ``timeout`` (s) ran out first."""
        marker: Future[Any] = Future()
        with self._lock:
            thread, closed = self._thread, self._closed
            if thread is None or self._pid != os.getpid():
                return True
            if not closed:
                self._queue.put((marker, None, (), {}, False))
        if closed:  # the thread drains the queue before it stops
            thread.join(timeout)
            return not thread.is_alive()
        # Operations run in order, so when the marker is done everything before it is too.
        done, _ = wait([marker], timeout)
        return bool(done)

    def close(self, timeout: float | None = ATEXIT_TIMEOUT_S) -> bool:
        """Flush, stop the thread and close the registry; True if all of it finished in ``timeout`` s.

        Submitting after ``close`` raises ``RegistryError``. Closing twice is harmless.
        """
        with self._lock:
            self._closed = True
            thread = self._thread if self._pid == os.getpid() else None
            if thread is not None:
                self._queue.put(_STOP)
        atexit.unregister(self._at_exit)
        if thread is None:
            return True
        thread.join(timeout)
        return not thread.is_alive()

    @property
    def errors(self) -> list[BaseException]:
        """Exceptions of failed operations so far, oldest first (a copy)."""
        with self._lock:
            return list(self._errors)

    def take_errors(self) -> list[BaseException]:
        """The exceptions not taken yet, clearing them, so each is reported to the user once."""
        with self._lock:
            taken, self._errors = self._errors, []
        return taken

    @property
    def started(self) -> bool:
        """Whether the thread has been started (it is, from the first ``submit``)."""
        return self._thread is not None

    def __repr__(self) -> str:
        return f"BackgroundWriter({self.location!r}, started={self.started}, closed={self._closed})"

    def _forget_parent(self) -> None:
        """In a forked child: start afresh, leaving the parent's thread, lock and connections alone."""
        self._lock = threading.Lock()  # the parent's may have been held by a thread that is not here
        self._pid = os.getpid()
        self._queue = queue.SimpleQueue()
        self._thread = None
        self._errors = []
        if self._registry is not None:
            _inherited.append(self._registry)  # never closed in the child, never garbage-collected
            self._registry = None

    def _ensure_thread(self) -> None:
        # Called under the lock.
        if self._pid != os.getpid():  # forked without the at-fork hook (a platform without it)
            self._pid = os.getpid()
            self._queue = queue.SimpleQueue()
            self._thread = None
            if self._registry is not None:
                _inherited.append(self._registry)
                self._registry = None
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._run, args=(self._queue,), name="notebook-carbon-registry", daemon=True
            )
            self._thread.start()
            # Registered when there is something to flush; daemon threads still run during atexit.
            atexit.register(self._at_exit)

    def _at_exit(self) -> None:
        self.close(ATEXIT_TIMEOUT_S)

    # -- writer thread -----------------------------------------------------------------------

    def _run(self, jobs: queue.SimpleQueue[Any]) -> None:
        backlog: collections.deque[Any] = collections.deque()
        while True:
            job = backlog.popleft() if backlog else jobs.get()
            while True:  # take what else is queued, so a start and finish can be merged
                try:
                    backlog.append(jobs.get_nowait())
                except queue.Empty:
                    break
            if job is _STOP:
                break
            future, method_name, args, kwargs, report = job
            if not future.set_running_or_notify_cancel():
                continue
            if method_name is None:  # a flush marker
                future.set_result(None)
                continue
            finish = None
            if method_name == "start_run" and not kwargs:
                finish = _take_finish(backlog, args)
                if finish is None and not backlog:  # wait only while there is nothing else to do
                    finish = self._await_finish(jobs, backlog, args)
            if finish is not None:
                # A quick run whose start and end are both waiting: one insert instead of an
                # insert, an update and two commits. Jobs between them concern other runs (or are
                # flush markers, which are satisfied earlier, never later, by this).
                finish_future, _, (_, final, *children), _, _ = finish
                finish_future.set_running_or_notify_cancel()
                children = children[:2]  # components, samples (not the start row finish_run may carry)
                self._call(future, "record_run", (args[0], final, *children), {}, report)
                if future.exception() is None:
                    finish_future.set_result(None)
                else:
                    finish_future.set_exception(future.exception())
                continue
            self._call(future, method_name, args, kwargs, report)
        if self._registry is not None:
            try:
                self._registry.close()
            except Exception as exc:
                with self._lock:
                    self._errors.append(exc)
            self._registry = None

    def _await_finish(self, jobs: queue.SimpleQueue[Any], backlog: collections.deque[Any], args: tuple) -> Any:
        """Wait up to ``merge_window_s`` for the finish of a run just started, queueing what comes.

        Most metered cells are quick: waiting a moment lets their start and finish become one
        insert, written while the notebook thread is idle rather than competing with the cell
        for the GIL. A flush, a stop or any other job ends the wait at once.
        """
        deadline = time.monotonic() + self.merge_window_s
        while (remaining := deadline - time.monotonic()) > 0:
            try:
                job = jobs.get(timeout=remaining)
            except queue.Empty:
                return None
            backlog.append(job)
            finish = _take_finish(backlog, args)
            if finish is not None or job is _STOP or job[1] != "finish_run":
                return finish
        return None

    def _call(self, future: Future[Any], method_name: str, args: tuple, kwargs: dict, report: bool) -> None:
        try:
            registry = self._open()
            if callable(method_name):
                result = method_name(registry, *args, **kwargs)
            else:
                result = getattr(registry, method_name)(*args, **kwargs)
        except Exception as exc:
            if report:
                with self._lock:
                    self._errors.append(exc)
            future.set_exception(exc)
        else:
            future.set_result(result)

    def _open(self) -> Any:
        if self._registry is None:
            from .store import Registry  # SQLAlchemy is imported here, in this thread

            self._registry = Registry.open(self.location)
        return self._registry

"""``BackgroundWriter``: registry writes off the notebook's path, in order, on one daemon thread.

A metered one-line cell must cost about a millisecond in total, while importing SQLAlchemy alone
costs ~300 ms and a commit can wait on another process's lock. So the notebook never writes
synchronously: it calls the writer's typed methods (``start_run``, ``finish_run``, ...), each of
which queues one ``Registry`` operation and returns a ``concurrent.futures.Future`` of its result at
once. The thread imports SQLAlchemy and opens the registry itself, on the first call; this module
imports neither, so importing it stays cheap. There is no way to queue an operation by its name:
a misspelt operation is an ``AttributeError`` where it is called, not a failure on the thread
reported a cell later.

Failures never vanish: each is set on its future, and the failures of calls nobody waits for are
also kept in ``errors`` so the caller can show one warning for many; a caller that waits for its
future passes ``awaited=True`` and reports its own. A failed call does not stop the ones after it.
An ``atexit`` hook flushes pending writes, but pool workers and ``os._exit`` skip ``atexit``:
whoever needs a write durable (a run's end) waits for its future.

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
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, wait
from typing import TYPE_CHECKING, Any, TypeVar

from ..errors import RegistryError
from .metrics import log_metrics  # (imports SQLAlchemy only when called, on the thread)

if TYPE_CHECKING:
    from .store import Registry
    from .sweeps import SweepSummary

T = TypeVar("T")
Rows = Sequence[Mapping[str, Any]]

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


class _Job:
    """One queued operation: ``call(registry)``, whose result or error goes to ``future``.

    ``start`` (a ``start_run``'s row) and ``finish`` (a ``finish_run``'s uid, final row, components
    and samples) let the thread merge a quick run's two writes into one ``record_run``. A job with
    no ``call`` is a flush marker.
    """

    __slots__ = ("call", "finish", "future", "report", "start")

    def __init__(self, future: Future[Any], call: Callable[[Registry], Any] | None, report: bool, *,
                 start: Mapping[str, Any] | None = None,
                 finish: tuple[str, Mapping[str, Any], Rows, Rows] | None = None) -> None:  # fmt: skip
        self.future, self.call, self.report, self.start, self.finish = future, call, report, start, finish


def _jobs() -> Any:
    from . import jobs  # with SQLAlchemy, on the writer's thread

    return jobs


def _take_finish(backlog: collections.deque[Any], start: Mapping[str, Any]) -> _Job | None:
    """Remove and return the queued ``finish_run`` of the run that ``start_run(start)`` opens."""
    uid = start.get("uid") if isinstance(start, Mapping) else None
    for job in backlog:
        if job is _STOP:
            return None
        if job.finish is not None and job.finish[0] == uid:
            backlog.remove(job)
            return job
    return None


class BackgroundWriter:
    """Runs ``Registry`` operations for the caller on one daemon thread, in call order.

    ``location`` is what ``Registry.open`` takes (a file path or database URL). Nothing happens at
    construction: the thread starts on the first operation and opens the registry there (again on
    the next one if opening failed, so moving a damaged file aside is enough to recover).
    Arguments are handed to the thread as they are; do not mutate them after the call.

    Each operation returns a ``Future`` of what the ``Registry`` call returns. Its failure is set
    on the future and also kept in ``errors``, unless ``awaited=True``: the caller waits for the
    future and reports the failure itself.
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

    # -- operations (caller side) ------------------------------------------------------------

    def start_run(self, row: Mapping[str, Any], *, awaited: bool = False) -> Future[int]:
        """``Registry.start_run(row)``: the new run's id. Merged with the run's ``finish_run`` when
        that comes within ``merge_window_s`` (see ``_await_finish``)."""
        return self._submit(lambda registry: registry.start_run(row), awaited, start=row)

    def checkpoint_run(self, uid: str, row: Mapping[str, Any], *, awaited: bool = False) -> Future[bool]:
        """``Registry.checkpoint_run(uid, row)``: False when the run was no longer running."""
        return self._submit(lambda registry: registry.checkpoint_run(uid, row), awaited)

    def finish_run(self, uid: str, final: Mapping[str, Any], components: Rows = (), samples: Rows = (),
                   start: Mapping[str, Any] | None = None, *, awaited: bool = False,
                   ) -> Future[None]:  # fmt: skip
        """``Registry.finish_run(uid, final, components, samples, start)``."""
        return self._submit(
            lambda registry: registry.finish_run(uid, final, components, samples, start),
            awaited,
            finish=(uid, final, components, samples),
        )

    def record_run(self, row: Mapping[str, Any], final: Mapping[str, Any], components: Rows = (),
                   samples: Rows = (), *, awaited: bool = False) -> Future[int]:  # fmt: skip
        """``Registry.record_run(row, final, components, samples)``: a whole run at once; its id."""
        return self._submit(lambda registry: registry.record_run(row, final, components, samples), awaited)

    def record_part(self, part: Mapping[str, Any], *, awaited: bool = False) -> Future[int]:
        """``Registry.record_part(part)``: a finished part of an enclosing run; its id."""
        return self._submit(lambda registry: registry.record_part(part), awaited)

    def start_part(self, run_row: Mapping[str, Any], part: Mapping[str, Any], *, awaited: bool = False,
                   **options: Any) -> Future[int]:  # fmt: skip
        """``jobs.start_part(...)``: a rank's block, a part of its job's run (created if first); the run's id."""
        return self._submit(lambda registry: _jobs().start_part(registry, run_row, part, **options), awaited)

    def checkpoint_part(self, uid: str, row: Mapping[str, Any], *, awaited: bool = False) -> Future[bool]:
        """``jobs.update_part(uid, row, final=False)``: a rank's figures so far; False when it had ended."""
        return self._submit(lambda registry: _jobs().update_part(registry, uid, row, final=False), awaited)

    def finish_part(self, uid: str, row: Mapping[str, Any], samples: Rows = (), start: Mapping[str, Any] | None = None,
                    *, awaited: bool = False) -> Future[int | None]:  # fmt: skip
        """``jobs.finish_part(...)``: a rank's end, and its samples; the job's run id."""
        return self._submit(lambda registry: _jobs().finish_part(registry, uid, row, samples, start), awaited)

    def find_redundant(self, project: str, *, code_fingerprint: str, inputs_fingerprint: str | None,
                       params_fingerprint: str | None, awaited: bool = False,
                       ) -> Future[dict[str, Any] | None]:  # fmt: skip
        """``Registry.find_redundant(...)``: the first identical ``ok`` run of ``project``, or None."""
        fingerprints = {"code_fingerprint": code_fingerprint, "inputs_fingerprint": inputs_fingerprint,
                        "params_fingerprint": params_fingerprint}  # fmt: skip
        return self._submit(lambda registry: registry.find_redundant(project, **fingerprints), awaited)

    def set_final(self, run_id: int | str, *, awaited: bool = False) -> Future[dict[str, Any]]:
        """``Registry.set_final(run_id)``: mark a run its sweep's result; its id, project, sweep, name."""
        return self._submit(lambda registry: registry.set_final(run_id), awaited)

    def log_metrics(self, run: int | str, values: Any, step: int | None = None, *, awaited: bool = False) -> Future[str]:
        """``metrics.log_metrics``: record metrics of a run (its id or uid), after its earlier writes."""
        return self._submit(lambda registry: log_metrics(registry, run, values, step=step), awaited)

    def sweeps(self, project: str, *, awaited: bool = False) -> Future[list[SweepSummary]]:
        """``Registry.sweeps(project)``: the sweeps of ``project``, the most energy first."""
        return self._submit(lambda registry: registry.sweeps(project), awaited)

    def reap_crashed(self, *, awaited: bool = False) -> Future[list[int]]:
        """``Registry.reap_crashed()``: mark the runs of dead processes crashed; their ids."""
        return self._submit(lambda registry: registry.reap_crashed(), awaited)

    def calibrations(self, host: str, *, awaited: bool = False) -> Future[list[dict[str, Any]]]:
        """``calibration.latest_calibrations(registry, host)``: the idle power measured per device."""

        def read(registry: Registry) -> list[dict[str, Any]]:
            from .calibration import latest_calibrations

            return latest_calibrations(registry, host)

        return self._submit(read, awaited)

    def schema_version(self, *, awaited: bool = False) -> Future[int]:
        """``Registry.schema_version()``; also opens (or creates) the registry."""
        return self._submit(lambda registry: registry.schema_version(), awaited)

    def _submit(
        self,
        call: Callable[[Registry], T],
        awaited: bool,
        *,
        start: Mapping[str, Any] | None = None,
        finish: tuple | None = None,
    ) -> Future[T]:
        future: Future[T] = Future()
        job = _Job(future, call, not awaited, start=start, finish=finish)
        with self._lock:
            if self._closed:
                raise RegistryError(
                    f"the registry writer for {self.location} is closed; create a new BackgroundWriter"
                )
            self._ensure_thread()
            self._queue.put(job)
        return future

    # -- the writer as a whole ---------------------------------------------------------------

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until everything queued so far is done; False if ``timeout`` (s) ran out first."""
        marker: Future[Any] = Future()
        with self._lock:
            thread, closed = self._thread, self._closed
            if thread is None or self._pid != os.getpid():
                return True
            if not closed:
                self._queue.put(_Job(marker, None, False))
        if closed:  # the thread drains the queue before it stops
            thread.join(timeout)
            return not thread.is_alive()
        # Operations run in order, so when the marker is done everything before it is too.
        done, _ = wait([marker], timeout)
        return bool(done)

    def close(self, timeout: float | None = ATEXIT_TIMEOUT_S) -> bool:
        """Flush, stop the thread and close the registry; True if all of it finished in ``timeout`` s.

        An operation after ``close`` raises ``RegistryError``. Closing twice is harmless.
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
        """Whether the thread has been started (it is, from the first operation)."""
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
            if not job.future.set_running_or_notify_cancel():
                continue
            if job.call is None:  # a flush marker
                job.future.set_result(None)
                continue
            finish = None
            if job.start is not None:
                finish = _take_finish(backlog, job.start)
                if finish is None and not backlog:  # wait only while there is nothing else to do
                    finish = self._await_finish(jobs, backlog, job.start)
            if finish is not None:
                self._merge(job, job.start, finish)
                continue
            self._call(job.future, job.call, job.report)
        if self._registry is not None:
            try:
                self._registry.close()
            except Exception as exc:
                with self._lock:
                    self._errors.append(exc)
            self._registry = None

    def _merge(self, start: _Job, row: Mapping[str, Any], finish: _Job) -> None:
        """A quick run whose start and end are both waiting: one insert instead of an insert, an
        update and two commits. Jobs between them concern other runs (or are flush markers, which
        are satisfied earlier, never later, by this). Not the start row ``finish_run`` may carry:
        this writes the start itself."""
        _, final, components, samples = finish.finish  # type: ignore[misc]
        finish.future.set_running_or_notify_cancel()
        both = start.future
        self._call(both, lambda registry: registry.record_run(row, final, components, samples), start.report)
        failure = both.exception()
        if failure is None:
            finish.future.set_result(None)
        else:
            finish.future.set_exception(failure)

    def _await_finish(
        self, jobs: queue.SimpleQueue[Any], backlog: collections.deque[Any], start: Mapping[str, Any]
    ) -> _Job | None:
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
            finish = _take_finish(backlog, start)
            if finish is not None or job is _STOP or job.finish is None:
                return finish
        return None

    def _call(self, future: Future[Any], call: Callable[[Registry], Any], report: bool) -> None:
        try:
            result = call(self._open())
        except Exception as exc:
            if report:
                with self._lock:
                    self._errors.append(exc)
            future.set_exception(exc)
        else:
            future.set_result(result)

    def _open(self) -> Registry:
        if self._registry is None:
            from .store import Registry  # SQLAlchemy is imported here, in this thread

            self._registry = Registry.open(self.location)
        return self._registry

"""What the magic and ``track()`` share: settings, meters, grid intensity and the registry writer.

A ``Session`` detects the meters and resolves the grid intensity once, on first use (never at
import), and hands out ``ActiveRun`` objects: each opens a measurement window, writes the run to
the registry as ``running`` at once, and on ``finish`` computes the footprint and completes the
record. Registry writes go through a background writer so that a metered one-line cell never waits
for SQLAlchemy to import; the caller waits only for the run's last write (``RunResult.recorded``),
so a run is durable when its summary line is printed or its block exits.

Nesting: a run started while another run of this process is open (a ``track()`` block in a
metered cell, a nested ``%%carbon``) measures energy that the open run measures too, so it is
recorded as a part of the outermost open run (``registry.parts``), never as a run of its own.

Interrupts: opening and closing a run survive a ``KeyboardInterrupt`` at any point; the window
never keeps metering an idle kernel because an interrupt landed between two steps.

The session in use: ``current()`` is what ``track()`` and the integrations use when given none:
the session of the ``%%carbon`` extension loaded in the running IPython shell (``shell_session()``;
the magic calls ``attach`` on load and ``detach`` on unload), so ``%carbon config`` applies to them
too; else one process-wide session, made on first use. The dashboard takes only an extension's,
and reads the configuration otherwise. They find it here rather than in the magic, above them.
"""

from __future__ import annotations

import collections
import itertools
import os
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from typing import TYPE_CHECKING, Any

from ..errors import ConfigError, RegistryError
from ..measure import Window
from ..cell import is_cell_id
from ..record import Job, check_text, recordable_param
from ..settings import Settings
from ..settings import resolve as resolve_settings
from .run import FIRST_CHECKPOINT_S, MAX_UNRECORDED, STATUSES, WRITE_TIMEOUT_S, ActiveRun, RunResult
from . import state
from .state import _sessions, first_report, shared_writer
from .state import _open_runs, _reported, _writers  # noqa: F401  (the magic and tests look here)

if TYPE_CHECKING:
    from ..registry.writer import BackgroundWriter

__all__ = [
    "FIRST_CHECKPOINT_S", "STATUSES", "WRITE_TIMEOUT_S", "ActiveRun", "RunResult", "Session",
    "attach", "current", "current_notebook", "detach", "first_report", "shared_writer", "shell_session",
]

# Settings whose change means the hardware must be probed again.
_METER_SETTINGS = ("powercap_root", "gpu", "cpu_tdp_w", "ram_w_per_gb", "attribution")
_INTENSITY_SETTINGS = ("region", "intensity_g_per_kwh")
_FINGERPRINTS = ("code_fingerprint", "inputs_fingerprint", "params_fingerprint")


class Session:
    """Settings + meters + intensity + registry, resolved lazily and cached."""

    def __init__(self, settings: Settings | None = None, *, detection: Any = None) -> None:
        self._settings = settings if settings is not None else resolve_settings()
        self._detection = detection
        self._idle_for = None  # the detection whose GPU rules were given the idle power measured
        self._probed = False
        self._intensity = None
        self._lock = threading.Lock()
        # ok runs of this session by fingerprints, until their write has succeeded (bounded)
        self._recent: collections.OrderedDict[tuple[str | None, ...], dict[str, Any]] = collections.OrderedDict()
        # the writes of this session's ok runs of each fingerprint, until they end (bounded)
        self._unwritten: dict[tuple[str | None, ...], list[Future]] = {}
        self._lookups: dict[tuple[str, int], Any] = {}  # per process: a connection never crosses a fork
        _sessions.add(self)

    @property
    def settings(self) -> Settings:
        return self._settings

    def configure(self, **changes: Any) -> Settings:
        """Apply ``changes`` (strings as typed are fine); a bad value or region raises, changing nothing."""
        new = self._settings.replace(**changes)
        if any(getattr(new, k) != getattr(self._settings, k) for k in _INTENSITY_SETTINGS):
            intensity = _resolve_intensity(new)  # raises UnknownRegionError before anything changes
            self._intensity = intensity
        if any(getattr(new, k) != getattr(self._settings, k) for k in _METER_SETTINGS):
            self._close_meters()
        self._settings = new
        return new

    def detection(self):
        """The meters of this machine, probed once."""
        with self._lock:
            if self._detection is None:
                from ..meters.detect import detect_meters

                self._detection = detect_meters(self._settings)
                self._probed = True  # a forked child probes again: meters hold this process's ids
            if self._idle_for is not self._detection:  # once per set of meters, given or probed
                self._idle_for = self._detection
                _use_idle_power(self._detection, self.writer())
            return self._detection

    def intensity(self):
        with self._lock:
            if self._intensity is None:
                self._intensity = _resolve_intensity(self._settings)
            return self._intensity

    def writer(self) -> BackgroundWriter:
        """The background writer of this session's registry (one per registry in this process)."""
        return shared_writer(self._settings.registry_location())

    def begin(
        self,
        *,
        name: str | None = None,
        sweep: str | None = None,
        params: Mapping[str, Any] | None = None,
        tags: Sequence[str] = (),
        cell_source: str | None = None,
        notebook: str | None = None,
        on_sample: Callable[[Window], None] | None = None,
        fingerprints: Mapping[str, str | None] | None = None,
        redundant_of: int | None = None,
        job: Job | None = None,
        execution_count: int | None = None,
        cell_id: str | None = None,
    ) -> ActiveRun:
        """Prepare a run; ``start()`` it. ``fingerprints``: ``code_fingerprint``, ``inputs_fingerprint``
        and ``params_fingerprint`` (see ``notebook_carbon.cell``), recorded for sweeps and redundancy.
        ``job``: the distributed job this run is a rank's block of (``distributed.detect_job``), or
        the job a notebook cell drives: recorded as a part of the job's run (``session.job``).
        ``execution_count``: the cell's ``In [n]``, what an unnamed sweep's label names; ``cell_id``:
        the notebook cell's id (nbformat 4.5), by which a view opens the notebook at that cell."""
        detection = self.detection()
        intensity = self.intensity()
        notes = list(detection.notes)
        if intensity.is_default:
            notes.append(
                "no region configured: the world-average grid intensity was used "
                "(set one with %carbon config region=XX or NOTEBOOK_CARBON_REGION)"
            )
        for what, text in (("name", name), ("sweep", sweep), ("notebook", notebook)):
            if text is not None:
                check_text(what, text)
        if cell_id is not None and not is_cell_id(cell_id):
            raise ConfigError(f"a cell id is 1 to 64 letters, digits, '-' or '_' (nbformat 4.5); got {cell_id!r}")
        checked_params = {}
        for key, value in dict(params or {}).items():
            if not isinstance(key, str):
                raise ConfigError(f"param names must be strings, got {key!r}")
            check_text("a param name", key)
            checked_params[key] = recordable_param(value, repr(key))
        row = _start_row(self, detection, intensity, notes)
        row.update(
            name=name,
            sweep=sweep,
            params=checked_params,
            tags=_check_tags(tags),
            cell_source=cell_source,
            notebook=notebook if notebook is not None else current_notebook(),
            redundant_of=redundant_of,
            execution_count=execution_count,
            cell_id=cell_id,
            checkpoint_interval_s=self._settings.checkpoint_interval_s,
            **{k: (fingerprints or {}).get(k) for k in _FINGERPRINTS},
        )
        run = ActiveRun(self, intensity, row, on_sample, job=job)
        run.window = Window(
            detection.meters, interval_s=self._settings.sample_interval_s, notes=notes, on_sample=run._on_sample
        )
        return run

    def find_redundant(self, fingerprints: Mapping[str, str | None], *, timeout_s: float = 5.0):
        """The earlier identical ``ok`` run of this project (see ``registry.sweeps.find_redundant``).

        The registry is asked first, so the run named is the first such run ever recorded: an
        SQLite file is searched on this thread without SQLAlchemy, a database server through the
        writer (after the writes queued before it). Runs of this session whose writes may still be
        queued are found in memory when the registry has none yet.
        """
        if not all(fingerprints.get(k) for k in _FINGERPRINTS):
            return None  # unknown inputs are never called redundant
        key = (self._settings.project, *(fingerprints[k] for k in _FINGERPRINTS))
        with self._lock:  # counted before the registry is read: a write ending between is not missed
            unwritten = self._pending_writes(key)
        earlier = self._find_recorded(fingerprints, timeout_s)
        if earlier is not None:  # the identical runs: those recorded, and this session's still queued
            return {**earlier, "repeats": (earlier.get("repeats") or 1) + unwritten}
        with self._lock:
            recent = self._recent.get(key)
        if recent is None:
            return None
        earlier = dict(recent)
        earlier["id"] = _result_or_none(earlier.pop("id_future"), timeout_s)
        earlier["repeats"] = max(unwritten, 1)
        return earlier if earlier["id"] is not None else None

    def _pending_writes(self, key: tuple[str | None, ...]) -> int:
        """How many of this session's ok runs of ``key`` are still being written (under ``_lock``).
        Those done are dropped here too, whether or not their callback ran (one interrupted on
        the notebook's thread, where a write done already calls it, leaves its future behind)."""
        writes = self._unwritten.get(key)
        if not writes:
            return 0
        # no loop of ours: stdlib's filterfalse and Future.done, so a cell's cost does not grow with it
        pending = list(itertools.filterfalse(Future.done, writes))
        if pending:
            self._unwritten[key] = pending
        else:
            del self._unwritten[key]
        return len(pending)

    def _find_recorded(self, fingerprints: Mapping[str, str | None], timeout_s: float):
        from ..registry.lookup import SqliteLookup, sqlite_file

        location, project = self._settings.registry_location(), self._settings.project
        try:
            path = sqlite_file(location)
            if path is not None:
                with self._lock:
                    key = (location, os.getpid())
                    lookup = self._lookups.get(key)
                    if lookup is None:
                        lookup = self._lookups[key] = SqliteLookup(path)
                return lookup.find_redundant(project=project, **fingerprints)
            future = self.writer().find_redundant(
                project,
                code_fingerprint=fingerprints["code_fingerprint"],
                inputs_fingerprint=fingerprints["inputs_fingerprint"],
                params_fingerprint=fingerprints["params_fingerprint"],
                awaited=True,
            )
            return future.result(timeout_s)
        except (RegistryError, FutureTimeout):
            return None  # e.g. an unreadable registry: the run's own write reports it, once

    def _remember(self, result: RunResult) -> None:
        """Keep the first ok run of each fingerprint until it is in the registry, where the lookup finds it.

        Only what ``find_redundant`` returns is kept, and only until the run's write succeeds: the
        kernel's memory does not grow with the number of runs it has recorded.
        """
        row = result.row
        if result.status != "ok" or result.parent_uid is not None or not all(row.get(k) for k in _FINGERPRINTS):
            return
        key = (row["project"], *(row[k] for k in _FINGERPRINTS))
        earlier = {
            "id_future": result.id_future, "uid": result.uid, "name": row.get("name"),
            "started_at": row["started_at"], "ended_at": row.get("ended_at"), "energy_j": row.get("energy_j"),
            "emissions_g": row.get("emissions_g"), "repeats": None,
        }
        write = result.write_future
        with self._lock:
            if write is not None and (key in self._unwritten or len(self._unwritten) < MAX_UNRECORDED):
                self._unwritten.setdefault(key, []).append(write)
            if key not in self._recent:
                self._recent[key] = earlier
                while len(self._recent) > MAX_UNRECORDED:
                    self._recent.popitem(last=False)

        def forget(future: Future) -> None:
            with self._lock:  # written, or failed: it is done, and the registry counts it (or never will)
                writes = self._unwritten.get(key, [])
                if future in writes:
                    writes.remove(future)
                    if not writes:
                        del self._unwritten[key]
                if not future.cancelled() and future.exception() is None and self._recent.get(key) is earlier:
                    del self._recent[key]

        if result.write_future is not None:
            result.write_future.add_done_callback(forget)

    def _close_meters(self) -> None:
        with self._lock:
            if self._detection is not None:
                for meter in self._detection.meters:
                    meter.close()
            self._detection = None


def current() -> Session:
    """The session in use in this process: that of the ``%%carbon`` extension loaded in the running
    IPython shell, else one process-wide session, made (settings resolved) on first use."""
    attached = shell_session()
    if attached is not None:
        return attached
    with state._default_lock:
        if state._default is None:
            state._default = Session()
        return state._default


def shell_session() -> Session | None:
    """The session of the ``%%carbon`` extension loaded in the running IPython shell, if any."""
    if not state._attached:
        return None  # no extension loaded: IPython need not even be imported
    from IPython import get_ipython

    shell = get_ipython()
    return state._attached.get(id(shell)) if shell is not None else None


def attach(shell: Any, session: Session) -> None:
    """Make ``session`` the one in use while ``shell`` runs (the magic, when its extension loads)."""
    state._attached[id(shell)] = session


def detach(shell: Any) -> None:
    """Forget ``shell``'s session (the magic, when its extension unloads)."""
    state._attached.pop(id(shell), None)


def _result_or_none(future: Future | None, timeout_s: float) -> Any:
    if future is None:
        return None
    try:
        return future.result(timeout_s)
    except Exception:  # the writer reports its own failures
        return None


def block_status(exc: BaseException | None) -> str:
    """What ended a metered block says of its run: ``ok``, ``interrupted`` (Ctrl-C), else ``failed``."""
    return "ok" if exc is None else "interrupted" if isinstance(exc, KeyboardInterrupt) else "failed"


def current_notebook() -> str | None:
    """The notebook this kernel runs, as Jupyter tells its kernels (``JPY_SESSION_NAME``), or None."""
    return os.environ.get("JPY_SESSION_NAME") or None


def _resolve_intensity(settings: Settings):
    from ..impact.intensity import resolve_intensity

    return resolve_intensity(settings.region, override_g_per_kwh=settings.intensity_g_per_kwh)


def _check_tags(tags: Sequence[str]) -> list[str]:
    if isinstance(tags, str):
        tags = [tags]
    for tag in tags:
        if not isinstance(tag, str) or not tag:
            raise ConfigError(f"tags must be non-empty strings, got {tag!r}")
    return list(tags)


def _start_row(session: Session, detection, intensity, notes: list[str]) -> dict[str, Any]:
    """The machine- and settings-derived fields of a run; the caller adds the run's own."""
    from ..meters.detect import host_info

    host = host_info()
    gpus = [m for m in detection.meters if m.component == "gpu"]
    gpu_models = sorted({m.model for m in gpus if m.model})
    settings = session.settings
    return {
        "uid": uuid.uuid4().hex,
        "project": settings.project,
        "status": "running",
        "started_at": time.time(),
        "host": host["hostname"],
        "pid": os.getpid(),
        "cpu_model": host["cpu_model"],
        "gpu_model": ", ".join(gpu_models) or None,
        "gpu_count": len(gpus),
        "attribution": settings.attribution,
        "pue": settings.pue,
        "intensity_g_per_kwh": intensity.g_per_kwh,
        "intensity_region": intensity.region,
        "intensity_source": intensity.source,
        "notes": notes,
    }


def _use_idle_power(detection, writer: BackgroundWriter) -> None:
    """Give each GPU share rule the idle power ``notebook-carbon calibrate`` measured for its
    device on this host, when the registry has one: read on the writer's thread, set when it
    answers (until then, and without one, a rule takes the lowest power the device drew)."""
    rules = {m.device: m.share_rule for m in detection.meters
             if m.component == "gpu" and hasattr(m.share_rule, "idle_w")}  # fmt: skip
    if not rules:
        return
    from ..meters.detect import host_info

    def apply(done) -> None:
        if done.exception() is not None:  # no idle power known: the rules keep their own estimate
            return
        for row in done.result():
            if row["component"] == "gpu" and row["device"] in rules:
                rules[row["device"]].idle_w = row["idle_w"]

    writer.calibrations(host_info()["hostname"], awaited=True).add_done_callback(apply)  # unreported if it fails

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
"""

from __future__ import annotations

import collections
import dataclasses
import functools
import os
import threading
import time
import uuid
import weakref
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any

from . import settings as settings_mod
from .errors import ConfigError, RegistryError
from .measure import Measurement, Window
from .record import check_text, recordable_param
from .settings import Settings

STATUSES = ("running", "ok", "failed", "interrupted", "crashed")

# Settings whose change means the hardware must be probed again.
_METER_SETTINGS = ("powercap_root", "gpu", "cpu_tdp_w", "ram_w_per_gb", "attribution")
_INTENSITY_SETTINGS = ("region", "intensity_g_per_kwh")
_FINGERPRINTS = ("code_fingerprint", "inputs_fingerprint", "params_fingerprint")

_writers: dict[str, Any] = {}
_writers_lock = threading.Lock()

WRITE_TIMEOUT_S = 45.0
"""How long a run's end waits for its write: the registry's busy timeout (30 s), then some."""
MAX_UNRECORDED = 256
"""Runs kept in memory for redundancy checks while their write has not succeeded (it usually has)."""
FIRST_CHECKPOINT_S = 1.0
"""A run is first checkpointed this soon, so a kernel killed early still leaves its energy."""

_open_runs: list[ActiveRun] = []  # runs open in this process, in the order they started
_open_lock = threading.Lock()
_reported: set[tuple[str | None, str]] = set()  # (registry, cause) already told to the user
_sessions: weakref.WeakSet[Session] = weakref.WeakSet()


def _reset_after_fork() -> None:
    """In a forked child (a sweep's worker): no run of the parent is open here, no lock is held."""
    global _writers_lock, _open_lock
    _writers_lock = threading.Lock()
    _open_lock = threading.Lock()
    _open_runs.clear()
    for session in list(_sessions):
        session._lock = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reset_after_fork)


def first_report(exc: BaseException) -> bool:
    """True the first time this process meets ``exc``'s cause (per registry): say it once, not per run."""
    key = (getattr(exc, "where", None), getattr(exc, "cause", None) or f"{type(exc).__name__}: {exc}")
    with _open_lock:
        if key in _reported:
            return False
        _reported.add(key)
        return True


def shared_writer(location: str):
    """One background writer (and so one connection and one thread) per registry location."""
    from .registry.writer import BackgroundWriter

    with _writers_lock:
        writer = _writers.get(location)
        if writer is None:
            writer = _writers[location] = BackgroundWriter(location)
        return writer


@dataclasses.dataclass(frozen=True)
class RunResult:
    """A finished run: its record as written, the measurement and the footprint."""

    uid: str
    row: dict[str, Any]
    measurement: Measurement
    footprint: Any  # impact.footprint.Footprint
    id_future: Future | None = None
    write_future: Future | None = None
    """The run's last write (its end, or the whole run); done when it is in the registry."""
    parent_uid: str | None = None
    """Set for a part: the uid of the enclosing run whose total already counts this energy."""

    @property
    def status(self) -> str:
        return self.row["status"]

    def recorded(self, timeout: float | None = WRITE_TIMEOUT_S) -> BaseException | None:
        """Wait until the run is in the registry; None when it is, else why it is not (never raises)."""
        if self.write_future is None:
            return None
        try:
            self.write_future.result(timeout)
        except FutureTimeout:
            return RegistryError(
                f"the registry did not answer within {timeout:g} s; the run is written when it does, "
                "unless this process ends first",
                cause="the registry did not answer in time (another process holds its lock?)",
            )
        except Exception as exc:
            return exc
        return None

    def run_id(self, timeout: float | None = 5.0) -> int | None:
        """The registry's integer id, once the background writer has inserted the run."""
        if self.id_future is None:
            return None
        try:
            return self.id_future.result(timeout)
        except Exception:  # the writer reports its own failures; no id to show then
            return None

    def summary(self) -> str:
        from .summary import summary_line

        line = summary_line(self)
        if self.parent_uid is not None:
            line += " · a part of the enclosing metered run, whose total counts it"
        return line


class Session:
    """Settings + meters + intensity + registry, resolved lazily and cached."""

    def __init__(self, settings: Settings | None = None, *, detection: Any = None) -> None:
        self._settings = settings if settings is not None else settings_mod.resolve()
        self._detection = detection
        self._intensity = None
        self._lock = threading.Lock()
        # ok runs of this session by fingerprints, until their write has succeeded (bounded)
        self._recent: collections.OrderedDict[tuple[str | None, ...], dict[str, Any]] = collections.OrderedDict()
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
                from .meters.detect import detect_meters

                self._detection = detect_meters(self._settings)
            return self._detection

    def intensity(self):
        with self._lock:
            if self._intensity is None:
                self._intensity = _resolve_intensity(self._settings)
            return self._intensity

    def writer(self):
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
    ) -> ActiveRun:
        """Prepare a run; ``start()`` it. ``fingerprints``: ``code_fingerprint``, ``inputs_fingerprint``
        and ``params_fingerprint`` (see ``registry.fingerprint``), recorded for sweeps and redundancy."""
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
            checkpoint_interval_s=self._settings.checkpoint_interval_s,
            **{k: (fingerprints or {}).get(k) for k in _FINGERPRINTS},
        )
        run = ActiveRun(self, intensity, row, on_sample)
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
        earlier = self._find_recorded(fingerprints, timeout_s)
        if earlier is not None:
            return earlier
        key = (self._settings.project, *(fingerprints[k] for k in _FINGERPRINTS))
        with self._lock:
            recent = self._recent.get(key)
        if recent is None:
            return None
        earlier = dict(recent)
        earlier["id"] = _result_or_none(earlier.pop("id_future"), timeout_s)
        return earlier if earlier["id"] is not None else None

    def _find_recorded(self, fingerprints: Mapping[str, str | None], timeout_s: float):
        from .registry.lookup import SqliteLookup, sqlite_file

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
            future = self.writer().submit_awaited(
                in_writer, "sweeps", "find_redundant", project=project, **fingerprints
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
        with self._lock:
            if key in self._recent:
                return
            self._recent[key] = earlier
            while len(self._recent) > MAX_UNRECORDED:
                self._recent.popitem(last=False)

        def forget(future: Future) -> None:
            if not future.cancelled() and future.exception() is None:
                with self._lock:
                    if self._recent.get(key) is earlier:
                        del self._recent[key]

        if result.write_future is not None:
            result.write_future.add_done_callback(forget)

    def _close_meters(self) -> None:
        with self._lock:
            if self._detection is not None:
                for meter in self._detection.meters:
                    meter.close()
            self._detection = None


def _result_or_none(future: Future | None, timeout_s: float) -> Any:
    if future is None:
        return None
    try:
        return future.result(timeout_s)
    except Exception:  # the writer reports its own failures
        return None


def in_writer(registry, module: str, function: str, *args: Any, **kwargs: Any) -> Any:
    """Call ``notebook_carbon.registry.<module>.<function>(registry, ...)`` on the writer thread.

    Submitted instead of the function itself so that its module, which imports SQLAlchemy, is
    imported by the writer thread and never on the notebook's path.
    """
    from importlib import import_module

    return getattr(import_module(f"notebook_carbon.registry.{module}"), function)(registry, *args, **kwargs)


def current_notebook() -> str | None:
    """The notebook this kernel runs, as Jupyter tells its kernels (``JPY_SESSION_NAME``), or None."""
    return os.environ.get("JPY_SESSION_NAME") or None


def _resolve_intensity(settings: Settings):
    from .impact.intensity import resolve_intensity

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
    from .meters.detect import host_info

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


class ActiveRun:
    """A run in progress: its window is measuring and its ``running`` record is being written."""

    def __init__(
        self, session: Session, intensity, row: dict[str, Any], on_sample: Callable[[Window], None] | None = None
    ) -> None:
        self.session = session
        self.window: Window  # set by Session.begin, which builds it with this run's sampler hook
        self.intensity = intensity
        self.row = row
        self.uid: str = row["uid"]
        self.id_future: Future | None = None
        self.parent_uid: str | None = None
        """The enclosing run's uid when this run started inside another of this process (a part)."""
        self.result: RunResult | None = None
        self._on_sample_user = on_sample
        self._checkpointed_at = 0.0
        self._write: Future | None = None
        self._closing: tuple[Any, ...] | None = None

    def start(self) -> ActiveRun:
        """Open the run: a part of the process's open run if there is one, else a ``running`` record.

        Registered as open before anything else, so whatever interrupts it from here on, ``finish``
        (which every caller reaches: post_run_cell always fires, ``track`` finishes on interrupt)
        closes it; an error here closes it at once.
        """
        with _open_lock:
            outer = next((run for run in _open_runs if run.parent_uid is None), None)
            _open_runs.append(self)
        try:
            if outer is not None:
                self.parent_uid = outer.uid
            else:
                self.id_future = self.session.writer().submit("start_run", dict(self.row))
            self.window.start()
        except Exception:
            self._forget()
            if self.window.started:
                self.window.stop()
            raise
        return self

    def _on_sample(self, window: Window) -> None:
        """Sampler hook: checkpoint the energy so far, first after ``FIRST_CHECKPOINT_S``, then every
        ``checkpoint_interval_s``, so a killed run keeps its energy up to shortly before the kill."""
        elapsed_s = window.elapsed_s()
        interval_s = self.session.settings.checkpoint_interval_s
        due = min(FIRST_CHECKPOINT_S, interval_s) if self._checkpointed_at == 0.0 else interval_s
        if self.parent_uid is None and self.result is None and elapsed_s - self._checkpointed_at >= due:
            self._checkpointed_at = elapsed_s
            self.session.writer().submit("checkpoint_run", self.uid, self._checkpoint_row(window, elapsed_s))
        if self._on_sample_user is not None:
            self._on_sample_user(window)

    def _checkpoint_row(self, window: Window, elapsed_s: float) -> dict[str, Any]:
        from .impact.footprint import footprint

        by_component = window.energy_so_far_j()
        energy_j = sum(by_component.values())
        settings = self.session.settings
        fp = footprint(
            energy_j, pue=settings.pue, intensity=self.intensity, wue_l_per_kwh=settings.wue_l_per_kwh
        )
        row: dict[str, Any] = {
            "energy_j": energy_j,
            "emissions_g": fp.emissions_g,
            "water_l": fp.water_l,
            "embodied_g": _embodied(settings, self.row["gpu_count"], elapsed_s).embodied_g,
            "duration_s": elapsed_s,
        }
        for component, method in window.methods().items():
            row[f"{component}_energy_j"] = by_component.get(component, 0.0)
            row[f"{component}_method"] = method  # a crashed run still says how its energy was obtained
        return row

    def finish(self, status: str = "ok", error: BaseException | str | None = None) -> RunResult:
        """Stop measuring and hand the record to the writer (``result.recorded()`` waits for it).

        Idempotent: a second call returns the first result. An interrupt while finishing does not
        leave the run half closed: the steps already done are not repeated, the rest is completed,
        and the interrupt is raised again.
        """
        if self.result is not None:
            return self.result
        if status not in STATUSES[1:]:
            raise ValueError(f"status must be one of {STATUSES[1:]}, got {status!r}")
        try:
            return self._finish(status, error)
        except KeyboardInterrupt:
            if self.result is None:
                self._finish(status, error)
            raise

    def _finish(self, status: str, error: BaseException | str | None) -> RunResult:
        if self._closing is None:
            self._closing = self._final_record(self._measure(), status, error)
        row, measurement, fp, components, samples = self._closing
        if self._write is None:
            self._write = self._submit(row, components, samples)
        self._forget()
        self.result = RunResult(self.uid, row, measurement, fp, self.id_future, self._write, self.parent_uid)
        self.session._remember(self.result)
        return self.result

    def _measure(self) -> Measurement:
        if self.window.started:
            return self.window.stop()
        now = time.time()  # interrupted before its window opened: a run of no measured energy
        return Measurement(now, now, 0.0, (), (), ("not measured: interrupted as it started",))

    def _final_record(self, measurement: Measurement, status: str, error: BaseException | str | None) -> tuple:
        from .impact.footprint import footprint

        settings = self.session.settings
        wue = settings.wue_l_per_kwh
        fp = footprint(measurement.energy_j, pue=settings.pue, intensity=self.intensity, wue_l_per_kwh=wue)
        # the run reserved the machine for its duration (SCI time-share, resource share 1)
        embodied = _embodied(settings, self.row["gpu_count"], measurement.duration_s)
        by_component = measurement.by_component()
        row = dict(self.row)
        row.update(
            status=status,
            error=_error_text(error),
            ended_at=measurement.ended_at,
            duration_s=measurement.duration_s,
            energy_j=measurement.energy_j,
            emissions_g=fp.emissions_g,
            water_l=fp.water_l,
            embodied_g=embodied.embodied_g,
            notes=list(measurement.notes)
            + [f"{c.component} {c.device}: {c.degraded}" for c in measurement.components if c.degraded]
            + [_embodied_note(embodied)],
        )
        for component in ("gpu", "cpu", "ram"):
            energy_j, method = by_component.get(component, (None, "none"))
            row[f"{component}_energy_j"] = energy_j
            row[f"{component}_method"] = method
        components = [
            {
                "component": c.component,
                "device": c.device,
                "method": c.method,
                "energy_j": c.energy_j,
                "reason": c.reason,
                "degraded": c.degraded,
            }
            for c in measurement.components
        ]
        samples = [dataclasses.asdict(s) for s in measurement.samples]
        return row, measurement, fp, components, samples

    def _submit(self, row: dict[str, Any], components: list, samples: list) -> Future:
        writer = self.session.writer()
        if self.parent_uid is not None:
            part = {k: row.get(k) for k in _PART_FIELDS}
            part["parent_uid"] = self.parent_uid
            return writer.submit_awaited(in_writer, "parts", "record_part", part)
        final = {k: v for k, v in row.items() if k != "uid"}
        if self.id_future is None:  # interrupted before its start was queued: the whole run at once
            return writer.submit_awaited("record_run", dict(self.row), final, components, samples)
        return writer.submit_awaited("finish_run", self.uid, final, components, samples)

    def _forget(self) -> None:
        with _open_lock:
            if self in _open_runs:
                _open_runs.remove(self)


_PART_FIELDS = (
    "uid", "name", "sweep", "tags", "params", "status", "error", "started_at", "ended_at", "duration_s",
    "energy_j", "gpu_energy_j", "cpu_energy_j", "ram_energy_j", "gpu_method", "cpu_method", "ram_method",
    "emissions_g", "pid", "notes",
)


def _embodied(settings: Settings, gpu_count: int, reserved_s: float):
    """The run's share of its hardware's embodied emissions (``impact.embodied.Embodied``)."""
    from .impact.embodied import embodied

    return embodied(
        reserved_s,
        hardware=settings.hardware,
        gpu_count=gpu_count,
        embodied_kg=settings.embodied_kg,
        lifetime_years=settings.lifetime_years,
        reused=settings.reused_hardware,
        has_battery=settings.hardware == "auto" and _has_battery(),
    )


def _embodied_note(e) -> str:
    """One short line per run on how its ``embodied_g`` was obtained (sources: docs/methods.md)."""
    gpus = f" with {e.gpu_count} GPU{'' if e.gpu_count == 1 else 's'}" if e.gpu_count else ""
    what = "user-provided" if e.user_total else e.hardware + gpus
    note = f"embodied: {what}, {e.total_kg:g} kg CO2e amortised over {e.lifetime_years:g} years"
    note += " (SCI time-share)"
    if e.reused:
        note += "; reused hardware: none attributed"
    return note + (f"; {e.hardware_reason}" if e.hardware_reason else "")


@functools.cache
def _has_battery() -> bool:
    """Whether this machine runs on a battery (a laptop), for ``hardware = "auto"``; read once."""
    try:
        import psutil

        return psutil.sensors_battery() is not None
    except (AttributeError, NotImplementedError, OSError):  # no battery API here, or unreadable: no laptop
        return False


MAX_ERROR_CHARS = 2000


def _error_text(error: BaseException | str | None) -> str | None:
    """How a run failed, as it can be stored anywhere: NUL shown as ``\\x00``, at most 2,000 characters."""
    if error is None:
        return None
    if isinstance(error, str):
        text = error
    else:
        try:
            message = str(error)
        except Exception:  # an exception whose __str__ fails must not lose the run
            message = "(its message could not be read)"
        text = f"{type(error).__name__}: {message}" if message else type(error).__name__
    text = text.replace("\x00", "\\x00")
    return text if len(text) <= MAX_ERROR_CHARS else text[: MAX_ERROR_CHARS - 1] + "\u2026"

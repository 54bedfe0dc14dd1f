"""What the magic and ``track()`` share: settings, meters, grid intensity and the registry writer.

A ``Session`` detects the meters and resolves the grid intensity once, on first use (never at
import), and hands out ``ActiveRun`` objects: each opens a measurement window, writes the run to
the registry as ``running`` at once, and on ``finish`` computes the footprint and completes the
record. Registry writes go through a background writer so that a metered one-line cell never waits
for SQLAlchemy to import or for the disk.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future
from typing import Any

from . import settings as settings_mod
from .errors import ConfigError, RegistryError
from .measure import Measurement, Window
from .settings import Settings

STATUSES = ("running", "ok", "failed", "interrupted", "crashed")

# Settings whose change means the hardware must be probed again.
_METER_SETTINGS = ("powercap_root", "gpu", "cpu_tdp_w", "ram_w_per_gb", "attribution")
_INTENSITY_SETTINGS = ("region", "intensity_g_per_kwh")
_FINGERPRINTS = ("code_fingerprint", "inputs_fingerprint", "params_fingerprint")

_writers: dict[str, Any] = {}
_writers_lock = threading.Lock()


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

    @property
    def status(self) -> str:
        return self.row["status"]

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

        return summary_line(self)

    def as_earlier(self) -> dict[str, Any] | None:
        """This run as ``find_redundant`` describes an earlier identical run (None if never written)."""
        run_id = self.run_id(timeout=5.0)
        if run_id is None:
            return None
        row = self.row
        return {
            "id": run_id, "uid": self.uid, "name": row.get("name"), "started_at": row["started_at"],
            "ended_at": row.get("ended_at"), "energy_j": row.get("energy_j"),
            "emissions_g": row.get("emissions_g"), "repeats": None,
        }


class Session:
    """Settings + meters + intensity + registry, resolved lazily and cached."""

    def __init__(self, settings: Settings | None = None, *, detection: Any = None) -> None:
        self._settings = settings if settings is not None else settings_mod.resolve()
        self._detection = detection
        self._intensity = None
        self._lock = threading.Lock()
        self._recent: dict[tuple[str | None, ...], RunResult] = {}  # ok runs of this session by fingerprints
        self._lookups: dict[str, Any] = {}

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
        row = _start_row(self, detection, intensity, notes)
        row.update(
            name=name,
            sweep=sweep,
            params=dict(params or {}),
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
        return recent.as_earlier() if recent is not None else None

    def _find_recorded(self, fingerprints: Mapping[str, str | None], timeout_s: float):
        from .registry.lookup import SqliteLookup, sqlite_file

        location, project = self._settings.registry_location(), self._settings.project
        try:
            path = sqlite_file(location)
            if path is not None:
                with self._lock:
                    lookup = self._lookups.get(location)
                    if lookup is None:
                        lookup = self._lookups[location] = SqliteLookup(path)
                return lookup.find_redundant(project=project, **fingerprints)
            future = self.writer().submit(in_writer, "sweeps", "find_redundant", project=project, **fingerprints)
            return future.result(timeout_s)
        except RegistryError:
            return None  # e.g. an unreadable registry: the magic reports it once, with the writes'

    def _remember(self, result: RunResult) -> None:
        """Keep the first ok run of each fingerprint, for redundancy checks before it is written."""
        row = result.row
        if result.status == "ok" and all(row.get(k) for k in _FINGERPRINTS):
            key = (row["project"], *(row[k] for k in _FINGERPRINTS))
            with self._lock:
                self._recent.setdefault(key, result)

    def _close_meters(self) -> None:
        with self._lock:
            if self._detection is not None:
                for meter in self._detection.meters:
                    meter.close()
            self._detection = None


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
        self.result: RunResult | None = None
        self._on_sample_user = on_sample
        self._checkpointed_at = 0.0

    def start(self) -> ActiveRun:
        self.id_future = self.session.writer().submit("start_run", dict(self.row))
        self.window.start()
        return self

    def _on_sample(self, window: Window) -> None:
        """Sampler hook: checkpoint the energy so far every ``checkpoint_interval_s``."""
        elapsed_s = window.elapsed_s()
        if elapsed_s - self._checkpointed_at >= self.session.settings.checkpoint_interval_s:
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
        """Stop measuring and complete the record. Idempotent: a second call returns the first result."""
        if self.result is not None:
            return self.result
        if status not in STATUSES[1:]:
            raise ValueError(f"status must be one of {STATUSES[1:]}, got {status!r}")
        measurement = self.window.stop()
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
        final = {k: v for k, v in row.items() if k not in ("uid",)}
        self.session.writer().submit("finish_run", self.uid, final, components, samples)
        self.result = RunResult(self.uid, row, measurement, fp, self.id_future)
        self.session._remember(self.result)
        return self.result


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


def _error_text(error: BaseException | str | None) -> str | None:
    if error is None or isinstance(error, str):
        return error
    message = str(error)
    return f"{type(error).__name__}: {message}" if message else type(error).__name__

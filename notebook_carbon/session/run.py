"""A run in progress (``ActiveRun``) and a finished one (``RunResult``).

``ActiveRun.start`` opens the run: a part of the process's open run if there is one (its energy is
inside that run's), else a ``running`` record queued for the registry; then its window starts.
``stop_window`` ends the measurement when the run's code ends (the magic: before IPython renders a
failing cell's traceback); ``finish`` stops it if not done, computes the footprint and hands the
record to the writer; ``RunResult.recorded`` waits until the registry has it. Both survive a
``KeyboardInterrupt`` at any point (see the package docstring). At both edges of the window the GPU
work queued by torch, JAX or CuPy is waited for (``meters.frameworks``).
"""

from __future__ import annotations

import dataclasses
import sys
import threading
import time
import types
from collections.abc import Callable, Mapping
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from typing import TYPE_CHECKING, Any

from ..errors import RegistryError
from ..measure import Measurement, Window
from ..meters.frameworks import synchronize_gpu_work
from . import state
from .job import job_run_id, metrics_run_of
from .figures import embodied_note, embodied_share, error_text, water_note

if TYPE_CHECKING:
    from . import Session

STATUSES = ("running", "ok", "failed", "interrupted", "crashed")

WRITE_TIMEOUT_S = 45.0
"""How long a run's end waits for its write: the registry's busy timeout (30 s), then some."""
MAX_UNRECORDED = 256
"""Runs kept in memory for redundancy checks while their write has not succeeded (it usually has)."""
FIRST_CHECKPOINT_S = 1.0
"""A run is first checkpointed this soon, so a kernel killed early still leaves its energy."""


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
    job: Any = None
    """The ``record.Job`` this run is a rank's block of (its ``run_id`` is the job's run), or None."""

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
        state.recorded_again()
        return None

    def run_id(self, timeout: float | None = 5.0) -> int | None:
        """The registry's integer id, once the background writer has inserted the run."""
        if self.id_future is None:
            return None
        try:
            return self.id_future.result(timeout)
        except Exception:  # the writer reports its own failures; no id to show then
            return None

    def metrics_run(self) -> int | str:
        """The run its metrics are recorded for (``registry.metrics``): its own; for a block metered
        inside another run, that run (which counts its energy); for a rank's block, its job's run."""
        return metrics_run_of(self.parent_uid, self.job, self.uid, self.run_id)

    def summary(self) -> str:
        from .line import summary_line

        line = summary_line(self)
        if self.parent_uid is not None:
            line += " · a part of the enclosing metered run, whose total counts it"
        elif self.job is not None:
            run_id = self.run_id(0)
            line += f" · {self.job.describe()}" + (f", run {run_id} with the job's other parts" if run_id else "")
        return line


class ActiveRun:
    """A run in progress: its window is measuring and its ``running`` record is being written."""

    def __init__(
        self, session: Session, intensity, row: dict[str, Any], on_sample: Callable[[Window], None] | None = None,
        job: Any = None,
    ) -> None:
        self.session = session
        self.job = job  # a ``record.Job``: this run is a part of the job's run (``session.job``)
        self._job_part: Any = None
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
        self._thread: int | None = None
        self._anchor: int | None = None  # id of the frame whose block this run meters, while it runs
        self._closing: tuple[Any, ...] | None = None
        self._end_synchronized = False
        self._sync_notes: list[str] = []  # GPU work that could not be waited for at an edge

    def start(self, anchor: types.FrameType | None = None) -> ActiveRun:
        """Open the run: a part of the process's open run if there is one, else a ``running`` record.

        First the wait for the GPU work queued before it (an interrupt there leaves it unregistered,
        so no run takes it for its enclosing run); then it is registered as open, so whatever
        interrupts it from there on, ``finish`` (which every caller reaches: post_run_cell always
        fires, ``track`` finishes on interrupt) closes it; an error here closes it at once.
        """
        self._synchronize("start")
        thread = threading.get_ident()
        self._anchor = id(anchor) if anchor is not None else None
        with state._open_lock:
            mine = [run for run in state._open_runs if run._thread == thread]
            stale = _left_open(mine) if mine else []
            outer = next((run for run in mine if run not in stale and self._inside(run, thread)), None)
            self._thread = thread
            state._open_runs.append(self)
        for run in stale:  # an interrupt at the very entry of its block's exit kept it open
            run.finish("interrupted", "left open by an interrupt; closed when the next run started")
        try:
            if outer is not None:
                self.parent_uid = outer.uid
            elif self.job is not None:
                from .job import JobPart

                self._job_part = JobPart(self.job, self.row, self.session.settings.checkpoint_interval_s)
                self.id_future = self._job_part.start(self.session.writer())
            else:
                self.id_future = self.session.writer().start_run(dict(self.row))
            self.window.start()
        except BaseException:  # an interrupt too: a run whose window did not start takes in no block as its part
            self._forget()
            if self.window.started:
                self.window.stop()
            raise
        return self

    def _inside(self, run: ActiveRun, thread: int) -> bool:
        """Whether this run, starting now on ``thread``, runs inside open ``run``: same thread (a block
        of another thread runs beside it, not inside), same registry and project, ``run`` not a part."""
        return (
            run.parent_uid is None
            and run._thread == thread
            and run.row["project"] == self.row["project"]
            and run.session.settings.registry_location() == self.session.settings.registry_location()
        )

    def _on_sample(self, window: Window) -> None:
        """Sampler hook: checkpoint the energy so far, first after ``FIRST_CHECKPOINT_S``, then every
        ``checkpoint_interval_s``, so a killed run keeps its energy up to shortly before the kill."""
        elapsed_s = window.elapsed_s()
        interval_s = self.session.settings.checkpoint_interval_s
        due = min(FIRST_CHECKPOINT_S, interval_s) if self._checkpointed_at == 0.0 else interval_s
        if self.parent_uid is None and self.result is None and elapsed_s - self._checkpointed_at >= due:
            self._checkpointed_at = elapsed_s
            if self._job_part is not None:
                self._job_part.checkpoint(self.session.writer(), self.uid, self._checkpoint_row(window, elapsed_s), window)
            else:
                self.session.writer().checkpoint_run(self.uid, self._checkpoint_row(window, elapsed_s))
        if self._on_sample_user is not None:
            self._on_sample_user(window)

    def _checkpoint_row(self, window: Window, elapsed_s: float) -> dict[str, Any]:
        from ..impact.footprint import footprint

        window.read_now(meters=False)  # a checkpoint charges the run's share so far, as its end will
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
            "embodied_g": embodied_share(settings, self.row["gpu_count"], elapsed_s,
                                         **_gpus(window.devices_so_far())).embodied_g,
            "duration_s": elapsed_s,
        }
        devices = window.devices_so_far()
        if any(d["share"] is not None for d in devices):  # a killed run still says it was charged a share, and of what
            row["machine_energy_j"] = sum(d["energy_j"] if d["share"] is None else d["machine_energy_j"] for d in devices)
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
        job = self.job if self._job_part is not None else None
        self.result = RunResult(self.uid, row, measurement, fp, self.id_future, self._write, self.parent_uid, job)
        self.session._remember(self.result)
        for listener in state.finish_listeners:  # an active MLflow or W&B run takes its figures (last:
            listener(self.result)  # an interrupt in it leaves the run's own bookkeeping done)
        return self.result

    def log(self, values: Mapping[str, float] | None = None, /, *, step: int | None = None, **more: float) -> Future:
        """Record metrics of this run (``run.log(acc=0.93)``), checked now (``ConfigError``) and
        written after the run's own writes, for ``RunResult.metrics_run``'s run; ``step``: a training
        loop's. The write's future (its result: the run's uid)."""
        from ..registry.metrics import check_metrics

        checked = check_metrics({**(values or {}), **more}, step)
        job_run = lambda: job_run_id(self.id_future)  # noqa: E731
        target = metrics_run_of(self.parent_uid, self.job, self.uid, job_run)
        for listener in state.step_listeners if step is not None else ():  # an active MLflow or W&B run
            listener(self, step)
        return self.session.writer().log_metrics(target, checked, step)

    def stop_window(self) -> None:
        """End the measurement now, once the GPU work queued so far has finished: the run's code has
        ended, though its record is completed later (``finish`` records this measurement). Idempotent.
        """
        if not self.window.running:
            return
        if not self._end_synchronized:
            self._end_synchronized = True  # once: after an interrupt in the wait, the window stops without it
            self._synchronize("end")
        self.window.stop()

    def _synchronize(self, edge: str) -> None:
        for problem in synchronize_gpu_work():
            self._sync_notes.append(f"GPU work not waited for at the window's {edge}: {problem}")

    def _measure(self) -> Measurement:
        if self.window.started:
            self.stop_window()
            return self.window.stop()  # the measurement it made (stop is idempotent)
        now = time.time()  # interrupted before its window opened: a run of no measured energy
        return Measurement(now, now, 0.0, (), (), ("not measured: interrupted as it started",))

    def _final_record(self, measurement: Measurement, status: str, error: BaseException | str | None) -> tuple:
        from ..impact.footprint import footprint

        settings = self.session.settings
        wue = settings.wue_l_per_kwh
        fp = footprint(measurement.energy_j, pue=settings.pue, intensity=self.intensity, wue_l_per_kwh=wue)
        # the run reserved the machine for its duration (SCI time-share, resource share 1)
        embodied = embodied_share(settings, self.row["gpu_count"], measurement.duration_s,
                                  **_gpus([dataclasses.asdict(c) for c in measurement.components]))
        by_component = measurement.by_component()
        row = dict(self.row)
        row.update(
            status=status,
            error=error_text(error),
            ended_at=measurement.ended_at,
            duration_s=measurement.duration_s,
            energy_j=measurement.energy_j,
            emissions_g=fp.emissions_g,
            water_l=fp.water_l,
            embodied_g=embodied.embodied_g,
            notes=list(measurement.notes)
            + self._sync_notes
            + [f"{c.component} {c.device}: {c.degraded}" for c in measurement.components if c.degraded]
            + [embodied_note(embodied)]
            + ([water] if (water := water_note(settings)) else []),
        )
        for component in ("gpu", "cpu", "ram"):
            energy_j, method = by_component.get(component, (None, "none"))
            row[f"{component}_energy_j"] = energy_j
            row[f"{component}_method"] = method
        if any(c.share is not None for c in measurement.components):  # charged a share: what the devices drew
            row["machine_energy_j"] = measurement.machine_energy_j()
        components = [
            {
                "component": c.component,
                "device": c.device,
                "method": c.method,
                "energy_j": c.energy_j,
                "reason": c.reason,
                "degraded": c.degraded,
                "machine_energy_j": c.machine_energy_j,
                "share": c.share,
                "share_how": c.share_how,
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
            return writer.record_part(part, awaited=True)
        if self._job_part is not None:
            return self._job_part.finish(writer, row, self._closing[1], samples)
        final = {k: v for k, v in row.items() if k != "uid"}
        if self.id_future is None:  # interrupted before its start was queued: the whole run at once
            return writer.record_run(dict(self.row), final, components, samples, awaited=True)
        # With its start row: if the start could not be written (a lock held too long, a server
        # restarting), the end writes the whole run rather than fail for want of it.
        return writer.finish_run(self.uid, final, components, samples, dict(self.row), awaited=True)

    def _forget(self) -> None:
        with state._open_lock:
            if self in state._open_runs:
                state._open_runs.remove(self)


def _gpus(devices: list[dict[str, Any]]) -> dict[str, int | None]:
    """The GPUs a run used (charged some of, or whole) of those on its host: its resource share.
    Where ``CUDA_VISIBLE_DEVICES`` hides some, the GPUs seen are not the host's: no GPU count is
    given, and the share falls to the CPUs the process may use."""
    import os

    gpus = [d for d in devices if d["component"] == "gpu"]
    used = sum(1 for d in gpus if d["share"] is None or d["share"] > 0)
    hidden = os.environ.get("CUDA_VISIBLE_DEVICES") is not None
    return {"gpus_used": used, "gpus_total": None if hidden or not gpus else len(gpus)}


def close_left_open() -> None:
    """Finish this thread's runs whose block has ended without closing them (an interrupt at the
    very entry of a block's exit): the magic calls it after every cell, so none meters past its cell."""
    thread = threading.get_ident()
    with state._open_lock:
        mine = [run for run in state._open_runs if run._thread == thread]
        stale = _left_open(mine) if mine else []
    for run in stale:
        run.finish("interrupted", "left open by an interrupt; closed at the end of its cell")


def _left_open(runs: list[ActiveRun]) -> list[ActiveRun]:
    """The runs of this thread whose block has ended (its frame is no longer on the stack)."""
    live = set()
    frame = sys._getframe(2)
    while frame is not None:
        live.add(id(frame))
        frame = frame.f_back
    return [run for run in runs if run._anchor is not None and run._anchor not in live]


_PART_FIELDS = (
    "uid", "name", "sweep", "tags", "params", "status", "error", "started_at", "ended_at", "duration_s",
    "energy_j", "gpu_energy_j", "cpu_energy_j", "ram_energy_j", "gpu_method", "cpu_method", "ram_method",
    "emissions_g", "pid", "notes",
)

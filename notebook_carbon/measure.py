"""A measurement window: start the meters and one sampler thread, stop -> ``Measurement``.

The sampler thread reads every meter each ``interval_s`` seconds. For counter meters (RAPL, NVML
energy) that read is what keeps a wrap from being missed; for power-only sensors it is the sample
that gets integrated. Stopping sets an event the thread waits on, so it never waits out an interval.

A meter that raises ``MeterError`` mid-window is marked degraded with the reason and keeps the
energy it had accumulated through its last good read; the other meters and the cell carry on.
"""

from __future__ import annotations

import dataclasses
import math
import os
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from .errors import MeterError
from .meters.base import COMPONENTS, EnergyMeter
from .meters.shares import WHOLE, Share


@dataclasses.dataclass(frozen=True)
class ComponentEnergy:
    """Energy of one meter over a window."""

    component: str
    device: str
    method: str
    energy_j: float
    model: str | None = None
    reason: str | None = None
    """Why this method stands in for a better one, if it does."""
    degraded: str | None = None
    """Why the meter stopped mid-window; ``energy_j`` then counts up to its last good read."""
    machine_energy_j: float | None = None
    """What the whole device drew in the window, of which ``energy_j`` is the run's ``share``;
    None when the run is charged the whole device (``attribution = "machine"``)."""
    share: float | None = None
    """The run's fraction of ``machine_energy_j`` (``meters.shares``), None with it."""
    share_how: str | None = None
    """How ``share`` was obtained, in words and figures; or why the whole device was charged."""
    device_id: str | None = None  # the meter's ``device_id``: the device in every process that sees it


@dataclasses.dataclass(frozen=True)
class PowerSample:
    """Average power of one meter between two sampler reads; ``t_s`` is the end of that interval."""

    t_s: float
    component: str
    device: str
    power_w: float


@dataclasses.dataclass(frozen=True)
class Measurement:
    """What a window measured. Times: ``started_at``/``ended_at`` UTC epoch seconds."""

    started_at: float
    ended_at: float
    duration_s: float
    components: tuple[ComponentEnergy, ...]
    samples: tuple[PowerSample, ...]
    notes: tuple[str, ...] = ()

    @property
    def energy_j(self) -> float:
        return sum(c.energy_j for c in self.components)

    def component_energy_j(self, component: str) -> float | None:
        """Total joules of one component, or None when no meter covered it."""
        parts = [c.energy_j for c in self.components if c.component == component]
        return sum(parts) if parts else None

    def machine_energy_j(self, component: str | None = None) -> float | None:
        """What the devices drew in the window (of one component, or of all), the run's share of
        it or not; None when no meter covered it."""
        parts = [c for c in self.components if component is None or c.component == component]
        if not parts:
            return None
        return sum(c.energy_j if c.machine_energy_j is None else c.machine_energy_j for c in parts)

    def component_method(self, component: str) -> str:
        """The method of a component; several different methods are joined with ``+``."""
        methods = sorted({c.method for c in self.components if c.component == component})
        return "+".join(methods) if methods else "none"

    def by_component(self) -> dict[str, tuple[float, str]]:
        """``{component: (energy_j, method)}`` in display order (gpu, cpu, ram)."""
        return {
            name: (self.component_energy_j(name) or 0.0, self.component_method(name))
            for name in COMPONENTS
            if any(c.component == name for c in self.components)
        }


@dataclasses.dataclass
class _Track:
    meter: EnergyMeter
    state: Any
    last_t: float
    energy_j: float = 0.0
    power_w: float | None = None
    degraded: str | None = None
    share_state: Any = None
    share_failed: str | None = None  # why the rule could not follow the window: the whole device charged
    fraction: float = 1.0  # the run's share so far (at the last sampler read): what energy_so_far_j charges

    @property
    def rule(self) -> Any:
        return self.meter.share_rule if self.share_failed is None else None


class Window:
    """One measurement window over a fixed set of meters. Use once: ``start()`` then ``stop()``."""

    def __init__(
        self,
        meters: Sequence[EnergyMeter],
        *,
        interval_s: float = 1.0,
        notes: Sequence[str] = (),
        on_sample: Callable[[Window], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._meters = tuple(meters)
        self._interval_s = interval_s
        self._notes = tuple(notes)
        self._on_sample = on_sample
        self._clock = clock
        self._tracks: list[_Track] = []
        self._samples: list[PowerSample] = []
        self._lock = threading.Lock()  # guards the figures that readers on other threads see
        self._tick_lock = threading.Lock()  # serialises sampler reads with stop()
        self._started = False
        self._stopped = False
        self._t0 = 0.0
        self._started_at = 0.0
        self._result: Measurement | None = None
        self.callback_error: BaseException | None = None
        """The exception that stopped ``on_sample`` being called, if one did."""

    @property
    def running(self) -> bool:
        return self._started and self._result is None

    @property
    def started(self) -> bool:
        return self._started

    @property
    def interval_s(self) -> float:
        return self._interval_s

    def start(self) -> Window:
        if self._started:
            raise RuntimeError("a Window is used once; create a new one")
        self._started = True
        self._started_at = time.time()
        self._t0 = self._clock()
        for meter in self._meters:
            track = _Track(meter, None, self._t0)
            try:
                track.state = meter.begin(self._t0)
            except MeterError as exc:
                track.degraded = f"could not start: {exc}"
            if track.rule is not None:
                try:
                    track.share_state = track.rule.begin(self._t0)
                except Exception as exc:  # noqa: BLE001 - a share not read never stops the measurement
                    track.share_failed = _unreadable(exc)
            self._tracks.append(track)
        _SAMPLER.add(self)
        return self

    def elapsed_s(self) -> float:
        return self._clock() - self._t0

    def energy_so_far_j(self) -> dict[str, float]:
        """Joules per component through the last read (the sampler's or ``read_now``), the run's
        share of them as of that read: for checkpoints, live views and reports."""
        return self._charged("energy_j")

    def devices_so_far(self) -> list[dict[str, Any]]:
        """Per device through the sampler's last read: its method, what it drew (``machine_energy_j``;
        None when the run is charged the whole device) and the run's ``share`` of it (``energy_j``)."""
        with self._lock:
            return [{"component": t.meter.component, "device": t.meter.device, "method": t.meter.method,
                     "energy_j": t.energy_j * t.fraction, "share": None if t.meter.share_rule is None else t.fraction,
                     "machine_energy_j": None if t.meter.share_rule is None else t.energy_j,
                     "device_id": t.meter.device_id} for t in self._tracks]  # fmt: skip

    def _refresh_shares(self, now: float) -> None:
        for track in self._tracks:
            if track.rule is not None and track.share_state is not None:
                try:
                    fraction = track.rule.share(track.share_state, now, track.energy_j, now - self._t0).fraction
                except Exception:  # noqa: BLE001 - the end says why; the measurement goes on
                    continue
                with self._lock:
                    track.fraction = fraction

    def methods(self) -> dict[str, str]:
        """``{component: method}``, several methods of one component joined with ``+`` (as ``Measurement``)."""
        found: dict[str, set[str]] = {}
        for meter in self._meters:
            found.setdefault(meter.component, set()).add(meter.method)
        return {component: "+".join(sorted(methods)) for component, methods in found.items()}

    def latest_power_w(self) -> dict[str, float]:
        """Watts per component from the sampler's last read, the run's share of them."""
        return self._charged("power_w")

    def _charged(self, figure: str) -> dict[str, float]:
        with self._lock:
            totals: dict[str, float] = {}
            for track in self._tracks:
                value = getattr(track, figure)
                if value is not None:
                    totals[track.meter.component] = totals.get(track.meter.component, 0.0) + value * track.fraction
            return totals

    def read_now(self, *, meters: bool = True) -> bool:
        """Read every meter (unless not ``meters``) and each rule's share so far now, as a sampler read
        does, so ``energy_so_far_j`` is as of now (a report a budget judges); False once stopping."""
        with self._tick_lock:
            if self._stopped:
                return False
            now = self._clock()
            if meters:
                self._read_all(now)
            self._refresh_shares(now)  # live views and checkpoints charge the share so far
        return True

    def _tick(self) -> None:
        """One sampler read, on the sampler thread; never after ``stop`` has begun."""
        if self.read_now() and self._on_sample is not None:
            try:
                self._on_sample(self)
            except Exception as exc:  # a live view failing stops updating; the measurement goes on
                self.callback_error = exc
                self._on_sample = None

    def _read_all(self, now: float) -> None:
        for track in self._tracks:
            if track.degraded is not None:
                continue
            try:
                power_w = track.meter.update(track.state, now)
            except MeterError as exc:
                track.degraded = f"stopped at {now - self._t0:.1f} s: {exc}"
                continue
            except Exception as exc:  # a bug in a backend must not stop the shared sampler thread
                track.degraded = f"stopped at {now - self._t0:.1f} s by an error: {type(exc).__name__}: {exc}"
                continue
            if track.rule is not None and track.share_state is not None:
                try:
                    track.rule.update(track.share_state, now)
                except Exception as exc:  # noqa: BLE001 - a share not read never stops the measurement
                    track.share_failed = _unreadable(exc)
            with self._lock:
                if power_w is not None:
                    track.energy_j += power_w * (now - track.last_t)
                    track.power_w = power_w
                    self._samples.append(
                        PowerSample(now - self._t0, track.meter.component, track.meter.device, power_w)
                    )
                track.last_t = now

    def stop(self) -> Measurement:
        """Stop the sampler (at once) and close every meter. Idempotent."""
        if self._result is not None:
            return self._result
        if not self._started:
            raise RuntimeError("stop() before start()")
        with self._tick_lock:  # waits for a read in progress; none starts after this
            self._stopped = True
        _SAMPLER.remove(self)
        now = self._clock()
        components = []
        for track in self._tracks:
            energy_j = track.energy_j
            if track.degraded is None:
                try:
                    energy_j = track.meter.end(track.state, now)
                except MeterError as exc:
                    track.degraded = f"final read failed: {exc}"
            meter = track.meter
            machine_j = max(energy_j, 0.0)
            share = self._share(track, now, machine_j, now - self._t0)
            components.append(
                ComponentEnergy(
                    component=meter.component,
                    device=meter.device,
                    method=meter.method,
                    energy_j=machine_j if share is None else machine_j * share.fraction,
                    model=meter.model,
                    reason=meter.reason,
                    degraded=track.degraded,
                    machine_energy_j=None if share is None else machine_j,
                    share=None if share is None else share.fraction,
                    share_how=None if share is None else share.how,
                    device_id=meter.device_id,
                )
            )
        duration_s = now - self._t0
        self._result = Measurement(
            started_at=self._started_at,
            ended_at=self._started_at + duration_s,
            duration_s=duration_s,
            components=tuple(components),
            samples=tuple(self._samples),
            notes=self._notes,
        )
        return self._result

    @staticmethod
    def _share(track: _Track, now: float, energy_j: float, duration_s: float) -> Share | None:
        """The run's ``Share`` of the track's device; None: no rule (``attribution = "machine"``)."""
        if track.meter.share_rule is None:
            return None
        if track.share_failed is None and track.share_state is not None:
            try:
                return track.rule.share(track.share_state, now, energy_j, duration_s)
            except Exception as exc:  # noqa: BLE001
                track.share_failed = _unreadable(exc)
        return Share(1.0, track.share_failed or "its share could not be read", fallback=WHOLE)


def _unreadable(exc: Exception) -> str:  # why a share rule charges the whole device
    return f"its share could not be read ({type(exc).__name__}: {exc})"


class _Sampler:
    """One daemon thread that reads every open window when its interval is due.

    Shared rather than one thread per window: starting and joining a thread for every cell cost
    about half a millisecond, most of a quick cell's overhead. The thread starts with the first
    window (never at import), sleeps without a timeout while no window is open, and wakes early
    only when a window due sooner than its current deadline is added.
    """

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._due: dict[Window, float] = {}
        self._deadline = math.inf
        self._thread: threading.Thread | None = None
        self._pid = os.getpid()

    def add(self, window: Window) -> None:
        due = time.monotonic() + window.interval_s
        with self._cond:
            if self._thread is None or self._pid != os.getpid():  # a forked child has no thread
                self._pid = os.getpid()
                self._thread = threading.Thread(target=self._run, name="notebook-carbon-sampler", daemon=True)
                self._thread.start()
            self._due[window] = due
            if due < self._deadline:
                self._cond.notify()

    def remove(self, window: Window) -> None:
        with self._cond:
            self._due.pop(window, None)

    def open_windows(self) -> int:
        with self._cond:
            return len(self._due)

    def _forget_parent(self) -> None:
        """In a forked child: the parent's windows are not open here, and its lock may be held."""
        self._cond = threading.Condition()
        self._due = {}
        self._deadline = math.inf
        self._thread = None
        self._pid = os.getpid()

    def _run(self) -> None:
        while True:
            with self._cond:
                while True:
                    now = time.monotonic()
                    ready = [w for w, due in self._due.items() if due <= now]
                    if ready:
                        for window in ready:
                            self._due[window] = now + window.interval_s
                        self._deadline = math.inf
                        break
                    self._deadline = min(self._due.values(), default=math.inf)
                    self._cond.wait(None if self._deadline == math.inf else self._deadline - now)
            for window in ready:  # outside the lock: a slow sensor must not block add/remove
                window._tick()


_SAMPLER = _Sampler()
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_SAMPLER._forget_parent)

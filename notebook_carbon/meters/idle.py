"""The machine's idle power, per device: what ``notebook-carbon calibrate`` measures.

Papers report energy in one of two conventions: all a device drew, or only what it drew above
idle (BLOOM's "dynamic" energy beside its idle consumption, Luccioni et al., 2023). The second
needs each device's idle power on the machine that ran the work, measured, not assumed.

``measure_idle`` meters every device of the machine (whole devices: no share) for a few seconds
while nothing runs, and divides each device's energy by the time. It refuses, measuring nothing,
when the machine is not idle: before it starts (the CPUs busier than ``BUSY_LIMIT`` over a
second, or any process holding a compute context on a GPU) and after (the CPUs busier than
``BUSY_LIMIT`` over the whole measurement). Estimated components have no idle power to measure
(the TDP estimate is proportional to utilisation): they are left out, and said so.
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..errors import MeterError

if TYPE_CHECKING:
    from ..settings import Settings

__all__ = ["BUSY_LIMIT", "IdleMeasurement", "measure_idle"]

BUSY_LIMIT = 0.10
"""The machine counts as idle while its CPUs are busy at most this fraction of the time."""


@dataclasses.dataclass(frozen=True)
class IdleMeasurement:
    """Idle power per device: ``rows`` as ``registry.calibration`` keeps them; ``notes``, what was
    left out and why; ``busy``, the CPUs' utilisation during the measurement."""

    rows: tuple[dict[str, Any], ...]
    notes: tuple[str, ...]
    busy: float
    seconds: float


def measure_idle(
    settings: Settings,
    seconds: float,
    *,
    host: str,
    nvml: Any = None,
    sleep: Callable[[float], None] = time.sleep,
    busy_cpu_s: Callable[[], float] | None = None,
) -> IdleMeasurement:
    """Meter the idle machine for ``seconds`` (see the module's doc); ``MeterError`` when it is not
    idle. ``nvml``, ``sleep`` and ``busy_cpu_s`` (the machine's busy CPU seconds) stand in for the
    real ones in tests."""
    from .detect import detect_meters
    from .usage import machine_busy_cpu_s

    machine_busy_cpu_s = busy_cpu_s or machine_busy_cpu_s

    if not 1.0 <= seconds <= 3600.0:
        raise MeterError(f"calibrate for 1 to 3600 seconds, not {seconds:g}: 30 s gives a steady figure")
    detection = detect_meters(settings.replace(attribution="machine"), nvml=nvml)
    try:
        n_cpus = os.cpu_count() or 1
        busy = _busy_over(machine_busy_cpu_s, n_cpus, 1.0, sleep)
        if busy > BUSY_LIMIT:
            raise MeterError(_busy_message(busy, "before measuring"))
        for meter in detection.meters:
            holders = _gpu_processes(meter)
            if holders:
                raise MeterError(
                    f"{meter.device} is in use: process{'es' if len(holders) > 1 else ''} "
                    f"{', '.join(map(str, sorted(holders)))} hold a compute context on it; calibrate "
                    "measures idle power, so run it when no program uses the GPUs"
                )
        measured_at, first = time.time(), machine_busy_cpu_s()
        energies, elapsed, notes = _meter(detection.meters, seconds, sleep)
        busy = max(0.0, machine_busy_cpu_s() - first) / (n_cpus * elapsed)
        if busy > BUSY_LIMIT:
            raise MeterError(_busy_message(busy, "while measuring"))
    finally:
        detection.close()
    rows = []
    for meter, energy_j in energies:
        if meter.method.startswith("estimate") or meter.method == "none":
            notes.append(f"{meter.component} {meter.device}: {meter.method} has no idle power to measure (left out)")
            continue
        rows.append({
            "component": meter.component, "device": meter.device, "method": meter.method, "host": host,
            "idle_w": energy_j / elapsed, "seconds": elapsed, "measured_at": measured_at, "busy": min(busy, 1.0),
        })  # fmt: skip
    return IdleMeasurement(tuple(rows), tuple(notes), busy, elapsed)


def _meter(meters: Any, seconds: float, sleep: Callable[[float], None]) -> tuple[list, float, list[str]]:
    """Each meter's energy over ``seconds``, read at least once a second (so no counter wraps
    unseen), the time it took, and the meters that failed (left out)."""
    started = time.monotonic()
    tracks, notes = [], []
    for meter in meters:
        try:
            tracks.append((meter, meter.begin(started)))
        except MeterError as exc:
            notes.append(f"{meter.component} {meter.device}: left out, it could not be read ({exc})")
    while (left := seconds - (time.monotonic() - started)) > 0:
        sleep(min(1.0, left))
        now = time.monotonic()
        for meter, state in list(tracks):
            try:
                meter.update(state, now)
            except MeterError as exc:
                tracks.remove((meter, state))
                notes.append(f"{meter.component} {meter.device}: left out, its meter failed ({exc})")
    ended = time.monotonic()
    energies = []
    for meter, state in tracks:
        try:
            energies.append((meter, max(meter.end(state, ended), 0.0)))
        except MeterError as exc:
            notes.append(f"{meter.component} {meter.device}: left out, its meter failed ({exc})")
    return energies, ended - started, notes


def _busy_over(read: Callable[[], float], n_cpus: int, seconds: float, sleep: Callable[[float], None]) -> float:
    first, started = read(), time.monotonic()
    sleep(seconds)
    return max(0.0, read() - first) / (n_cpus * max(time.monotonic() - started, 1e-9))


def _busy_message(busy: float, when: str) -> str:
    return (
        f"the machine is not idle: its CPUs were {100 * busy:.0f} % busy {when} (at most "
        f"{100 * BUSY_LIMIT:.0f} % allowed); calibrate measures idle power, so run it when nothing else "
        "runs on the machine; nothing was recorded"
    )


def _gpu_processes(meter: Any) -> set[int]:
    """The PIDs holding a compute context on an NVML meter's device (none for other meters, or
    where NVML cannot list them)."""
    nvml, handle = getattr(meter, "nvml", None), getattr(meter, "handle", None)
    if nvml is None or handle is None:
        return set()
    for name in ("nvmlDeviceGetComputeRunningProcesses_v3", "nvmlDeviceGetComputeRunningProcesses"):
        function = getattr(nvml, name, None)
        if function is None:
            continue
        try:
            return {int(p.pid) for p in function(handle)}
        except nvml.NVMLError:
            continue
    return set()

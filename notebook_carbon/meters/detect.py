"""Choose the best meter for each component, in a fixed probe order, and say why for each fallback.

=========  =====================  =============================================
component  first choice           fallback
=========  =====================  =============================================
gpu        NVML (``nvml-counter``  none: no GPU meter, a note says why
           else ``nvml-power``)
cpu        RAPL packages          ``estimate-tdp`` (TDP x utilisation)
ram        RAPL dram domains      ``estimate-ram`` (W per GB x memory)
=========  =====================  =============================================

Probing reads sysfs and initialises NVML once; do it once per session and reuse the meters
(they keep no per-window state). Nothing is cached between calls except ``host_info``.
"""

from __future__ import annotations

import dataclasses
import functools
import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from .base import EnergyMeter
from .estimate import build_cpu_estimate, build_ram_estimate, cpu_model, read_cpuinfo
from .nvml import probe_nvml
from .rapl import probe_rapl

if TYPE_CHECKING:
    from ..settings import Settings


@dataclasses.dataclass(frozen=True)
class Detection:
    """The meters chosen, GPUs first, and every fallback reason in words."""

    meters: tuple[EnergyMeter, ...]
    notes: tuple[str, ...]

    def for_component(self, component: str) -> tuple[EnergyMeter, ...]:
        return tuple(m for m in self.meters if m.component == component)

    def close(self) -> None:
        """Release every meter's library handle (NVML). Idempotent."""
        for meter in self.meters:
            meter.close()


def detect_meters(
    settings: Settings,
    *,
    nvml: Any = None,
    cpuinfo_path: str | os.PathLike[str] = "/proc/cpuinfo",
    environ: Mapping[str, str] | None = None,
) -> Detection:
    """Probe GPU (NVML), CPU and RAM (RAPL, else estimates) as ``settings`` asks.

    ``nvml`` replaces the pynvml module (tests pass ``testing.FakeNVML``); ``environ`` supplies
    ``CUDA_VISIBLE_DEVICES`` (default ``os.environ``); ``cpuinfo_path`` names the CPU model source.
    """
    meters: list[EnergyMeter] = []
    notes: list[str] = []

    if settings.gpu:
        gpus = probe_nvml(nvml=nvml, environ=environ)
        meters.extend(gpus.meters)
        notes.extend(gpus.notes)
        if gpus.reason:
            notes.append(f"no GPU component: {gpus.reason}")
        notes.extend(f"{m.device}: {m.reason}" for m in gpus.meters if m.reason)
    else:
        notes.append("no GPU component: GPU metering disabled by settings")

    info = read_cpuinfo(cpuinfo_path)
    rapl = probe_rapl(settings.powercap_root, model=cpu_model(info))
    if rapl.cpu is not None:
        meters.append(rapl.cpu)
    else:
        why = rapl.cpu_reason or "no RAPL counters"
        cpu = build_cpu_estimate(settings, info, why=why)
        meters.append(cpu)
        notes.append(f"cpu: {cpu.reason}")
    if rapl.ram is not None:
        meters.append(rapl.ram)
    else:
        ram = build_ram_estimate(settings, why=rapl.ram_reason or "no RAPL dram counters")
        meters.append(ram)
        notes.append(f"ram: {ram.reason}")

    if settings.attribution == "machine":
        notes.append("attribution=machine: each run is charged everything the machine's devices drew in its window")
    else:
        _attach_shares(meters, notes)
    return Detection(tuple(meters), tuple(notes))


def _attach_shares(meters: list[EnergyMeter], notes: list[str]) -> None:
    """The rules of a run's share of each device (``attribution = "share"``; ``shares``)."""
    from .shares import CpuTimeShare, GpuContextShare, MemoryShare
    from .usage import (
        machine_busy_cpu_s,
        machine_used_bytes,
        process_tree_cpu_s,
        process_tree_pids,
        process_tree_rss_bytes,
    )

    cpu_rule = CpuTimeShare(process_tree_cpu_s, machine_busy_cpu_s)
    ram_rule = MemoryShare(process_tree_rss_bytes, machine_used_bytes)
    for meter in meters:
        if meter.component == "cpu":
            meter.share_rule = cpu_rule
        elif meter.component == "ram":
            meter.share_rule = ram_rule
        elif getattr(meter, "handle", None) is not None:  # an NVML meter
            meter.share_rule = GpuContextShare(meter.nvml, meter.handle, process_tree_pids)


def host_info() -> dict[str, Any]:
    """Facts about this machine recorded with each run: hostname, CPU model, CPU count, RAM bytes.

    The hostname is ``NOTEBOOK_CARBON_HOST`` where set (a container's host name is a random id; a
    cluster's node name may differ from it), else the machine's; a process tells from it whether
    a run of another process ran on its machine (``registry.liveness``).

    Read once per process (about a millisecond, most of it /proc/cpuinfo); each call returns a
    fresh dict, so a caller changing it does not change what the next caller sees.
    """
    return dict(_host_info())


@functools.cache
def _host_info() -> tuple[tuple[str, Any], ...]:
    import socket

    import psutil

    given = os.environ.get("NOTEBOOK_CARBON_HOST", "").strip()
    usable = given and len(given) <= 255 and given.isprintable()
    return (
        ("hostname", given if usable else socket.gethostname()),
        ("cpu_model", cpu_model(read_cpuinfo())),
        ("cpu_count", os.cpu_count()),
        ("ram_total_bytes", psutil.virtual_memory().total),
    )

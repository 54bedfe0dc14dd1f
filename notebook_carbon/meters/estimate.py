"""Estimated CPU and RAM energy, used where no counter can be read. Always labelled ``estimate-*``.

CPU (``estimate-tdp``): power = TDP x (idle + (1 - idle) x utilisation), over each interval
between reads::

    energy_j = tdp_w * (idle * dt + (1 - idle) * min(busy_cpu_s / n_cores, dt))

- ``idle`` (``CPU_IDLE_FRACTION`` = 0.74 / 3.5, 21 % of TDP, applied by ``build_cpu_estimate``) is
  the power drawn with no work: the average minimum over maximum watts per vCPU that Cloud Carbon
  Footprint derived from SPECpower results for AWS's processors (0.74 W and 3.5 W).
- utilisation is busy CPU seconds over *physical cores* x wall seconds, at most 1: on a host with
  SMT (two threads per core), a job running one thread on every core uses the package fully, as
  Green Algorithms counts it, not half; both threads of every core busy is still 100 %.

Below saturation of the physical cores the dynamic part does not depend on how often it is
sampled (the wall time cancels); the cap is applied per interval. It counts the whole machine's
busy time (``psutil.cpu_times()``: everything but idle and iowait; ``usage.py`` reads it): a run's
share of it is that of ``shares.CpuTimeShare``, as of a RAPL package's energy.

The TDP is looked up by CPU model in codecarbon's bundled table (``hardware/cpu_power.csv``,
columns ``Name,TDP``, watts per package) and multiplied by the socket count. A model not in the
table gets ``DEFAULT_W_PER_THREAD`` = 4 W per logical CPU, codecarbon 3.3.2's own fallback
(``DEFAULT_POWER_PER_CORE = 4`` in ``codecarbon/core/cpu.py``, multiplied by the thread count), or
``DEFAULT_TDP_W`` = 85 W when the CPU count is unknown (codecarbon's ``POWER_CONSTANT`` in
``codecarbon/external/hardware.py``); such a guess is marked ``fallback`` (``TdpChoice.source``,
``EstimateCpuMeter.tdp_source``) and its reason says so. ``Settings.cpu_tdp_w`` overrides all of this.

RAM (``estimate-ram``): ``RAM_W_PER_GB`` = 0.375 W per GB (3 W per 8 GB of DDR3/DDR4, Crucial's
"How much power does memory use?", the heuristic codecarbon used before v3 and still cites in
``codecarbon/external/ram.py``) x installed memory (``machine``) or the process tree's RSS
(``process``). GB here is 2**30 bytes, as DIMM sizes are. ``Settings.ram_w_per_gb`` overrides it.
"""

from __future__ import annotations

import functools
import os
import re
from collections.abc import Callable
from typing import TYPE_CHECKING, NamedTuple

from ..bundled import codecarbon_data_dir
from .base import EnergyMeter, PowerIntegral

if TYPE_CHECKING:
    from ..settings import Settings

RAM_W_PER_GB = 0.375
BYTES_PER_GB = 2**30
DEFAULT_W_PER_THREAD = 4.0
DEFAULT_TDP_W = 85.0
CPU_IDLE_FRACTION = 0.74 / 3.5
"""Idle power over TDP: Cloud Carbon Footprint's average min / max W per vCPU for AWS (SPECpower)."""

# Words that vendors put around the model number and the table leaves out.
_NOISE = r"\(r\)|\(tm\)|®|™|@.*$"  # compiled on first use: importing stays cheap
_DROP_TOKENS = frozenset({"cpu", "processor"})


class CpuInfo(NamedTuple):
    model: str | None
    sockets: int


def read_cpuinfo(path: str | os.PathLike[str] = "/proc/cpuinfo") -> CpuInfo:
    """CPU brand string (first ``model name``) and socket count (distinct ``physical id``).

    A missing file gives ``CpuInfo(None, 1)``; ``cpu_model`` then falls back to ``platform``.
    """
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            text = f.read()
    except FileNotFoundError:
        return CpuInfo(None, 1)
    model = None
    sockets = set()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        key = key.strip()
        if key == "model name" and model is None:
            model = value.strip() or None
        elif key == "physical id":
            sockets.add(value.strip())
    return CpuInfo(model, max(1, len(sockets)))


def cpu_model(info: CpuInfo) -> str:
    """The brand string, else what ``platform`` knows (``x86_64`` at worst), else ``unknown CPU``."""
    import platform  # rarely needed: /proc/cpuinfo names the model on Linux

    return info.model or platform.processor() or "unknown CPU"


def normalise_cpu_name(name: str) -> tuple[str, ...]:
    """Lower-case tokens without trademarks, clock speed, ``CPU``/``Processor``/``N-Core``.

    ``Intel(R) Xeon(R) Gold 6248 CPU @ 2.50GHz`` -> ``intel xeon gold 6248``;
    ``AMD EPYC 7763 64-Core Processor`` -> ``amd epyc 7763``.
    """
    text = name.lower()
    if "(" in text or "@" in text or "®" in text or "™" in text:  # table rows rarely: keep loading fast
        text = re.sub(_NOISE, " ", text)
    return tuple(
        token
        for token in text.replace(",", " ").split()
        if token not in _DROP_TOKENS and not _is_core_count(token)
    )


def _is_core_count(token: str) -> bool:
    """``64-core``, ``16-cores``: a core count, not part of the model name."""
    count, _, word = token.partition("-")
    return word in ("core", "cores") and count.isdigit()


class TdpMatch(NamedTuple):
    name: str
    """The table row's ``Name``."""
    tdp_w: float
    """Thermal design power of one package, watts."""


@functools.cache
def tdp_table() -> dict[str, TdpMatch]:
    """codecarbon's CPU table keyed by normalised name (tokens joined by spaces). Read once."""
    import csv

    table: dict[str, TdpMatch] = {}
    with open(codecarbon_data_dir() / "hardware" / "cpu_power.csv", newline="", encoding="utf-8") as f:
        rows = csv.reader(f)
        next(rows)  # Name,TDP
        for name, tdp in rows:
            try:
                tdp_w = float(tdp)
            except ValueError:
                continue  # a few upstream rows hold two numbers run together ("27.29.5")
            low = name.lower()
            # Most rows are already clean; full normalisation of all ~5,000 would triple the load time.
            if "processor" in low or "cpu" in low or "-core" in low or "(" in low or "®" in low:
                key = " ".join(normalise_cpu_name(name))
            else:
                key = " ".join(low.replace(",", " ").split())
            if key:
                table.setdefault(key, TdpMatch(name, tdp_w))
    return table


def lookup_tdp(model: str, table: dict[str, TdpMatch] | None = None) -> TdpMatch | None:
    """The most specific table row whose tokens appear, in order and adjacent, in ``model``.

    Longest match wins, so ``Xeon E5-2690 v4`` beats ``Xeon E5-2690``; a row must contain a digit
    (a model number, not only a family). Bare numbers (old Opteron rows such as ``6234``) are only
    matched for AMD models, so an Intel part never inherits an Opteron's TDP.
    """
    table = tdp_table() if table is None else table
    tokens = normalise_cpu_name(model)
    best: tuple[str, ...] = ()
    for start in range(len(tokens)):
        for stop in range(len(tokens), start, -1):
            key = tokens[start:stop]
            if len(key) <= len(best) or " ".join(key) not in table:
                continue
            if not any(ch.isdigit() for token in key for ch in token):
                continue
            if len(key) == 1 and "amd" not in tokens:
                continue
            best = key
    return table[" ".join(best)] if best else None


class TdpChoice(NamedTuple):
    tdp_w: float
    """The whole machine's TDP, W."""
    note: str
    """Where it comes from, in one sentence."""
    source: str
    """``setting`` (cpu_tdp_w), ``table`` (a codecarbon table match) or ``fallback`` (a guess)."""


def resolve_tdp_w(settings: Settings, info: CpuInfo, n_cpus: int | None) -> TdpChoice:
    """The whole machine's TDP in W, a sentence saying where it comes from, and which kind of source."""
    if settings.cpu_tdp_w is not None:
        return TdpChoice(
            settings.cpu_tdp_w, f"TDP {settings.cpu_tdp_w:g} W from settings (cpu_tdp_w)", "setting"
        )
    model = cpu_model(info)
    match = lookup_tdp(model)
    if match is not None:
        tdp_w = match.tdp_w * info.sockets
        sockets = f" x {info.sockets} sockets" if info.sockets > 1 else ""
        return TdpChoice(
            tdp_w, f"TDP {match.tdp_w:g} W{sockets} for {match.name} (codecarbon CPU table)", "table"
        )
    if n_cpus:
        tdp_w = DEFAULT_W_PER_THREAD * n_cpus
        return TdpChoice(tdp_w, (
            f"fallback TDP, a guess: CPU model {model!r} not found in codecarbon's CPU table; assumed "
            f"{DEFAULT_W_PER_THREAD:g} W x {n_cpus} threads = {tdp_w:g} W (set cpu_tdp_w to correct it)"
        ), "fallback")  # fmt: skip
    return TdpChoice(DEFAULT_TDP_W, (
        f"fallback TDP, a guess: CPU model {model!r} not found in codecarbon's CPU table; assumed "
        f"{DEFAULT_TDP_W:g} W (set cpu_tdp_w to correct it)"
    ), "fallback")  # fmt: skip


class _CpuWindow:
    __slots__ = ("busy_s", "energy_j", "last_busy_s", "last_t")

    def __init__(self, busy_s: float, now: float) -> None:
        self.last_busy_s = busy_s
        self.busy_s = 0.0
        self.energy_j = 0.0
        self.last_t = now


class EstimateCpuMeter(EnergyMeter):
    """CPU energy as TDP x (idle + (1 - idle) x utilisation); ``busy_cpu_s`` returns cumulative busy
    CPU seconds. Utilisation is over ``n_cores`` physical cores (default: ``n_cpus``), capped at 1;
    ``idle_fraction`` defaults to 0 here (pure dynamic power) and to ``CPU_IDLE_FRACTION`` in
    ``build_cpu_estimate``."""

    component = "cpu"
    method = "estimate-tdp"

    def __init__(
        self,
        tdp_w: float,
        n_cpus: int,
        busy_cpu_s: Callable[[], float],
        *,
        model: str | None = None,
        reason: str | None = None,
        n_cores: int | None = None,
        idle_fraction: float = 0.0,
        tdp_source: str = "table",
    ) -> None:
        if n_cpus < 1:
            raise ValueError(f"n_cpus must be at least 1, got {n_cpus}")
        if n_cores is not None and not 1 <= n_cores <= n_cpus:
            raise ValueError(f"n_cores must be between 1 and n_cpus={n_cpus}, got {n_cores}")
        if not 0 <= idle_fraction <= 1:
            raise ValueError(f"idle_fraction must be between 0 and 1, got {idle_fraction}")
        self.tdp_w = tdp_w
        self.n_cpus = n_cpus
        self.n_cores = n_cores or n_cpus
        self.idle_fraction = idle_fraction
        self.tdp_source = tdp_source
        self._busy_cpu_s = busy_cpu_s
        self.model = model
        self.device = model or "CPU"
        self.reason = reason

    def _advance(self, state: _CpuWindow, now: float) -> float:
        busy_s = self._busy_cpu_s()
        # A descendant reparented away takes its time with it; never count negative work.
        step_s = max(0.0, busy_s - state.last_busy_s)
        dt = max(0.0, now - state.last_t)
        state.last_busy_s = busy_s
        state.busy_s += step_s
        state.last_t = now
        # busy core-seconds over physical cores, at most the interval: an SMT sibling adds no TDP
        dynamic_s = min(step_s / self.n_cores, dt)
        step_j = self.tdp_w * (self.idle_fraction * dt + (1 - self.idle_fraction) * dynamic_s)
        state.energy_j += step_j
        return step_j

    def begin(self, now: float) -> _CpuWindow:
        return _CpuWindow(self._busy_cpu_s(), now)

    def update(self, state: _CpuWindow, now: float) -> float | None:
        """Average W since the previous call: TDP x utilisation over that interval."""
        elapsed_s = now - state.last_t
        step_j = self._advance(state, now)
        return step_j / elapsed_s if elapsed_s > 0 else None

    def end(self, state: _CpuWindow, now: float) -> float:
        """Joules since ``begin``: the sum over intervals of TDP x (idle + (1 - idle) x utilisation)."""
        self._advance(state, now)
        return state.energy_j


class EstimateRamMeter(EnergyMeter):
    """RAM energy as W per GB x memory x time.

    ``machine``: installed memory, a constant power. ``process``: ``rss_bytes`` is sampled at each
    call and the power integrated with the trapezoid rule.
    """

    component = "ram"
    method = "estimate-ram"

    def __init__(
        self,
        w_per_gb: float,
        total_bytes: int,
        *,
        rss_bytes: Callable[[], int] | None = None,
        reason: str | None = None,
    ) -> None:
        self.w_per_gb = w_per_gb
        self.total_bytes = total_bytes
        self._rss_bytes = rss_bytes
        self.device = f"RAM {total_bytes / BYTES_PER_GB:.0f} GB"
        self.reason = reason

    def _power_w(self) -> float:
        memory = self.total_bytes if self._rss_bytes is None else self._rss_bytes()
        return self.w_per_gb * memory / BYTES_PER_GB

    def begin(self, now: float) -> PowerIntegral:
        return PowerIntegral(self._power_w(), now)

    def update(self, state: PowerIntegral, now: float) -> float | None:
        """Average W since the previous call (trapezoid of the two memory samples)."""
        # Installed memory does not change: only the process share needs sampling again.
        return state.add(self._power_w() if self._rss_bytes is not None else state.last_w, now)

    def end(self, state: PowerIntegral, now: float) -> float:
        """Joules since ``begin``."""
        self.update(state, now)
        return state.energy_j


def build_cpu_estimate(settings: Settings, info: CpuInfo, *, why: str) -> EstimateCpuMeter:
    """The CPU estimate of the whole machine (TDP x its busy CPU time) for the CPU ``info``
    describes (see ``read_cpuinfo``); ``why`` says why no counter is used. A run's share of it is
    ``shares.CpuTimeShare``'s, attached by ``detect``."""
    # The readers load with the first estimate, not with the package: importing the meters stays light.
    import psutil

    from .usage import machine_busy_cpu_s

    n_cpus = os.cpu_count()
    tdp = resolve_tdp_w(settings, info, n_cpus)
    reason = f"{why}: CPU energy estimated from TDP x machine utilisation; {tdp.note}"
    n_cores = psutil.cpu_count(logical=False)
    n_cores = n_cores if n_cores and n_cpus and n_cores <= n_cpus else None  # unknown: the logical CPUs
    return EstimateCpuMeter(
        tdp.tdp_w, n_cpus or 1, machine_busy_cpu_s, model=cpu_model(info), reason=reason, n_cores=n_cores,
        idle_fraction=CPU_IDLE_FRACTION, tdp_source=tdp.source,
    )  # fmt: skip


def build_ram_estimate(settings: Settings, *, why: str) -> EstimateRamMeter:
    """The RAM estimate of the installed memory; ``why`` says why no counter is used. A run's share
    of it is ``shares.MemoryShare``'s, attached by ``detect``."""
    import psutil

    w_per_gb = RAM_W_PER_GB if settings.ram_w_per_gb is None else settings.ram_w_per_gb
    source = "settings (ram_w_per_gb)" if settings.ram_w_per_gb is not None else "3 W per 8 GB, Crucial"
    total_bytes = psutil.virtual_memory().total
    reason = f"{why}: RAM energy estimated as {w_per_gb:g} W/GB ({source}) x installed memory"
    return EstimateRamMeter(w_per_gb, total_bytes, reason=reason)

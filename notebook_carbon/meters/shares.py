"""A run's share of what the machine drew: the rules of ``attribution = "share"`` (the default).

A meter measures a whole device: a CPU package, the DRAM, a GPU. On a machine shared with other
users, other kernels or sweep scripts, that is not the run's energy. A ``ShareRule`` follows a
window beside its meter and, when the window ends, says which fraction of the device's energy in
the window the run caused (``Share``); the run is charged that fraction, and the device's energy,
the fraction and how it was obtained are recorded with it (``measure.ComponentEnergy``).

CPU (``CpuTimeShare``): the process tree's CPU time (this process, its reaped children and its
live descendants: ``usage.process_tree_cpu_s``) over the machine's busy CPU time (all CPU time
but idle and iowait: ``usage.machine_busy_cpu_s``), both counted in the kernel's clock ticks
(``USER_HZ``, 100 a second on Linux), applied to the package energy (RAPL) or to the TDP estimate
of the machine's busy time. Concurrent runs' trees are disjoint, so over windows of a second or
more their shares add up to at most 1; over shorter ones only about (the kernel keeps a process's
time more finely than the machine's, which moves a tick at a time), each run's capped at 1. A window in which the machine's busy time did not reach one tick (under
10 ms of CPU work on the whole machine) is charged nothing: there is no work to divide.

RAM (``MemoryShare``): the tree's resident memory over the machine's used memory (installed
memory minus what the kernel reports available), each read at the window's start, at every
sampler read and at its end, and summed over those reads (each read weighs the same: the sampler
reads at a fixed interval), applied to the DRAM energy (RAPL) or to the estimate of the installed
memory's power. Pages shared between processes count in each one's resident memory, so a run
forking many workers that share their memory is charged more than its share, never less.

GPU (``GpuContextShare``): per device, the rules of ``gpu_share``: only a device on which the tree
holds a compute context is the run's; its energy above idle split by SM utilisation, its idle
energy between the processes holding a context; exclusive mode, MIG and the fallbacks there.

``attribution = "machine"`` charges every run the whole machine (no rule): for a researcher who
owns the machine, or to compare with tools that do.
"""

from __future__ import annotations

import abc
import dataclasses
from collections.abc import Callable
from typing import Any

__all__ = ["CpuTimeShare", "GpuContextShare", "MemoryShare", "Share", "ShareRule"]


@dataclasses.dataclass(frozen=True)
class Share:
    """The fraction of a device's energy in a window that the run caused, and how it was found."""

    fraction: float
    """Between 0 and 1."""
    how: str
    """How the fraction was obtained, in words, with its figures (``"CPU time 1.2 s of 4.8 s"``)."""
    fallback: str | None = None
    """Why the rule could not be applied as written (the whole device charged, say), if so."""


WHOLE = "the whole device charged"


class ShareRule(abc.ABC):
    """Follows a window beside one meter; ``begin``/``update``/``end`` as ``EnergyMeter``'s, on the
    same threads (never concurrently for one state). A rule that cannot read what it needs raises
    ``OSError`` or ``ValueError``; the window then charges the whole device and says why."""

    @abc.abstractmethod
    def begin(self, now: float) -> Any:
        """Start following a window at monotonic time ``now``; return its state."""

    def update(self, state: Any, now: float) -> None:
        """A sampler read at ``now`` (rules that sample do so here)."""

    @abc.abstractmethod
    def share(self, state: Any, now: float, energy_j: float, duration_s: float) -> Share:
        """The share over the window so far (read at ``now``), at a checkpoint and at its end, of
        the ``energy_j`` its device drew in those ``duration_s`` seconds."""


class _TimeWindow:
    __slots__ = ("tree", "first_tree_s", "first_machine_s")

    def __init__(self, tree: Callable[[], float], machine_s: float) -> None:
        self.tree = tree
        self.first_tree_s = tree()
        self.first_machine_s = machine_s


class CpuTimeShare(ShareRule):
    """The process tree's CPU time over the machine's busy CPU time (see the module's doc).

    ``tree_cpu_s`` makes, per window, a reader of the tree of the process the window runs in (a
    forked sweep worker's own, not its parent's); ``machine_busy_cpu_s`` reads the machine."""

    def __init__(self, tree_cpu_s: Callable[[], Callable[[], float]], machine_busy_cpu_s: Callable[[], float]) -> None:
        self._tree = tree_cpu_s
        self._machine = machine_busy_cpu_s

    def begin(self, now: float) -> _TimeWindow:
        return _TimeWindow(self._tree(), self._machine())

    def share(self, state: _TimeWindow, now: float, energy_j: float = 0.0, duration_s: float = 0.0) -> Share:
        tree_s = max(0.0, state.tree() - state.first_tree_s)
        machine_s = max(0.0, self._machine() - state.first_machine_s)
        if machine_s <= 0.0:
            return Share(0.0, "no CPU time on the machine in the window (under one 10 ms clock tick): nothing to divide")
        fraction = min(1.0, tree_s / machine_s)
        return Share(fraction, f"this process tree's CPU time, {_seconds(tree_s)} of the machine's busy {_seconds(machine_s)}")


class _MemoryWindow:
    __slots__ = ("tree", "tree_bytes", "used_bytes", "reads")

    def __init__(self, tree: Callable[[], int]) -> None:
        self.tree = tree
        self.tree_bytes = 0
        self.used_bytes = 0
        self.reads = 0


class MemoryShare(ShareRule):
    """The process tree's resident memory over the machine's used memory (see the module's doc);
    ``tree_rss_bytes`` makes a reader per window, as ``CpuTimeShare``'s."""

    def __init__(self, tree_rss_bytes: Callable[[], Callable[[], int]], used_bytes: Callable[[], int]) -> None:
        self._tree = tree_rss_bytes
        self._used = used_bytes

    def _read(self, state: _MemoryWindow) -> None:
        state.tree_bytes += state.tree()
        state.used_bytes += self._used()
        state.reads += 1

    def begin(self, now: float) -> _MemoryWindow:
        state = _MemoryWindow(self._tree())
        self._read(state)
        return state

    def update(self, state: _MemoryWindow, now: float) -> None:
        self._read(state)

    def share(self, state: _MemoryWindow, now: float, energy_j: float = 0.0, duration_s: float = 0.0) -> Share:
        self._read(state)
        if state.used_bytes <= 0:
            return Share(1.0, "the machine reported no memory in use", fallback=WHOLE)
        fraction = min(1.0, state.tree_bytes / state.used_bytes)
        tree, used = state.tree_bytes / state.reads, state.used_bytes / state.reads
        return Share(fraction, f"this process tree's resident memory, {_gigabytes(tree)} of the {_gigabytes(used)} in use")


class GpuContextShare(ShareRule):
    """A run's share of one GPU (``gpu_share``): ``nvml`` and ``handle`` the device's meter's;
    ``tree_pids`` makes, per window, a reader of this process tree's PIDs; ``idle_w`` the device's
    idle power, if measured (``notebook-carbon calibrate``), else the lowest it drew in the window."""

    def __init__(self, nvml: Any, handle: Any, tree_pids: Callable[[], Callable[[], Any]], idle_w: float | None = None) -> None:
        self._nvml, self._handle, self._tree_pids, self.idle_w = nvml, handle, tree_pids, idle_w

    def begin(self, now: float) -> Any:
        from .gpu_share import GpuShareObserver

        observer = GpuShareObserver(self._nvml, self._handle, self._tree_pids())
        return observer, observer.begin(now)

    def update(self, state: Any, now: float) -> None:
        observer, observed = state
        observer.update(observed, now)

    def share(self, state: Any, now: float, energy_j: float = 0.0, duration_s: float = 0.0) -> Share:
        from .gpu_share import gpu_share

        observer, observed = state
        found = gpu_share(observer.end(observed, now), energy_j, duration_s, self.idle_w)
        return Share(found.fraction, found.how, found.fallback)


def _seconds(value: float) -> str:
    return f"{value:.2f} s" if value < 100 else f"{value:,.0f} s"


def _gigabytes(value: float) -> str:
    gb = value / 2**30
    return f"{gb:.2f} GB" if gb < 100 else f"{gb:,.0f} GB"

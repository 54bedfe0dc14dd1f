"""How busy the CPUs are and how much memory the process tree holds: the readings behind the estimates.

``estimate.py`` turns the machine's into joules and ``shares.py`` divides a device's energy by
them: the whole machine's busy time (``psutil.cpu_times()``: everything but idle and iowait) and
used memory; this process and its descendants' (own, reaped and live children's user + system
time; their resident memory), straight from Linux /proc where it can, through psutil elsewhere.
psutil is imported on first use, never at import.

Every reading is kept for ``FRESH_S``: a window's meter and its share rule read the same counter at
the same edge, a few µs apart, and the kernel moves CPU times only once a clock tick (10 ms), so
one read serves both (a metered cell's edges cost a few tens of µs, not hundreds).
"""

from __future__ import annotations

import os
import threading
import time
import weakref
from collections.abc import Callable
from typing import Any

FRESH_S = 0.001
"""How long a reading is reused, in seconds: a tenth of the kernel's clock tick."""

_TICK_S = 1.0 / os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 0.01


_FRESH: weakref.WeakSet[_Fresh] = weakref.WeakSet()


def _after_fork() -> None:
    for fresh in list(_FRESH):
        fresh._forget_parent()


class _Fresh:
    """A reader whose value is reused for ``FRESH_S`` (thread-safe: the sampler and the notebook
    thread both read)."""

    def __init__(self, read: Callable[[], Any]) -> None:
        self._read = read
        self._lock = threading.Lock()
        self._at = -1.0
        self._value: Any = None
        _FRESH.add(self)

    def _forget_parent(self) -> None:
        """In a forked child: a lock the parent's sampler held at the fork would never be released."""
        self._lock = threading.Lock()
        self._at = -1.0

    def __call__(self) -> Any:
        now = time.monotonic()
        with self._lock:
            if now - self._at > FRESH_S:
                self._value, self._at = self._read(), now
            return self._value


def _read_busy_cpu_s() -> float:
    try:  # Linux: the first line of /proc/stat, as psutil reads it, without building its tuple
        with open("/proc/stat", "rb") as f:
            fields = [int(x) for x in f.readline().split()[1:]]
    except (OSError, ValueError):
        fields = []
    if len(fields) >= 5:
        # user nice system idle iowait irq softirq steal guest guest_nice: guest time is already
        # inside user and nice, so it is not added again
        total = sum(fields[:8])
        return (total - fields[3] - fields[4]) * _TICK_S
    import psutil

    times = psutil.cpu_times()._asdict()
    total = sum(times.values()) - times.get("guest", 0.0) - times.get("guest_nice", 0.0)
    return total - times["idle"] - times.get("iowait", 0.0)


def _read_used_bytes() -> int:
    try:  # Linux: MemTotal and MemAvailable of /proc/meminfo (kB), as psutil reads them
        found: dict[bytes, int] = {}
        with open("/proc/meminfo", "rb") as f:
            for line in f:
                key, _, rest = line.partition(b":")
                if key in (b"MemTotal", b"MemAvailable"):
                    found[key] = int(rest.split()[0]) * 1024
                    if len(found) == 2:
                        return found[b"MemTotal"] - found[b"MemAvailable"]
    except (OSError, ValueError, IndexError):
        pass
    import psutil

    memory = psutil.virtual_memory()
    return int(memory.total - memory.available)


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork)

machine_busy_cpu_s = _Fresh(_read_busy_cpu_s)
"""Busy CPU seconds of the whole machine since boot: all time except idle and iowait."""

machine_used_bytes = _Fresh(_read_used_bytes)
"""Memory in use on the machine: installed memory minus what the kernel reports available."""


def process_tree_cpu_s() -> Callable[[], float]:
    """A reader of this process tree's CPU seconds: own, reaped children and live descendants."""
    tree = _ProcTree.for_this_process()
    if tree is not None:
        return tree.cpu_s
    import psutil

    me = psutil.Process()

    def read() -> float:
        times = me.cpu_times()
        total = times.user + times.system + times.children_user + times.children_system
        for child in me.children(recursive=True):
            try:
                t = child.cpu_times()
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                continue  # exited since listed: its time reaches us through children_* once reaped
            total += t.user + t.system + t.children_user + t.children_system
        return total

    return read


def process_tree_pids() -> Callable[[], set[int]]:
    """A reader of the PIDs of this process and its live descendants."""
    tree = _ProcTree.for_this_process()
    if tree is not None:
        return tree.pids
    import psutil

    me = psutil.Process()

    def read() -> set[int]:
        return {me.pid, *(child.pid for child in me.children(recursive=True))}

    return read


def process_tree_rss_bytes() -> Callable[[], int]:
    """A reader of the resident memory of this process and its live descendants, bytes."""
    tree = _ProcTree.for_this_process()
    if tree is not None:
        return tree.rss_bytes
    import psutil

    me = psutil.Process()

    def read() -> int:
        total = me.memory_info().rss
        for child in me.children(recursive=True):
            try:
                total += child.memory_info().rss
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                continue  # exited since listed
        return total

    return read


class _ProcTree:
    """This process and its descendants read straight from Linux /proc.

    psutil finds children by reading every process's stat file (milliseconds on a busy host, at
    each begin and end); the kernel's per-thread ``children`` lists walk only our own tree, a few
    tens of µs for a notebook kernel.
    """

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.tick_s = _TICK_S
        self.page_bytes = os.sysconf("SC_PAGE_SIZE")
        self._fresh_stats = _Fresh(self._walk)

    @classmethod
    def for_this_process(cls) -> _ProcTree | None:
        """``None`` where /proc has no children lists (not Linux, or CONFIG_PROC_CHILDREN off); one
        per process (a forked child makes its own), its walks shared by its readers."""
        global _TREE
        pid = os.getpid()
        if _TREE is not None and _TREE.pid == pid:
            return _TREE
        _TREE = cls(pid) if os.path.exists(f"/proc/{pid}/task/{pid}/children") else None
        return _TREE

    def pids(self) -> set[int]:
        found = set()
        pending = [self.pid]
        while pending:
            pid = pending.pop()
            found.add(pid)
            try:
                pending.extend(_children(pid))
            except (FileNotFoundError, ProcessLookupError):
                if pid == self.pid:
                    raise
        return found

    def _stats(self) -> list[list[str]]:
        """The stat fields after ``(comm)`` of every live process of the tree, root first (one walk
        serves the CPU time and the memory readers for ``FRESH_S``)."""
        return self._fresh_stats()

    def _walk(self) -> list[list[str]]:
        stats = []
        pending = [self.pid]
        while pending:
            pid = pending.pop()
            try:
                with open(f"/proc/{pid}/stat", "rb") as f:
                    stats.append(f.read().rpartition(b")")[2].decode().split())
                pending.extend(_children(pid))
            except (FileNotFoundError, ProcessLookupError):
                # A descendant or thread that exited since it was listed: its CPU time reaches
                # its parent's reaped-children total; our own process cannot vanish.
                if pid == self.pid:
                    raise
        return stats

    def cpu_s(self) -> float:
        # fields 14-17 of stat (utime, stime, cutime, cstime), counted from the state field
        ticks = sum(int(f[11]) + int(f[12]) + int(f[13]) + int(f[14]) for f in self._stats())
        return ticks * self.tick_s

    def rss_bytes(self) -> int:
        return sum(int(f[21]) for f in self._stats()) * self.page_bytes


def _children(pid: int) -> list[int]:
    """The PIDs of ``pid``'s live children, from each of its threads' list. A thread that exits
    between the listing and the read (a kernel's threads come and go) has no children to give:
    skipped. Raises ``FileNotFoundError`` only if the process itself is gone."""
    found: list[int] = []
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/children", "rb") as f:
                found.extend(int(child) for child in f.read().split())
        except (FileNotFoundError, ProcessLookupError):
            continue
    return found


_TREE: _ProcTree | None = None

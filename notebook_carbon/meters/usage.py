"""How busy the CPUs are and how much memory the process tree holds: the readings behind the estimates.

``estimate.py`` turns the machine's into joules and ``shares.py`` divides a device's energy by
them: the whole machine's busy time (``psutil.cpu_times()``: everything but idle and iowait) and
used memory; this process and its descendants' (own, reaped and live children's user + system
time; their resident memory), straight from Linux /proc where it can, through psutil elsewhere.
psutil is imported on first use, never at import.
"""

from __future__ import annotations

import os
from collections.abc import Callable


def machine_busy_cpu_s() -> float:
    """Busy CPU seconds of the whole machine since boot: all time except idle and iowait."""
    import psutil

    times = psutil.cpu_times()._asdict()
    # Linux already counts guest time inside user and nice.
    total = sum(times.values()) - times.get("guest", 0.0) - times.get("guest_nice", 0.0)
    return total - times["idle"] - times.get("iowait", 0.0)


def machine_used_bytes() -> int:
    """Memory in use on the machine: installed memory minus what the kernel reports available."""
    import psutil

    memory = psutil.virtual_memory()
    return int(memory.total - memory.available)


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
        self.tick_s = 1.0 / os.sysconf("SC_CLK_TCK")
        self.page_bytes = os.sysconf("SC_PAGE_SIZE")

    @classmethod
    def for_this_process(cls) -> _ProcTree | None:
        """``None`` where /proc has no children lists (not Linux, or CONFIG_PROC_CHILDREN off)."""
        pid = os.getpid()
        return cls(pid) if os.path.exists(f"/proc/{pid}/task/{pid}/children") else None

    def pids(self) -> set[int]:
        found = set()
        pending = [self.pid]
        while pending:
            pid = pending.pop()
            found.add(pid)
            try:
                for tid in os.listdir(f"/proc/{pid}/task"):
                    with open(f"/proc/{pid}/task/{tid}/children", "rb") as f:
                        pending.extend(int(child) for child in f.read().split())
            except (FileNotFoundError, ProcessLookupError):
                if pid == self.pid:
                    raise
        return found

    def _stats(self) -> list[list[str]]:
        """The stat fields after ``(comm)`` of every live process of the tree, root first."""
        stats = []
        pending = [self.pid]
        while pending:
            pid = pending.pop()
            try:
                with open(f"/proc/{pid}/stat", "rb") as f:
                    stats.append(f.read().rpartition(b")")[2].decode().split())
                for tid in os.listdir(f"/proc/{pid}/task"):
                    with open(f"/proc/{pid}/task/{tid}/children", "rb") as f:
                        pending.extend(int(child) for child in f.read().split())
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

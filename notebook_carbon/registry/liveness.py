"""Runs whose process died: found from the process id or the heartbeat, never guessed.

A run is written ``running`` when it starts and checkpointed every ``checkpoint_interval_s`` with
its energy so far (each write also refreshes ``updated_at``, the heartbeat). When a kernel is
killed, its run stays ``running`` forever unless someone notices; ``reap_crashed`` does:

- on this host, the run's process id no longer exists, or now belongs to a process started after
  the run (the id was reused): the run's process is gone;
- on another host, where process ids mean nothing here, the heartbeat is older than
  ``STALE_HEARTBEATS`` checkpoint intervals (and at least ``MIN_STALE_S``): that machine stopped
  writing. A run recorded without a checkpoint interval is never judged from another host.

Such a run becomes ``crashed``, keeping the energy of its last checkpoint; its end is that
checkpoint's time. The update is conditional on the run still being ``running``, so a run that
finishes meanwhile is never overwritten.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from sqlalchemy import select, update

from .schema import runs

STALE_HEARTBEATS = 3
MIN_STALE_S = 60.0


def process_started_at(pid: int) -> float | None:
    """Start time (epoch s) of process ``pid`` on this machine, or None if there is none."""
    import psutil

    try:
        return psutil.Process(pid).create_time()
    except (psutil.NoSuchProcess, psutil.ZombieProcess):
        return None
    except psutil.AccessDenied:
        return 0.0  # it exists; its age cannot be read, so it is taken as old enough


def dead_runs(
    registry,
    *,
    host: str | None = None,
    now: float | None = None,
    started_at_of: Callable[[int], float | None] = process_started_at,
) -> dict[int, str]:
    """The ``running`` runs whose process is gone, by id, with why, found without writing anything:
    what ``reap_crashed`` marks ``crashed`` (a reader of a read-only registry shows them so)."""
    return {run["id"]: why for run, why in _dead(registry, host, now, started_at_of)}


def reap_crashed(
    registry,
    *,
    host: str | None = None,
    now: float | None = None,
    started_at_of: Callable[[int], float | None] = process_started_at,
) -> list[int]:
    """Mark the ``running`` runs whose process is gone as ``crashed``; return their ids."""
    now = time.time() if now is None else now
    reaped = []
    for run, why in _dead(registry, host, now, started_at_of):
        last = run["updated_at"] or run["started_at"]
        error = f"{why}; energy is counted up to the last checkpoint, {max(last - run['started_at'], 0):.0f} s in"
        with registry.write(f"marking run {run['id']} crashed") as conn:
            changed = conn.execute(
                update(runs)
                .where(runs.c.uid == run["uid"], runs.c.status == "running")
                .values(status="crashed", error=error, ended_at=last, duration_s=last - run["started_at"], updated_at=now)
            ).rowcount
        if changed:
            reaped.append(run["id"])
    return reaped


def _dead(registry, host: str | None, now: float | None, started_at_of) -> list[tuple[dict, str]]:
    if host is None:
        from ..meters.detect import host_info

        host = host_info()["hostname"]
    now = time.time() if now is None else now
    query = select(
        runs.c.id,
        runs.c.uid,
        runs.c.host,
        runs.c.pid,
        runs.c.started_at,
        runs.c.updated_at,
        runs.c.checkpoint_interval_s,
    ).where(runs.c.status == "running", runs.c.job.is_(None))  # a job's run lives by its parts (``jobs``)
    with registry.read("looking for runs whose process died") as conn:
        running = [dict(row._mapping) for row in conn.execute(query)]
    found = []
    for run in running:
        why = why_dead(run, host, now, started_at_of)
        if why is not None:
            found.append((run, why))
    return found


def why_dead(run, host: str, now: float, started_at_of) -> str | None:
    """Why the process of ``run`` (``host``, ``pid``, ``started_at``, ``updated_at``,
    ``checkpoint_interval_s``) is gone, seen from ``host`` at ``now``; None while it may live."""
    if run["host"] == host and run["pid"]:
        started = started_at_of(run["pid"])
        if started is None:
            return f"its process (pid {run['pid']} on {host}) no longer exists"
        if started > run["started_at"] + 1.0:  # 1 s: clock granularity of process start times
            return f"its process (pid {run['pid']} on {host}) is gone; the pid now belongs to a newer process"
        return None
    interval = run["checkpoint_interval_s"]
    if interval:
        silent_s = now - (run["updated_at"] or run["started_at"])
        if silent_s > max(STALE_HEARTBEATS * interval, MIN_STALE_S):
            return f"no heartbeat from {run['host'] or 'its host'} for {silent_s:.0f} s (checkpoints every {interval:g} s)"
    return None

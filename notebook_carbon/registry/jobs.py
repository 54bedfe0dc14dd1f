"""Distributed jobs: the ranks of one job, on one node or many, recorded as one run.

Each rank's block is a part (``run_parts``, with its rank, node, devices and heartbeat); the run
is what its parts add up to (``job_sums.settle``), computed again in the transaction that writes
the start or a checkpoint of the job's first running part (the driver, else the lowest rank:
``_leads``), and the job's last end, so every reader (totals, sweeps, statements, the dashboard) sees one run, at most a checkpoint
interval behind its ranks:

- energy: per device (node, component, device), what the ranks were charged of it, summed, never
  more than the device drew; a rank charged the whole device (``attribution = "machine"``) counts
  it once, however many ranks metered it. What the devices drew is each device's largest reading
  (the ranks' windows nearly coincide), so a node's CPU and RAM are never counted once per rank;
- emissions and water: the parts' own, in proportion to the energy counted; embodied emissions:
  each node's once (its ranks' largest), summed over nodes;
- time: the earliest start; the duration is the longest span of one node's parts, measured on
  that node's own clock, so clocks that differ by seconds between nodes do not stretch it;
- status (``record.job_status``): ``running`` while a part runs, else the worst of its parts'
  (a rank that died leaves the job ``crashed``, every part's energy kept).

Which run a rank joins (``start_part``): the latest run of its project with the same job key and
block, unless that run is complete (every rank of the job has reported and none runs), already has
a part of this rank and block, or, for a key that a later job may reuse, started more than the
job's ``window_s`` from this block. Else the rank starts a new run. A notebook cell that drives a
job (``%%carbon --job``) makes a run that every rank reporting its key joins, whatever the block;
a rank that it started on its own machine (its process descends from the kernel's) is inside the
cell's own measurement: kept as a part, not counted again. Writes are serialised (SQLite's
``BEGIN IMMEDIATE``, PostgreSQL's write lock), so two ranks never both create the job's run.
"""

from __future__ import annotations

import collections
import json
import time
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Connection, insert, select, update

from ..errors import RegistryError
from . import values as run_values
from .inserts import insert_run
from .job_sums import settle
from .liveness import process_started_at, why_dead
from .schema import run_parts, runs, samples

__all__ = ["any_dead_parts", "dead_job_runs", "finish_part", "reap_parts", "start_part", "update_part"]

DEVICE_FIELDS = ("component", "device", "device_id", "method", "energy_j", "machine_energy_j", "share", "reason", "degraded")
"""What a part records of each device it metered (``devices``)."""

def start_part(
    registry,
    run_row: Mapping[str, Any],
    part: Mapping[str, Any],
    *,
    window_s: float | None = None,
    driver: bool = False,
    ancestors: Sequence[int] = (),
) -> int:
    """Record a rank's block as a ``running`` part of its job's run, creating the run if this rank
    is the first; the run's id. ``run_row``: the run as ``start_run`` takes it (its ``job``,
    ``job_block`` and ``job_world_size`` set), used only if a run is created; ``part``: the part's
    columns (``uid``, ``job``, ``block``, ``rank``, ``node``, ``pid``, ``started_at``, ...).
    ``ancestors``: the process ids above the rank's on its node, to tell a rank that a driving
    notebook cell started on its own machine."""
    values = _part_values(part, "start_part")
    with registry.write(f"recording rank {values.get('rank')} of job {values['job']}") as conn:
        return _start(conn, run_row, values, window_s, driver, ancestors)


def _start(conn: Connection, run_row, values: dict, window_s, driver: bool, ancestors) -> int:
    found = None if driver else _joinable(conn, run_row["project"], values, window_s)
    if found is None:
        start = run_values.start_values(run_row, "start_part")
        run_id, run_uid, counted = insert_run(conn, start), start["uid"], True
    else:
        run_id, run_uid = found["id"], found["uid"]
        counted = not (found["job_block"] is None and _inside_driver(conn, run_uid, values, ancestors))
    values.update(parent_uid=run_uid, status="running", counted=counted, updated_at=time.time())
    conn.execute(insert(run_parts), values)
    if found is None or _leads(conn, run_uid, values.get("rank")):
        settle(conn, run_uid)
    return run_id


def _inside_driver(conn: Connection, run_uid: str, part: Mapping[str, Any], ancestors: Sequence[int]) -> bool:
    """Whether a part joining a driver's run is inside the driver's own measurement: on the driver's
    machine, its process the driver's (a block on another thread of the kernel) or one below it."""
    driver = conn.execute(
        select(run_parts.c.node, run_parts.c.pid, run_parts.c.status)
        .where(run_parts.c.parent_uid == run_uid, run_parts.c.rank.is_(None), run_parts.c.block.is_(None))
        .order_by(run_parts.c.id).limit(1)
    ).first()  # fmt: skip
    if driver is None or driver.pid is None or driver.node != part.get("node") or driver.status != "running":
        return False  # a rank started after the cell ended runs outside its measurement: counted
    return driver.pid == part.get("pid") or driver.pid in set(ancestors)


def _joinable(conn: Connection, project: str, part: Mapping[str, Any], window_s: float | None) -> dict | None:
    """The run of ``project`` that this rank's block belongs to, or None: a new run (module docstring)."""
    query = (
        select(runs.c.id, runs.c.uid, runs.c.job_block, runs.c.job_world_size, runs.c.status, runs.c.started_at,
               runs.c.host, runs.c.pid)
        .where(runs.c.job == part["job"], runs.c.project == project,
               (runs.c.job_block == part["block"]) | runs.c.job_block.is_(None))
        .order_by(runs.c.id.desc())
        .limit(1)
    )  # fmt: skip
    found = conn.execute(query).first()
    if found is None:
        return None
    run = dict(found._mapping)
    if run["job_block"] is None:  # a notebook cell driving the job: every rank's every block joins it
        return run
    if window_s is not None and abs(run["started_at"] - part["started_at"]) > window_s:
        return None
    ranks = conn.execute(
        select(run_parts.c.rank, run_parts.c.status).where(run_parts.c.parent_uid == run["uid"])
    ).all()
    if part.get("rank") is not None and any(rank == part["rank"] for rank, _ in ranks):
        return None  # this rank's block is recorded already: a later job reusing the key
    size = run["job_world_size"]
    reported = len({rank for rank, _ in ranks if rank is not None})
    # complete: every rank reported, none runs; of an unknown size, a job none of whose parts runs
    complete = reported >= size if size else True
    if complete and all(status != "running" for _, status in ranks):
        return None
    return run


def update_part(registry, uid: str, row: Mapping[str, Any], *, final: bool) -> bool:
    """Store a part's figures so far (``final=False``: a checkpoint, only while it runs; False when
    it no longer does) or its end (``final=True``: from ``running`` or a ``crashed`` that was only a
    guess), and settle its run again. At its end, a rank also marks its job's parts whose process
    died ``crashed`` (``reap_parts``' judgement, for this job only)."""
    values = _part_values(row, "finish_part" if final else "checkpoint_part")
    values["updated_at"] = time.time()
    if final and values.get("status") not in ("ok", "failed", "interrupted", "crashed"):
        raise RegistryError(f"finish_part needs a final status, got {values.get('status')!r}")
    with registry.write(f"{'finishing' if final else 'checkpointing'} part {uid}") as conn:
        return _update(conn, registry.where, uid, values, final)


def _update(conn: Connection, where: str, uid: str, values: dict, final: bool) -> bool:
    found = conn.execute(
        select(run_parts.c.parent_uid, run_parts.c.status, run_parts.c.rank).where(run_parts.c.uid == uid)
    ).first()
    if found is None:
        raise RegistryError(f"no part with uid {uid!r} in registry {where}; its start must be recorded first")
    allowed = ("running", "crashed") if final else ("running",)
    if found.status not in allowed:
        if final:
            raise RegistryError(f"part {uid} in registry {where} is already finished with status {found.status!r}")
        return False
    conn.execute(update(run_parts).where(run_parts.c.uid == uid), values)
    if final:
        _reap(conn, time.time(), None, process_started_at, parent_uid=found.parent_uid)
    if not _running(conn, found.parent_uid) if final else _leads(conn, found.parent_uid, found.rank):
        settle(conn, found.parent_uid)
    return True


def _running(conn: Connection, run_uid: str) -> bool:
    query = select(run_parts.c.id).where(run_parts.c.parent_uid == run_uid, run_parts.c.status == "running")
    return conn.execute(query.limit(1)).first() is not None


def _leads(conn: Connection, run_uid: str, rank: int | None) -> bool:
    """Whether a part of rank ``rank`` is the first of its job's running parts (the driver first,
    then the lowest rank). Its start and checkpoints alone settle the run, and the job's last end:
    a job of hundreds of ranks writes its run once per checkpoint interval, not once per rank and
    interval, and its run shows the others' starts and ends at most one interval late."""
    if rank is None:
        return True
    lower = (run_parts.c.rank < rank) | run_parts.c.rank.is_(None)
    query = select(run_parts.c.id).where(run_parts.c.parent_uid == run_uid, run_parts.c.status == "running", lower)
    return conn.execute(query.limit(1)).first() is None


def finish_part(registry, uid: str, row: Mapping[str, Any], samples_: Sequence[Mapping[str, Any]] = (),
                start: Mapping[str, Any] | None = None) -> int | None:  # fmt: skip
    """A part's end (``update_part(final=True)``) with its power samples; ``start``: the arguments of
    its ``start_part`` (``run_row``, ``part`` and options), which record it first when its start
    never reached the registry (a lock held too long, a server restarting), rather than lose it."""
    values = _part_values(row, "finish_part")
    values["updated_at"] = time.time()
    with registry.write(f"finishing part {uid}") as conn:
        exists = conn.execute(select(run_parts.c.id).where(run_parts.c.uid == uid)).first() is not None
        if not exists and start is not None:
            part = _part_values(start["part"], "finish_part")
            _start(conn, start["run_row"], part, start.get("window_s"), start.get("driver", False), start.get("ancestors", ()))
        _update(conn, registry.where, uid, values, True)
        parent = conn.execute(select(run_parts.c.parent_uid, run_parts.c.counted, run_parts.c.started_at)
                              .where(run_parts.c.uid == uid)).one()  # fmt: skip
        if parent.counted and samples_:
            _insert_samples(conn, parent.parent_uid, parent.started_at, values, samples_)
        return conn.execute(select(runs.c.id).where(runs.c.uid == parent.parent_uid)).scalar()


def _insert_samples(conn: Connection, run_uid: str, part_started_at: float, part: Mapping[str, Any],
                    found: Sequence[Mapping[str, Any]]) -> None:  # fmt: skip
    """The rank's power samples, under the job's run: its time from the run's start, each device
    named by rank; only the devices the rank was charged some of."""
    run_started = conn.execute(select(runs.c.started_at).where(runs.c.uid == run_uid)).scalar()
    offset = part_started_at - run_started
    charged = {(d["component"], d["device"]) for d in json.loads(part.get("devices") or "[]")
               if d.get("share") is None or d["share"] > 0}  # fmt: skip
    who = f"rank {part['rank']}" if part.get("rank") is not None else "driver"
    rows = [{"run_uid": run_uid, "t_s": s["t_s"] + offset, "component": s["component"],
             "device": f"{who}: {s['device']}", "power_w": s["power_w"]}
            for s in found if (s["component"], s["device"]) in charged]  # fmt: skip
    if rows:
        conn.execute(insert(samples), rows)


def _part_values(row: Mapping[str, Any], doing: str) -> dict[str, Any]:
    values = dict(row)
    devices = values.pop("devices", None)
    values = run_values.encode_run(values, run_values.PART_COLUMNS - {"devices"}, doing)
    if devices is not None:
        values["devices"] = json.dumps([{k: d.get(k) for k in DEVICE_FIELDS} for d in devices], sort_keys=True)
    return values


# -- parts whose process died -------------------------------------------------------------------


def reap_parts(registry, *, host: str | None = None, now: float | None = None, started_at_of=process_started_at) -> list[int]:
    """Mark the ``running`` parts whose process is gone ``crashed`` (``liveness``' judgement) and
    settle their runs; the ids of the runs that changed."""
    with registry.write("looking for ranks whose process died") as conn:
        return _reap(conn, time.time() if now is None else now, host, started_at_of)


def _reap(conn: Connection, now: float, host: str | None, started_at_of, parent_uid: str | None = None) -> list[int]:
    if host is None:
        from ..meters.detect import host_info

        host = host_info()["hostname"]
    changed = set()
    for part, why in _dead_parts(conn, host, now, started_at_of, parent_uid):
        last = part["updated_at"] or part["started_at"]
        error = f"{why}; energy is counted up to the last checkpoint, {max(last - part['started_at'], 0):.0f} s in"
        conn.execute(
            update(run_parts).where(run_parts.c.uid == part["uid"], run_parts.c.status == "running")
            .values(status="crashed", error=error, ended_at=last, duration_s=last - part["started_at"], updated_at=now)
        )  # fmt: skip
        changed.add(part["parent_uid"])
    ids = []
    for uid in sorted(changed):
        if uid != parent_uid:
            settle(conn, uid)
        ids.append(conn.execute(select(runs.c.id).where(runs.c.uid == uid)).scalar())
    return [i for i in ids if i is not None]


def _dead_parts(conn: Connection, host: str, now: float, started_at_of, parent_uid: str | None = None):
    query = select(
        run_parts.c.uid, run_parts.c.parent_uid, run_parts.c.node, run_parts.c.pid, run_parts.c.started_at,
        run_parts.c.updated_at, run_parts.c.checkpoint_interval_s,
    ).where(run_parts.c.status == "running", run_parts.c.job.is_not(None))
    if parent_uid is not None:
        query = query.where(run_parts.c.parent_uid == parent_uid)
    for row in conn.execute(query):
        part = dict(row._mapping)
        why = why_dead({**part, "host": part["node"]}, host, now, started_at_of)
        if why is not None:
            yield part, why.replace("its process", "its rank's process", 1)


def any_dead_parts(registry, *, host: str | None = None, now: float | None = None, started_at_of=process_started_at) -> bool:
    """Whether any ``running`` rank's process is gone (what ``reap_parts`` would mark), found without writing."""
    if host is None:
        from ..meters.detect import host_info

        host = host_info()["hostname"]
    with registry.read("looking for ranks whose process died") as conn:
        return next(_dead_parts(conn, host, time.time() if now is None else now, started_at_of), None) is not None


def dead_job_runs(registry, *, host: str | None = None, now: float | None = None,
                  started_at_of=process_started_at) -> dict[int, str]:  # fmt: skip
    """The ``running`` job runs none of whose running parts' processes is alive, by id, with why,
    found without writing: what a reader of a read-only registry shows as crashed."""
    if host is None:
        from ..meters.detect import host_info

        host = host_info()["hostname"]
    now = time.time() if now is None else now
    with registry.read("looking for ranks whose process died") as conn:
        dead: dict[str, list[str]] = {}
        for part, why in _dead_parts(conn, host, now, started_at_of):
            dead.setdefault(part["parent_uid"], []).append(why)
        if not dead:
            return {}
        running = collections.Counter(row.parent_uid for row in conn.execute(
            select(run_parts.c.parent_uid).where(run_parts.c.status == "running", run_parts.c.parent_uid.in_(list(dead)))
        ))  # fmt: skip
        found = conn.execute(
            select(runs.c.id, runs.c.uid).where(runs.c.uid.in_(list(dead)), runs.c.status == "running")
        ).all()
    return {row.id: dead[row.uid][0] for row in found if running[row.uid] == len(dead[row.uid])}

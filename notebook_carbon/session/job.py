"""A run that is one rank's block of a distributed job (or the notebook cell driving one): what it
writes instead of a run of its own.

Its start, checkpoints and end go to ``registry.jobs`` as a part of the job's run, which the first
rank to report creates and every rank's part adds to (each device counted once). The rank's block
is numbered: the n-th top-level block of each rank of a job is the n-th run of the job, so a script
that meters its training and then its evaluation records two runs, each made of every rank's part.
"""

from __future__ import annotations

import dataclasses
import itertools
import threading
import uuid
from concurrent.futures import Future
from typing import TYPE_CHECKING, Any

from ..record import Job

if TYPE_CHECKING:
    from ..measure import Measurement, Window
    from ..registry.writer import BackgroundWriter

_blocks: dict[str, itertools.count] = {}  # per job key: this process's blocks of it so far
_blocks_lock = threading.Lock()

PART_FIELDS = (
    "uid", "name", "sweep", "tags", "params", "status", "error", "started_at", "ended_at", "duration_s",
    "energy_j", "gpu_energy_j", "cpu_energy_j", "ram_energy_j", "gpu_method", "cpu_method", "ram_method",
    "emissions_g", "pid", "notes", "machine_energy_j", "water_l", "embodied_g",
)  # fmt: skip
"""A run's fields that its part as a rank keeps (the rest describe the job's run, or the machine)."""


def next_block(key: str) -> int:
    """This process's next block of job ``key``: 1, 2, ..."""
    with _blocks_lock:
        return next(_blocks.setdefault(key, itertools.count(1)))


class JobPart:
    """The writes of one rank's block: ``start``, ``checkpoint``, ``finish``."""

    def __init__(self, job: Job, row: dict[str, Any], checkpoint_interval_s: float) -> None:
        self.job = job
        self.block = None if job.driver else next_block(job.key)
        run_row = dict(row, uid=uuid.uuid4().hex, job=job.key, job_block=self.block, job_world_size=job.world_size,
                       checkpoint_interval_s=None)  # fmt: skip
        if not job.driver:
            run_row["pid"] = None  # a job's run is no one process: its parts say which (and live by them)
        part = {k: row.get(k) for k in ("uid", "name", "sweep", "tags", "params", "started_at", "pid", "attribution")}
        part.update(job=job.key, block=self.block, attempt=job.attempt, rank=job.rank, local_rank=job.local_rank,
                    node=row.get("host"), checkpoint_interval_s=checkpoint_interval_s, status="running")  # fmt: skip
        self.start_args = {"run_row": run_row, "part": part, "window_s": job.window_s, "driver": job.driver,
                           "ancestors": _ancestors()}  # fmt: skip

    def start(self, writer: BackgroundWriter) -> Future[int]:
        """Queue the part's start; a future of the job's run id."""
        args = self.start_args
        return writer.start_part(args["run_row"], args["part"], window_s=args["window_s"], driver=args["driver"],
                                 ancestors=args["ancestors"])  # fmt: skip

    def checkpoint(self, writer: BackgroundWriter, uid: str, row: dict[str, Any], window: Window) -> None:
        writer.checkpoint_part(uid, {**row, "devices": window.devices_so_far()})

    def finish(self, writer: BackgroundWriter, row: dict[str, Any], measurement: Measurement, samples: list) -> Future:
        """Queue the part's end with its devices and samples; the caller waits for it."""
        part = {k: row.get(k) for k in PART_FIELDS if k != "uid"}
        part["devices"] = [dataclasses.asdict(component) for component in measurement.components]
        return writer.finish_part(row["uid"], part, samples, self.start_args, awaited=True)


def _ancestors() -> tuple[int, ...]:
    """The ids of the processes above this one (to tell a rank that a notebook cell started itself)."""
    try:
        import psutil

        return tuple(process.pid for process in psutil.Process().parents())
    except Exception:  # noqa: BLE001 - unreadable: the rank is counted, as one started elsewhere
        return ()


def job_run_id(future: Future | None) -> int | None:
    """The job's run id, once its start part is written; None (never an error) when it is not."""
    try:
        return future.result(5.0) if future is not None else None
    except Exception:  # the writer reports its own failures: the metrics then fail there too, said once
        return None


def metrics_run_of(parent_uid: str | None, job: Any, uid: str, run_id: Any) -> int | str:
    """The run a run's metrics go to: the enclosing run of a block inside one, a job's run for a rank's block, else its own."""
    if parent_uid is not None:
        return parent_uid
    return (run_id() or uid) if job is not None else uid

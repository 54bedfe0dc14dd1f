"""The job a process is a rank of, read from its launcher's environment variables.

The job's identity is looked for in this order (``DETECTION_ORDER``); the first found names it:

1. an explicit ``track(job=...)``, else ``NOTEBOOK_CARBON_JOB`` (set by ``%%carbon --job`` for
   the processes a cell starts, or by hand);
2. SLURM, in a step ``srun`` started: ``SLURM_JOB_ID`` with the step (``SLURM_STEP_ID``) and
   ``SLURM_CLUSTER_NAME`` (outside a step, a batch script may start several jobs of its own);
3. torchrun (torch.distributed.elastic): ``TORCHELASTIC_RUN_ID``, with the restart count as the
   attempt; the literal ``none``, which torchrun sets without ``--rdzv-id``, counts as absent;
4. Open MPI and PMIx: ``OMPI_MCA_ess_base_jobid`` (``OMPI_MCA_orte_ess_jobid`` before Open MPI 5),
   else ``PMIX_NAMESPACE``;
5. the rendezvous address: ``MASTER_ADDR:MASTER_PORT`` (torch.distributed's launchers, DeepSpeed,
   accelerate), for ranks whose blocks start within ``RENDEZVOUS_WINDOW_S`` of each other; a
   loopback address with the node's name (every machine has one), and the SLURM allocation's id
   inside one.

The rank facts come from whichever launcher set them, torch's first (a ``torchrun`` started by
``srun`` gives each worker the global ``RANK``, while every worker of a node shares its
``SLURM_PROCID``): ``RANK``/``LOCAL_RANK``/``WORLD_SIZE``/``LOCAL_WORLD_SIZE``/``GROUP_RANK``,
then ``OMPI_COMM_WORLD_*``, then ``PMIX_RANK``, ``PMI_RANK``/``PMI_SIZE``/``MPI_LOCALRANKID``/
``MPI_LOCALNRANKS`` (MPICH, Intel MPI), then, in a step ``srun`` started, ``SLURM_PROCID``/
``SLURM_LOCALID``/``SLURM_STEP_NUM_TASKS`` else ``SLURM_NTASKS`` (either may read ``4(x2)``)/
``SLURM_NODEID``. A launcher's
job of one process is no distributed job, and neither is a batch script's own process (no
``srun``: ``SLURM_NTASKS`` there is the allocation's, not its processes'): their runs are recorded
as any other. A torchrun restart (``TORCHELASTIC_RESTART_COUNT`` above 0) makes each attempt a job
of its own, whatever names the job. A variable that does not read as a number is
left out and said so (``Job.notes``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from ..errors import ConfigError
from ..record import Job, check_text

__all__ = ["DETECTION_ORDER", "JOB_VARIABLE", "RENDEZVOUS_WINDOW_S", "detect_job", "slurm_count"]

JOB_VARIABLE = "NOTEBOOK_CARBON_JOB"
"""The variable naming the job explicitly: what ``%%carbon --job`` sets for the processes it starts."""

DETECTION_ORDER = ("explicit", "slurm", "torchelastic", "mpi", "rendezvous")

RENDEZVOUS_WINDOW_S = 1800.0
"""How far apart (s) two ranks' blocks may start and be one job, for a key that a later job may
reuse: a rendezvous address, or a torchrun id chosen by hand (``--rdzv-id=100`` in a script run
every day). The ranks of one job meet at their rendezvous, so their blocks start within seconds."""

MAX_KEY_CHARS = 200

_LOOPBACK = frozenset(("127.0.0.1", "localhost", "::1", "0.0.0.0", "::"))

_RANK_SOURCES = (
    # (rank, local rank, world size, local world size, node rank), by launcher, torch's first
    ("RANK", "LOCAL_RANK", "WORLD_SIZE", "LOCAL_WORLD_SIZE", "GROUP_RANK"),
    ("OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_LOCAL_RANK", "OMPI_COMM_WORLD_SIZE", "OMPI_COMM_WORLD_LOCAL_SIZE",
     "OMPI_COMM_WORLD_NODE_RANK"),
    ("PMIX_RANK", None, None, None, None),
    ("PMI_RANK", "MPI_LOCALRANKID", "PMI_SIZE", "MPI_LOCALNRANKS", None),
    ("SLURM_PROCID", "SLURM_LOCALID", "SLURM_NTASKS", None, "SLURM_NODEID"),  # in an srun step only
)  # fmt: skip

_SLURM_SPECIAL_STEPS = 0xFFFFFFF0
"""Step ids from here up are SLURM's own steps (the batch script's, the extern step), no srun's."""


def _in_slurm_step(environ: Mapping[str, str]) -> bool:
    """Whether this process is a task of a step ``srun`` started (which sets the step's task count)."""
    if "SLURM_STEP_NUM_TASKS" in environ:
        return True
    step = (environ.get("SLURM_STEP_ID") or environ.get("SLURM_STEPID") or "").strip()
    return step.isdigit() and int(step) < _SLURM_SPECIAL_STEPS


def detect_job(environ: Mapping[str, str], explicit: str | None = None, said: list[str] | None = None) -> Job | None:
    """The job this process is a rank of, or None when it is none (see the module docstring).

    ``environ`` is the process's environment (``os.environ``); ``explicit`` a job name given in
    code, which wins over every variable. Raises ``ConfigError`` for an explicit name that cannot
    be recorded (empty, too long, a NUL). ``said`` gets why a process that looks like a rank (a
    rank and a world size) could not be given a job: no variable names one.
    """
    notes: list[str] = []
    rank, local_rank, world_size, local_world_size, node_rank = _rank_facts(environ, notes)
    per_node = environ.get("SLURM_STEP_TASKS_PER_NODE") or environ.get("SLURM_TASKS_PER_NODE")
    if local_world_size is None and per_node and node_rank is not None and _in_slurm_step(environ):
        local_world_size = _slurm_tasks_on_node(per_node, node_rank)
    facts = {"rank": rank, "local_rank": local_rank, "world_size": world_size,
             "local_world_size": local_world_size, "node_rank": node_rank}  # fmt: skip
    restart = environ.get("TORCHELASTIC_RESTART_COUNT", "0").strip()
    facts["attempt"] = int(restart) if restart.isdigit() and len(restart) < 6 else 0
    named = explicit if explicit is not None else environ.get(JOB_VARIABLE) or None
    if named is not None:
        return Job(_checked_key(named, explicit is not None), "explicit", **facts, notes=tuple(notes))
    if world_size is not None and world_size <= 1 or world_size is None and rank is None:
        return None  # one process: a run like any other, whatever launched it
    found = _launcher_key(environ)
    if found is None:
        if said is not None:
            of = f" of {world_size}" if world_size else ""
            said.append(
                f"this process is rank {rank if rank is not None else '?'}{of} of a distributed job, but no variable "
                "names the job (SLURM_JOB_ID, TORCHELASTIC_RUN_ID, OMPI_MCA_ess_base_jobid, PMIX_NAMESPACE, "
                f"MASTER_ADDR and MASTER_PORT): its block is recorded as a run of its own; set {JOB_VARIABLE} "
                "to the same name on every rank to record the job as one run"
            )
        return None
    key, how, window_s = found
    return Job(key, how, **facts, window_s=window_s, notes=tuple(notes))


def _launcher_key(environ: Mapping[str, str]) -> tuple[str, str, float | None] | None:
    found = _launcher(environ)
    restart = environ.get("TORCHELASTIC_RESTART_COUNT", "0").strip()
    if found is None or restart in ("", "0"):
        return found
    key, how, window_s = found  # a torchrun restart (under srun too): each attempt is a job of its own
    return f"{key}#{restart}", how, window_s


def _launcher(environ: Mapping[str, str]) -> tuple[str, str, float | None] | None:
    job_id = environ.get("SLURM_JOB_ID", "").strip()
    if job_id and _in_slurm_step(environ):  # outside a step, the allocation may run several jobs
        step = (environ.get("SLURM_STEP_ID") or environ.get("SLURM_STEPID") or "").strip()
        cluster = environ.get("SLURM_CLUSTER_NAME", "").strip()
        return f"slurm:{cluster + '/' if cluster else ''}{job_id}{'.' + step if step else ''}", "slurm", None
    run_id = environ.get("TORCHELASTIC_RUN_ID", "").strip()
    if run_id and run_id != "none":
        return f"torchelastic:{run_id}", "torchelastic", RENDEZVOUS_WINDOW_S
    for variable in ("OMPI_MCA_ess_base_jobid", "OMPI_MCA_orte_ess_jobid", "PMIX_NAMESPACE"):
        value = environ.get(variable, "").strip()
        if value:
            return f"mpi:{value}", "mpi", RENDEZVOUS_WINDOW_S
    address, port = environ.get("MASTER_ADDR", "").strip(), environ.get("MASTER_PORT", "").strip()
    if address and port:
        if address in _LOOPBACK:  # every machine's own: the job is this node's
            from ..meters.detect import host_info

            address = f"{address}@{host_info()['hostname']}"
        if job_id:  # a job of its own inside a SLURM allocation (torchrun run from the batch script)
            address = f"{address}@slurm:{job_id}"
        return f"rendezvous:{address}:{port}", "rendezvous", RENDEZVOUS_WINDOW_S
    return None


def _rank_facts(environ: Mapping[str, str], notes: list[str]) -> tuple[int | None, ...]:
    """Rank, local rank, world size, local world size and node rank, each from the first launcher
    that set it (torch's first), so the five describe one launcher where it set them all."""
    found: list[int | None] = [None] * 5
    sources = _RANK_SOURCES[:-1]
    if _in_slurm_step(environ):  # not a batch script's own process: SLURM_NTASKS there is the allocation's
        tasks = "SLURM_STEP_NUM_TASKS" if "SLURM_STEP_NUM_TASKS" in environ else "SLURM_NTASKS"
        sources += (("SLURM_PROCID", "SLURM_LOCALID", tasks, None, "SLURM_NODEID"),)
    for source in sources:
        for i, variable in enumerate(source):
            if variable is None or found[i] is not None or variable not in environ:
                continue
            text = environ[variable].strip()
            value = slurm_count(text) if variable in ("SLURM_NTASKS", "SLURM_STEP_NUM_TASKS") else _natural(text)
            if value is None:
                notes.append(f"{variable}={text[:40]!r} is not a count or rank; left out")
            found[i] = value
    return tuple(found)


def _natural(text: str) -> int | None:
    return int(text) if text.isdigit() and len(text) < 10 else None


_SLURM_GROUP = re.compile(r"^(\d{1,9})(?:\(x(\d{1,9})\))?$")


def slurm_count(text: str) -> int | None:
    """A SLURM task count, which may read ``8``, ``4(x2)`` (4 on each of 2 nodes) or ``2(x3),1``
    (the per-node form): the total; None for what does not read so."""
    groups = _slurm_groups(text)
    return None if groups is None else sum(tasks * nodes for tasks, nodes in groups)


def _slurm_groups(text: str) -> list[tuple[int, int]] | None:
    groups = []
    for item in text.strip().split(","):
        match = _SLURM_GROUP.match(item.strip())
        if match is None:
            return None
        groups.append((int(match[1]), int(match[2] or 1)))
    return groups


def _slurm_tasks_on_node(text: str, node: int) -> int | None:
    """The tasks on node ``node`` from ``SLURM_TASKS_PER_NODE`` (``2(x3),1``: 2, 2, 2, then 1)."""
    for tasks, nodes in _slurm_groups(text) or ():
        if node < nodes:
            return tasks
        node -= nodes
    return None


def _checked_key(name: str, given: bool) -> str:
    where = "track(job=...)" if given else JOB_VARIABLE
    if not isinstance(name, str) or not name.strip():
        raise ConfigError(f"{where}: a job is named by a non-empty string, got {name!r}")
    if len(name) > MAX_KEY_CHARS:
        raise ConfigError(f"{where}: a job name has at most {MAX_KEY_CHARS} characters, got {len(name)}")
    return check_text(f"{where}'s job name", name.strip())

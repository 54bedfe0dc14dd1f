"""The SCI resource share of a run: how much of its machine it reserved (``RR / ToR``).

The SCI specification shares a machine's embodied emissions by time and by the resources reserved,
"for instance, the percentage of total virtual CPUs reserved for the software" (SCI 1.1.0,
"Embodied emissions"). What a process can know of its reservation, in this order:

1. the ``resource_share`` setting, when the user gives it: the only way on a virtual machine, which
   cannot see its host (a 2-vCPU VM on a 64-vCPU host: 2/64), or on a whole node booked for a job;
2. GPUs: where the host's GPU count is known and the run used some, GPUs used / GPUs on the host
   (a GPU server is booked by the GPU; its CPUs come with them);
3. CPUs: the logical CPUs the process may run on (its CPU affinity, which cgroups and SLURM set)
   over the host's logical CPUs.

Pure arithmetic: the counts are read by the caller. docs/methods.md gives the rule and its limits.
"""

from __future__ import annotations

import dataclasses

from ..errors import ConfigError

__all__ = ["ResourceShare", "resource_share"]


@dataclasses.dataclass(frozen=True)
class ResourceShare:
    """The share of the machine reserved for a run, 0 to 1, and the rule that found it."""

    share: float
    how: str


def resource_share(
    *,
    cpus_reserved: int | None = None,
    cpus_total: int | None = None,
    gpus_used: int = 0,
    gpus_total: int | None = None,
    override: float | None = None,
) -> ResourceShare:
    """``RR / ToR`` by the first rule that applies (module docstring); 1 when nothing is known.

    Raises ``ConfigError`` for an override outside 0..1 or a reserved count above its total.
    """
    if override is not None:
        if not 0 <= override <= 1:
            raise ConfigError(f"resource_share={override} must be between 0 and 1 (a share of the machine)")
        return ResourceShare(float(override), f"{override:g} of the machine, as the user set it")
    if gpus_total and gpus_used:
        if gpus_used > gpus_total:
            raise ConfigError(f"{gpus_used} GPUs used of {gpus_total} on the host: more than the host has")
        return ResourceShare(gpus_used / gpus_total, f"{gpus_used} of the host's {gpus_total} GPU{'s' if gpus_total != 1 else ''}")
    if cpus_total and cpus_reserved:
        if cpus_reserved > cpus_total:
            raise ConfigError(f"{cpus_reserved} CPUs reserved of {cpus_total}: more than the host has")
        return ResourceShare(
            cpus_reserved / cpus_total,
            f"{cpus_reserved} of the host's {cpus_total} logical CPUs, by the process's CPU affinity",
        )
    return ResourceShare(1.0, "the whole machine: no count of its resources could be read")

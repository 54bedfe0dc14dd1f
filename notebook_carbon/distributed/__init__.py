"""Distributed training: which job this process is a rank of, from its launcher's environment.

``detect_job`` reads the variables that torchrun (and accelerate, DeepSpeed), SLURM, Open MPI,
PMIx and MPICH set for each process they start, and nothing else: no framework is imported to find
out. ``track()`` asks it when it opens a block, so that the ranks of one job become one run in the
registry, one part per rank (``registry.jobs``). See docs/distributed.md.
"""

from .environment import DETECTION_ORDER, JOB_VARIABLE, detect_job, slurm_count

__all__ = ["DETECTION_ORDER", "JOB_VARIABLE", "detect_job", "slurm_count"]

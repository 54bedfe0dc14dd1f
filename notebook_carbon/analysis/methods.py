"""Which recorded energy methods are measurements and which are estimates (pure, no I/O).

Every component's energy is recorded with the method that produced it (``meters.base.METHODS``).
The analysis splits a run's energy into three buckets by those methods:

- ``measured``: read from a sensor: ``rapl``, ``nvml-counter``, ``nvml-power``.
- ``estimated``: computed from a model: ``estimate-tdp``, ``estimate-ram``.
- ``unattributed``: energy in a run's total (``energy_j``) that no component with a known method
  accounts for: a component recorded without a method, a method this version does not know (say,
  one a newer notebook-carbon wrote), or the difference between a total and its parts (an
  imported codecarbon log whose ``energy_consumed`` is not the sum of its cpu, gpu and ram figures).

``none`` (no meter for the component) contributes nothing. A component read by several methods
(two GPUs, one without an energy counter) is recorded as their sorted, ``+``-joined names: it is
measured when every part is measured, estimated when any part is an estimate and the rest are
known, and unattributed when a part is unknown; a ``none`` part adds nothing either way.
"""

from __future__ import annotations

MEASURED = "measured"
ESTIMATED = "estimated"
UNATTRIBUTED = "unattributed"
NONE = "none"

MEASURED_METHODS = frozenset(("rapl", "nvml-counter", "nvml-power"))
ESTIMATED_METHODS = frozenset(("estimate-tdp", "estimate-ram"))

__all__ = [
    "ESTIMATED",
    "ESTIMATED_METHODS",
    "MEASURED",
    "MEASURED_METHODS",
    "NONE",
    "UNATTRIBUTED",
    "method_kind",
]


def method_kind(method: str | None) -> str:
    """``measured``, ``estimated``, ``none`` (contributes nothing) or ``unattributed`` (unknown or
    missing method) for a recorded component method, ``+``-joined methods included."""
    if not isinstance(method, str):  # None, or pandas' NaN: energy without a method
        return UNATTRIBUTED
    parts = [part for part in method.split("+") if part != NONE]
    if not parts:
        return NONE
    if all(part in MEASURED_METHODS for part in parts):
        return MEASURED
    if all(part in MEASURED_METHODS or part in ESTIMATED_METHODS for part in parts):
        return ESTIMATED
    return UNATTRIBUTED

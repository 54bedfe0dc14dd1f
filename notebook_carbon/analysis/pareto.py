"""Accuracy against energy: which runs of a sweep no other run beats on both, and how much energy a
result within a tolerance of the selected one would have needed (issue 17).

Pure functions of ``Point`` s (a run's id, its energy and one metric's value), no I/O:

- ``metric_direction``: whether higher or lower is better for a metric, as declared, else from
  its name for common metrics (``val_acc`` higher, ``eval_loss`` lower), else unknown (None);
- ``pareto_front``: the runs no other run dominates;
- ``within_tolerance``: the cheapest run whose metric is within a tolerance of a reference run's.

A run dominates another when it used no more energy and its metric is no worse, one of the two
strictly. Runs with the same energy and metric do not dominate each other: both are on the front.
A point whose energy or value is missing or not a finite number is left out (said by the caller).
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Iterable, Mapping, Sequence

__all__ = [
    "DIRECTIONS", "HIGHER", "LOWER", "Point", "Tradeoff", "metric_direction", "pareto_front", "primary_metric",
    "within_tolerance",
]  # fmt: skip

HIGHER, LOWER = "higher", "lower"
DIRECTIONS = (HIGHER, LOWER)
"""Whether a higher or a lower value of a metric is the better result."""

_HIGHER_NAMES = frozenset({
    "acc", "accuracy", "top1", "top5", "top1_acc", "top5_acc", "f1", "f1_score", "auc", "auroc", "roc_auc", "ap",
    "map", "precision", "recall", "bleu", "sacrebleu", "rouge", "rouge1", "rouge2", "rougel", "rougelsum",
    "meteor", "chrf", "r2", "score", "iou", "miou", "dice", "exact_match", "em", "reward", "return", "win_rate",
})  # fmt: skip
_LOWER_NAMES = frozenset({
    "loss", "error", "err", "error_rate", "mse", "mae", "rmse", "mape", "perplexity", "ppl", "wer", "cer", "fid",
    "nll", "bpd", "bpc", "latency",
})  # fmt: skip
_PREFIX = re.compile(r"^(?:train|training|val|valid|validation|dev|test|eval|evaluation)[_/.\-]")


def metric_direction(name: str, declared: Mapping[str, str] | None = None) -> str | None:
    """``HIGHER`` or ``LOWER`` for metric ``name``: as ``declared`` (a metric's name to its
    direction) when it is there, else from the name for common metrics, ignoring case and a
    ``train_``, ``val_``, ``test_`` or ``eval_`` prefix (``eval_loss``: lower, ``val/acc``: higher,
    ``test_top1``: higher; a name ending in ``_loss`` or ``_error``: lower); else None (unknown)."""
    if declared and name in declared:
        direction = declared[name]
        if direction not in DIRECTIONS:
            raise ValueError(f"a metric's direction is {' or '.join(DIRECTIONS)}; got {direction!r} for {name!r}")
        return direction
    bare = _PREFIX.sub("", name.strip().lower())
    if bare in _HIGHER_NAMES:
        return HIGHER
    if bare in _LOWER_NAMES or bare.endswith(("_loss", "_error")):
        return LOWER
    return None


def primary_metric(names: Iterable[str], declared: Mapping[str, str] | None = None) -> str | None:
    """The metric a sweep's runs are judged by, among ``names`` whose direction is known (declared,
    or from the name): a declared one first; then a validation metric (``val_``, ``eval_``,
    ``dev_``) before a test one, a bare name and a training one; then an accuracy (higher is
    better) before a loss; then by name. None when no metric's direction is known."""
    known = [name for name in set(names) if (declared and name in declared) or metric_direction(name)]
    if not known:
        return None
    return min(known, key=lambda n: (not (declared and n in declared), _held_out_rank(n),
                                     metric_direction(n, declared) != HIGHER, n))  # fmt: skip


def _held_out_rank(name: str) -> int:
    prefix = _PREFIX.match(name.strip().lower())
    kind = prefix.group(0)[:-1] if prefix else ""
    return {"val": 0, "valid": 0, "validation": 0, "eval": 0, "evaluation": 0, "dev": 0, "test": 1, "": 2}.get(kind, 3)


@dataclasses.dataclass(frozen=True)
class Point:
    """One run of a sweep: its ``run_id``, its ``energy_j`` and its ``value`` of one metric."""

    run_id: int
    energy_j: float
    value: float

    @property
    def usable(self) -> bool:
        return all(isinstance(x, (int, float)) and math.isfinite(x) for x in (self.energy_j, self.value))


def _check(direction: str) -> None:
    if direction not in DIRECTIONS:
        raise ValueError(f"direction must be {' or '.join(DIRECTIONS)}; got {direction!r}")


def _better(a: float, b: float, direction: str) -> bool:
    """Whether value ``a`` is strictly better than ``b``."""
    return a > b if direction == HIGHER else a < b


def pareto_front(points: Iterable[Point], direction: str) -> list[Point]:
    """The points no other point dominates, least energy first (then the better value, then the
    run id): the runs worth their energy. Unusable points (``Point.usable``) are left out."""
    _check(direction)
    usable = [p for p in points if p.usable]
    # least energy first, the better value first among equal energies: a point is on the front
    # when its value beats every point before it, or equals the best so far at the same energy
    usable.sort(key=lambda p: (p.energy_j, -p.value if direction == HIGHER else p.value, p.run_id))
    front: list[Point] = []
    for point in usable:
        if not front or _better(point.value, front[-1].value, direction):
            front.append(point)
        elif point.value == front[-1].value and point.energy_j == front[-1].energy_j:
            front.append(point)  # the same energy and value as a point on the front: a tie, kept
    return front


@dataclasses.dataclass(frozen=True)
class Tradeoff:
    """A ``reference`` run (the sweep's selected one) and the ``cheapest`` run whose metric is within
    ``tolerance`` of it (the reference itself when none is cheaper); ``energy_share``: the cheapest's
    energy over the reference's (None when the reference used none)."""

    reference: Point
    cheapest: Point
    tolerance: float
    direction: str

    @property
    def energy_share(self) -> float | None:
        return self.cheapest.energy_j / self.reference.energy_j if self.reference.energy_j > 0 else None


def within_tolerance(points: Sequence[Point], reference: int, tolerance: float, direction: str) -> Tradeoff:
    """The cheapest of ``points`` whose value is at most ``tolerance`` worse than run ``reference``'s
    (least energy, then the better value, then the lower run id), as a ``Tradeoff``."""
    _check(direction)
    if not (isinstance(tolerance, (int, float)) and math.isfinite(tolerance) and tolerance >= 0):
        raise ValueError(f"tolerance must be a finite number of 0 or more; got {tolerance!r}")
    found = [p for p in points if p.run_id == reference]
    if not found or not found[0].usable:
        raise ValueError(f"run {reference} has no energy and value to compare with")
    ref = found[0]
    floor = ref.value - tolerance if direction == HIGHER else ref.value + tolerance
    close = [p for p in points if p.usable and not _better(floor, p.value, direction)]
    cheapest = min(close, key=lambda p: (p.energy_j, -p.value if direction == HIGHER else p.value, p.run_id))
    return Tradeoff(reference=ref, cheapest=cheapest, tolerance=float(tolerance), direction=direction)

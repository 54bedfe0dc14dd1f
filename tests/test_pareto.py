"""Accuracy against energy (``analysis.pareto``), by hand on small tables of runs: the front, ties,
a metric where lower is better, unusable points, the cheapest run within a tolerance of the
selected one, and each metric's direction from its name or as declared."""

from __future__ import annotations

import math

import pytest

from notebook_carbon.analysis.pareto import (
    HIGHER, LOWER, Point, metric_direction, pareto_front, primary_metric, within_tolerance,
)  # fmt: skip

# run id, energy J, accuracy
SWEEP = [(1, 100.0, 0.90), (2, 200.0, 0.93), (3, 150.0, 0.89), (4, 400.0, 0.935), (5, 50.0, 0.80),
         (6, 400.0, 0.92), (7, 60.0, 0.80)]  # fmt: skip


def points(rows):
    return [Point(*row) for row in rows]


def ids(found):
    return [p.run_id for p in found]


def test_the_front_by_hand():
    """5 (least energy), 1 (more accuracy for 100 J), 2, 4 (the best, and the costliest); 3 is beaten
    by 1 on both, 6 by 2, 7 by 5 (the same accuracy for more energy)."""
    assert ids(pareto_front(points(SWEEP), HIGHER)) == [5, 1, 2, 4]


def test_a_metric_where_lower_is_better():
    losses = [(1, 100.0, 0.40), (2, 200.0, 0.30), (3, 150.0, 0.45), (4, 50.0, 0.60), (5, 300.0, 0.30)]
    assert ids(pareto_front(points(losses), LOWER)) == [4, 1, 2]  # 5: the same loss as 2, for more energy
    assert ids(pareto_front(points(losses), HIGHER)) == [4]  # read the other way, the cheapest is best too


def test_ties_stay_on_the_front_and_order_is_stable():
    tied = [(8, 100.0, 0.9), (3, 100.0, 0.9), (5, 100.0, 0.8), (1, 50.0, 0.9)]
    assert ids(pareto_front(points(tied), HIGHER)) == [1]  # 50 J for the same accuracy beats all three
    tied = [(8, 100.0, 0.9), (3, 100.0, 0.9), (5, 100.0, 0.8)]
    assert ids(pareto_front(points(tied), HIGHER)) == [3, 8]  # neither beats the other


def test_unusable_points_are_left_out_and_nothing_gives_nothing():
    rows = [(1, math.nan, 0.99), (2, 100.0, math.inf), (3, 10.0, 0.5), (4, None, 0.9)]
    assert ids(pareto_front([Point(*r) for r in rows], HIGHER)) == [3]
    assert pareto_front([], HIGHER) == []
    with pytest.raises(ValueError, match="direction must be higher or lower; got 'max'"):
        pareto_front(points(SWEEP), "max")


def test_the_cheapest_run_within_a_tolerance_of_the_selected_one():
    """Selected: run 4 (0.935 at 400 J). Within 0.005: run 2 (0.93 at 200 J), half its energy;
    within 0.04: run 5 (0.80 is not within; 1 at 0.90 is, at 100 J); within 0: run 4 itself."""
    tradeoff = within_tolerance(points(SWEEP), 4, 0.005, HIGHER)
    assert (tradeoff.reference.run_id, tradeoff.cheapest.run_id) == (4, 2)
    assert tradeoff.energy_share == pytest.approx(0.5)
    assert within_tolerance(points(SWEEP), 4, 0.04, HIGHER).cheapest.run_id == 1
    assert within_tolerance(points(SWEEP), 4, 0.0, HIGHER).cheapest.run_id == 4
    losses = [(1, 100.0, 0.40), (2, 200.0, 0.30), (3, 150.0, 0.32)]
    assert within_tolerance(points(losses), 2, 0.02, LOWER).cheapest.run_id == 3
    assert within_tolerance(points(losses), 2, 0.1, LOWER).cheapest.run_id == 1
    with pytest.raises(ValueError, match="run 9 has no energy and value"):
        within_tolerance(points(SWEEP), 9, 0.01, HIGHER)
    with pytest.raises(ValueError, match="tolerance must be a finite number of 0 or more"):
        within_tolerance(points(SWEEP), 4, -0.01, HIGHER)
    assert within_tolerance([Point(1, 0.0, 0.5)], 1, 0.0, HIGHER).energy_share is None


@pytest.mark.parametrize(("name", "direction"), [
    ("accuracy", HIGHER), ("val_acc", HIGHER), ("eval/accuracy", HIGHER), ("Test_F1", HIGHER), ("bleu", HIGHER),
    ("loss", LOWER), ("eval_loss", LOWER), ("val/loss", LOWER), ("contrastive_loss", LOWER), ("perplexity", LOWER),
    ("wer", LOWER), ("top1_error", LOWER), ("throughput", None), ("my_metric", None), ("lossy_score", None),
])  # fmt: skip
def test_a_metric_s_direction_from_its_name(name, direction):
    assert metric_direction(name) == direction


@pytest.mark.parametrize(("names", "metric"), [
    (["acc", "val_acc"], "val_acc"), (["accuracy", "val_accuracy"], "val_accuracy"),
    (["train_loss", "val_loss"], "val_loss"), (["train_acc", "test_acc", "acc"], "test_acc"),
    (["train_acc", "eval_loss"], "eval_loss"), (["loss", "acc"], "acc"), (["throughput"], None),
])  # fmt: skip
def test_a_sweep_is_judged_by_a_held_out_metric_first(names, metric):
    """Validation before test before a bare name before training (a review found ``acc`` winning
    over ``val_acc`` by the alphabet); an accuracy before a loss."""
    assert primary_metric(names) == metric


def test_a_declared_direction_wins_and_is_checked():
    assert metric_direction("loss", {"loss": HIGHER}) == HIGHER  # a reward someone named loss
    assert metric_direction("throughput", {"throughput": HIGHER}) == HIGHER
    with pytest.raises(ValueError, match="a metric's direction is higher or lower; got 'up'"):
        metric_direction("acc", {"acc": "up"})

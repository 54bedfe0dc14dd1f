"""A GPU figure from a window too short for its sensor carries a range that says so (issue 13)."""

from __future__ import annotations

import pytest

from notebook_carbon.impact.uncertainty import GPU_UPDATE_S, short_window_range
from notebook_carbon.record import energy_range
from notebook_carbon.registry import Registry, new_uid


@pytest.mark.parametrize(
    ("method", "duration_s", "low", "high"),
    [
        ("nvml-counter", 0.05, 0.0, 5.05),  # 2 x 0.1 s / 0.05 s = 400 % on each side; low floored at 0
        ("nvml-counter", 0.5, 0.55, 1.45),  # the docstring's example
        ("nvml-power", 5.0, 0.54, 1.46),  # the power reading: a 1 s period
        ("nvml-counter+nvml-power", 5.0, 0.54, 1.46),  # two GPUs: the slower sensor's period
        ("nvml-counter", 0.001, 0.0, 10.0),  # never above 10x
    ],
)
def test_a_short_window_widens_a_gpu_figure_by_its_sensors_update_period(method, duration_s, low, high):
    found = short_window_range(method, duration_s)
    assert (found.low, found.high) == (pytest.approx(low), pytest.approx(high))
    assert f"{duration_s:.3g} s window" in found.basis


def test_long_enough_windows_and_other_methods_keep_their_own_range():
    assert short_window_range("nvml-counter", 10 * GPU_UPDATE_S["nvml-counter"]) is None
    assert short_window_range("nvml-power", 10.0) is None
    assert short_window_range("rapl", 0.01) is None and short_window_range("estimate-tdp", 0.01) is None
    assert short_window_range("nvml-counter", None) is None


def test_a_runs_range_takes_the_short_window_of_its_gpu_only():
    row = {"energy_j": 12.0, "gpu_energy_j": 10.0, "gpu_method": "nvml-counter", "cpu_energy_j": 2.0,
           "cpu_method": "rapl", "duration_s": 0.2}  # fmt: skip
    low, high = energy_range(row)
    assert (low, high) == (pytest.approx((10 * 0.0 + 2 * 0.9) / 12), pytest.approx((10 * 2.05 + 2 * 1.1) / 12))
    assert energy_range({**row, "duration_s": 60.0}) == (pytest.approx((9.5 + 1.8) / 12), pytest.approx((10.5 + 2.2) / 12))


def test_the_registry_keeps_a_short_windows_range_in_the_totals(tmp_path):
    with Registry.open(str(tmp_path / "r.sqlite")) as reg:
        uid = new_uid()
        reg.record_run({"uid": uid, "project": "p", "started_at": 1.8e9},
                       {"status": "ok", "energy_j": 10.0, "gpu_energy_j": 10.0, "gpu_method": "nvml-counter",
                        "duration_s": 0.05})  # fmt: skip
        run = reg.get_run(uid)
        assert (run["energy_low_factor"], run["energy_high_factor"]) == (0.0, pytest.approx(5.05))
        totals = reg.totals("p")
        assert (totals.energy_low_j, totals.energy_high_j) == (0.0, pytest.approx(50.5))

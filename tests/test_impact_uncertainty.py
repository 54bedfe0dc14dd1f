"""Ranges from measurement methods, combined and carried through emissions, checked by hand."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from notebook_carbon.errors import ConfigError
from notebook_carbon.impact.embodied import embodied
from notebook_carbon.impact.uncertainty import (
    METHOD_RANGES,
    UNATTRIBUTED_RANGE,
    EmissionsRange,
    EnergyRange,
    Range,
    embodied_range,
    emissions_range,
    energy_by_method,
    energy_range,
    method_range,
    total_range,
)
from notebook_carbon.meters.base import METHODS


def test_every_method_has_a_range_and_no_other():
    assert tuple(METHOD_RANGES) == METHODS


@pytest.mark.parametrize(
    ("method", "low", "high", "label", "cited"),
    [
        ("rapl", 0.9, 1.1, "±10 %", "Jay et al. (2023)"),
        ("nvml-counter", 0.95, 1.05, "±5 %", "NVML API reference"),
        ("nvml-power", 0.94, 1.06, "±6 %", "ml-energy/zeus issue #12"),
        ("estimate-tdp", 0.6, 1.4, "±40 %", "an assumption"),  # no study of its error identified
        ("estimate-ram", 0.6, 1.4, "±40 %", "an assumption"),
        ("none", 1.0, 1.0, "exact", "not counted"),
    ],
)
def test_method_ranges_and_their_basis(method, low, high, label, cited):
    got = method_range(method)
    assert (got.low, got.high) == (low, high)
    assert got.label == label and cited in got.basis


def test_several_methods_take_the_widest():
    got = method_range("nvml-counter+nvml-power")
    assert (got.low, got.high) == (0.94, 1.06)
    assert "nvml-counter ±5 %, nvml-power ±6 %" in got.basis
    assert (method_range("estimate-tdp+rapl").low, method_range("estimate-tdp+rapl").high) == (0.6, 1.4)


def test_asymmetric_label():
    assert Range(0.6, 1.1, "x").label == "-40 %/+10 %"


@pytest.mark.parametrize("method", ["codecarbon", "rapl+magic", "", "RAPL"])
def test_unknown_method_lists_the_known_ones(method):
    with pytest.raises(ConfigError, match="known methods: rapl, nvml-counter, nvml-power, estimate-tdp"):
        method_range(method)


def test_mixed_run_gpu_counter_cpu_tdp_ram_estimate_by_hand():
    # GPU 1000 J nvml-counter (±5 %), CPU 200 J estimate-tdp (±40 %), RAM 50 J estimate-ram (±40 %)
    got = energy_range({"nvml-counter": 1000.0, "estimate-tdp": 200.0, "estimate-ram": 50.0})
    assert got.central_j == 1250.0
    assert got.low_j == pytest.approx(950.0 + 120.0 + 30.0)  # 1100 J
    assert got.high_j == pytest.approx(1050.0 + 280.0 + 70.0)  # 1400 J
    assert got.basis.startswith(
        "per-method ranges (nvml-counter ±5 %; estimate-tdp ±40 %; estimate-ram ±40 %)"
    )
    assert "conservative" in got.basis


def test_empty_and_zero_energy():
    assert energy_range({}) == EnergyRange(0.0, 0.0, 0.0, energy_range({}).basis)
    assert energy_range({"none": 0.0}).high_j == 0.0


@pytest.mark.parametrize(
    ("parts", "message"),
    [
        ({"rapl": -1.0}, "negative"),
        ({"rapl": float("inf")}, "not a finite number"),
        ({"watts": 1.0}, "unknown"),
    ],
)
def test_bad_energy_parts(parts, message):
    with pytest.raises(ConfigError, match=message):
        energy_range(parts)


def test_energy_by_method_from_a_run_record():
    record = {
        "gpu_energy_j": 1000.0, "gpu_method": "nvml-counter",
        "cpu_energy_j": 200.0, "cpu_method": "rapl",
        "ram_energy_j": 50.0, "ram_method": "rapl",
    }  # fmt: skip
    assert energy_by_method(record) == {"nvml-counter": 1000.0, "rapl": 250.0}
    # a run without a GPU: no energy, method "none"; a record with no method at all counts as "none"
    assert energy_by_method({"gpu_energy_j": None, "gpu_method": "none", "cpu_energy_j": 3.0}) == {
        "none": 3.0
    }


def test_emissions_scale_the_energy_range():
    energy = EnergyRange(1100.0, 1250.0, 1400.0, "by hand")
    # 1.2 x 300 g/kWh / 3.6e6 J/kWh = 1e-4 g per joule of IT energy
    got = emissions_range(energy, intensity_g_per_kwh=300.0, pue=1.2)
    assert (got.low_g, got.central_g, got.high_g) == pytest.approx((0.11, 0.125, 0.14))
    assert "grid intensity taken as exact" in got.basis and "Energy: by hand" in got.basis


def test_intensity_uncertainty_multiplies_in():
    energy = EnergyRange(1100.0, 1250.0, 1400.0, "by hand")
    got = emissions_range(energy, intensity_g_per_kwh=300.0, pue=1.2, intensity_relative=0.1)
    assert (got.low_g, got.central_g, got.high_g) == pytest.approx((0.099, 0.125, 0.154))
    assert "grid intensity ±10 %" in got.basis


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"intensity_g_per_kwh": -1.0}, "is negative"),
        ({"intensity_g_per_kwh": 100.0, "pue": 0.9}, "pue=0.9 is below 1.0"),
        ({"intensity_g_per_kwh": 100.0, "intensity_relative": 1.5}, "between 0 and 1"),
    ],
)
def test_emissions_range_rejects_bad_inputs(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        emissions_range(EnergyRange(1.0, 1.0, 1.0, ""), **kwargs)


def test_embodied_range_from_the_factor_or_a_point():
    laptop = embodied_range(embodied(3600, hardware="laptop"))
    # Boavizta's laptops: 236 kg (p10-p90 132-315) x 1 h / (4 x 365 x 24 h)
    assert (laptop.low_g, laptop.central_g, laptop.high_g) == pytest.approx(
        (132e3 / 35040, 236e3 / 35040, 315e3 / 35040)
    )
    server = embodied_range(embodied(3600, hardware="gpu-server", gpu_count=4))
    # 3,100 kg x 1 h / (6 years x 85 % use x 8,760 h), as Luccioni et al. (2023) amortised it
    assert server.low_g == server.central_g == server.high_g == pytest.approx(3.1e6 / (6 * 0.85 * 8760))
    assert server.basis.startswith("at least this: a lower bound, as its per-GPU factor is one")
    assert server.lower_bound and not laptop.lower_bound
    bare = embodied_range(embodied(3600, hardware="gpu-server"))  # no GPUs counted: no lower bound
    assert bare.basis.startswith("no published range for this factor") and not bare.lower_bound
    assert total_range(laptop, server).lower_bound  # a sum with a lower bound in it is one


def test_each_method_range_says_whether_it_is_cited_or_assumed():
    provenance = {m: r.provenance for m, r in METHOD_RANGES.items()}
    # rapl: no vendor states an accuracy; estimate-ram: no study of the heuristic's error is known
    assert provenance == {
        "rapl": "assumed",
        "nvml-counter": "cited",
        "nvml-power": "cited",
        "estimate-tdp": "assumed",  # the earlier "Fischer (2025)" could not be identified: no source
        "estimate-ram": "assumed",
        "none": "exact",
    }
    assert all(r.source for r in METHOD_RANGES.values() if r.cited)
    assert UNATTRIBUTED_RANGE.provenance == "assumed"


def test_total_range_sums_lows_and_highs():
    got = total_range(EmissionsRange(1.0, 2.0, 3.0, "a"), EmissionsRange(10.0, 20.0, 40.0, "b"))
    assert (got.low_g, got.central_g, got.high_g) == (11.0, 22.0, 43.0)
    assert got.basis.endswith("a | b")


def test_results_are_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        energy_range({}).low_j = 1.0  # type: ignore[misc]


def test_every_range_is_documented_in_methods_md():
    methods = (Path(__file__).parent.parent / "docs" / "methods.md").read_text()
    for method, r in METHOD_RANGES.items():
        assert f"| `{method}` | {r.label} |" in methods


def test_unattributed_energy_is_as_uncertain_as_an_estimate():
    from notebook_carbon.impact.uncertainty import UNATTRIBUTED_RANGE, energy_range, method_range

    assert method_range("unattributed") is UNATTRIBUTED_RANGE
    found = energy_range({"rapl": 100.0, "unattributed": 50.0})
    assert (found.low_j, found.central_j, found.high_j) == pytest.approx((90.0 + 30.0, 150.0, 110.0 + 70.0))

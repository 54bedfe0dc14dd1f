"""Embodied emissions (SCI time-share), the lifetime-extension scenario and the SCI score, by hand."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from notebook_carbon import track
from notebook_carbon.errors import ConfigError
from notebook_carbon.impact.embodied import (
    FACTORS,
    KINDS,
    S_PER_YEAR,
    embodied,
    lifetime_extension,
    resolve_hardware,
    sci,
)
from notebook_carbon.impact.resources import resource_share
from notebook_carbon.meters.detect import Detection
from notebook_carbon.registry.store import Registry
from notebook_carbon.session import Session
from notebook_carbon.session.figures import cpu_affinity
from notebook_carbon.settings import HARDWARE, Settings
from notebook_carbon.testing import FakeMeter

FOUR_YEARS_S = 4 * 365 * 24 * 3600  # 126,144,000 s
BLOOM_IN_USE_S = 6 * 0.85 * 365 * 24 * 3600  # Luccioni et al. (2023): 6 years at 85 % use, 160,833,600 s


def test_a_year_is_365_days_as_in_the_sci_example():
    assert S_PER_YEAR == 31_536_000
    # SCI 1.1.0: 1000 kg, four-year life, reserved one hour -> 1000 * 1/(4*365*24) kg, "around 28 g"
    got = embodied(3600, embodied_kg=1000)
    assert got.embodied_g == pytest.approx(1_000_000 / (4 * 365 * 24), rel=1e-12)
    assert got.embodied_g == pytest.approx(28.5388128, rel=1e-8)


def test_four_gpu_server_reserved_two_hours_amortised_as_bloom_did():
    got = embodied(2 * 3600, hardware="gpu-server", gpu_count=4)
    # TE = 2,500 kg + 4 x 150 kg = 3,100 kg over Luccioni et al.'s 6 years at 85 % use:
    # lifespan in use = 6 x 0.85 x 31,536,000 s = 160,833,600 s; M = 3.1e6 g x 7,200 / 160,833,600 = 138.78 g
    assert got.total_kg == 3100.0
    assert got.embodied_g == pytest.approx(3.1e6 * 7200 / BLOOM_IN_USE_S, rel=1e-12)
    assert got.embodied_g == pytest.approx(138.776972, rel=1e-8)
    assert got.low_g is None and got.high_g is None  # no published range for this factor
    assert (got.hardware, got.gpu_count, got.lifetime_years, got.use_fraction, got.resource_share) == (
        "gpu-server",
        4,
        6.0,
        0.85,
        1.0,
    )
    assert got.lower_bound  # the paper calls its 150 kg per GPU a lower bound
    assert got.basis == (
        "SCI time-share: 3.1 t CO2e x 2 h 00 min / 6 years at 85 % use = 139 g CO2e; "
        "a lower bound (the per-GPU figure is one)"
    )
    assert got.source.startswith("gpu-server with 4 GPUs: 3.1 t CO2e; 2,500 kg per server")
    assert "BLOOM" in got.source and got.hardware_reason is None


def test_gpu_server_without_gpus_is_no_lower_bound_and_a_set_lifetime_wins():
    assert not embodied(3600, hardware="gpu-server").lower_bound
    got = embodied(3600, hardware="gpu-server", gpu_count=8, lifetime_years=4)
    # a lifetime given: full use unless use_fraction is given too; 3,700 kg x 3,600 / 126,144,000 = 105.59 g
    assert (got.lifetime_years, got.use_fraction) == (4.0, 1.0)
    assert got.embodied_g == pytest.approx(3.7e6 * 3600 / FOUR_YEARS_S, rel=1e-12)


def test_resource_share_scales_the_time_share():
    # a quarter of an 8-GPU server for one hour: 3,700 kg x 3,600 / 160,833,600 x 0.25 = 20.705 g
    got = embodied(3600, hardware="gpu-server", gpu_count=8, resource_share=0.25, resource_how="by hand")
    assert got.embodied_g == pytest.approx(3.7e6 * 3600 / BLOOM_IN_USE_S * 0.25, rel=1e-12)
    assert got.embodied_g == pytest.approx(20.7046288, rel=1e-8)
    assert got.basis.startswith("SCI time-share: 3.7 t CO2e x 1 h 00 min / 6 years at 85 % use x 0.25 of its")
    assert got.resource_how == "by hand"


def test_laptop_carries_its_range_and_ignores_gpus():
    got = embodied(3600, hardware="laptop", gpu_count=1)
    # Boavizta's 226 laptops: median 236 kg, p10-p90 132-315 kg; x 3,600 / 126,144,000 s:
    # 236 x 3,600,000 / 126,144,000 = 6.735 g (132 -> 3.767 g, 315 -> 8.990 g)
    assert got.total_kg == 236.0
    assert (got.low_g, got.embodied_g, got.high_g) == pytest.approx(
        (132e3 * 3600 / FOUR_YEARS_S, 236e3 * 3600 / FOUR_YEARS_S, 315e3 * 3600 / FOUR_YEARS_S), rel=1e-12
    )
    assert (got.low_g, got.embodied_g, got.high_g) == pytest.approx(
        (3.7671233, 6.7351598, 8.9897260), rel=1e-7
    )


def test_workstation_range_includes_the_gpu_add_on():
    got = embodied(FOUR_YEARS_S, hardware="workstation", gpu_count=2)  # the whole life: M = TE
    assert got.embodied_g == pytest.approx((249 + 300) * 1000)
    assert (got.low_g, got.high_g) == pytest.approx(((187 + 300) * 1000, (405 + 300) * 1000))


def test_user_value_replaces_the_table_and_longer_life_divides():
    got = embodied(3600, hardware="gpu-server", gpu_count=8, embodied_kg=5000, lifetime_years=6)
    assert got.total_kg == 5000.0 and got.user_total
    assert got.embodied_g == pytest.approx(5e6 * 3600 / (6 * S_PER_YEAR), rel=1e-12)  # 95.13 g
    assert got.low_g is None and got.source == "5 t CO2e, user-provided value"


def test_reused_hardware_attributes_nothing_and_says_so():
    got = embodied(3600, hardware="laptop", reused=True)
    assert got.embodied_g == 0.0 and got.low_g == 0.0 and got.high_g == 0.0
    assert got.reused and got.as_new_g == pytest.approx(6.7351598, rel=1e-7)  # 236 kg x 1 h / 4 years
    assert got.basis.startswith(
        "reused hardware: its manufacturing emissions are counted as already amortised"
    )
    assert got.basis.endswith("(as new hardware: 6.74 g)")


def test_zero_time_is_zero():
    assert embodied(0.0, hardware="server").embodied_g == 0.0


@pytest.mark.parametrize(
    ("gpu_count", "has_battery", "kind"),
    [(0, False, "workstation"), (2, False, "workstation"), (0, True, "laptop"), (1, True, "laptop"),
     (4, False, "gpu-server"), (8, True, "gpu-server")],
)  # fmt: skip
def test_auto_guesses_from_gpus_and_battery(gpu_count, has_battery, kind):
    resolved, reason = resolve_hardware("auto", gpu_count=gpu_count, has_battery=has_battery)
    assert resolved == kind and reason.endswith(f": {kind}")
    got = embodied(3600, hardware="auto", gpu_count=gpu_count, has_battery=has_battery)
    assert got.hardware == kind and got.hardware_reason == reason
    assert f"({reason})" in got.source and "set hardware" not in got.source  # the source goes into papers as is


def test_auto_with_a_user_value_gives_no_guess():
    got = embodied(3600, hardware="auto", embodied_kg=300)
    assert got.hardware_reason is None and got.source == "300 kg CO2e, user-provided value"


def test_explicit_kind_is_not_a_guess():
    assert resolve_hardware("server", gpu_count=8) == ("server", None)


def test_unknown_kind_lists_the_known_ones():
    with pytest.raises(
        ConfigError,
        match="unknown hardware kind 'mainframe'; known kinds: auto, gpu-server, server, workstation, laptop",
    ):
        embodied(3600, hardware="mainframe")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"reserved_s": -1.0}, "reserved_s=-1.0 is negative"),
        ({"reserved_s": float("nan")}, "not a finite number"),
        ({"embodied_kg": -5}, "embodied_kg=-5.0 is negative"),
        ({"lifetime_years": 0}, "lifetime_years=0.0 must be a positive number of years"),
        ({"use_fraction": 0}, "use_fraction=0.0 must be a share above 0, at most 1"),
        ({"use_fraction": 1.2}, "use_fraction=1.2 must be a share above 0, at most 1"),
        ({"resource_share": 1.5}, "resource_share=1.5 must be between 0 and 1"),
        ({"gpu_count": -1}, "gpu_count=-1 must be a whole number >= 0"),
        ({"gpu_count": 1.5}, "gpu_count=1.5 must be a whole number >= 0"),
    ],
)
def test_bad_inputs_say_what_is_wrong(kwargs, message):
    arguments = {"reserved_s": 3600.0, **kwargs}
    with pytest.raises(ConfigError, match=message.replace("(", r"\(")):
        embodied(arguments.pop("reserved_s"), **arguments)


def test_lifetime_extension_from_four_to_six_years_is_minus_a_third():
    got = lifetime_extension(30.0, from_years=4, to_years=6)
    assert got.before_g == 30.0 and got.after_g == pytest.approx(20.0)
    assert got.change_g == pytest.approx(-10.0) and got.change_fraction == pytest.approx(-1 / 3)
    assert (
        got.sentence
        == "At 6 instead of 4 years of service: -33 % embodied emissions (20 g instead of 30 g CO2e)."
    )
    assert "x 4/6" in got.basis


def test_lifetime_extension_defaults_and_shorter_lives():
    assert lifetime_extension(12.0).change_fraction == pytest.approx(-1 / 3)  # 4 -> 6 years by default
    shorter = lifetime_extension(12.0, from_years=4, to_years=2)
    assert shorter.after_g == pytest.approx(24.0) and "+100 %" in shorter.sentence
    same = lifetime_extension(12.0, from_years=4, to_years=4)
    assert same.change_g == 0.0 and "unchanged" in same.sentence
    with pytest.raises(ConfigError, match="to_years=0.0 must be a positive number of years"):
        lifetime_extension(12.0, to_years=0)


def test_sci_per_functional_unit_by_hand():
    # E = 1.5 kWh of facility energy, I = 400 g/kWh, M = 150 g, R = 3 runs: (600 + 150) / 3 = 250 g per run
    got = sci(1.5 * 3.6e6, 400.0, 150.0, functional_units=3)
    assert got.operational_g == pytest.approx(600.0)
    assert got.sci_g_per_unit == pytest.approx(250.0)
    assert (got.embodied_g, got.functional_units, got.unit) == (150.0, 3.0, "run")
    assert got.basis.startswith(
        "SCI = (E x I + M) / R = (1.5 kWh x 400 g/kWh + 150 g) / 3 run = 250 g CO2e per run"
    )
    assert "facility energy" in got.basis


def test_sci_of_a_run_equals_its_emissions_plus_embodied():
    e = embodied(2 * 3600, hardware="gpu-server", gpu_count=4)
    got = sci(10 * 3.6e6, 56.0, e.embodied_g, unit="training run")
    # 10 kWh x 56 g/kWh + 3.1e6 g x 7,200 s / 160,833,600 s (6 years at 85 % use) = 560 + 138.777 g
    assert got.sci_g_per_unit == pytest.approx(560.0 + 138.776972, rel=1e-8)
    assert got.basis.endswith("per training run; E is facility energy (IT energy x PUE)")


@pytest.mark.parametrize(
    ("args", "kwargs", "message"),
    [
        ((-1.0, 400.0, 0.0), {}, "facility_energy_j=-1.0 is negative"),
        ((1.0, -4.0, 0.0), {}, "intensity_g_per_kwh=-4.0 is negative"),
        ((1.0, 400.0, -2.0), {}, "embodied_g=-2.0 is negative"),
        ((1.0, 400.0, 0.0), {"functional_units": 0}, "functional_units=0.0 must be positive"),
        ((1.0, 400.0, 0.0), {"unit": " "}, "unit must name the functional unit"),
    ],
)
def test_sci_rejects_bad_inputs(args, kwargs, message):
    with pytest.raises(ConfigError, match=message):
        sci(*args, **kwargs)


def test_results_are_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        embodied(1.0).embodied_g = 0.0  # type: ignore[misc]


def test_settings_accept_exactly_the_known_kinds():
    assert HARDWARE == ("auto", *KINDS)
    assert KINDS == ("gpu-server", "server", "workstation", "laptop")


def test_factors_are_those_documented_in_methods_md():
    table = {k: (f.base_kg, f.per_gpu_kg, f.base_low_kg, f.base_high_kg) for k, f in FACTORS.items()}
    assert table == {
        "gpu-server": (2500.0, 150.0, None, None),
        "server": (1215.0, 150.0, 684.0, 1669.0),
        "workstation": (249.0, 150.0, 187.0, 405.0),
        "laptop": (236.0, 0.0, 132.0, 315.0),
    }
    amortised = {k: (f.lifetime_years, f.use_fraction, f.per_gpu_lower_bound) for k, f in FACTORS.items()}
    assert amortised["gpu-server"] == (6.0, 0.85, True)  # as Luccioni et al. (2023) amortised it
    # the 150 kg per GPU is BLOOM's lower bound in every factor that adds it
    assert amortised["server"] == amortised["workstation"] == (None, 1.0, True)
    assert amortised["laptop"] == (None, 1.0, False)  # a laptop's figure includes its GPU
    methods = (Path(__file__).parent.parent / "docs" / "methods.md").read_text()
    for kind in KINDS:
        assert f"| `{kind}` |" in methods


def test_a_run_records_embodied_and_water(tmp_path):
    detection = Detection(
        meters=(FakeMeter("gpu", "nvml-counter", "GPU 0: fake", 200.0, model="fake"),), notes=()
    )
    settings = Settings(
        registry=str(tmp_path / "r.sqlite"), hardware="gpu-server", wue_l_per_kwh=1.8, pue=1.2
    )
    session = Session(settings, detection=detection)
    with track(session=session, quiet=True) as run:
        pass
    result = run.result
    assert session.writer().flush(10)
    with Registry.open(settings.registry_location()) as registry:
        (row,) = registry.runs()
    duration_s = result.measurement.duration_s
    share = resource_share(cpus_reserved=cpu_affinity()[0], cpus_total=cpu_affinity()[1]).share
    # one GPU: TE = 2,650 kg over 6 years at 85 % use, times the CPU-affinity share;
    # water follows IT energy (not facility) x 1.8 L/kWh
    assert row["embodied_g"] == pytest.approx(2.65e6 * duration_s / BLOOM_IN_USE_S * share, rel=1e-9)
    assert row["water_l"] == pytest.approx(result.measurement.energy_j / 3.6e6 * 1.8, rel=1e-9)
    assert result.footprint.water_l == pytest.approx(row["water_l"])
    assert any(
        n.startswith(
            "embodied: gpu-server with 1 GPU, 2650 kg CO2e amortised over 6 years at 85 % use (SCI "
            f"time-share); resource share {share:.4g} ("
        )
        and n.endswith("; a lower bound: the 150 kg per GPU is one")
        for n in row["notes"]
    )


def test_a_run_on_reused_hardware_records_zero_embodied(tmp_path):
    settings = Settings(registry=str(tmp_path / "r.sqlite"), hardware="laptop", reused_hardware=True)
    session = Session(settings, detection=Detection(meters=(), notes=()))
    with track(session=session, quiet=True):
        pass
    assert session.writer().flush(10)
    with Registry.open(settings.registry_location()) as registry:
        (row,) = registry.runs()
    assert row["embodied_g"] == 0.0 and row["water_l"] is None
    assert any("reused hardware: none attributed" in n for n in row["notes"])


@pytest.mark.parametrize(
    ("kwargs", "share", "how"),
    [
        (
            {"override": 0.03125, "cpus_reserved": 2, "cpus_total": 2},
            0.03125,
            "0.03125 of the machine, as the user set it",
        ),
        (
            {"gpus_used": 2, "gpus_total": 8, "cpus_reserved": 128, "cpus_total": 128},
            0.25,
            "2 of the host's 8 GPUs",
        ),
        (
            {"gpus_used": 0, "gpus_total": 8, "cpus_reserved": 16, "cpus_total": 64},
            0.25,
            "16 of the host's 64",
        ),
        (
            {"cpus_reserved": 4, "cpus_total": 16},
            0.25,
            "4 of the host's 16 logical CPUs, by the process's CPU",
        ),
        ({}, 1.0, "the whole machine: no count of its resources could be read"),
    ],
)
def test_resource_share_takes_the_first_rule_that_applies(kwargs, share, how):
    got = resource_share(**kwargs)
    assert got.share == share and got.how.startswith(how)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"override": 1.5}, "resource_share=1.5 must be between 0 and 1"),
        ({"gpus_used": 9, "gpus_total": 8}, "9 GPUs used of 8 on the host"),
        ({"cpus_reserved": 9, "cpus_total": 8}, "9 CPUs reserved of 8"),
    ],
)
def test_resource_share_refuses_impossible_counts(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        resource_share(**kwargs)


def test_a_run_on_a_vm_takes_the_resource_share_setting(tmp_path):
    # a 2-vCPU VM on a 64-vCPU host cannot see its host: the setting gives 2/64
    settings = Settings(registry=str(tmp_path / "r.sqlite"), hardware="workstation", resource_share=2 / 64)
    session = Session(settings, detection=Detection(meters=(), notes=()))
    with track(session=session, quiet=True) as run:
        pass
    assert session.writer().flush(10)
    with Registry.open(settings.registry_location()) as registry:
        (row,) = registry.runs()
    # 249 kg x duration / 4 years x 2/64
    expected = 249e3 * run.result.measurement.duration_s / FOUR_YEARS_S * 2 / 64
    assert row["embodied_g"] == pytest.approx(expected, rel=1e-9)
    assert any(
        "resource share 0.03125 (0.03125 of the machine, as the user set it)" in n for n in row["notes"]
    )

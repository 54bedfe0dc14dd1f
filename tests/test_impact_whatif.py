"""The same energy on other grids: the cleanest ones and the user's choice, from the bundled data."""

from __future__ import annotations

import re

import pytest

from notebook_carbon.errors import ConfigError, UnknownRegionError
from notebook_carbon.impact import GridIntensity, list_regions, resolve_intensity
from notebook_carbon.impact.whatif import cleanest_regions, in_regions

DE = GridIntensity(400.0, "DE", "Germany", "test data", 2023)
TWO_KWH_J = 2 * 3.6e6


def test_cleanest_three_countries_ascending_with_emissions_by_hand():
    got = cleanest_regions(TWO_KWH_J, DE)
    # codecarbon 3.3.2 (Ember / OWID): Lesotho 20, Bhutan 23.333, Paraguay 23.755 g/kWh
    assert [(r.region, r.g_per_kwh) for r in got.rows] == [("LS", 20.0), ("BT", 23.333), ("PY", 23.755)]
    assert [r.emissions_g for r in got.rows] == pytest.approx([40.0, 46.666, 47.51])  # 2 kWh x g/kWh
    assert [r.ratio for r in got.rows] == pytest.approx([0.05, 23.333 / 400, 23.755 / 400])
    assert got.actual_emissions_g == pytest.approx(800.0)
    assert got.facility_energy_j == TWO_KWH_J and got.actual is DE
    assert all(r.year in (2022, 2023) and "Ember" in r.source for r in got.rows)
    assert got.rows[0].name == "Lesotho"
    assert got.basis.startswith("the 3 lowest-intensity regions of kind country in the bundled data")


def test_cleanest_follow_the_data_in_ascending_order():
    got = cleanest_regions(3.6e6, DE, n=10)
    countries = sorted((r for r in list_regions() if r.kind == "country" and r.g_per_kwh > 0),
                       key=lambda r: (r.g_per_kwh, r.code))  # fmt: skip
    assert [r.region for r in got.rows] == [r.code for r in countries[:10]]
    intensities = [r.g_per_kwh for r in got.rows]
    assert intensities == sorted(intensities)
    for row in got.rows:
        assert row.emissions_g == pytest.approx(row.g_per_kwh)  # 1 kWh


def test_a_zero_figure_is_left_out():
    zero = [r.code for r in list_regions() if r.kind == "country" and r.g_per_kwh == 0]
    assert zero == ["CF"]  # Central African Republic, all hydro, listed at 0 g/kWh in codecarbon 3.3.2
    got = cleanest_regions(3.6e6, DE, n=5)
    assert "CF" not in [r.region for r in got.rows] and all(r.g_per_kwh > 0 for r in got.rows)
    assert "figures of 0 g/kWh left out" in got.basis


def test_other_kinds_on_request():
    got = cleanest_regions(3.6e6, DE, n=3, kinds=("bidding-zone",))
    assert all(re.fullmatch(r"(SE|NO|DK)[0-9]", r.region) for r in got.rows)
    assert [r.g_per_kwh for r in got.rows] == sorted(r.g_per_kwh for r in got.rows)
    assert "kind bidding-zone" in got.basis


def test_user_chosen_regions_in_the_order_given():
    got = in_regions(TWO_KWH_J, ["SE3", "fr", "aws:eu-north-1"], DE)
    se3, fr = resolve_intensity("SE3"), resolve_intensity("FR")
    assert [r.region for r in got.rows] == ["SE3", "FR", "aws:eu-north-1"]
    assert got.rows[0].emissions_g == pytest.approx(2 * se3.g_per_kwh)
    assert got.rows[1].emissions_g == pytest.approx(2 * fr.g_per_kwh)
    assert got.rows[1].ratio == pytest.approx(fr.g_per_kwh / 400.0)
    assert got.rows[2].g_per_kwh == se3.g_per_kwh  # an AWS region takes the grid where it is located
    assert "embodied emissions do not depend on the grid" in got.basis


def test_unknown_region_names_close_matches():
    with pytest.raises(UnknownRegionError, match="Did you mean FR"):
        in_regions(3.6e6, ["FRX"], DE)


def test_ratio_is_none_against_a_zero_grid():
    zero = GridIntensity(0.0, "custom", "user grid", "user-provided value", None, is_override=True)
    got = in_regions(3.6e6, ["FR"], zero)
    assert got.rows[0].ratio is None and got.actual_emissions_g == 0.0


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: cleanest_regions(3.6e6, DE, n=0), "n=0 must be a whole number >= 1"),
        (
            lambda: cleanest_regions(3.6e6, DE, kinds=("planet",)),
            "unknown region kind 'planet'; known kinds: world",
        ),
        (lambda: cleanest_regions(-1.0, DE), "facility_energy_j=-1.0 is negative"),
        (lambda: cleanest_regions(3.6e6, 475.0), "actual must be the GridIntensity"),
        (lambda: in_regions(3.6e6, [], DE), "regions is empty"),
    ],
)
def test_bad_inputs(call, message):
    with pytest.raises(ConfigError, match=message):
        call()

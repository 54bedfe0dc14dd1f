"""Footprint arithmetic, input validation and display formatting."""

from __future__ import annotations

import dataclasses

import pytest

from notebook_carbon.errors import ConfigError
from notebook_carbon.impact import (
    J_PER_KWH,
    Footprint,
    GridIntensity,
    footprint,
    format_duration,
    format_energy,
    format_mass_g,
)

FR = GridIntensity(56.0, "FR", "France", "test data", 2023)


def grid(g_per_kwh: float) -> GridIntensity:
    return GridIntensity(g_per_kwh, "XX", "Test grid", "test data", None)


def test_joules_per_kwh_is_exact():
    assert J_PER_KWH == 3_600_000.0
    assert J_PER_KWH == 1000 * 3600


@pytest.mark.parametrize(
    ("energy_j", "pue", "g_per_kwh", "wue", "emissions_g", "water_l"),
    [
        (3.6e6, 1.2, 56.0, None, 67.2, None),  # 1 kWh x 1.2 x 56 g/kWh
        (3.6e6, 1.0, 475.0, None, 475.0, None),
        (1.8e6, 1.0, 100.0, 1.8, 50.0, 0.9),
        (7.2e6, 1.5, 0.0, 2.0, 0.0, 4.0),  # water follows IT energy (2 kWh x 2 L/kWh), not facility
        (3600.0, 1.1, 400.0, 0.0, 0.44, 0.0),  # 1 Wh
        (0.0, 1.5, 100.0, 1.8, 0.0, 0.0),
    ],
)
def test_footprint_maths(energy_j, pue, g_per_kwh, wue, emissions_g, water_l):
    got = footprint(energy_j, pue=pue, intensity=grid(g_per_kwh), wue_l_per_kwh=wue)
    assert got.energy_j == energy_j
    assert got.pue == pue
    assert got.facility_energy_j == pytest.approx(energy_j * pue)
    assert got.emissions_g == pytest.approx(emissions_g, rel=1e-12)
    assert got.water_l == (None if water_l is None else pytest.approx(water_l, rel=1e-12))
    assert got.wue_l_per_kwh == wue
    assert got.energy_kwh == pytest.approx(energy_j / 3.6e6)
    assert got.facility_energy_kwh == pytest.approx(energy_j * pue / 3.6e6)


def test_footprint_keeps_the_intensity_and_is_frozen():
    got = footprint(3.6e6, intensity=FR)
    assert got.intensity is FR
    assert got.pue == 1.0 and got.water_l is None
    assert isinstance(got, Footprint)
    with pytest.raises(dataclasses.FrozenInstanceError):
        got.emissions_g = 0.0  # type: ignore[misc]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"energy_j": -1.0}, "energy_j=-1.0 is negative"),
        ({"energy_j": float("nan")}, "energy_j=nan is not a finite number"),
        ({"energy_j": float("inf")}, "energy_j=inf is not a finite number"),
        ({"energy_j": "lots"}, "energy_j='lots' is not a number"),
        ({"pue": 0.99}, "pue=0.99 is below 1.0"),
        ({"pue": float("nan")}, "pue=nan is not a finite number"),
        ({"wue_l_per_kwh": -0.1}, "wue_l_per_kwh=-0.1 is negative"),
        ({"wue_l_per_kwh": float("nan")}, "wue_l_per_kwh=nan is not a finite number"),
        ({"intensity": 56.0}, "intensity must be a GridIntensity"),
    ],
)
def test_invalid_inputs_are_config_errors(kwargs, message):
    arguments = {"energy_j": 3.6e6, "pue": 1.2, "intensity": FR, "wue_l_per_kwh": None, **kwargs}
    energy_j = arguments.pop("energy_j")
    with pytest.raises(ConfigError) as info:
        footprint(energy_j, **arguments)
    assert message in str(info.value)


@pytest.mark.parametrize(
    ("energy_j", "text"),
    [
        (0.0, "0 J"),
        (5e-4, "0.5 mJ"),
        (0.85, "850 mJ"),  # a millisecond cell never reads "0.000 Wh"
        (35.2, "35.2 J"),
        (359.9, "360 J"),  # below 1 Wh energy reads in joules (units' one display scheme)
        (850.0, "850 J"),
        (1512.0, "1.51 kJ"),
        (3599.9, "1 Wh"),  # 0.99997 Wh rounds to 1 Wh, where watt-hours take over
        (44_280.0, "12.3 Wh"),
        (3.6e6 * 0.99996, "1 kWh"),  # rounds up into the next unit, never "1000 Wh"
        (3.6e6 * 1.234, "1.23 kWh"),
        (3.6e6 * 56_700, "56.7 MWh"),
        (3.6e9 * 12_300, "12.3 GWh"),
        (9.09e-13, "< 0.001 mJ"),  # never "0.000000000909 mJ"
        (float("nan"), "n/a"),
    ],
)
def test_format_energy(energy_j, text):
    assert format_energy(energy_j) == text


@pytest.mark.parametrize(
    ("mass_g", "text"),
    [
        (0.0, "0 g"),
        (2e-5, "0.02 mg"),
        (1.234e-4, "0.123 mg"),
        (0.5, "500 mg"),
        (0.9996, "1 g"),
        (4.1, "4.1 g"),
        (67.2, "67.2 g"),
        (999.96, "1 kg"),
        (1234.0, "1.23 kg"),
        (2.5e6, "2.5 t"),
        (float("inf"), "n/a"),
    ],
)
def test_format_mass(mass_g, text):
    assert format_mass_g(mass_g) == text


@pytest.mark.parametrize(
    ("duration_s", "text"),
    [
        (0.0, "0 s"),
        (8e-4, "0.8 ms"),
        (0.0123, "12.3 ms"),
        (0.34, "340 ms"),
        (0.9996, "1 s"),
        (2.3, "2.3 s"),
        (59.94, "59.9 s"),
        (59.96, "1 min 00 s"),
        (133.0, "2 min 13 s"),
        (3599.4, "59 min 59 s"),
        (3599.6, "1 h 00 min"),
        (3720.0, "1 h 02 min"),
        (93_900.0, "26 h 05 min"),
        (float("nan"), "n/a"),
    ],
)
def test_format_duration(duration_s, text):
    assert format_duration(duration_s) == text


@pytest.mark.parametrize(
    "text, grams",
    [("5kg", 5000.0), ("500 g", 500.0), ("1.5t", 1.5e6), ("5 kgCO2e", 5000.0), ("250mg", 0.25),
     (".5 KG", 500.0), ("2.5e3g", 2500.0), (" 3 kg co2-eq ", 3000.0)],
)
def test_parse_mass_reads_what_people_write(text, grams):
    from notebook_carbon.impact.footprint import parse_mass_g

    assert parse_mass_g(text) == pytest.approx(grams)


@pytest.mark.parametrize("text", ["5", "five kg", "5 lb", "-1kg", "", "5 kg kg"])
def test_parse_mass_refuses_a_number_without_a_unit_or_an_unknown_unit(text):
    from notebook_carbon.errors import ConfigError
    from notebook_carbon.impact.footprint import parse_mass_g

    with pytest.raises(ConfigError, match="write a number and a unit"):
        parse_mass_g(text)


def test_car_equivalent_states_its_factor():
    from notebook_carbon.impact.equivalents import car_km

    eq = car_km(2485.0)  # 2.485 kg at 248.5 g/km
    assert eq.amount == pytest.approx(2485.0 / (400 / 1.609344)) and eq.amount == pytest.approx(10.0, rel=1e-3)
    assert str(eq) == "10 km driven by an average passenger car" and eq.factor == "248.5 g CO2e per km"
    assert "EPA" in eq.source and str(car_km(2.485e6)).startswith("10,000 km")


def test_a_short_car_distance_is_given_in_metres():
    from notebook_carbon.impact.equivalents import car_km

    assert str(car_km(24.85)) == "100 m driven by an average passenger car"

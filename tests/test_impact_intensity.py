"""Grid intensity lookup: region syntax, figures checked against the bundled files by hand, errors."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import pytest

from notebook_carbon.bundled import codecarbon_data_dir
from notebook_carbon.errors import ConfigError, UnknownRegionError
from notebook_carbon.impact import GridIntensity, list_regions, resolve_intensity
from notebook_carbon.impact import grid_data as intensity_module
from notebook_carbon.impact import tables

LB_G = 453.59237  # grams per pound, exact
# codecarbon's coal / petroleum / natural gas factors in g/kWh (energy-usage project)
COAL, OIL, GAS = 995.725971, 816.6885263, 743.8415916


# (input, canonical region, name, g/kWh worked out by hand from the JSON, year, publisher in source)
CASES = [
    ("FR", "FR", "France", 56.039, 2023, "Ember / Our World in Data"),
    ("FRA", "FR", "France", 56.039, 2023, "Ember / Our World in Data"),
    ("fr", "FR", "France", 56.039, 2023, "Ember / Our World in Data"),
    ("  fRa ", "FR", "France", 56.039, 2023, "Ember / Our World in Data"),
    ("USA", "US", "United States", 369.473, 2023, "Ember / Our World in Data"),
    # usa_emissions.json: california 394.769 lbs/MWh; x 453.59237 g/lb / 1000 kWh/MWh
    ("US-CA", "US-CA", "California, United States", 394.769 * 0.45359237, 2023, "EPA eGRID2023"),
    ("us-ca", "US-CA", "California, United States", 179.0642063, 2023, "EPA eGRID2023"),
    ("US-DC", "US-DC", "District of Columbia, United States", 395.011 * LB_G / 1000, 2023, "EPA eGRID2023"),
    # canada_energy_mix.json, quebec: gas 0.2 %, petroleum 0.3 %, coal 0 %, total 100.01 %
    ("CA-QC", "CA-QC", "Quebec, Canada", (0.2 * GAS + 0.3 * OIL) / 100.01, 2023, "Canada Energy Regulator"),
    # alberta: gas 73.5 %, petroleum 0.02 %, coal 8.0 %, total 99.82 %
    (
        "ca-ab",
        "CA-AB",
        "Alberta, Canada",
        (73.5 * GAS + 0.02 * OIL + 8.0 * COAL) / 99.82,
        2023,
        "Canada Energy",
    ),
    ("CN-GD", "CN-GD", "Guangdong, China", 441.9, 2023, "Ministry of Ecology and Environment"),
    ("SE3", "SE3", "Sweden Bidding Zone 3 (South-central Sweden, includes Stockholm)", 27.0, 2025, "ENTSO-E"),
    ("no4", "NO4", "Norway Bidding Zone 4 (Northern Norway)", 51.7, 2025, "ENTSO-E"),
    ("FI", "FI", "Finland", 79.158, 2023, "Ember / Our World in Data"),
    (
        "gcp:europe-west1",
        "gcp:europe-west1",
        "Google Cloud europe-west1 (St. Ghislain, Belgium)",
        122.0,
        2023,
        "Google",
    ),
    (
        "GCP : Europe-West9",
        "gcp:europe-west9",
        "Google Cloud europe-west9 (Paris, France)",
        34.0,
        2023,
        "Google",
    ),
    ("gcp:me-cenrtal1", "gcp:me-central1", "Google Cloud me-central1 (Doha, Qatar)", 575.0, 2023, "Google"),
    # AWS / Azure: the grid where the region is located (us-east-1: Virginia, 539.599 lbs/MWh)
    ("aws:us-east-1", "aws:us-east-1", None, 539.599 * LB_G / 1000, 2023, "EPA eGRID2023"),
    ("azure:westeurope", "azure:westeurope", None, 267.622, 2023, "Ember / Our World in Data"),
    ("aws:eu-north-1", "aws:eu-north-1", None, 27.0, 2025, "ENTSO-E"),
    ("world", "world", "World average", 475.0, 2018, "IEA"),
]


@pytest.mark.parametrize(("text", "region", "name", "g_per_kwh", "year", "publisher"), CASES)
def test_resolve(text, region, name, g_per_kwh, year, publisher):
    got = resolve_intensity(text)
    assert got.region == region
    if name is not None:
        assert got.name == name
    assert got.g_per_kwh == pytest.approx(g_per_kwh, rel=1e-9)
    assert got.year == year
    assert publisher in got.source
    assert f"codecarbon {version('codecarbon')}" in got.source
    assert not got.is_default and not got.is_override


def test_cloud_region_names_say_where_and_which_grid():
    got = resolve_intensity("aws:us-east-1")
    assert got.name == "AWS us-east-1 (Northern Virginia; grid of Virginia, United States)"
    assert "location-based" in got.source


@pytest.mark.parametrize("region", [None, "", "   "])
def test_no_region_is_the_world_average_and_says_so(region):
    got = resolve_intensity(region)
    assert (got.region, got.g_per_kwh, got.year, got.is_default) == ("world", 475.0, 2018, True)
    assert "IEA" in got.source


@pytest.mark.parametrize(
    ("region", "override", "label", "name"),
    [
        ("FR", 12.5, "FR", "France"),
        ("fra", 0, "FR", "France"),
        (None, 300, "custom", "user-provided intensity"),
        ("DE-BY", 350.0, "DE-BY", "DE-BY"),  # a label only: not required to be in the data
        ("aws:Us-East-1", 1.0, "aws:us-east-1", None),
        ("lab-7", "42", "LAB-7", "LAB-7"),
    ],
)
def test_override_uses_the_number_and_keeps_the_label(region, override, label, name):
    got = resolve_intensity(region, override_g_per_kwh=override)
    assert got.g_per_kwh == float(override)
    assert got.region == label
    if name is not None:
        assert got.name == name
    assert (got.source, got.year, got.is_override, got.is_default) == (
        "user-provided value",
        None,
        True,
        False,
    )


@pytest.mark.parametrize("override", [-1.0, float("nan"), float("inf"), "lots"])
def test_bad_override_is_a_config_error(override):
    with pytest.raises(ConfigError, match="g/kWh"):
        resolve_intensity("FR", override_g_per_kwh=override)


def test_non_string_region_is_a_config_error():
    with pytest.raises(ConfigError, match="region must be a string"):
        resolve_intensity(33)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("FRANC", "FR (France)"),
        ("France", "FR (France)"),
        ("US-CAL", "US-CA (California, United States)"),
        ("CA-QUE", "CA-QC"),
        ("SE5", "SE3"),
        ("gcp:europe-west", "gcp:europe-west"),
        ("aws:us-east-9", "aws:us-east-1"),
        ("DE-BY", "use 'DE' for the national figure of Germany"),
        ("ovh:gra", "provider one of aws, azure, gcp"),
        ("Atlantis", "Grid region 'Atlantis' is not in the bundled intensity data."),
    ],
)
def test_unknown_region_explains_suggests_and_says_how_to_list(text, expected):
    with pytest.raises(UnknownRegionError) as info:
        resolve_intensity(text)
    message = str(info.value)
    assert isinstance(info.value, ConfigError)
    assert expected in message
    assert repr(text) in message
    assert "run `notebook-carbon regions` to list them" in message
    assert "intensity_g_per_kwh" in message


def test_list_regions_covers_every_kind_and_round_trips():
    regions = list_regions()
    codes = [r.code for r in regions]
    assert len(codes) == len(set(codes)) > 400
    assert {r.kind for r in regions} == set(intensity_module.KINDS)
    for code in ("world", "FR", "US-CA", "CA-QC", "CN-GD", "SE3", "NO1", "gcp:europe-west1", "aws:us-east-1"):
        assert code in codes
    assert "azure:westeurope" in codes
    for info in regions:
        assert math.isfinite(info.g_per_kwh) and info.g_per_kwh >= 0, info
        assert info.name and info.source, info
        assert info.year is None or 2000 <= info.year <= 2100, info
        got = resolve_intensity(info.code)
        assert (got.region, got.g_per_kwh, got.name) == (info.code, info.g_per_kwh, info.name)


def test_grid_intensity_rejects_impossible_values():
    with pytest.raises(ConfigError):
        GridIntensity(-1.0, "x", "x", "x", None)
    with pytest.raises(ConfigError):
        GridIntensity(float("nan"), "x", "x", "x", None)


# -- guards on the bundled data: these fail when a codecarbon upgrade changes a file's shape --------


def _data(relative: str):
    return json.loads((codecarbon_data_dir() / relative).read_text())


def test_us_file_is_in_pounds_per_mwh_and_every_state_converts():
    data = _data("private_infra/2023/usa_emissions.json")
    assert data["_unit"]["emissions"] == "lbs/MWh"
    states = {k: v for k, v in data.items() if not k.startswith("_") and k != "usa"}
    for state, row in states.items():
        got = resolve_intensity("US-" + row["regionCode"])
        assert got.g_per_kwh == pytest.approx(row["emissions"] * LB_G / 1000, rel=1e-12), state
    assert len([r for r in list_regions() if r.code.startswith("US-")]) == len(states) == 51


def test_canada_matches_codecarbons_own_formula_for_every_province():
    from codecarbon.core import emissions  # a runtime dependency; imported here only to compare
    data = _data("private_infra/2023/canada_energy_mix.json")
    assert set(data) == set(tables.CANADA_CODES)  # every province name has an ISO code
    for province, mix in data.items():
        theirs = emissions.Emissions._region_energy_mix_to_emissions_rate(mix).kgs_per_kWh * 1000
        ours = resolve_intensity("CA-" + tables.CANADA_CODES[province])
        assert ours.g_per_kwh == pytest.approx(theirs, rel=1e-12), province


def test_every_country_in_the_data_has_an_alpha2_code():
    data = _data("private_infra/global_energy_mix.json")
    countries = [r for r in list_regions() if r.kind == "country"]
    assert len(countries) == len(data)
    assert all(len(r.code) == 2 for r in countries)


def test_inline_iso_table_matches_pycountry():
    import pycountry  # a test dependency (and codecarbon's); never imported at run time
    expected = {c.alpha_3: c.alpha_2 for c in pycountry.countries}
    assert intensity_module._alpha3_to_alpha2() == expected


def test_gcp_values_are_googles_2023_figures():
    # impact.csv carries no year; if this fails, codecarbon replaced the figures: update _GCP_DATA_YEAR
    assert resolve_intensity("gcp:us-central1").g_per_kwh == 430
    assert resolve_intensity("gcp:northamerica-northeast1").g_per_kwh == 2


def test_every_aws_and_azure_location_is_in_the_data():
    for code, (grid, _location) in intensity_module._cloud_locations().items():
        assert resolve_intensity(code).g_per_kwh == resolve_intensity(grid).g_per_kwh, code


@pytest.mark.parametrize(
    ("unit", "factor"),
    [("lbs/MWh", 0.45359237), ("kg/MWh", 1.0), ("gCO2/kWh", 1.0), ("gCO2eq/kWh", 1.0), ("gCO2.eq/kWh", 1.0)],
)
def test_units_convert_to_g_per_kwh(unit, factor):
    assert intensity_module._check_unit(unit, "file.json") == factor


def test_unknown_unit_is_an_error_not_a_guess():
    with pytest.raises(ConfigError, match="tCO2/GWh"):
        intensity_module._check_unit("tCO2/GWh", "file.json")


# -- the first metered cell: import reads nothing, a country reads one file ------------------------

PROBE = """
import sys
import notebook_carbon.impact as impact
from notebook_carbon.impact import grid_data as m
loaders = [m._world, m._countries, m._us_states, m._canada, m._china, m._nordic, m._gcp]
print(sum(f.cache_info().currsize for f in loaders))
impact.resolve_intensity("FR")
print([f.__name__ for f in loaders if f.cache_info().currsize])
print("pycountry" in sys.modules, "codecarbon" in sys.modules)
"""


def test_import_reads_no_data_and_a_country_reads_only_its_file():
    root = Path(__file__).resolve().parents[1]
    out = subprocess.run([sys.executable, "-c", PROBE], cwd=root, capture_output=True, text=True, check=True)
    assert out.stdout.split("\n")[:3] == ["0", "['_countries']", "False False"]

"""codecarbon's bundled grid data, read into ``RegionInfo`` tables: one cached loader per file.

Every figure comes from the data files bundled with codecarbon, read without importing codecarbon
(see ``bundled.py``) and never over the network, so a result is reproducible from the installed
versions alone. Each file is read at most once per process (``functools.cache``), and only when a
region needs it (``intensity.py`` decides which): resolving a country reads one JSON file, which
keeps the first metered cell fast. Units are checked, never guessed: every table is in g CO2e/kWh.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import re
from typing import Any

from ..bundled import codecarbon_data_dir, codecarbon_version
from ..errors import ConfigError
from . import tables

KINDS = ("world", "country", "subdivision", "bidding-zone", "cloud")

# 1 lb = 0.45359237 kg exactly (international yard and pound, 1959), so 1 lb/MWh = 0.45359237 g/kWh.
_G_PER_KWH_PER_UNIT = {"lbs/mwh": 0.45359237, "lb/mwh": 0.45359237, "kg/mwh": 1.0, "g/kwh": 1.0}

# The IEA's Global Energy & CO2 Status Report 2019 gives 475 g/kWh for 2018; the file names only the
# report, so the year is recorded here.
_WORLD_AVERAGE_YEAR = 2018
# cloud/impact.csv has no year column; its values equal Google's 2023 yearly file
# (GoogleCloudPlatform/region-carbon-info data/yearly/2023.csv). Re-check when codecarbon updates it.
_GCP_DATA_YEAR = 2023

# A misspelt region name in codecarbon's impact.csv, mapped to the name Google uses.
_GCP_RENAMES = {"me-cenrtal1": "me-central1"}

_ZONE = re.compile(r"[A-Z]{2}[0-9]")
"""A Nordic bidding zone: ``SE3``, ``NO1``."""


@dataclasses.dataclass(frozen=True)
class RegionInfo:
    """One region the bundled data knows, as listed by ``notebook-carbon regions``."""

    code: str
    name: str
    g_per_kwh: float
    year: int | None
    source: str
    kind: str
    """One of ``KINDS``: world, country, subdivision, bidding-zone, cloud."""


# -- loaders: one per bundled file, each cached -----------------------------------------------------


@functools.cache
def _alpha3_to_alpha2() -> dict[str, str]:
    return {pair[2:]: pair[:2] for pair in tables.ISO_PAIRS.split()}


@functools.cache
def _provenance() -> str:
    """``codecarbon 3.3.2``: read from its version file, since importlib.metadata costs ~30 ms."""
    version_file = codecarbon_data_dir().parent / "_version.py"
    text = version_file.read_text() if version_file.is_file() else ""
    match = re.search(r"__version__\s*=\s*['\"]([^'\"]+)", text)
    version = match.group(1) if match else codecarbon_version()
    return f"codecarbon {version}" if version else "codecarbon"


def _read_json(relative: str) -> Any:
    path = codecarbon_data_dir() / relative
    try:
        return json.loads(path.read_bytes())
    except (OSError, ValueError) as exc:
        raise ConfigError(
            f"cannot read codecarbon's bundled file {relative} ({exc}); reinstall it with "
            "`pip install --force-reinstall codecarbon`, or set intensity_g_per_kwh to skip the lookup"
        ) from exc


def _newest_year_file(name: str) -> tuple[str, int]:
    """Regional files live in a directory named after their data year; take the newest."""
    base = codecarbon_data_dir() / "private_infra"
    years = sorted(int(p.name) for p in base.iterdir() if p.name.isdigit() and (p / name).is_file())
    if not years:
        raise ConfigError(
            f"codecarbon's bundled data has no private_infra/<year>/{name}; reinstall codecarbon"
        )
    return f"private_infra/{years[-1]}/{name}", years[-1]


def _check_unit(unit: Any, relative: str) -> float:
    """Factor from the file's unit to g/kWh; an unknown unit is an error, never a guess."""
    spelled = str(unit).lower().replace(".", "").replace(" ", "")
    for gas in ("co2eq", "co2e", "co2"):  # gCO2eq/kWh, gCO2.eq/kWh and gCO2/kWh are all g/kWh
        spelled = spelled.replace(gas, "")
    factor = _G_PER_KWH_PER_UNIT.get(spelled)
    if factor is None:
        raise ConfigError(
            f"codecarbon's {relative} gives intensities in {unit!r}, a unit notebook-carbon does not "
            "convert; install the codecarbon version this notebook-carbon release supports"
        )
    return factor


def _title(name: str) -> str:
    small = {"and", "of"}
    return " ".join(w if w in small else w.capitalize() for w in name.split())


@functools.cache
def _world() -> RegionInfo:
    data = _read_json("private_infra/carbon_intensity_per_source.json")
    _check_unit(data.get("unit"), "carbon_intensity_per_source.json")
    source = (
        f"IEA Global Energy & CO2 Status Report 2019 world average via {_provenance()} "
        "carbon_intensity_per_source"
    )
    return RegionInfo(
        "world", "World average", float(data["world_average"]), _WORLD_AVERAGE_YEAR, source, "world"
    )


@functools.cache
def _countries() -> dict[str, RegionInfo]:
    data = _read_json("private_infra/global_energy_mix.json")
    source = f"Ember / Our World in Data via {_provenance()} global_energy_mix"
    to_alpha2 = _alpha3_to_alpha2()
    out = {}
    for alpha3, row in data.items():
        # every country in the current file has a published intensity; one without it is left out
        # rather than recomputed from a partial mix
        if row.get("carbon_intensity") is None:
            continue
        code = to_alpha2.get(alpha3.upper(), alpha3.upper())
        out[code] = RegionInfo(
            code,
            row.get("country_name") or code,
            float(row["carbon_intensity"]),
            row.get("year"),
            source,
            "country",
        )
    return out


@functools.cache
def _us_states() -> dict[str, RegionInfo]:
    relative, year = _newest_year_file("usa_emissions.json")
    data = _read_json(relative)
    factor = _check_unit(data.get("_unit", {}).get("emissions"), relative)
    meta = data.get("_source", {})
    source = f"US {meta.get('name', f'EPA eGRID{year}')} via {_provenance()} usa_emissions"
    out = {}
    for state, row in data.items():
        if state.startswith("_") or len(row.get("regionCode", "")) != 2:  # metadata, national total
            continue
        code = "US-" + row["regionCode"].upper()
        name = f"{_title(state)}, United States"
        out[code] = RegionInfo(
            code, name, row["emissions"] * factor, meta.get("year", year), source, "subdivision"
        )
    return out


def _canada_mix_g_per_kwh(mix: dict[str, float]) -> float:
    """g CO2e/kWh of a provincial generation mix (percent shares), as codecarbon computes it.

    Only coal, petroleum and natural gas combustion count; hydro, nuclear, wind, solar and biomass
    count as zero, so this is a direct-emissions figure, lower than a life-cycle one.
    """
    total = mix["total"]
    return 1000 * sum(mix.get(fuel, 0.0) / total * kg for fuel, kg in tables.CANADA_FOSSIL_KG_PER_KWH.items())


@functools.cache
def _canada() -> dict[str, RegionInfo]:
    relative, year = _newest_year_file("canada_energy_mix.json")
    data = _read_json(relative)
    source = (
        f"Canada Energy Regulator, Canada's Energy Future data appendices ({year} generation mix, "
        f"fossil-combustion factors) via {_provenance()} canada_energy_mix"
    )
    out = {}
    for province, mix in data.items():
        iso = tables.CANADA_CODES.get(province.lower())
        if iso is None:  # a name this table lacks; a test checks every name is mapped
            continue
        code = "CA-" + iso
        out[code] = RegionInfo(
            code, f"{_title(province)}, Canada", _canada_mix_g_per_kwh(mix), year, source, "subdivision"
        )
    return out


@functools.cache
def _china() -> dict[str, RegionInfo]:
    relative, year = _newest_year_file("china_provincial_emissions.json")
    data = _read_json(relative)
    meta_year = data.get("metadata", {}).get("year", year)
    source = (
        f"China Ministry of Ecology and Environment / National Bureau of Statistics provincial "
        f"electricity CO2 factors {meta_year} (CO2 only) via {_provenance()} china_provincial_emissions"
    )
    out = {}
    for code, row in data["data"].items():
        factor = _check_unit(row.get("unit"), relative)
        name = f"{row.get('description', code)}, China"
        out[code.upper()] = RegionInfo(
            code.upper(),
            name,
            row["emission_factor"] * factor,
            row.get("year", meta_year),
            source,
            "subdivision",
        )
    return out


@functools.cache
def _nordic() -> dict[str, RegionInfo]:
    relative = "private_infra/nordic_emissions.json"
    data = _read_json(relative)
    out = {}
    for code, row in data["data"].items():
        # FI is Finland's ISO code and resolves to the national figure like every other country;
        # the zone file's FI entry is an older value that its 2025 update left unchanged.
        if not _ZONE.fullmatch(code.upper()):
            continue
        factor = _check_unit(row.get("unit"), relative)
        year = row.get("year")
        source = (
            f"ENTSO-E Transparency Platform {year} generation per bidding zone x codecarbon per-source "
            f"factors, via {_provenance()} nordic_emissions"
        )
        out[code.upper()] = RegionInfo(
            code.upper(),
            row.get("description", code),
            row["emission_factor"] * factor,
            year,
            source,
            "bidding-zone",
        )
    return out


@functools.cache
def _gcp() -> dict[str, RegionInfo]:
    import csv  # only cloud regions need it

    path = codecarbon_data_dir() / "cloud" / "impact.csv"
    try:
        with path.open(encoding="utf-8-sig", newline="") as f:  # the file starts with a byte-order mark
            rows = list(csv.DictReader(f))
    except OSError as exc:
        raise ConfigError(
            f"cannot read codecarbon's bundled cloud/impact.csv ({exc}); reinstall codecarbon"
        ) from exc
    source = f"Google Cloud region carbon data {_GCP_DATA_YEAR} via {_provenance()} cloud/impact.csv"
    out = {}
    for row in rows:
        if row["provider"] != "gcp":  # other providers' rows, if any, carry no per-region figure here
            continue
        region = _GCP_RENAMES.get(row["region"], row["region"])
        code = f"gcp:{region}"
        place = ", ".join(p for p in (row.get("city"), row.get("country_name")) if p)
        out[code] = RegionInfo(
            code, f"Google Cloud {region} ({place})", float(row["impact"]), _GCP_DATA_YEAR, source, "cloud"
        )
    return out


@functools.cache
def _cloud_locations() -> dict[str, tuple[str, str]]:
    """``aws:us-east-1`` -> (grid code, location), parsed from the table above; no file read."""
    out = {}
    for line in tables.CLOUD_LOCATIONS.strip().splitlines():
        provider, region, grid, location = line.split(maxsplit=3)
        out[f"{provider}:{region}"] = (grid, location)
    return out

"""Grid carbon intensity (g CO2e per kWh) of a country, sub-national region, bidding zone or cloud region.

Every figure comes from the data files bundled with codecarbon, read without importing codecarbon
(see ``bundled.py``) and never over the network, so a result is reproducible from the installed
versions alone. Region syntax (case-insensitive, surrounding spaces ignored)::

    FR, FRA            ISO 3166-1 alpha-2 or alpha-3 country     Ember / Our World in Data
    US-CA              US state (ISO 3166-2)                      US EPA eGRID
    CA-QC              Canadian province or territory             Canada Energy Regulator mix
    CN-GD              Chinese province                           China MEE / NBS
    SE3, NO1           Nordic electricity bidding zone            ENTSO-E generation mix
    gcp:europe-west1   Google Cloud region                        Google's published grid figures
    aws:us-east-1      AWS / Azure region                         the grid where the region is located
    world              the world average                          IEA

Each file is read at most once per process (``functools.cache``), and only the file the region
needs: resolving a country reads one JSON file, which keeps the first metered cell fast.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import math
import re
from typing import Any

from ..bundled import codecarbon_data_dir, codecarbon_version
from ..errors import ConfigError, UnknownRegionError
from . import tables

__all__ = ["GridIntensity", "RegionInfo", "list_regions", "resolve_intensity"]

LIST_HINT = "run `notebook-carbon regions` to list them"
KINDS = ("world", "country", "subdivision", "bidding-zone", "cloud")

# 1 lb = 0.45359237 kg exactly (international yard and pound, 1959), so 1 lb/MWh = 0.45359237 g/kWh.
_G_PER_KWH_PER_UNIT = {"lbs/mwh": 0.45359237, "lb/mwh": 0.45359237, "kg/mwh": 1.0, "g/kwh": 1.0}

# The IEA's Global Energy & CO2 Status Report 2019 gives 475 g/kWh for 2018; the file names only the
# report, so the year is recorded here.
_WORLD_AVERAGE_YEAR = 2018
# cloud/impact.csv has no year column; its values equal Google's 2023 yearly file
# (GoogleCloudPlatform/region-carbon-info data/yearly/2023.csv). Re-check when codecarbon updates it.
_GCP_DATA_YEAR = 2023

_CLOUD_PROVIDERS = {"aws": "AWS", "azure": "Azure", "gcp": "Google Cloud"}
# A misspelt region name in codecarbon's impact.csv, mapped to the name Google uses.
_GCP_RENAMES = {"me-cenrtal1": "me-central1"}

_SUBDIVISION = re.compile(r"[A-Z]{2}-[A-Z0-9]{1,3}")
_ZONE = re.compile(r"[A-Z]{2}[0-9]")


@dataclasses.dataclass(frozen=True)
class GridIntensity:
    """The grid carbon intensity used for a run, with where it came from."""

    g_per_kwh: float
    """Grams CO2e emitted per kWh of electricity drawn from this grid."""
    region: str
    """Canonical label: ``FR``, ``US-CA``, ``SE3``, ``gcp:europe-west1``, ``world`` (or the user's label)."""
    name: str
    """Human-readable place, e.g. ``France`` or ``California, United States``."""
    source: str
    """Dataset and publisher, with the codecarbon version that bundled it."""
    year: int | None
    """Year the figure describes; ``None`` when the data does not say."""
    is_default: bool = False
    """True when no region was configured and the world average was used."""
    is_override: bool = False
    """True when the figure was given by the user rather than looked up."""

    def __post_init__(self) -> None:
        if not (math.isfinite(self.g_per_kwh) and self.g_per_kwh >= 0):
            raise ConfigError(f"grid intensity {self.g_per_kwh!r} g/kWh must be a finite number >= 0")


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


def resolve_intensity(region: str | None, *, override_g_per_kwh: float | None = None) -> GridIntensity:
    """The grid intensity for ``region`` (syntax in the module docstring), in g CO2e/kWh.

    ``None`` or a blank string gives the world average with ``is_default=True``. With
    ``override_g_per_kwh`` that figure is used as given and ``region`` is only a label (it is not
    required to be in the data). Raises ``UnknownRegionError`` naming close matches otherwise.
    """
    if region is not None and not isinstance(region, str):
        raise ConfigError(f"region must be a string such as 'FR' or 'aws:us-east-1', not {region!r}")
    code = _normalise(region) if region and region.strip() else None
    if override_g_per_kwh is not None:
        try:
            value = float(override_g_per_kwh)
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"intensity override {override_g_per_kwh!r} is not a number of g/kWh") from exc
        known = _lookup(code) if code else None
        return GridIntensity(
            g_per_kwh=value,
            region=known.code if known else (code or "custom"),
            name=known.name if known else (code or "user-provided intensity"),
            source="user-provided value",
            year=None,
            is_override=True,
        )
    info = _world() if code is None else _lookup(code)
    if info is None:
        raise UnknownRegionError(_unknown_message(region or "", code or ""))
    return GridIntensity(
        info.g_per_kwh, info.code, info.name, info.source, info.year, is_default=code is None
    )


def list_regions() -> list[RegionInfo]:
    """Every region the bundled data knows: world, countries, sub-national regions, zones, cloud."""
    regions = [_world()]
    for table in (_countries(), _us_states(), _canada(), _china(), _nordic(), _gcp()):
        regions.extend(sorted(table.values(), key=lambda r: r.code))
    regions.extend(sorted((_located(key) for key in _cloud_locations()), key=lambda r: r.code))
    return regions


# -- parsing and lookup ---------------------------------------------------------------------------


def _normalise(text: str) -> str:
    """``provider:region`` lower-cased, every other code upper-cased; alpha-3 becomes alpha-2."""
    text = text.strip()
    if ":" in text:
        provider, _, name = text.partition(":")
        return f"{provider.strip().lower()}:{name.strip().lower()}"
    code = text.upper()
    return _alpha3_to_alpha2().get(code, code) if len(code) == 3 else code


def _lookup(code: str) -> RegionInfo | None:
    """The region for a normalised code, reading only the file its syntax points to."""
    if ":" in code:
        provider, _, name = code.partition(":")
        if provider == "gcp":
            return _gcp().get(f"gcp:{_GCP_RENAMES.get(name, name)}")
        return _located(code) if code in _cloud_locations() else None
    if code == "WORLD":
        return _world()
    if _SUBDIVISION.fullmatch(code):
        table = {"US": _us_states, "CA": _canada, "CN": _china}.get(code[:2])
        return table().get(code) if table else None
    if _ZONE.fullmatch(code):
        return _nordic().get(code)
    return _countries().get(code) if len(code) == 2 else None


def _unknown_message(text: str, code: str) -> str:
    sentences = [f"Grid region {text.strip()!r} is not in the bundled intensity data."]
    provider = code.partition(":")[0] if ":" in code else None
    if provider is not None and provider not in _CLOUD_PROVIDERS:
        sentences.append(
            f"Cloud regions are written provider:region, provider one of {', '.join(_CLOUD_PROVIDERS)}."
        )
    elif _SUBDIVISION.fullmatch(code) and code[:2] not in ("US", "CA", "CN") and code[:2] in _countries():
        country = _countries()[code[:2]]
        sentences.append(
            "Sub-national data exists only for US states (US-CA), Canadian provinces (CA-QC) and Chinese "
            f"provinces (CN-GD); use {country.code!r} for the national figure of {country.name}."
        )
    suggestions = _suggest(code, provider)
    if suggestions:
        sentences.append(f"Did you mean {', '.join(suggestions)}?")
    sentences.append(
        "Regions are ISO countries (FR, FRA), US-CA, CA-QC, CN-GD, bidding zones (SE3), cloud regions "
        f"(gcp:europe-west1, aws:us-east-1) and world: {LIST_HINT}, or set intensity_g_per_kwh to give "
        "the grid intensity yourself."
    )
    return " ".join(sentences)


def _suggest(code: str, provider: str | None) -> list[str]:
    """Up to three close matches on codes and names: ``FR (France)``, or the code alone for cloud."""
    import difflib  # only on this error path

    regions = list_regions()
    if provider in _CLOUD_PROVIDERS:
        regions = [r for r in regions if r.code.startswith(provider + ":")]
    keys: dict[str, RegionInfo] = {}
    alpha2_to_3 = {a2: a3 for a3, a2 in _alpha3_to_alpha2().items()}
    for info in regions:
        keys.setdefault(info.code.upper(), info)
        if info.kind != "cloud":  # cloud names are long descriptions, poor targets for a typo
            keys.setdefault(info.name.upper(), info)
        if info.kind == "country" and info.code in alpha2_to_3:
            keys.setdefault(alpha2_to_3[info.code], info)
    matches = difflib.get_close_matches(code.upper(), keys, n=6, cutoff=0.7)
    found = list(dict.fromkeys(keys[m] for m in matches))[:3]
    return [info.code if info.kind == "cloud" else f"{info.code} ({info.name})" for info in found]


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


@functools.cache
def _located(code: str) -> RegionInfo:
    """An AWS or Azure region, with the intensity of the grid where it is located."""
    grid_code, location = _cloud_locations()[code]
    grid = _lookup(grid_code)
    if grid is None:  # the table names a grid the data lacks; a test resolves every entry
        raise UnknownRegionError(
            f"{code} is located in {grid_code}, which the bundled data lacks; {LIST_HINT}"
        )
    provider, _, region = code.partition(":")
    name = f"{_CLOUD_PROVIDERS[provider]} {region} ({location}; grid of {grid.name})"
    source = f"{grid.source}; location-based: grid of {grid.code}, where {code} is located"
    return RegionInfo(code, name, grid.g_per_kwh, grid.year, source, "cloud")

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

The bundled files are read by ``grid_data.py``, each at most once per process and only the file the
region needs: resolving a country reads one JSON file, which keeps the first metered cell fast.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import re

from ..errors import ConfigError, UnknownRegionError
from .grid_data import (
    _GCP_RENAMES,
    _ZONE,
    KINDS,  # noqa: F401 - the region vocabulary is imported from here (what-if grids)
    RegionInfo,
    _alpha3_to_alpha2,
    _canada,
    _china,
    _cloud_locations,
    _countries,
    _gcp,
    _nordic,
    _us_states,
    _world,
)

__all__ = ["GridIntensity", "RegionInfo", "list_regions", "resolve_intensity"]

LIST_HINT = "run `notebook-carbon regions` to list them"

_CLOUD_PROVIDERS = {"aws": "AWS", "azure": "Azure", "gcp": "Google Cloud"}

_SUBDIVISION = re.compile(r"[A-Z]{2}-[A-Z0-9]{1,3}")


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

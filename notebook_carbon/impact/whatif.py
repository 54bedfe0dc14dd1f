"""What the same energy would have emitted on other grids.

The facility energy of a run (or of a project) stays as measured; only the grid intensity changes,
looked up in the same bundled data as every run's own figure (``resolve_intensity`` and
``list_regions`` in ``intensity.py``). Embodied emissions do not depend on the grid and are left out.

``cleanest_regions`` ranks countries by default: a country is where a researcher can choose to
compute, and every country figure comes from one dataset (Ember / Our World in Data), so the ranking
compares like with like. Other kinds (``subdivision``, ``bidding-zone``, ``cloud``) can be asked
for. A figure of exactly 0 g/kWh is left out of the ranking: no grid generates electricity without
life-cycle emissions, and the one such country in the data (Central African Republic, all hydro) sits
beside all-hydro grids listed at 20-24 g/kWh.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from ..errors import ConfigError
from .footprint import J_PER_KWH, _finite
from .intensity import KINDS, GridIntensity, list_regions, resolve_intensity

__all__ = ["WhatIf", "WhatIfRow", "cleanest_regions", "in_regions"]


@dataclasses.dataclass(frozen=True)
class WhatIfRow:
    """One grid the energy could have been drawn from."""

    region: str
    """Region code as ``resolve_intensity`` accepts it: ``IS``, ``SE3``, ``gcp:europe-north1``."""
    name: str
    g_per_kwh: float
    source: str
    year: int | None
    emissions_g: float
    """Facility energy (kWh) x this grid's intensity, grams CO2e."""
    ratio: float | None
    """``emissions_g`` over the actual emissions (0.1: a tenth); ``None`` when the actual grid's is 0."""


@dataclasses.dataclass(frozen=True)
class WhatIf:
    """The same facility energy on several grids, against the grid actually used."""

    facility_energy_j: float
    actual: GridIntensity
    actual_emissions_g: float
    rows: tuple[WhatIfRow, ...]
    basis: str


def cleanest_regions(
    facility_energy_j: float, actual: GridIntensity, *, n: int = 3, kinds: Sequence[str] = ("country",)
) -> WhatIf:
    """The ``n`` regions of ``kinds`` with the lowest intensity, in ascending order (ties by code).

    ``kinds`` are ``intensity.KINDS`` (``country`` by default; see the module docstring for why).
    Regions listed at 0 g/kWh are left out. Raises ``ConfigError`` for ``n < 1`` or an unknown kind.
    """
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ConfigError(f"n={n!r} must be a whole number >= 1")
    if isinstance(kinds, str):
        kinds = (kinds,)
    unknown = [k for k in kinds if k not in KINDS]
    if unknown or not kinds:
        raise ConfigError(
            f"unknown region kind {unknown[0] if unknown else None!r}; known kinds: {', '.join(KINDS)}"
        )
    candidates = [r for r in list_regions() if r.kind in kinds and r.g_per_kwh > 0]
    chosen = sorted(candidates, key=lambda r: (r.g_per_kwh, r.code))[:n]
    grids = [GridIntensity(r.g_per_kwh, r.code, r.name, r.source, r.year) for r in chosen]
    basis = (
        f"the {n} lowest-intensity regions of kind {', '.join(kinds)} in the bundled data "
        f"({len(candidates)} candidates; figures of 0 g/kWh left out)"
    )
    return _what_if(facility_energy_j, actual, grids, basis)


def in_regions(facility_energy_j: float, regions: Sequence[str], actual: GridIntensity) -> WhatIf:
    """The same energy in each of ``regions`` (codes as in ``resolve_intensity``), in the order given.

    Raises ``UnknownRegionError`` (naming close matches) for a region the data does not know.
    """
    if isinstance(regions, str):
        regions = [regions]
    if not regions:
        raise ConfigError("regions is empty; name at least one, e.g. ['FR', 'SE3', 'aws:eu-north-1']")
    grids = [resolve_intensity(region) for region in regions]
    return _what_if(facility_energy_j, actual, grids, "regions chosen by the user, from the bundled data")


def _what_if(
    facility_energy_j: float, actual: GridIntensity, grids: list[GridIntensity], basis: str
) -> WhatIf:
    facility_energy_j = _finite(facility_energy_j, "facility_energy_j", "J")
    if facility_energy_j < 0:
        raise ConfigError(
            f"facility_energy_j={facility_energy_j} is negative; an energy is zero or positive joules"
        )
    if not isinstance(actual, GridIntensity):
        raise ConfigError(f"actual must be the GridIntensity the run used, not {actual!r}")
    kwh = facility_energy_j / J_PER_KWH
    rows = tuple(
        WhatIfRow(
            region=g.region,
            name=g.name,
            g_per_kwh=g.g_per_kwh,
            source=g.source,
            year=g.year,
            emissions_g=kwh * g.g_per_kwh,
            ratio=g.g_per_kwh / actual.g_per_kwh if actual.g_per_kwh > 0 else None,
        )
        for g in grids
    )
    return WhatIf(
        facility_energy_j=facility_energy_j,
        actual=actual,
        actual_emissions_g=kwh * actual.g_per_kwh,
        rows=rows,
        basis=(
            f"{basis}; the same facility energy (IT energy x PUE) times each grid's annual average "
            f"intensity, against {actual.region} at {actual.g_per_kwh:g} g/kWh; embodied emissions do not "
            "depend on the grid"
        ),
    )

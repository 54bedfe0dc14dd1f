"""Energy to environmental footprint: grid intensity lookup and the footprint arithmetic.

Importing this package reads no data: each bundled intensity file is read the first time a region
needs it, then cached for the life of the process.
"""

from __future__ import annotations

from .footprint import J_PER_KWH, Footprint, footprint, format_duration, format_energy, format_mass_g
from .intensity import GridIntensity, RegionInfo, list_regions, resolve_intensity

__all__ = [
    "J_PER_KWH",
    "Footprint",
    "GridIntensity",
    "RegionInfo",
    "footprint",
    "format_duration",
    "format_energy",
    "format_mass_g",
    "list_regions",
    "resolve_intensity",
]

"""Energy to footprint: emissions = IT energy (kWh) x PUE x grid intensity; water = IT energy x WUE.

Pure arithmetic on numbers already measured or looked up; no I/O. Energy stays in joules in every
record and is converted to kWh only inside the formulas and at display time, with the exact
constant ``J_PER_KWH`` (from ``units``). The ``format_*`` names are the one display scheme's
(``units``), kept for the code that imports them from here.
"""

from __future__ import annotations

import dataclasses
import math
import re

from ..errors import ConfigError
from ..units import J_PER_KWH, duration_text, energy_text, mass_text
from .intensity import GridIntensity

__all__ = [
    "J_PER_KWH", "Footprint", "footprint", "format_duration", "format_energy", "format_mass_g", "parse_mass_g"
]


@dataclasses.dataclass(frozen=True)
class Footprint:
    """The environmental cost of one measured window."""

    energy_j: float
    """Energy drawn by the IT equipment (CPU, GPU, RAM), in joules."""
    pue: float
    """Power usage effectiveness: facility energy over IT energy, >= 1."""
    facility_energy_j: float
    """``energy_j x pue``: IT energy plus cooling and power-distribution overhead, in joules."""
    intensity: GridIntensity
    """The grid intensity used, with its source."""
    emissions_g: float
    """Operational emissions in grams CO2e: facility energy (kWh) x intensity (g/kWh)."""
    water_l: float | None
    """On-site water in litres (IT energy in kWh x WUE); ``None`` when no WUE is configured."""
    wue_l_per_kwh: float | None = None
    """Water usage effectiveness used, litres per kWh of IT energy; ``None`` when not configured."""

    @property
    def energy_kwh(self) -> float:
        return self.energy_j / J_PER_KWH

    @property
    def facility_energy_kwh(self) -> float:
        return self.facility_energy_j / J_PER_KWH


def footprint(
    energy_j: float,
    *,
    pue: float = 1.0,
    intensity: GridIntensity,
    wue_l_per_kwh: float | None = None,
) -> Footprint:
    """Emissions (g CO2e) and optional water (L) of ``energy_j`` joules of IT energy.

    ``pue`` scales IT energy to facility energy (1.0: a workstation, no cooling overhead). WUE, as
    The Green Grid defines it, is site water over *IT* energy, so water does not include the PUE.
    Raises ``ConfigError`` for negative or non-finite energy, a PUE below 1 or a negative WUE.
    """
    energy_j = _finite(energy_j, "energy_j", "J")
    if energy_j < 0:
        raise ConfigError(f"energy_j={energy_j} is negative; a measured energy is zero or positive joules")
    pue = _finite(pue, "pue", "")
    if pue < 1.0:
        raise ConfigError(f"pue={pue} is below 1.0; PUE is facility energy over IT energy, so set it >= 1")
    if not isinstance(intensity, GridIntensity):
        raise ConfigError(f"intensity must be a GridIntensity from resolve_intensity(), not {intensity!r}")
    water_l = None
    if wue_l_per_kwh is not None:
        wue_l_per_kwh = _finite(wue_l_per_kwh, "wue_l_per_kwh", "L/kWh")
        if wue_l_per_kwh < 0:
            raise ConfigError(
                f"wue_l_per_kwh={wue_l_per_kwh} is negative; set litres per kWh >= 0 or leave it unset"
            )
        water_l = energy_j / J_PER_KWH * wue_l_per_kwh
    facility_energy_j = energy_j * pue
    return Footprint(
        energy_j=energy_j,
        pue=pue,
        facility_energy_j=facility_energy_j,
        intensity=intensity,
        emissions_g=facility_energy_j / J_PER_KWH * intensity.g_per_kwh,
        water_l=water_l,
        wue_l_per_kwh=wue_l_per_kwh,
    )


def _finite(value: float, name: str, unit: str) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{name}={value!r} is not a number{' of ' + unit if unit else ''}") from exc
    if not math.isfinite(number):
        raise ConfigError(f"{name}={value!r} is not a finite number; check the measurement or setting")
    return number


# -- display ---------------------------------------------------------------------------------------
# The one display scheme is ``units``'; these names stay for the callers that know them.
format_energy = energy_text
format_mass_g = mass_text
format_duration = duration_text


_MASS_PARSE_G = {"mg": 1e-3, "g": 1.0, "kg": 1e3, "t": 1e6}
_MASS_RE = re.compile(r"\s*([0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)\s*(mg|g|kg|t)?\s*(?:co2e?|co2-?eq)?\s*", re.I)


def parse_mass_g(text: str) -> float:
    """Grams in a mass of CO2e written as people write it: ``5kg``, ``500 g``, ``1.5 t``,
    ``5 kgCO2e``, ``250mg``. A number without a unit is refused: ``5`` could mean grams or
    kilograms, and a budget off by a factor of 1,000 is worse than an error."""
    found = _MASS_RE.fullmatch(str(text))
    if not found or not found.group(2):
        raise ConfigError(
            f"{text!r} is not a mass of CO2e; write a number and a unit, e.g. 5kg, 500g, 1.5t or 250mg"
        )
    return float(found.group(1)) * _MASS_PARSE_G[found.group(2).lower()]

"""Relatable equivalents of an amount of CO2e, each with its factor and the factor's source.

A statement gives one so that a reader can picture the figure; the factor is always printed with
it, so that the comparison can be checked and replaced by a reader who prefers another.
"""

from __future__ import annotations

import dataclasses

__all__ = ["CAR_G_PER_KM", "CAR_SOURCE", "Equivalent", "car_km"]

CAR_G_PER_KM = 400.0 / 1.609344
"""Grams of CO2 a typical passenger car emits per kilometre driven: 400 g per mile (248.5 g/km)."""
CAR_SOURCE = (
    "US EPA, Greenhouse Gas Emissions from a Typical Passenger Vehicle (2023): about 400 g CO2 per mile "
    "(248.5 g/km), tailpipe emissions of an average US passenger vehicle"
)


@dataclasses.dataclass(frozen=True)
class Equivalent:
    amount: float
    unit: str
    what: str
    factor: str
    """The factor used, as printed: ``248.5 g CO2e per km``."""
    source: str

    def __str__(self) -> str:
        return f"{_amount(self.amount)} {self.unit} {self.what}"


def car_km(emissions_g: float) -> Equivalent:
    """The distance (km, or m under 1 km) a typical passenger car drives emitting ``emissions_g`` g CO2e."""
    km = emissions_g / CAR_G_PER_KM
    return Equivalent(
        amount=km if km >= 1 or km == 0 else km * 1000,
        unit="km" if km >= 1 or km == 0 else "m",
        what="driven by an average passenger car",
        factor=f"{CAR_G_PER_KM:.1f} g CO2e per km",
        source=CAR_SOURCE,
    )


def _amount(value: float) -> str:
    """3 significant figures, thousands separated: ``0.00402``, ``12.3``, ``1,230``."""
    if value == 0:
        return "0"
    rounded = float(f"{value:.3g}")
    return f"{rounded:,.0f}" if abs(rounded) >= 100 else f"{rounded:g}"

"""How far each figure may be from the truth, from how it was obtained.

Every energy figure carries its method (``rapl``, ``nvml-counter``, ``nvml-power``,
``estimate-tdp``, ``estimate-ram``, ``none``; several devices of one component measured differently
give a ``+``-joined sorted string such as ``nvml-counter+nvml-power``). Each method has a relative
range ``(low, high)``: the true energy of what it meters lies between ``low x figure`` and
``high x figure``. docs/methods.md gives the basis of each range, with its citation.

Ranges are combined conservatively: components' lows are summed and their highs summed, as if all
errors pointed the same way (no cancelling between components is assumed). Emissions scale the
energy range by PUE and grid intensity; an uncertainty of the intensity itself is an optional
relative term, none by default, and the result says which. Pure arithmetic, no I/O.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from ..errors import ConfigError
from .footprint import J_PER_KWH, _finite

__all__ = [
    "GPU_UPDATE_S",
    "METHOD_RANGES",
    "UNATTRIBUTED_RANGE",
    "EmissionsRange",
    "EnergyRange",
    "Range",
    "embodied_range",
    "emissions_range",
    "energy_by_method",
    "energy_range",
    "method_range",
    "total_range",
]


@dataclasses.dataclass(frozen=True)
class Range:
    """A relative range: the true value lies in ``[low x figure, high x figure]``."""

    low: float
    high: float
    basis: str
    """Why this range, with its source."""
    cited: bool = False
    """True when a published source gives this range; False when it is our assumption (disclose it)."""
    source: str | None = None
    """The publication the range (or the figure it extends) comes from; ``None`` for none."""

    @property
    def provenance(self) -> str:
        """``cited`` or ``assumed``, as a statement discloses each range; ``exact`` for (1, 1)."""
        if self.low == self.high == 1:
            return "exact"
        return "cited" if self.cited else "assumed"

    @property
    def label(self) -> str:
        """``±5 %`` when symmetric, else ``-40 %/+10 %``; ``exact`` for (1, 1)."""
        down, up = round((1 - self.low) * 100, 1), round((self.high - 1) * 100, 1)
        if down == up == 0:
            return "exact"
        return f"±{down:g} %" if down == up else f"-{down:g} %/+{up:g} %"


_JAY = (
    "Jay et al. (2023), An experimental comparison of software-based power meters: focus on CPU and GPU, "
    "CCGrid 2023"
)
_NVML_DOC = "NVIDIA NVML API reference, nvmlDeviceGetPowerUsage"
_ZEUS = "ml-energy/zeus issue #12 (2023)"

METHOD_RANGES: dict[str, Range] = {
    "rapl": Range(
        0.9, 1.1,
        "RAPL package and DRAM counters read directly; no vendor states their accuracy, so ±10 % is our "
        f"assumption. Per {_JAY}, tools reading the same RAPL counters disagree (CodeCarbon reads about "
        "2x other RAPL tools), so how a tool reads the counters matters. The figure covers the CPU "
        "packages and DRAM only, not the rest of the machine as a wall meter would",
        cited=False, source=_JAY,
    ),
    "nvml-counter": Range(
        0.95, 1.05,
        f"GPU energy counter; ±5 % is the accuracy NVIDIA states for its power readings ({_NVML_DOC}, "
        "stated for Fermi and Kepler; the reference gives no figure for newer GPUs)",
        cited=True, source=_NVML_DOC,
    ),
    "nvml-power": Range(
        0.94, 1.06,
        f"GPU power sampled and integrated: the ±5 % NVIDIA states ({_NVML_DOC}) plus up to 1 % between "
        f"integrated power polling and the energy counter ({_ZEUS})",
        cited=True, source=f"{_NVML_DOC}; {_ZEUS}",
    ),
    "estimate-tdp": Range(
        0.6, 1.4,
        "CPU estimated from TDP x utilisation, no measurement: ±40 % is an assumption, as no study of this "
        "heuristic's error across CPUs is known to us",
        cited=False, source=None,
    ),
    "estimate-ram": Range(
        0.6, 1.4,
        "RAM estimated as W per GB of memory, no measurement: ±40 % as for TDP-based CPU estimates; an "
        "assumption, as no study of this heuristic's error is known to us",
        cited=False, source=None,
    ),
    "none": Range(
        1.0, 1.0,
        "no meter: the component is not counted; its energy is outside the figure, not uncertain within it",
    ),
}  # fmt: skip


UNATTRIBUTED_RANGE = Range(
    0.6, 1.4,
    "energy a run recorded without saying how each component was obtained (an imported log whose "
    "components do not add up to its total): taken as uncertain as an estimate, ±40 %",
    cited=False,
)  # fmt: skip
"""The range of ``unattributed`` energy (``analysis.energy_by_method``), which has no method."""


@dataclasses.dataclass(frozen=True)
class EnergyRange:
    """Energy with its range, in joules."""

    low_j: float
    central_j: float
    high_j: float
    basis: str


@dataclasses.dataclass(frozen=True)
class EmissionsRange:
    """Emissions with their range, in grams CO2e."""

    low_g: float
    central_g: float
    high_g: float
    basis: str
    lower_bound: bool = False
    """True when the figure is a lower bound with no published high end (``high_g`` is then the
    figure itself, not a ceiling): a GPU server's per-GPU embodied factor is one."""


GPU_UPDATE_S = {"nvml-counter": 0.1, "nvml-power": 1.0}
"""How long a GPU figure may lag at each edge of a window, by method, in seconds: NVML's energy
counter moves about every 100 ms, and the board's power reading is an average over about a second
that on A100 and H100 boards samples only about a quarter of it (Yang et al., "Part-time Power
Measurements: nvidia-smi's Lack of Attention", SC24, arXiv:2312.02741)."""


def short_window_range(method: str, duration_s: float | None) -> Range | None:
    """The range of a GPU figure from a window too short for its method's update period, or None
    when the window is long enough (or its length unknown).

    Rule: a window shorter than 10 update periods may gain or lose up to one period's energy at
    each edge, so the figure's range widens by ``2 x period / duration`` on each side (a high of at
    most 10x, a low of at least 0), beside the method's own range. A 0.5 s window metered by the
    counter is thus within 0.55x to 1.45x (±5 % of the method, ±40 % of the edges); a 50 ms one,
    anything from 0 to 5x."""
    if duration_s is None or duration_s <= 0 or not isinstance(method, str):
        return None
    periods = [GPU_UPDATE_S[part] for part in method.split("+") if part in GPU_UPDATE_S]
    if not periods or duration_s >= 10 * max(periods):
        return None
    period = max(periods)
    own = method_range(method)
    edge = 2 * period / duration_s
    return Range(
        max(0.0, own.low - edge), min(10.0, own.high + edge),
        f"a GPU figure from a {duration_s:.3g} s window, under 10 of its sensor's {period:g} s update "
        f"periods: up to a period's energy may be missed or added at each edge (±{100 * edge:.0f} %), "
        "beside the method's own range",
    )  # fmt: skip


def method_range(method: str) -> Range:
    """The relative range of an energy figure obtained by ``method``.

    A ``+``-joined method (several devices of one component, measured differently) takes the widest:
    the lowest low and the highest high of its parts, since the split between devices is not known.
    Raises ``ConfigError`` for an unknown method, listing the known ones.
    """
    if not isinstance(method, str):
        raise ConfigError(f"method must be a string such as 'rapl' or 'nvml-counter', not {method!r}")
    if method == "unattributed":
        return UNATTRIBUTED_RANGE
    parts = method.split("+")
    unknown = [p for p in parts if p not in METHOD_RANGES]
    if unknown:
        raise ConfigError(
            f"unknown energy method {unknown[0]!r} in {method!r}; known methods: {', '.join(METHOD_RANGES)} "
            "(several joined with '+')"
        )
    if len(parts) == 1:
        return METHOD_RANGES[method]
    ranges = [METHOD_RANGES[p] for p in parts]
    return Range(
        min(r.low for r in ranges),
        max(r.high for r in ranges),
        f"the widest of its parts ({', '.join(f'{p} {r.label}' for p, r in zip(parts, ranges))}), "
        "as the split of energy between its devices is not known",
    )


def energy_range(energy_by_method: Mapping[str, float]) -> EnergyRange:
    """The range of a total energy from its parts, ``{method: joules}``.

    Lows are summed and highs summed (errors taken as all pointing the same way: conservative).
    Raises ``ConfigError`` for an unknown method or a negative or non-finite energy.
    """
    low_j = central_j = high_j = 0.0
    used = []
    for method, energy_j in energy_by_method.items():
        energy_j = _finite(energy_j, f"energy of {method}", "J")
        if energy_j < 0:
            raise ConfigError(f"energy of {method} is {energy_j} J, negative; a measured energy is >= 0 J")
        r = method_range(method)
        low_j += energy_j * r.low
        central_j += energy_j
        high_j += energy_j * r.high
        if energy_j > 0:
            used.append(f"{method} {r.label}")
    basis = (
        f"per-method ranges ({'; '.join(used) or 'no energy'}), lows summed and highs summed: conservative, "
        "no cancelling of errors between components assumed"
    )
    return EnergyRange(low_j, central_j, high_j, basis)


def energy_by_method(record: Mapping[str, Any]) -> dict[str, float]:
    """``{method: joules}`` of a run record's ``gpu``/``cpu``/``ram`` ``_energy_j`` and ``_method`` fields.

    Components with the same method are summed (with errors taken as fully correlated this changes
    nothing); a component without energy is left out.
    """
    out: dict[str, float] = {}
    for component in ("gpu", "cpu", "ram"):
        energy_j = record.get(f"{component}_energy_j")
        if energy_j is None:
            continue
        method = record.get(f"{component}_method") or "none"
        out[method] = out.get(method, 0.0) + float(energy_j)
    return out


def emissions_range(
    energy: EnergyRange,
    *,
    intensity_g_per_kwh: float,
    pue: float = 1.0,
    intensity_relative: float | None = None,
) -> EmissionsRange:
    """Operational emissions (g CO2e) of ``energy`` (IT energy) x ``pue`` x ``intensity_g_per_kwh``.

    ``intensity_relative`` (e.g. 0.1 for ±10 %) widens the range for the uncertainty of the grid
    intensity itself, multiplied with the energy's range (worst case); ``None`` (the default) adds
    none, and the basis says so. PUE is taken as exact.
    """
    intensity_g_per_kwh = _finite(intensity_g_per_kwh, "intensity_g_per_kwh", "g/kWh")
    pue = _finite(pue, "pue", "")
    if intensity_g_per_kwh < 0:
        raise ConfigError(
            f"intensity_g_per_kwh={intensity_g_per_kwh} is negative; a grid intensity is >= 0 g/kWh"
        )
    if pue < 1:
        raise ConfigError(f"pue={pue} is below 1.0; PUE is facility energy over IT energy, so set it >= 1")
    down = up = 1.0
    if intensity_relative is None:
        intensity_text = "grid intensity taken as exact (no intensity uncertainty given)"
    else:
        intensity_relative = _finite(intensity_relative, "intensity_relative", "")
        if not 0 <= intensity_relative <= 1:
            raise ConfigError(
                f"intensity_relative={intensity_relative} must be between 0 and 1 (0.1 is ±10 %)"
            )
        down, up = 1 - intensity_relative, 1 + intensity_relative
        intensity_text = f"grid intensity ±{intensity_relative * 100:g} %, multiplied with the energy range"
    g_per_j = pue * intensity_g_per_kwh / J_PER_KWH
    return EmissionsRange(
        low_g=energy.low_j * g_per_j * down,
        central_g=energy.central_j * g_per_j,
        high_g=energy.high_j * g_per_j * up,
        basis=f"energy range x PUE {pue:g} x {intensity_g_per_kwh:g} g/kWh; {intensity_text}; "
        "PUE taken as exact. "
        f"Energy: {energy.basis}",
    )


def embodied_range(embodied: Any) -> EmissionsRange:
    """The range of an ``embodied.Embodied`` result: its factor's published range, if it has one."""
    if getattr(embodied, "lower_bound", False):
        low = embodied.embodied_g if embodied.low_g is None else embodied.low_g  # the machine's range's low end
        what = "this" if embodied.low_g is None else "the low end of the machine's range"
        return EmissionsRange(
            low, embodied.embodied_g, embodied.embodied_g,
            f"at least {what}: a lower bound, as its per-GPU factor is one ({embodied.source}); no high end "
            "is published",
            lower_bound=True,
        )  # fmt: skip
    if embodied.low_g is None or embodied.high_g is None:
        return EmissionsRange(
            embodied.embodied_g, embodied.embodied_g, embodied.embodied_g,
            f"no published range for this factor ({embodied.source}); shown as a point value",
        )  # fmt: skip
    return EmissionsRange(
        embodied.low_g,
        embodied.embodied_g,
        embodied.high_g,
        f"range of the embodied factor: {embodied.source}",
    )


def total_range(*parts: EmissionsRange) -> EmissionsRange:
    """The sum of several ranges (operational + embodied, or several runs): lows summed, highs summed."""
    return EmissionsRange(
        low_g=sum(p.low_g for p in parts),
        central_g=sum(p.central_g for p in parts),
        high_g=sum(p.high_g for p in parts),
        basis="sum of parts, lows summed and highs summed (conservative): "
        + " | ".join(p.basis for p in parts),
        lower_bound=any(p.lower_bound for p in parts),
    )

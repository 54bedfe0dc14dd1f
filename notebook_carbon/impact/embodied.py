"""Embodied (manufacturing) emissions of the hardware a run used, amortised as the SCI does.

The Green Software Foundation's Software Carbon Intensity specification (SCI 1.1.0) gives a piece
of software the share of its hardware's total embodied emissions ``TE`` that it reserved, in time
and in resources::

    M = TE x (time reserved / expected lifespan) x (resources reserved / total resources)

and scores it per functional unit as ``SCI = (E x I + M) / R``. ``TE`` comes from a table of
published figures per kind of hardware (``FACTORS``; docs/methods.md gives each source), or from
the user (``embodied_kg``). A year is 365 days, as in the specification's own worked example.

Pure arithmetic, no I/O: ``resolve_hardware`` is given the GPU count and whether the machine has a
battery rather than probing for them. Every result carries a ``basis`` saying how it was obtained.
"""

from __future__ import annotations

import dataclasses

from ..errors import ConfigError
from .footprint import J_PER_KWH, _finite, format_duration, format_energy, format_mass_g

__all__ = [
    "DEFAULT_LIFETIME_YEARS",
    "FACTORS",
    "KINDS",
    "SCI",
    "S_PER_YEAR",
    "Embodied",
    "HardwareFactor",
    "LifetimeExtension",
    "embodied",
    "lifetime_extension",
    "resolve_hardware",
    "sci",
]

DEFAULT_LIFETIME_YEARS = 4.0
S_PER_YEAR = 365 * 86400
"""Seconds in the 365-day year of the SCI's worked example (1000 kg x 1 h / (4 x 365 x 24 h))."""
AUTO_GPU_SERVER_MIN_GPUS = 4
"""``auto`` takes a machine with at least this many GPUs for a multi-GPU server (4 or 8 is usual)."""

_BLOOM = "Luccioni, Viguier & Ligozat (2023), Estimating the Carbon Footprint of BLOOM, JMLR 24(253)"
_BOAVIZTA_PCF = "Boavizta environmental-footprint-data, manufacturers' product carbon footprints (2023-02-23)"


@dataclasses.dataclass(frozen=True)
class HardwareFactor:
    """Published total embodied emissions of one kind of machine."""

    kind: str
    base_kg: float
    """Embodied emissions of the machine without discrete GPUs, kg CO2e."""
    per_gpu_kg: float
    """Added for each GPU, kg CO2e; 0 where ``base_kg`` already covers them (laptops)."""
    base_low_kg: float | None
    """Low end of the published range of ``base_kg``; ``None`` when no range is published."""
    base_high_kg: float | None
    """High end of the published range of ``base_kg``; ``None`` when no range is published."""
    source: str
    lifetime_years: float | None = None
    """Lifespan the source amortised the machine over, years; ``None``: the ``lifetime_years`` setting."""
    use_fraction: float = 1.0
    """Share of its lifespan the source took the machine to be in use (BLOOM's cluster: 0.85)."""
    per_gpu_lower_bound: bool = False
    """True when the source calls ``per_gpu_kg`` a lower bound: a figure with GPUs is then one too."""


FACTORS: dict[str, HardwareFactor] = {
    f.kind: f
    for f in (
        HardwareFactor(
            "gpu-server", 2500.0, 150.0, None, None,
            f"2,500 kg per server without its GPUs + 150 kg per GPU (a lower bound, as the paper says), "
            f"amortised over 6 years at 85 % use, the figures of {_BLOOM} "
            "(also Boavizta e-footprint's GPUServer defaults)",
            lifetime_years=6.0, use_fraction=0.85, per_gpu_lower_bound=True,
        ),
        HardwareFactor(
            "server", 1215.0, 150.0, 684.0, 1669.0,
            "median manufacturing footprint of 48 rack and tower servers (10th-90th percentile "
            f"684-1,669 kg), {_BOAVIZTA_PCF}; + 150 kg per GPU, a lower bound ({_BLOOM})",
            per_gpu_lower_bound=True,
        ),
        HardwareFactor(
            "workstation", 249.0, 150.0, 187.0, 405.0,
            f"median manufacturing footprint of 157 desktop computers (10th-90th percentile 187-405 kg), "
            f"{_BOAVIZTA_PCF}; + 150 kg per GPU, a lower bound ({_BLOOM})",
            per_gpu_lower_bound=True,
        ),
        HardwareFactor(
            "laptop", 236.0, 0.0, 132.0, 315.0,
            "median manufacturing footprint of 226 laptops (10th-90th percentile 132-315 kg), any GPU "
            f"included, {_BOAVIZTA_PCF}",
        ),
    )
}  # fmt: skip
KINDS = tuple(FACTORS)
"""Hardware kinds with a default factor; settings also accept ``auto``."""


@dataclasses.dataclass(frozen=True)
class Embodied:
    """The embodied emissions attributed to one run (the SCI's ``M``), with ``source`` and ``basis``."""

    embodied_g: float
    """Grams CO2e: ``total_kg x 1000 x reserved_s / lifespan x resource_share`` (0 for reused hardware)."""
    low_g: float | None
    """Same with the low end of the factor's range; ``None`` when the factor has no range."""
    high_g: float | None
    """Same with the high end of the factor's range; ``None`` when the factor has no range."""
    hardware: str
    """Kind of hardware used (``auto`` already resolved)."""
    hardware_reason: str | None
    """Why ``auto`` chose ``hardware`` (``hardware guessed from 0 GPUs and no battery: workstation``);
    ``None`` when the kind was set, or did not matter because ``embodied_kg`` was given."""
    gpu_count: int
    total_kg: float
    """Total embodied emissions of the machine (the SCI's ``TE``), kg CO2e."""
    user_total: bool
    """True when ``total_kg`` was given by the user (``embodied_kg``) rather than taken from ``FACTORS``."""
    reserved_s: float
    """Time the hardware was reserved for the run, seconds."""
    lifetime_years: float
    resource_share: float
    """Share of the machine's resources reserved for the run, 0 to 1 (the SCI's ``RR / ToR``)."""
    reused: bool
    """True for refurbished or second-life hardware: its manufacturing counts as already amortised."""
    use_fraction: float = 1.0
    """Share of the lifespan the machine is in use: the time-share is ``reserved_s / (lifespan x use)``."""
    resource_how: str | None = None
    """How ``resource_share`` was found (``4 of 16 logical CPUs in the process's CPU affinity``)."""
    lower_bound: bool = False
    """True when ``total_kg`` rests on a per-GPU figure its source calls a lower bound."""

    @property
    def as_new_g(self) -> float:
        """What ``embodied_g`` would be for new hardware (equal to it unless ``reused``)."""
        lifespan_s = self.lifetime_years * self.use_fraction * S_PER_YEAR
        return self.total_kg * 1000 * self.reserved_s / lifespan_s * self.resource_share

    @property
    def source(self) -> str:
        """Where ``total_kg`` came from."""
        total = f"{format_mass_g(self.total_kg * 1000)} CO2e"
        if self.user_total:
            return f"{total}, user-provided value"
        factor = FACTORS[self.hardware]
        n = self.gpu_count
        with_gpus = f" with {n} GPU{'' if n == 1 else 's'}" if factor.per_gpu_kg and n else ""
        guessed = f" ({self.hardware_reason})" if self.hardware_reason else ""  # a fact: no advice in a paper
        return f"{self.hardware}{with_gpus}: {total}; {factor.source}{guessed}"

    @property
    def basis(self) -> str:
        """How ``embodied_g`` was obtained, in one sentence."""
        if self.reused:
            return (
                "reused hardware: its manufacturing emissions are counted as already amortised over its "
                "first life, so none are attributed to this run "
                f"(as new hardware: {format_mass_g(self.as_new_g)})"
            )
        resources = "" if self.resource_share == 1 else f" x {self.resource_share:g} of its resources"
        use = "" if self.use_fraction == 1 else f" at {self.use_fraction * 100:g} % use"
        total, reserved = format_mass_g(self.total_kg * 1000), format_duration(self.reserved_s)
        bound = "; a lower bound (the per-GPU figure is one)" if self.lower_bound else ""
        return (
            f"SCI time-share: {total} CO2e x {reserved} / {self.lifetime_years:g} years{use}{resources} = "
            f"{format_mass_g(self.embodied_g)} CO2e{bound}"
        )


@dataclasses.dataclass(frozen=True)
class LifetimeExtension:
    """Embodied emissions of the same use if the hardware were kept longer (or shorter)."""

    from_years: float
    to_years: float
    before_g: float
    """Embodied emissions at ``from_years`` of service, grams CO2e."""
    after_g: float
    """Embodied emissions at ``to_years`` of service, grams CO2e."""
    change_g: float
    """``after_g - before_g`` (negative for a longer life)."""
    change_fraction: float
    """``from_years / to_years - 1``: -1/3 for 6 instead of 4 years."""
    sentence: str
    basis: str


@dataclasses.dataclass(frozen=True)
class SCI:
    """Software Carbon Intensity: ``(E x I + M) / R``, grams CO2e per functional unit."""

    sci_g_per_unit: float
    operational_g: float
    """``E x I``: facility energy (kWh) x grid intensity (g/kWh)."""
    embodied_g: float
    """``M``, grams CO2e."""
    facility_energy_j: float
    """``E`` in joules: IT energy x PUE."""
    intensity_g_per_kwh: float
    """``I``."""
    functional_units: float
    """``R``: how many functional units the emissions are shared by."""
    unit: str
    """Name of the functional unit, e.g. ``run``, ``epoch``, ``1000 predictions``."""
    basis: str


def resolve_hardware(kind: str, *, gpu_count: int = 0, has_battery: bool = False) -> tuple[str, str | None]:
    """The hardware kind to use and, for ``auto``, the reason for the guess.

    ``auto``: at least ``AUTO_GPU_SERVER_MIN_GPUS`` GPUs is a ``gpu-server``; else a machine with a
    battery is a ``laptop``; anything else a ``workstation``. Raises ``ConfigError`` for an
    unknown kind, listing the known ones.
    """
    if kind in FACTORS:
        return kind, None
    if kind != "auto":
        raise ConfigError(
            f"unknown hardware kind {kind!r}; known kinds: auto, {', '.join(KINDS)} "
            "(or set embodied_kg to give the machine's embodied emissions yourself)"
        )
    gpus = f"{gpu_count} GPU" + ("" if gpu_count == 1 else "s")
    if gpu_count >= AUTO_GPU_SERVER_MIN_GPUS:
        return "gpu-server", f"hardware guessed from {gpus}: gpu-server"
    if has_battery:
        return "laptop", f"hardware guessed from a battery and {gpus}: laptop"
    return "workstation", f"hardware guessed from {gpus} and no battery: workstation"


def embodied(
    reserved_s: float,
    *,
    hardware: str = "workstation",
    gpu_count: int = 0,
    embodied_kg: float | None = None,
    lifetime_years: float | None = None,
    use_fraction: float | None = None,
    resource_share: float = 1.0,
    resource_how: str | None = None,
    reused: bool = False,
    has_battery: bool = False,
) -> Embodied:
    """The embodied emissions (g CO2e) of reserving a machine for ``reserved_s`` seconds.

    ``TE`` is ``embodied_kg`` when given (the whole machine, GPUs included), else the ``FACTORS``
    entry of ``hardware`` plus ``per_gpu_kg`` for each of ``gpu_count`` GPUs. ``hardware="auto"``
    is resolved with ``resolve_hardware`` (``has_battery`` is only used then). The lifespan is
    ``lifetime_years`` at ``use_fraction`` of the time in use; unset, the factor's own (gpu-server:
    BLOOM's 6 years at 85 %), else 4 years at full use. ``resource_share`` is the SCI's
    ``RR / ToR``, ``resource_how`` the rule that found it. ``reused=True`` attributes nothing: the
    manufacturing of refurbished hardware was amortised over its first life. Raises ``ConfigError``
    for a negative time, count or factor, a lifetime or use that is not positive, a share outside
    0..1 or an unknown kind.
    """
    reserved_s = _non_negative(reserved_s, "reserved_s", "s")
    resource_share = _finite(resource_share, "resource_share", "")
    if not 0 <= resource_share <= 1:
        raise ConfigError(f"resource_share={resource_share} must be between 0 and 1 (a share of the machine)")
    if isinstance(gpu_count, bool) or not isinstance(gpu_count, int) or gpu_count < 0:
        raise ConfigError(f"gpu_count={gpu_count!r} must be a whole number >= 0")
    kind, guessed = resolve_hardware(hardware, gpu_count=gpu_count, has_battery=has_battery)
    factor = None if embodied_kg is not None else FACTORS[kind]
    if factor is None:
        total_kg = _non_negative(embodied_kg, "embodied_kg", "kg CO2e")
        low_kg = high_kg = None
        guessed = None  # the kind does not matter then
    else:
        gpus_kg = factor.per_gpu_kg * gpu_count
        total_kg = factor.base_kg + gpus_kg
        low_kg = None if factor.base_low_kg is None else factor.base_low_kg + gpus_kg
        high_kg = None if factor.base_high_kg is None else factor.base_high_kg + gpus_kg
    if lifetime_years is None:
        lifetime_years = (factor and factor.lifetime_years) or DEFAULT_LIFETIME_YEARS
        use_fraction = factor.use_fraction if factor and use_fraction is None else use_fraction
    use_fraction = 1.0 if use_fraction is None else use_fraction
    for name, value in (("lifetime_years", lifetime_years), ("use_fraction", use_fraction)):
        number = _finite(value, name, "")
        if not number > 0 or (name == "use_fraction" and number > 1):
            what = "a positive number of years" if name == "lifetime_years" else "a share above 0, at most 1"
            raise ConfigError(f"{name}={number} must be {what}")
    lifetime_years, use_fraction = float(lifetime_years), float(use_fraction)
    lifespan_s = lifetime_years * use_fraction * S_PER_YEAR
    g_per_kg = 0.0 if reused else 1000 * reserved_s / lifespan_s * resource_share
    return Embodied(
        embodied_g=total_kg * g_per_kg,
        low_g=None if low_kg is None else low_kg * g_per_kg,
        high_g=None if high_kg is None else high_kg * g_per_kg,
        hardware=kind,
        hardware_reason=guessed,
        gpu_count=gpu_count,
        total_kg=total_kg,
        user_total=embodied_kg is not None,
        reserved_s=reserved_s,
        lifetime_years=lifetime_years,
        resource_share=resource_share,
        reused=bool(reused),
        use_fraction=use_fraction,
        resource_how=resource_how,
        lower_bound=bool(factor and factor.per_gpu_lower_bound and gpu_count),
    )


def lifetime_extension(
    embodied_g: float, *, from_years: float = DEFAULT_LIFETIME_YEARS, to_years: float = 6.0
) -> LifetimeExtension:
    """The same embodied emissions with the hardware kept ``to_years`` instead of ``from_years``.

    Amortised embodied emissions scale as 1 / lifespan, so 6 instead of 4 years gives 4/6 of them
    (-33 %). ``embodied_g`` is the figure at ``from_years`` (one run's, or a project's sum).
    """
    embodied_g = _non_negative(embodied_g, "embodied_g", "g CO2e")
    from_years = _finite(from_years, "from_years", "years")
    to_years = _finite(to_years, "to_years", "years")
    for name, years in (("from_years", from_years), ("to_years", to_years)):
        if not years > 0:
            raise ConfigError(f"{name}={years} must be a positive number of years")
    fraction = from_years / to_years - 1
    after_g = embodied_g * from_years / to_years
    if fraction == 0:
        sentence = f"At {to_years:g} years of service, as assumed: embodied emissions unchanged."
    else:
        sentence = (
            f"At {to_years:g} instead of {from_years:g} years of service: {fraction * 100:+.0f} % embodied "
            f"emissions ({format_mass_g(after_g)} instead of {format_mass_g(embodied_g)} CO2e)."
        )
    basis = (
        "amortised embodied emissions scale as 1 / lifespan (SCI time-share): "
        f"x {from_years:g}/{to_years:g} for {to_years:g} instead of {from_years:g} years"
    )
    return LifetimeExtension(
        from_years=from_years,
        to_years=to_years,
        before_g=embodied_g,
        after_g=after_g,
        change_g=after_g - embodied_g,
        change_fraction=fraction,
        sentence=sentence,
        basis=basis,
    )


def sci(
    facility_energy_j: float,
    intensity_g_per_kwh: float,
    embodied_g: float,
    *,
    functional_units: float = 1.0,
    unit: str = "run",
) -> SCI:
    """``SCI = (E x I + M) / R`` in grams CO2e per ``unit``.

    ``E`` is facility energy (IT energy x PUE, in joules here, kWh in the formula): the SCI asks
    for data-centre overhead to be included in ``E``, and it makes ``E x I`` equal to a run's
    recorded ``emissions_g``. ``R`` (``functional_units``) must be positive.
    """
    facility_energy_j = _non_negative(facility_energy_j, "facility_energy_j", "J")
    intensity_g_per_kwh = _non_negative(intensity_g_per_kwh, "intensity_g_per_kwh", "g/kWh")
    embodied_g = _non_negative(embodied_g, "embodied_g", "g CO2e")
    functional_units = _finite(functional_units, "functional_units", "")
    if not functional_units > 0:
        raise ConfigError(
            f"functional_units={functional_units} must be positive: R is a count of units of work"
        )
    if not isinstance(unit, str) or not unit.strip():
        raise ConfigError(f"unit must name the functional unit (e.g. 'run', 'epoch'), not {unit!r}")
    operational_g = facility_energy_j / J_PER_KWH * intensity_g_per_kwh
    per_unit = (operational_g + embodied_g) / functional_units
    basis = (
        f"SCI = (E x I + M) / R = ({format_energy(facility_energy_j)} x {intensity_g_per_kwh:g} g/kWh + "
        f"{format_mass_g(embodied_g)}) / {functional_units:g} {unit} = {format_mass_g(per_unit)} CO2e "
        f"per {unit}; E is facility energy (IT energy x PUE)"
    )
    return SCI(
        sci_g_per_unit=per_unit,
        operational_g=operational_g,
        embodied_g=embodied_g,
        facility_energy_j=facility_energy_j,
        intensity_g_per_kwh=intensity_g_per_kwh,
        functional_units=functional_units,
        unit=unit,
        basis=basis,
    )


def _non_negative(value: float, name: str, unit: str) -> float:
    number = _finite(value, name, unit)
    if number < 0:
        raise ConfigError(
            f"{name}={number} is negative; it must be zero or positive{' ' + unit if unit else ''}"
        )
    return number

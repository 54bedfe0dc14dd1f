"""The statement's SCI for AI section: the provider's carbon intensity of the whole development.

The Green Software Foundation's *Software Carbon Intensity for AI* specification (SCI for AI,
ratified by its Steering Committee for public review on 20 November 2025) extends the SCI
(ISO/IEC 21031:2024: ``SCI = (E x I + M) per R``) to AI systems. Its provider boundary covers
inception, design and development, deployment and retirement (section 6.2); emissions of model
training "SHALL be calculated over the entire training duration, including ... intermediate runs,
and early stopping phases" (section 7.2): every metered run of the selection, failed and redundant
ones included, which is what the statement's totals are. The provider's functional unit "SHALL"
be one of per FLOP, per training token or per (billion) parameters (section 8.2), and the provider
"SHALL clearly state" the unit with its rationale and whether gross or effective values were used
(section 8.2.2): ``sci_for_ai`` takes these from the user and never guesses them.

``sci_for_ai(facts, functional_unit="token", units=1.2e9)`` is a JSON-ready dict computed from a
statement's facts (``statement_facts``); ``sci_for_ai_markdown`` lays it out. Grams CO2e, joules.
"""

from __future__ import annotations

import math
from typing import Any

from ..errors import ConfigError
from ..impact import embodied as embodied_maths
from ..units import emissions_text, energy_text, number_text, ratio_text, span_text
from .escape import markdown_escape

__all__ = ["FUNCTIONAL_UNITS", "SPECIFICATION", "VALUES", "sci_for_ai", "sci_for_ai_markdown"]

SPECIFICATION = (
    "Green Software Foundation, Software Carbon Intensity for AI (SCI for AI) specification, ratified for "
    "public review by the GSF Steering Committee on 20 November 2025, "
    "https://github.com/Green-Software-Foundation/sci-ai (SPEC.md); it builds on ISO/IEC 21031:2024, "
    "Software Carbon Intensity (SCI) specification: SCI = (E x I + M) per R"
)
"""What the section cites."""

FUNCTIONAL_UNITS: dict[str, tuple[str, float]] = {
    "flop": ("FLOP", 1.0),
    "token": ("training token", 1.0),
    "parameter": ("billion parameters", 1e9),
}
"""The provider functional units of SCI for AI (section 8.2): name -> (what R counts, how many of
the user's ``units`` make one). Parameters are counted in billions, as the specification's
"carbon emissions per billion model parameters"; ``units`` is always the plain count."""

VALUES = ("gross", "effective")
"""Whether ``units`` is a gross count (all parameters, every raw token, theoretical FLOPs) or an
effective one (active parameters, deduplicated tokens, utilised FLOPs): section 8.2.2."""


def sci_for_ai(
    facts: dict[str, Any],
    *,
    functional_unit: str | None = None,
    units: float | None = None,
    values: str | None = None,
    rationale: str | None = None,
) -> dict[str, Any]:
    """The SCI for AI provider section of a statement's ``facts``, as a JSON-ready dict.

    ``C = E x I + M`` over every run of the facts (their ``totals``: facility energy ``E`` in J,
    the runs' energy-weighted grid intensity ``I`` in g/kWh, embodied emissions ``M`` in g CO2e),
    with its range. With ``functional_unit`` (one of ``FUNCTIONAL_UNITS``) and ``units`` (how many:
    tokens, parameters, FLOPs; > 0), ``sci`` is ``C / R`` in g CO2e per functional unit, with its
    range; without them ``sci`` is None and the section says no functional unit was given.
    ``values`` (``"gross"`` or ``"effective"``) and ``rationale`` are the user's, stated as given.
    """
    if (functional_unit is None) != (units is None):
        raise ConfigError(
            "give both functional_unit and units (e.g. functional_unit='token', units=1.2e9), or neither"
        )
    if functional_unit is not None and functional_unit not in FUNCTIONAL_UNITS:
        raise ConfigError(f"functional unit {functional_unit!r}: choose one of {', '.join(FUNCTIONAL_UNITS)}")
    if values is not None and values not in VALUES:
        raise ConfigError(f"values {values!r}: choose one of {', '.join(VALUES)}")
    totals, development = facts["totals"], facts["development"]
    facility = totals["facility_energy_j"]
    embodied = totals["embodied_g"]
    operational = totals["emissions_g"]
    intensity = facts["methods"]["intensity"]["g_per_kwh"] if facility["value"] else 0.0
    carbon = {key: operational[key] + embodied[key] for key in ("value", "low", "high")}
    carbon["lower_bound"] = bool(embodied.get("lower_bound"))  # M has no upper end, and so C has none
    unit = None
    if functional_unit is not None:
        what, scale = FUNCTIONAL_UNITS[functional_unit]
        count = _positive(units)
        r = count / scale
        # the SCI's own arithmetic and checks; E x I is the registry's emissions (I is their mean intensity)
        point = embodied_maths.sci(
            facility["value"], intensity, embodied["value"], functional_units=r, unit=what
        )
        unit = {
            "name": functional_unit,
            "per": what,
            "units": count,
            "r": r,
            "values": values,
            "rationale": rationale,
            "sci_g": {"value": point.sci_g_per_unit, "low": carbon["low"] / r, "high": carbon["high"] / r,
                      "lower_bound": carbon["lower_bound"]},
            "basis": f"SCI = (E x I + M) / R = ({energy_text(facility['value'])} x {number_text(intensity)} g/kWh + "
            f"{emissions_text(embodied['value'])}) / {_sig(r)} {_plural(what)} = {_sig(point.sci_g_per_unit)} g CO2e per {what}",
        }  # fmt: skip
    scope = facts["scope"]
    return {
        "specification": SPECIFICATION,
        "boundary": {
            "persona": "provider",
            "stages": ["design and development"],
            "runs": totals["runs"],
            "sweeps": development["sweeps"],
            "failed_runs": development["failed_runs"],
            "redundant_runs": development["redundant_runs"],
            "excluded_runs": len(scope.get("excluded") or []),
            "includes": "every metered run of the selection: all sweeps, intermediate, failed and redundant runs "
            "(SCI for AI 7.2: training emissions include intermediate runs and early stopping phases)",
            "excludes": "what was not metered: inception, deployment and retirement, data collection and "
            "preprocessing outside metered cells, storage and networking",
        },
        "e_facility_energy_j": facility,
        "i_g_per_kwh": intensity,
        "operational_g": operational,
        "m_embodied_g": embodied,
        "c_total_g": carbon,
        "results_operational_g": development["selected_emissions_g"],
        "development_ratio": development["ratio"],
        "functional_unit": unit,
        "sci": None if unit is None else unit["sci_g"],
        "formula": "SCI = C / R = (E x I + M) / R; E: facility energy (IT energy x PUE), I: grid intensity "
        "(energy-weighted mean of the runs' grids), M: embodied emissions (hardware manufacturing, time-share)",
    }


def sci_for_ai_markdown(section: dict[str, Any]) -> str:
    """The section (``sci_for_ai``'s dict) as Markdown: a heading, a table and the basis."""
    b = section["boundary"]
    unit = section["functional_unit"]
    c = section["c_total_g"]
    rows = [
        ("E, facility energy", energy_text(section["e_facility_energy_j"]["value"]),
         _span(section["e_facility_energy_j"], "energy")),
        ("I, grid intensity", f"{number_text(section['i_g_per_kwh'])} g CO2e/kWh", "taken as exact"),
        ("E \u00d7 I, operational", emissions_text(section["operational_g"]["value"]),
         _span(section["operational_g"], "emissions")),
        ("M, embodied", emissions_text(section["m_embodied_g"]["value"]), _span(section["m_embodied_g"], "emissions")),
        ("C = E \u00d7 I + M", emissions_text(c["value"]), _span(c, "emissions")),
    ]  # fmt: skip
    lines = ["## SCI for AI (provider)", ""]
    lines.append(
        f"The boundary is the provider's design and development stage: {b['runs']} metered "
        f"run{'s' if b['runs'] != 1 else ''} in {b['sweeps']} sweep{'s' if b['sweeps'] != 1 else ''}, "
        f"including {b['failed_runs']} failed and {b['redundant_runs']} redundant "
        f"run{'s' if b['redundant_runs'] != 1 else ''}, as the specification requires training emissions to "
        "include intermediate runs. Not included: " + markdown_escape(b["excludes"]) + "."
    )
    if b["excluded_runs"]:
        lines[-1] += (
            f" {b['excluded_runs']} run{'s' if b['excluded_runs'] != 1 else ''} left out for implausible figures."
        )
    if section["development_ratio"] is not None:
        lines[-1] += (f" The whole development took {ratio_text(section['development_ratio'])} the energy of the "
                      "final results alone.")  # fmt: skip
    lines += ["", "| Term | Value | Range |", "|---|---|---|"]
    lines += [f"| {name} | {value} | {span} |" for name, value, span in rows]
    bound = ("M is a lower bound, as the per-GPU factor it rests on is one, so C"
             + (" and the SCI have" if unit is not None else " has") + " no upper end.")  # said below the table
    if unit is None:
        lines += ["", bound] if c.get("lower_bound") else []
        lines += ["", ("No functional unit was given, so no SCI per unit: the specification asks a provider for "
                  "one of per FLOP, per training token or per billion parameters.")]  # fmt: skip
    else:
        s = unit["sci_g"]
        lines += [
            f"| R, {markdown_escape(_plural(unit['per']))} | {_sig(unit['r'])} | {markdown_escape(unit['values'] or 'gross or effective not stated')} |",
            (f"| **SCI = C / R** | **{_sig(s['value'])} g CO2e per {markdown_escape(unit['per'])}** "
            + (f"| at least {_sig(s['low'])} g CO2e |" if s.get("lower_bound")
               else f"| {_sig(s['low'])}\u2013{_sig(s['high'])} g CO2e |")),
        ]  # fmt: skip
        if c.get("lower_bound"):
            lines += ["", bound]
        if unit["rationale"]:
            lines += ["", "Functional unit chosen because: " + markdown_escape(unit["rationale"])]
        lines += ["", markdown_escape(unit["basis"]) + "."]
    lines += [
        "",
        markdown_escape(section["formula"]) + ".",
        "",
        "Source: " + markdown_escape(section["specification"]) + ".",
        "",
    ]
    return "\n".join(lines)


def _plural(what: str) -> str:
    return what if what.endswith("s") else what + "s"


def _positive(units: Any) -> float:
    try:
        count = float(units)
    except (TypeError, ValueError):
        raise ConfigError(f"units={units!r} must be a number: how many tokens, parameters or FLOPs") from None
    if not (math.isfinite(count) and count > 0):
        raise ConfigError(f"units={units!r} must be a positive number: R is a count of functional units")
    return count


def _sig(value: float | None) -> str:
    """A figure to 3 significant figures, in scientific notation when very small or large."""
    if value is None or not math.isfinite(value):
        return "n/a"
    if value == 0 or 1e-3 <= abs(value) < 1e6:
        return number_text(value)
    mantissa, exponent = f"{value:.2e}".split("e")  # .3g has no exponent down to 1e-4
    return f"{float(mantissa):g} \u00d7 10^{int(exponent)}"


def _span(figure: dict[str, Any], kind: str) -> str:
    """A figure's range; "at least" its low end where it is a lower bound (no upper end)."""
    if figure.get("lower_bound"):
        return "at least " + (energy_text if kind == "energy" else emissions_text)(figure["low"])
    return span_text(figure["value"], figure["low"], figure["high"], kind)

"""Rendering the statement's facts (``build.statement_data``) into each format.

Markdown and LaTeX come from jinja2 templates in ``templates/``, each with an environment whose
``finalize`` escapes every value printed with ``{{ }}`` for its format: user text cannot become
markup, and a template cannot forget to escape. Figures are formatted by filters (``energy``,
``mass``, ``pct``...) into plain text, escaped like the rest. JSON is the facts themselves; the
model card's metadata is built and checked by huggingface_hub's ``ModelCardData``.
"""

from __future__ import annotations

import functools
import json
from typing import Any

from ..errors import ConfigError
from ..impact.footprint import J_PER_KWH, format_duration
from .escape import latex_escape, markdown_escape

FORMATS = ("md", "latex", "json", "model-card")
"""What ``impact_statement`` writes: Markdown, a LaTeX document, JSON, Hugging Face model-card metadata."""

TRAINING_TYPES = ("pre-training", "fine-tuning")


def render(data: dict[str, Any], fmt: str, *, training_type: str = "pre-training") -> str:
    if fmt == "json":
        return json.dumps(data, indent=2, ensure_ascii=False) + "\n"
    if fmt == "model-card":
        return model_card(data, training_type=training_type)
    if fmt in ("md", "latex"):
        return _environment(fmt).get_template(f"statement.{'md' if fmt == 'md' else 'tex'}.j2").render(s=data)
    raise ConfigError(f"unknown statement format {fmt!r}; choose one of {', '.join(FORMATS)}")


def model_card(data: dict[str, Any], *, training_type: str = "pre-training") -> str:
    """The ``co2_eq_emissions`` metadata of a Hugging Face model card (YAML between ``---`` lines),
    for the whole development: emissions in grams, as the model-card specification asks."""
    from huggingface_hub import ModelCardData

    if training_type not in TRAINING_TYPES:
        raise ConfigError(f"training type {training_type!r}: choose one of {', '.join(TRAINING_TYPES)}")
    methods = data["methods"]
    grids = methods["intensity"]["grids"]
    location = ", ".join(str(g["region"]) for g in grids if g["region"]) or "unknown"
    hardware = [f"{g['count'] or 1} x {g['model']}" for g in data["hardware"]["gpus"]] + data["hardware"]["cpus"]
    emissions = {
        "emissions": round(data["totals"]["emissions_g"]["value"], 3),
        "source": f"{data['generator']}: {data['scope']['runs']} metered runs of project "
        f"{data['scope'].get('project')!s}, every sweep, failed and redundant run included; "
        f"{_measured_text(methods)}{_excluded_text(data['scope'].get('excluded', []))}",
        "training_type": training_type,
        "geographical_location": location,
        "hardware_used": ", ".join(hardware) or "unknown",
    }
    card = ModelCardData(co2_eq_emissions=emissions)
    return "---\n" + card.to_yaml() + "\n---\n"


def _excluded_text(excluded: list[dict[str, Any]]) -> str:
    if not excluded:
        return ""
    ids = ", ".join(str(e["id"]) for e in excluded[:10]) + (", ..." if len(excluded) > 10 else "")
    return f"; {len(excluded)} run{'s' if len(excluded) != 1 else ''} left out for implausible figures (ids {ids})"


def _measured_text(methods: dict[str, Any]) -> str:
    measured = methods.get("measured_share")
    if measured is None:
        return "no energy recorded"
    return f"{measured * 100:.0f} % of the energy measured by sensors, the rest estimated"


# -- jinja2 ------------------------------------------------------------------------------------


@functools.cache
def _environment(fmt: str):
    import jinja2

    escape = markdown_escape if fmt == "md" else latex_escape
    options: dict[str, Any] = {}
    if fmt == "latex":  # LaTeX is made of braces: jinja's own delimiters would clash with it
        options = dict(
            block_start_string="\\BLOCK{", block_end_string="}",
            variable_start_string="\\VAR{", variable_end_string="}",
            comment_start_string="\\#{", comment_end_string="}",
        )
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("notebook_carbon.statements", "templates"),
        autoescape=False,  # HTML autoescaping; ours is ``finalize`` below, for this format
        finalize=lambda value: "" if value is None else escape(value),
        undefined=jinja2.StrictUndefined,  # a missing fact is a bug, not a blank in a paper
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        **options,
    )
    env.filters.update(
        energy=energy_text, mass=mass_text, pct=pct_text, ratio=ratio_text, water=water_text,
        duration=format_duration, num=num_text, span=span_text,
    )
    return env


def num_text(value: float | None, digits: int = 3) -> str:
    """``value`` to ``digits`` significant figures, thousands separated: ``0.0123``, ``1,230``."""
    if value is None:
        return "n/a"
    if value == 0:
        return "0"
    rounded = float(f"{value:.{digits}g}")
    return f"{rounded:,.0f}" if abs(rounded) >= 10 ** (digits - 1) else f"{rounded:,.{digits}g}"


def energy_text(joules: float | None) -> str:
    """Joules as kWh, Wh or J, whichever reads best: ``12.3 kWh``, ``4.56 Wh``, ``0.7 J``."""
    if joules is None:
        return "n/a"
    if abs(joules) >= J_PER_KWH / 10:
        return f"{num_text(joules / J_PER_KWH)} kWh"
    if abs(joules) >= 3.6:
        return f"{num_text(joules / 3600)} Wh"
    return f"{num_text(joules)} J"


def mass_text(grams: float | None) -> str:
    """Grams CO2e as t, kg, g or mg: ``1.23 kg CO2e``."""
    if grams is None:
        return "n/a"
    for unit, size in (("t", 1e6), ("kg", 1e3), ("g", 1.0)):
        if abs(grams) >= size:
            return f"{num_text(grams / size)} {unit} CO2e"
    return f"{num_text(grams * 1e3)} mg CO2e"


def water_text(litres: float | None) -> str:
    if litres is None:
        return "n/a"
    if abs(litres) >= 1000:
        return f"{num_text(litres / 1000)} m3"
    return f"{num_text(litres)} L" if abs(litres) >= 1 else f"{num_text(litres * 1000)} mL"


def pct_text(fraction: float | None) -> str:
    if fraction is None:
        return "n/a"
    percent = fraction * 100
    return f"{percent:.0f} %" if abs(percent) >= 10 or percent == 0 else f"{percent:.2g} %"


def ratio_text(ratio: float | None) -> str:
    return "n/a" if ratio is None else f"{num_text(ratio)}x"


def span_text(ranged: dict[str, float], kind: str = "mass") -> str:
    """The range of a ``{"value", "low", "high"}`` figure: ``3.4-4.9 kg CO2e``."""
    show = {"mass": mass_text, "energy": energy_text}[kind]
    low, high = show(ranged["low"]), show(ranged["high"])
    if low == high:
        return low
    low_number, _, low_unit = low.partition(" ")
    high_number, _, high_unit = high.partition(" ")
    return f"{low_number}\u2013{high}" if low_unit == high_unit else f"{low} \u2013 {high}"

"""Rendering the statement's facts (``build.statement_data``) into each format.

Markdown and LaTeX come from jinja2 templates in ``templates/``, each with an environment whose
``finalize`` escapes every value printed with ``{{ }}`` for its format: user text cannot become
markup, and a template cannot forget to escape. Figures are formatted by filters (``energy``,
``mass``, ``pct``...) into plain text by the one display scheme (``units``), then escaped like the
rest: the dashboard, the CLI and the sidebar print the same strings. JSON is the facts themselves; the
model card's metadata is built and checked by huggingface_hub's ``ModelCardData``.
"""

from __future__ import annotations

import functools
import json
from typing import Any

from ..errors import ConfigError
from ..units import (
    duration_text,
    emissions_text,
    energy_text,
    number_text,
    percent_text,
    power_text,
    ratio_text,
    span_text,
    text_like,
    water_text,
)
from .escape import CELL_CHARACTERS, latex_cell, latex_escape, latex_prose, latex_typeset, markdown_escape

FORMATS = ("md", "latex", "latex-fragment", "json", "model-card", "bib", "checklist", "sci-ai", "sci-ai-json", "boamps")
"""What ``impact_statement`` writes: Markdown (a paragraph for the main text, the appendix and the
checklists' answers), a LaTeX document, the same as a fragment to ``\\input``, JSON, Hugging Face
model-card metadata, the sources as BibTeX, the NeurIPS and ACL checklists' compute answers."""

_TEMPLATES = {"md": "statement.md.j2", "latex": "statement.tex.j2", "latex-fragment": "fragment.tex.j2",
              "checklist": "checklist.md.j2"}  # fmt: skip

TRAINING_TYPES = ("pre-training", "fine-tuning")


def render(data: dict[str, Any], fmt: str, *, training_type: str | None = None, include_embodied: bool = False,
           functional_unit: str | None = None, units: float | None = None, sci_values: str | None = None,
           sci_rationale: str | None = None) -> str:
    """``data`` (a statement's facts) in ``fmt``. ``training_type`` and ``include_embodied``: the
    model card's (``model_card``); ``functional_unit``, ``units``, ``sci_values`` (gross or
    effective) and ``sci_rationale``: SCI for AI's (``sci.sci_for_ai``), as Markdown or JSON."""
    if fmt == "json":
        return json.dumps(data, indent=2, ensure_ascii=False) + "\n"
    if fmt == "model-card":
        return model_card(data, training_type=training_type, include_embodied=include_embodied)
    if fmt in ("sci-ai", "sci-ai-json"):
        from .sci import sci_for_ai, sci_for_ai_markdown

        section = sci_for_ai(data, functional_unit=functional_unit, units=units, values=sci_values,
                             rationale=sci_rationale)  # fmt: skip
        return sci_for_ai_markdown(section) if fmt == "sci-ai" else json.dumps(section, indent=2, ensure_ascii=False) + "\n"
    if fmt == "boamps":
        from .boamps import boamps_report

        return json.dumps(boamps_report(data), indent=2, ensure_ascii=False) + "\n"
    if fmt == "bib":
        from .bib import bibtex

        return bibtex(data)
    if fmt in _TEMPLATES:
        from .bib import ENTRIES, bibitems, cited_keys
        from .checklists import answers

        keys = cited_keys(data)
        return _environment("md" if fmt in ("md", "checklist") else "latex").get_template(_TEMPLATES[fmt]).render(
            s=data, keys=keys, entries=ENTRIES, checklists=answers(data), bibliography=Raw(bibitems(keys))
        )
    raise ConfigError(f"unknown statement format {fmt!r}; choose one of {', '.join(FORMATS)}")


def model_card(
    data: dict[str, Any], *, training_type: str | None = None, include_embodied: bool = False
) -> str:
    """The ``co2_eq_emissions`` metadata of a Hugging Face model card (YAML between ``---`` lines),
    for the whole development: emissions in grams, as the model-card specification asks, to 3
    significant figures (a project of 0.4 mg writes 0.0004, never 0.0). The operational emissions,
    or with ``include_embodied`` those plus the hardware's embodied emissions; ``source`` says which.
    ``training_type`` (one of ``TRAINING_TYPES``) is written only when given: nothing is assumed."""
    from huggingface_hub import ModelCardData

    if training_type is not None and training_type not in TRAINING_TYPES:
        raise ConfigError(f"training type {training_type!r}: choose one of {', '.join(TRAINING_TYPES)}")
    methods, totals = data["methods"], data["totals"]
    grids = methods["intensity"]["grids"]
    location = ", ".join(str(g["region"]) for g in grids if g["region"]) or "unknown"
    hardware = [f"{g['count'] or 1} x {g['model']}" for g in data["hardware"]["gpus"]] + data["hardware"]["cpus"]
    embodied_g = totals["embodied_g"]["value"] or 0.0
    grams = totals["emissions_g"]["value"] + (embodied_g if include_embodied else 0.0)
    if include_embodied:
        bound = (", a lower bound as the per-GPU factor it rests on is one, so the figure is one too"
                 if totals["embodied_g"].get("lower_bound") else "")  # fmt: skip
        included = ("operational emissions (electricity x PUE x grid intensity) and embodied emissions "
                    f"(hardware manufacturing{bound})")  # fmt: skip
    else:
        included = (f"operational emissions only (electricity x PUE x grid intensity); embodied emissions "
                    f"(hardware manufacturing, {emissions_text(embodied_g)}) not included")  # fmt: skip
    emissions: dict[str, Any] = {
        "emissions": float(f"{grams:.3g}") if grams else 0.0,
        "source": f"{data['generator']}: {data['scope']['runs']} metered run{'s' if data['scope']['runs'] != 1 else ''} of project "
        f"{data['scope'].get('project')!s}, every sweep, failed and redundant run included; {included}; "
        f"{_measured_text(methods)}{_excluded_text(data['scope'].get('excluded', []))}",
    }
    if training_type is not None:
        emissions["training_type"] = training_type
    emissions["geographical_location"] = location
    emissions["hardware_used"] = ", ".join(hardware) or "unknown"
    card = ModelCardData(co2_eq_emissions=emissions)
    text = card.to_yaml()
    import yaml

    if yaml.safe_load(text) != card.to_dict():
        # a name holding a character YAML reads as a line break (NEL, U+2028, U+2029) would come back
        # as a space: every character outside ASCII escaped instead, which reads back exactly
        text = yaml.safe_dump(card.to_dict(), sort_keys=False, allow_unicode=False, width=10**6).strip()
    return "---\n" + text + "\n---\n"


def _excluded_text(excluded: list[dict[str, Any]]) -> str:
    if not excluded:
        return ""
    ids = ", ".join(str(e["id"]) for e in excluded[:10]) + (", ..." if len(excluded) > 10 else "")
    return f"; {len(excluded)} run{'s' if len(excluded) != 1 else ''} left out for implausible figures (ids {ids})"


def _measured_text(methods: dict[str, Any]) -> str:
    measured = methods.get("measured_share")
    if measured is None:
        return "no energy recorded"
    return f"{percent_text(measured)} of the energy measured by sensors, the rest estimated"


# -- jinja2 ------------------------------------------------------------------------------------


class Raw(str):
    """Text already in the format's markup (a template's own emphasis, the bibliography): printed as is."""


@functools.cache
def _environment(fmt: str):
    import jinja2

    if fmt == "md":
        escape = markdown_escape
    else:

        def escape(value: Any) -> str:
            return latex_typeset(latex_escape(value))

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
        finalize=lambda value: "" if value is None else value if isinstance(value, Raw) else escape(value),
        undefined=jinja2.StrictUndefined,  # a missing fact is a bug, not a blank in a paper
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        **options,
    )
    env.filters.update(
        energy=energy_text, mass=emissions_text,
        energy_as=lambda joules, like: text_like(joules, like, "energy"),
        mass_as=lambda grams, like: text_like(grams, like, "emissions"), pct=percent_text, ratio=ratio_text, water=water_text,
        duration=duration_text, num=number_text, span=_span, power=power_text,
        cell=lambda value, limit=CELL_CHARACTERS: Raw(latex_typeset(latex_cell(value, limit), names=True)),
        prose=lambda value, limit=300: Raw(latex_typeset(latex_prose(value, limit), names=True)),
        g=lambda grams: emissions_text(grams).replace(" CO2e", ""),
        nounit=lambda text: str(text).replace(" CO2e", ""),
    )
    env.globals["strong"] = (
        (lambda value: Raw(f"**{escape(value)}**")) if fmt == "md" else (lambda value: Raw(f"\\textbf{{{escape(value)}}}"))
    )
    return env


def _span(ranged: dict[str, float], kind: str = "emissions") -> str:
    """The range of a ``{"value", "low", "high"}`` figure, in its value's unit: ``3.4–4.9 kg CO2e``."""
    return span_text(ranged["value"], ranged["low"], ranged["high"], kind)

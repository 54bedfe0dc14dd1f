"""Paper-ready environmental impact statements from the registry.

::

    from notebook_carbon.statements import impact_statement

    print(impact_statement(project="vision", format="md"))            # Markdown, for a README or appendix
    impact_statement(project="vision", format="latex")                # a LaTeX document (pdflatex)
    impact_statement(project="vision", format="latex-fragment")       # the same, to \\input in a paper
    impact_statement(project="vision", format="bib")                  # its sources, as BibTeX
    impact_statement(project="vision", format="checklist")            # NeurIPS and ACL compute answers
    impact_statement(project="vision", format="json")                 # the facts (schema/statement.schema.json)
    impact_statement(project="vision", format="model-card")           # Hugging Face co2_eq_emissions

Every statement covers the whole development of the selected runs — every sweep, failed and
redundant run — with how each figure was obtained, its range, embodied emissions and water, the
development overhead, a per-sweep table and the SCI per run; other grids and an everyday
equivalent when asked for.
``build`` computes the facts once; ``render`` lays them out; ``escape`` keeps user text text.
"""

from __future__ import annotations

import datetime
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from .render import FORMATS, TRAINING_TYPES

SCHEMA_PATH = Path(__file__).with_name("schema") / "statement.schema.json"
"""The JSON schema of ``format="json"`` statements (draft 2020-12)."""

COLUMNS = (
    "pue", "duration_s", "gpu_count", "attribution", "intensity_region", "intensity_g_per_kwh", "intensity_source",
    "energy_low_factor", "energy_high_factor",
)
"""What a statement of a frame of runs (``analysis.runs``: the dashboard's) needs besides ``analysis``'s
core columns (not params, notes, source); a statement of a registry reads none of its runs."""

__all__ = ["FORMATS", "SCHEMA_PATH", "TRAINING_TYPES", "impact_statement", "statement_facts"]


def statement_facts(
    registry: Any = None,
    *,
    project: str | None = None,
    notebook: str | None = None,
    sweep: str | None = None,
    tags: str | Iterable[str] | None = None,
    since: Any = None,
    until: Any = None,
    regions: Sequence[str] = (),
    equivalents: bool = False,
    settings: Any = None,
    now: datetime.datetime | None = None,
    disclose: bool = True,
) -> dict[str, Any]:
    """The facts of the statement of ``project``'s runs (default: the settings' project), as a
    JSON-ready dict: what ``format="json"`` writes. Filters as ``analysis.runs``. The figures are
    the registry's (``Registry.figures``): summed by the database, not from a frame of every run.
    ``regions``: other grids to compare with (none unless named); ``equivalents``: also say what
    the emissions equal in everyday terms (a distance driven by car). ``disclose=False`` leaves out
    what the runs' notes and rows say beyond their sums (``disclosure.read_disclosure``: two passes
    over every run), for a reader of the totals alone: the embodied figure's range is then its
    current factor's; it also leaves out ``tradeoffs``, what each result's metric says
    (``analysis.tradeoffs``), given for a scope of whole sweeps (no notebook, tag or time cut)."""
    from ..analysis.filters import opened, scope_of
    from ..analysis.tradeoffs import sweep_tradeoffs
    from ..settings import resolve
    from .build import statement_data
    from .disclosure import read_disclosure
    from .jobs import read_jobs

    settings = settings or resolve()
    project = project or settings.project
    selected = scope_of(project=project, notebook=notebook, sweep=sweep, tags=tags, since=since, until=until)
    del selected["project"]
    with opened(registry if registry is not None else settings.registry_location()) as reg:
        found = reg.figures(project, **selected)
        jobs = read_jobs(reg, project, **selected)
        disclosed = read_disclosure(reg, project, **selected) if disclose else None
        # was each result worth its energy: for the project's results (a sweep's alone, given one)
        whole = all(not value for key, value in selected.items() if key != "sweep")
        tradeoffs = [t for t in sweep_tradeoffs(reg, project) if selected["sweep"] in (None, t["sweep"], t["label"])
                     ] if whole and disclose else []  # fmt: skip
    scope = {
        "project": project,
        "notebook": notebook,
        "sweep": sweep,
        "tags": sorted([tags] if isinstance(tags, str) else tags or []),
        "since": _when(since),
        "until": _when(until),
    }
    facts = statement_data(found, scope=scope, settings=settings, regions=regions, now=now, jobs=jobs,
                           disclosed=disclosed, equivalents=equivalents)
    facts["tradeoffs"] = tradeoffs
    return facts


def impact_statement(
    registry: Any = None,
    *,
    format: str = "md",
    training_type: str | None = None,
    output: str | os.PathLike[str] | None = None,
    include_embodied: bool = False,
    functional_unit: str | None = None,
    units: float | None = None,
    sci_values: str | None = None,
    sci_rationale: str | None = None,
    **selection: Any,
) -> str:
    """The statement of a project's runs in ``format`` (one of ``FORMATS``); also written to
    ``output`` if given. ``selection``: the keyword arguments of ``statement_facts``.
    ``training_type`` (the model card's, written only when given) and ``include_embodied``: see
    ``render.model_card``; ``functional_unit``, ``units``, ``sci_values`` and ``sci_rationale`` (SCI for
    AI's): ``sci.sci_for_ai``."""
    from .render import render

    if format not in FORMATS:
        raise ConfigError(f"unknown statement format {format!r}; choose one of {', '.join(FORMATS)}")
    if training_type is not None and training_type not in TRAINING_TYPES:
        raise ConfigError(f"training type {training_type!r}: choose one of {', '.join(TRAINING_TYPES)}")
    text = render(statement_facts(registry, **selection), format, training_type=training_type,
                  include_embodied=include_embodied, functional_unit=functional_unit, units=units,
                  sci_values=sci_values, sci_rationale=sci_rationale)  # fmt: skip
    if output is not None:
        Path(output).write_text(text, encoding="utf-8")
    return text


def _when(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, (int, float)):
        return datetime.datetime.fromtimestamp(value, datetime.timezone.utc).isoformat()
    if isinstance(value, (datetime.date, datetime.datetime)):
        return value.isoformat()
    return str(value)

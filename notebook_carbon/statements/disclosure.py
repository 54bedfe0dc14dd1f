"""What a reviewer needs besides the figures: each range's basis and whether it is cited or assumed,
where the CPU's TDP came from, the system boundary, each grid's intensity convention, the water
factor and which runs were never checked for repeats.

``read_disclosure`` reads the two things a statement's totals do not hold (a few queries over the
scope's runs: the TDP notes of the runs whose CPU was estimated, and how many runs were recorded
outside a notebook cell, by ``track()`` or an integration, where no repeat is ever looked for);
``disclosure_fact`` turns them and the statement's methods into ``methods.disclosure``.
"""

from __future__ import annotations

import dataclasses
import json
import re
from typing import Any

from sqlalchemy import text

from ..impact.footprint import J_PER_KWH
from ..impact.uncertainty import GPU_UPDATE_S, UNATTRIBUTED_RANGE, method_range
from ..registry.frames import Scope
from ..registry.totals import plausible
from ..units import number_text

__all__ = ["BOUNDARY", "Disclosed", "convention", "disclosure_fact", "read_disclosure"]

SHORT_WINDOWS = (
    "a GPU figure from a window shorter than ten updates of its reading (1 s for NVML's energy "
    "counter, 10 s for its power readings) may miss or add up to one update's energy at each edge, so "
    "its range is widened by twice the update period over the window's length, an assumption"
)
"""Why a short run's GPU range is wider than its method's (``uncertainty.short_window_range``)."""

NOTES_SHOWN = 5
"""Distinct TDP sentences stated; the JSON says how many more."""

BOUNDARY = {
    "included": [
        "the energy of the GPUs, CPU packages and memory the runs used, as metered or estimated",
        "the data centre's overhead through the PUE",
        "the hardware's manufacturing emissions, amortised over its lifetime",
    ],
    "excluded": [
        "power-supply and voltage-regulator losses inside the machine (a wall meter would count them)",
        "storage, network and other machines (data loading, file servers, switches)",
        "the devices' draw while no run was metered (idle time between cells)",
        "the work done to develop outside metered cells and scripts",
    ],
}
"""The system boundary of every figure: what it includes and what it leaves out."""

_CONVENTIONS = (  # (prefix of the source, convention): the first match wins
    ("Ember", "life-cycle emissions (CO2e) of the country's generation mix"),
    ("US ", "emissions at the power plants (combustion only) of the state's generation, eGRID output rate"),
    ("Canada", "fossil-fuel combustion only (hydro, nuclear, wind, solar counted as zero)"),
    ("China", "CO2 only, of the province's generation"),
    ("ENTSO-E", "the zone's generation mix times codecarbon's per-source emission factors"),
    ("Google", "the grid's average intensity where the region is located, as Google publishes it"),
    ("IEA", "the world average of generation emissions"),
)


def convention(source: str | None) -> str:
    """How the intensity of a grid with ``source`` counts emissions, in words; a user's own figure
    (no bundled source matched) says it is the user's."""
    found = str(source or "")
    for prefix, words in _CONVENTIONS:
        if found.startswith(prefix) or f"; {prefix}" in found:
            return words
    if "location-based" in found:
        return "the grid where the cloud region is located"
    return "a figure given by the user, whose convention was not recorded"


@dataclasses.dataclass(frozen=True)
class Disclosed:
    """What a statement reads besides its figures (``read_disclosure``)."""

    tdp_notes: tuple[str, ...] = ()
    """Distinct sentences saying where an estimated CPU's TDP came from, at most ``NOTES_SHOWN``."""
    tdp_notes_left_out: int = 0
    unchecked_runs: int = 0
    """Runs not recorded by a notebook cell (``track()``, integrations): never checked for repeats."""
    embodied_notes: tuple[str, ...] = ()
    """Distinct lines saying how runs' embodied emissions were obtained (factor, lifespan, resource
    share and the rule that found it), at most ``NOTES_SHOWN``."""
    embodied_notes_left_out: int = 0
    wue_recorded: tuple[float, ...] = ()
    """The distinct WUEs (L/kWh) the runs' water was recorded with: water over IT energy, 4 digits."""
    embodied_recorded: tuple[tuple[Any, float], ...] = ()
    """``(RecordedEmbodied, grams)``: the embodied emissions recorded with the runs, by the factor
    their notes name (``session.figures.parse_embodied_note``), for ``tally.figures``."""
    wue_sources: tuple[tuple[float, str | None], ...] = ()
    """``(WUE, source)`` as the runs' water notes give them (``session.figures.water_note``)."""
    short_gpu_runs: int = 0
    """Runs whose GPU figure came from a window under 10 of its sensor's update periods, its range
    widened for it (``uncertainty.short_window_range``)."""


def read_disclosure(registry: Any, project: str, **selected: Any) -> Disclosed:
    """The ``Disclosed`` of the plausible runs of ``project`` in ``selected``: two passes over
    the scope's runs (each reads every run's row, so they are as few as can be): the counts and
    the range of the WUEs recorded, then the runs' distinct notes with the embodied emissions
    recorded under each; a third, for the distinct WUEs, only where they differ."""
    scope = Scope(project, **selected)
    wue = f"CASE WHEN runs.water_l IS NOT NULL AND runs.energy_j > 0 THEN runs.water_l * {J_PER_KWH!r} / runs.energy_j END"
    short = " OR ".join(f"(runs.gpu_method LIKE '%{method}%' AND runs.duration_s < {10 * period!r})"
                        for method, period in GPU_UPDATE_S.items())  # fmt: skip
    with registry.read(f"reading how the runs of project {project!r} were estimated") as conn:
        where, params = scope.where(conn.dialect.name)
        runs_in = f"{where} AND {plausible('runs')}"

        def rows(sql: str) -> list[Any]:
            return conn.execute(text(sql).bindparams(**params)).all()

        ((unchecked, short_gpu, low, high),) = rows(
            "SELECT SUM(CASE WHEN runs.cell_source IS NULL THEN 1 ELSE 0 END), "
            f"SUM(CASE WHEN runs.duration_s > 0 AND ({short}) THEN 1 ELSE 0 END), MIN({wue}), MAX({wue}) "
            f"FROM runs WHERE {runs_in}"
        )  # fmt: skip
        # the runs' notes, with the embodied emissions recorded under each and whether a TDP was estimated
        noted = rows(
            "SELECT runs.notes, SUM(runs.embodied_g), "
            "MAX(CASE WHEN runs.cpu_method LIKE '%estimate-tdp%' THEN 1 ELSE 0 END) "
            f"FROM runs WHERE {runs_in} AND runs.notes IS NOT NULL AND runs.notes <> '[]' GROUP BY runs.notes"
        )  # fmt: skip
        wues = [(low,), (high,)]
        if low is not None and float(f"{low:.4g}") != float(f"{high:.4g}"):  # several: each of them
            wues = rows(f"SELECT DISTINCT {wue} FROM runs WHERE {runs_in} AND runs.water_l IS NOT NULL LIMIT 200")
    tdp = _distinct([(raw,) for raw, _, estimated in noted if estimated], _tdp_part)
    lines = _distinct(noted, lambda line: line.removeprefix("embodied: ") if line.startswith("embodied: ") else None)
    recorded = sorted({float(f"{value:.4g}") for (value,) in wues if value is not None})
    return Disclosed(
        tuple(tdp[:NOTES_SHOWN]), max(len(tdp) - NOTES_SHOWN, 0), int(unchecked or 0),
        tuple(lines[:NOTES_SHOWN]), max(len(lines) - NOTES_SHOWN, 0), tuple(recorded),
        *_recorded([(raw, grams) for raw, grams, _ in noted]), int(short_gpu or 0),
    )  # fmt: skip


def _recorded(rows: list[Any]) -> tuple[tuple, tuple]:
    """The embodied grams recorded under each factor the notes name, and the water notes' WUEs and
    sources, from ``(notes, SUM(embodied_g))`` rows."""
    from ..session.figures import parse_embodied_note, parse_water_note

    by_factor: dict[Any, float] = {}
    sources: set[tuple[float, str | None]] = set()
    for raw, grams in rows:
        for line in _listed(raw):
            factor, water = parse_embodied_note(line), parse_water_note(line)
            if factor is not None and grams is not None:
                by_factor[factor] = by_factor.get(factor, 0.0) + float(grams)
            if water is not None:
                sources.add((float(f"{water[0]:.4g}"), water[1]))
    return tuple(by_factor.items()), tuple(sorted(sources, key=lambda s: (s[0], s[1] or "")))


def _distinct(notes: list[Any], wanted: Any) -> list[str]:
    """The distinct parts of runs' ``notes`` that ``wanted`` picks out of a line (None: not this
    line), as a paper may print them."""
    found: list[str] = []
    for raw, *_ in notes:
        for line in _listed(raw):
            part = wanted(line)
            if part is not None and _public(part) not in found:
                found.append(_public(part))
    return found


def _listed(raw: Any) -> list[str]:
    try:
        value = json.loads(raw) if isinstance(raw, str) else raw
    except ValueError:
        return []
    return [str(v) for v in value] if isinstance(value, list) else []


def _tdp_part(line: str) -> str | None:
    """Where a CPU's TDP came from, out of a note line: from its ``TDP ...`` or ``fallback TDP, a
    guess: ...`` sentence on (a meter's reason before it, "cpu: no powercap interface ...", is for
    the tool's user); None for a line that says nothing of a TDP."""
    found = re.search(r"(?:^|; )((?:fallback )?TDP[ ,].*)$", line)
    return None if found is None else found[1]


def _public(sentence: str) -> str:
    """A note as a paper may print it: without the advice meant for the tool's user."""
    return re.sub(r"\s*\((?:set|see) [^)]*\)", "", sentence).strip()


def disclosure_fact(methods: dict[str, Any], disclosed: Disclosed | None, *, runs: int,
                    wue_l_per_kwh: float | None, wue_source: str | None = None) -> dict[str, Any]:  # fmt: skip
    """``methods.disclosure``: the ranges' bases, the TDP's source (and whether it was a fallback
    guess), how embodied emissions were obtained, the boundary, the grids' conventions, the water
    factor and the repeats' check, from the statement's ``methods``. ``wue_l_per_kwh`` and
    ``wue_source`` are the current settings: the WUE of runs recorded without water, and the source
    of a recorded WUE equal to the setting."""
    disclosed = disclosed or Disclosed()
    ranges = []
    for c in methods["components"]:
        r = UNATTRIBUTED_RANGE if c["method"] == "unattributed" else method_range(c["method"])
        ranges.append({"component": c["component"], "method": c["method"], "label": r.label,
                       "basis": r.basis, **_cited(r)})  # fmt: skip
    grids = [{"region": g["region"], "g_per_kwh": g["g_per_kwh"], "source": g["source"], "year": g["year"],
              "convention": convention(g["source"])} for g in methods["intensity"]["grids"]]  # fmt: skip
    checked = runs - disclosed.unchecked_runs
    return {
        "ranges": ranges,
        "tdp": {"notes": list(disclosed.tdp_notes), "notes_left_out": disclosed.tdp_notes_left_out,
                "fallback": any(note.startswith("fallback TDP") for note in disclosed.tdp_notes)},
        "embodied": {"notes": list(disclosed.embodied_notes), "notes_left_out": disclosed.embodied_notes_left_out},
        "boundary": BOUNDARY,
        "grids": grids,
        "wue": _wue(disclosed.wue_recorded, wue_l_per_kwh, wue_source, disclosed.wue_sources),
        "repeats": {"checked_runs": max(checked, 0), "unchecked_runs": disclosed.unchecked_runs},
        "short_windows": {"runs": disclosed.short_gpu_runs, "basis": SHORT_WINDOWS},
    }  # fmt: skip


def _wue(recorded: tuple[float, ...], setting: float | None, source: str | None,
         noted: tuple[tuple[float, str | None], ...] = ()) -> dict[str, Any]:  # fmt: skip
    """The water factor: the WUEs the runs' water was recorded with, else the current setting (with
    which a statement computes water for runs recorded without it); the source of each, as the
    runs' water notes give it (``noted``), else ``source`` (the setting's) for a WUE equal to the
    setting, else "not recorded". ``source`` says them all: one, or each WUE's after it."""
    if not recorded:
        if setting is None:
            return {"l_per_kwh": None, "recorded": [], "source": None}
        return {"l_per_kwh": setting, "recorded": [], "source": source or "its source was not given"}
    by_value = {}
    for wue in recorded:
        given = {s for value, s in noted if value == wue}
        if len(given) == 1 and None not in given:
            by_value[wue] = given.pop()
        elif given == {None}:
            by_value[wue] = "its source was not given"
        elif not given and source and setting is not None and wue == float(f"{setting:.4g}"):
            by_value[wue] = source
        else:
            by_value[wue] = "as set when the runs ran; its source was not recorded"
    if len(by_value) == 1:
        said = next(iter(by_value.values()))
    else:
        said = "; ".join(f"{number_text(wue)} L/kWh: {text}" for wue, text in by_value.items())
    return {"l_per_kwh": recorded[0] if len(recorded) == 1 else None, "recorded": list(recorded), "source": said}


def _cited(r: Any) -> dict[str, Any]:
    """Whether a range is cited or assumed, with its source: the range's own ``cited`` and
    ``source`` where the uncertainty model gives them, else read from its basis."""
    provenance = getattr(r, "provenance", None)
    if provenance is None:  # an uncertainty model that does not say: read it from the basis
        basis = r.basis.lower()
        assumed = "assumption" in basis or "by analogy" in basis or "taken as" in basis
        provenance = "exact" if r.low == r.high == 1 else "assumed" if assumed else "cited"
    return {"cited": provenance == "cited", "provenance": provenance, "source": getattr(r, "source", None)}


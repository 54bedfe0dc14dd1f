"""The dashboard's HTML, from a ``figures.Snapshot``: pure text, every piece of user text escaped.

Run names, sweep labels, parameter names and values, notebook paths and the project are user
text: each goes through ``html.escape`` (quotes included, so it is safe in an attribute too),
its control and bidirectional formatting characters made spaces, before it is put in markup, and nothing else reaches the markup unescaped but the chart SVG, which
Vega writes with its text escaped. Figures are formatted by the one display scheme (``units``), as
a statement formats them, so the dashboard and a statement print the same strings.

Every element a test or a stylesheet needs has a stable class (``nc-...``); figures also carry
their raw value in ``data-nc-value`` (and ``data-nc-low``/``data-nc-high`` for a range), in the
unit of their name: J, g CO2e, L, or a plain count or ratio.
"""

from __future__ import annotations

import html
from collections import Counter
from collections.abc import Sequence
from typing import Any

import pandas as pd

from ..statements.escape import plain_text
from ..units import emissions_text, energy_text, percent_text, ratio_text, span_text, water_text
from .figures import RunRef, Scope, Snapshot, SweepRow

# vl-convert lays text out with Liberation Sans (metric-compatible with Arial and Helvetica): the
# same metrics in the browser keep axis labels inside the box Vega measured for them.
STYLE = """<style>
.nc-dashboard .nc-table { border-collapse: collapse; font-variant-numeric: tabular-nums; margin: 4px 0 10px; }
.nc-dashboard .nc-table th, .nc-dashboard .nc-table td {
  padding: 2px 10px; border-bottom: 1px solid var(--jp-border-color2, #ddd); text-align: right;
  vertical-align: top; }
.nc-dashboard .nc-table th:first-child, .nc-dashboard .nc-table td:first-child { text-align: left; }
.nc-dashboard .nc-range, .nc-dashboard .nc-note { color: var(--jp-ui-font-color2, #666); font-size: 90%; }
.nc-dashboard .nc-chart svg { max-width: 100%; height: auto; overflow: visible; }
.nc-dashboard .nc-chart svg text { font-family: "Liberation Sans", Arial, Helvetica, sans-serif; }
.nc-dashboard .nc-sweep-varying { max-width: 32em; text-align: left !important; font-size: 90%; }
.nc-dashboard h4 { margin: 8px 0 2px; }
.nc-dashboard { container-type: inline-size; }
.nc-dashboard .widget-html-content { line-height: 1.35; }
.nc-dashboard td[data-nc-value], .nc-dashboard .nc-latest-when { white-space: nowrap; }
.nc-dashboard td .nc-range { white-space: normal; }
.nc-dashboard .nc-latest-run:not(.nc-status-ok) .nc-latest-name { color: var(--jp-error-color1, #c62828); }
.nc-dashboard .nc-header, .nc-dashboard .nc-note { overflow-wrap: anywhere; }
/* a side panel (about 250 px) or a narrow window: one column, each scope's figure on a line of its own */
@container (max-width: 540px) {
  .nc-dashboard .nc-totals .nc-table, .nc-dashboard .nc-totals .nc-table tbody { display: block; }
  .nc-dashboard .nc-totals .nc-table tr:first-child { display: none; }
  .nc-dashboard .nc-totals .nc-table tr { display: block; padding: 3px 0;
    border-bottom: 1px solid var(--jp-border-color2, #ddd); }
  .nc-dashboard .nc-totals .nc-table td { display: block; border: none; padding: 0; }
  .nc-dashboard .nc-totals .nc-table td:first-child { font-weight: bold; }
  .nc-dashboard .nc-totals .nc-table td[data-nc-scope]::before { content: attr(data-nc-scope);
    float: left; margin-right: 8px; color: var(--jp-ui-font-color2, #666); }
  .nc-dashboard .nc-table .nc-wide { display: none; }
  .nc-dashboard .nc-table th, .nc-dashboard .nc-table td { padding: 2px 4px; }
  .nc-dashboard .nc-sweep-label, .nc-dashboard .nc-redundant td { overflow-wrap: anywhere; }
}
</style>"""

_FIGURES = ("runs", "energy", "emissions", "embodied", "total", "water", "overhead")
_LABELS = {
    "runs": "Runs",
    "energy": "IT energy",
    "emissions": "Operational emissions",
    "embodied": "Embodied emissions",
    "total": "Total emissions",
    "water": "Water",
    "overhead": "Development overhead",
}


def e(text: Any) -> str:
    """``text`` as HTML text or attribute value: ``<img src=x>`` shows as itself, and control and
    bidirectional formatting characters as spaces (``statements.escape.plain_text``)."""
    return html.escape(plain_text(text), quote=True)


def static(*parts: str) -> str:
    """The dashboard's parts (each already escaped HTML) as one static snapshot, for a reader
    without the kernel: said to be one, with the time it was read."""
    note = ('<div class="nc-note nc-static-note">a snapshot of the notebook-carbon dashboard, as last '
            "refreshed; open the notebook with its kernel running for the live one</div>")  # fmt: skip
    return '<div class="nc-dashboard nc-static">' + "".join(parts) + note + "</div>"


def header(snapshot: Snapshot, status: str | None = None) -> str:
    """The title line: project, notebook, registry, when the figures were read, and ``status``."""
    notebook = snapshot.notebook if snapshot.notebook is not None else "none (not run from a notebook)"
    read = snapshot.read_at.strftime("%H:%M:%S UTC")
    parts = [
        STYLE,
        f'<div class="nc-header" data-nc-project="{e(snapshot.project)}">',
        f'<b>notebook-carbon</b> · project <span class="nc-project">{e(snapshot.project)}</span>',
        f' · notebook <span class="nc-notebook">{e(notebook)}</span>',
        f'<div class="nc-note">registry <span class="nc-registry">{e(snapshot.registry)}</span>',
        f' · updated <span class="nc-read-at" data-nc-value="{e(snapshot.read_at.isoformat())}">',
        f"{e(read)}</span>",
        "</div>",
    ]
    if status:
        parts.append(f'<div class="nc-status">{e(status)}</div>')
    parts.append("</div>")
    return "".join(parts)


def totals(snapshot: Snapshot) -> str:
    """The totals of the three scopes, one column each, one row per figure."""
    head = "".join(f'<th class="nc-scope-{e(s.name)}">{e(s.title)}</th>' for s in snapshot.scopes)
    rows = [f"<tr><th></th>{head}</tr>"]
    for figure in _FIGURES:
        cells = "".join(_total_cell(scope, figure) for scope in snapshot.scopes)
        rows.append(f"<tr><td>{e(_LABELS[figure])}</td>{cells}</tr>")
    return (
        '<div class="nc-totals"><h4>Totals</h4><table class="nc-table">' + "".join(rows) + "</table>"
        '<div class="nc-note">this session: the runs this kernel recorded; ranges from each '
        "component's measurement method; overhead: the energy of all runs over that of the selected results</div>"
        + _left_out(snapshot) + "</div>"
    )


def _left_out(snapshot: Snapshot) -> str:
    """The runs the figures leave out for implausible figures (``analysis.excluded``), if any."""
    found = (snapshot.scope("project").facts or {}).get("scope", {}).get("excluded", [])
    if not found:
        return ""
    named = "; ".join(f"run {x['id']}{' ' + x['name'] if x['name'] else ''}: {x['reason']}" for x in found[:5])
    more = f"; and {len(found) - 5:,} more" if len(found) > 5 else ""
    return (
        f'<div class="nc-note nc-excluded" data-nc-count="{len(found)}">{len(found):,} '
        f"run{'s' if len(found) != 1 else ''} left out of these figures: {e(named)}{more}</div>"
    )


def _total_cell(scope: Scope, figure: str) -> str:
    """One scope's figure, with the scope's title in ``data-nc-scope`` (a narrow layout shows it)."""
    cell = _scope_cell(scope, figure)
    return cell.replace("<td ", f'<td data-nc-scope="{e(scope.title)}" ', 1)


def _scope_cell(scope: Scope, figure: str) -> str:
    classes = f"nc-total nc-total-{scope.name}-{figure}"
    if scope.facts is None:
        return f'<td class="{classes} nc-missing">{e(scope.missing or "n/a")}</td>'
    totals, development = scope.facts["totals"], scope.facts["development"]
    if figure == "runs":
        return _cell(classes, f"{totals['runs']:,}", totals["runs"])
    if figure == "energy":
        return _ranged_cell(classes, totals["energy_j"], energy_text, "energy")
    if figure == "emissions":
        return _ranged_cell(classes, totals["emissions_g"], emissions_text, "emissions")
    if figure == "total":
        return _ranged_cell(classes, totals["total_g"], emissions_text, "emissions")
    if figure == "embodied":
        embodied, total = totals["embodied_g"]["value"], totals["total_g"]["value"]
        share = embodied / total if total else None
        note = (
            f'<div class="nc-range nc-share" data-nc-value="{_raw(share)}">{e(percent_text(share))} of the total'
        )
        note += "</div>"
        return _cell(classes, emissions_text(embodied), embodied, extra=note)
    if figure == "water":
        water = totals["water_l"]
        if water is None:  # no run recorded water, and no WUE is set to compute it
            return _cell(classes, "n/a (set a WUE)" if totals["runs"] else "n/a", None)
        return _cell(classes, water_text(water["value"]), water["value"])
    ratio = development["ratio"]
    note = (
        f'<div class="nc-range">failed {e(percent_text(development["failed_share"]))}, '
        f"redundant {e(percent_text(development['redundant_share']))} of the energy</div>"
    )
    return _cell(classes, ratio_text(ratio), ratio, extra=note)


def _cell(classes: str, shown: str, value: Any, *, extra: str = "", attributes: str = "") -> str:
    return f'<td class="{classes}" data-nc-value="{_raw(value)}"{attributes}>{e(shown)}{extra}</td>'


def _ranged_cell(classes: str, ranged: dict[str, float], show, kind: str) -> str:
    if ranged.get("lower_bound"):  # a factor its source calls a lower bound: no upper end to show
        shown, high = f"at least {show(ranged['low'])}", None
    else:
        shown, high = span_text(ranged["value"], ranged["low"], ranged["high"], kind), ranged["high"]
    span = f'<div class="nc-range">{e(shown)}</div>'
    limits = f' data-nc-low="{_raw(ranged["low"])}" data-nc-high="{_raw(high)}"'
    return _cell(classes, show(ranged["value"]), ranged["value"], extra=span, attributes=limits)


def _raw(value: Any) -> str:
    """A figure's value for a data attribute: ``repr`` of the float (exact), empty for None."""
    return "" if value is None else e(repr(float(value)) if not isinstance(value, int) else str(value))


def sweeps(rows: Sequence[SweepRow], total: int) -> str:
    """The sweep table, the costliest first; how many more there are, if any."""
    if not rows:
        return '<div class="nc-sweeps"><h4>Sweeps</h4><div class="nc-note">no sweeps yet</div></div>'
    head = (
        '<tr><th>sweep</th><th>runs</th><th class="nc-wide">varying</th><th>energy</th><th class="nc-wide">CO2e</th>'
        '<th>overhead</th><th class="nc-wide">failed</th><th class="nc-wide">redundant</th></tr>'
    )
    repeated = {label for label, count in Counter(row.label for row in rows).items() if count > 1}
    body = "".join(_sweep_row(row, row.label in repeated) for row in rows)
    more = total - len(rows)
    note = (
        f'<div class="nc-note nc-more">{more:,} more sweep{"s" if more > 1 else ""} '
        "(notebook-carbon summary and %carbon sweeps list them all)</div>"
        if more
        else ""
    )
    return (
        f'<div class="nc-sweeps" data-nc-count="{total}"><h4>Sweeps</h4>'
        f'<table class="nc-table">{head}{body}</table>{note}</div>'
    )


def _sweep_row(row: SweepRow, ambiguous: bool) -> str:
    """One sweep; an automatic sweep whose label another shares also shows its key's start, as
    the chart names it."""
    varying = "; ".join(f"{name}: {_values(values)}" for name, values in row.varying.items()) or "–"
    label = f"{row.label} [{row.key[:13]}]" if ambiguous else row.label
    return "".join(
        [
            f'<tr class="nc-sweep" data-nc-sweep="{e(row.key)}">',
            f'<td class="nc-sweep-label" title="{e(row.key)}">{e(label)}</td>',
            _cell("nc-sweep-runs", f"{row.runs:,}", row.runs),
            f'<td class="nc-sweep-varying nc-wide">{e(varying)}</td>',
            _cell("nc-sweep-energy", energy_text(row.energy_j), row.energy_j),
            _cell("nc-sweep-emissions nc-wide", emissions_text(row.emissions_g), row.emissions_g),
            _cell("nc-sweep-overhead", ratio_text(row.overhead_ratio), row.overhead_ratio),
            _cell(
                "nc-sweep-failed nc-wide",
                f"{row.failed_runs:,} ({energy_text(row.failed_energy_j)})",
                row.failed_energy_j,
            ),
            _cell(
                "nc-sweep-redundant nc-wide",
                f"{row.redundant_runs:,} ({energy_text(row.redundant_energy_j)})",
                row.redundant_energy_j,
            ),
            "</tr>",
        ]
    )


def _values(values: tuple[Any, ...]) -> str:
    """A parameter's distinct values as ``%carbon sweeps`` shows them: the first four, then how many."""
    shown = ", ".join(repr(v) for v in values[:4])
    return f"{shown}, … ({len(values)} values)" if len(values) > 4 else shown


def tradeoffs(fronts: Sequence[tuple[dict[str, Any], str]], failed: str | None = None) -> str:
    """Was each result worth its energy: for each result sweep whose runs logged a metric
    (``analysis.tradeoffs``), the line ``%carbon sweeps`` prints and the SVG of its runs' metric
    against energy; else what to do to see it (or why it could not be read: ``failed``)."""
    head = '<div class="nc-tradeoffs" data-nc-count="{}"><h4>Results against energy</h4>'
    if failed or not fronts:
        note = failed or ("no result sweep logged a metric yet: %carbon log acc=0.93 in or after a metered "
                          "cell (or run.log in a track() block) records one, then each result's best run is "
                          "weighed against the cheapest run about as good")  # fmt: skip
        return head.format(0) + f'<div class="nc-note">{e(note)}</div></div>'
    from ..analysis.tradeoffs import describe

    items = "".join(
        f'<div class="nc-tradeoff" data-nc-sweep="{e(found["sweep"])}" data-nc-metric="{e(found["metric"])}" '
        f'data-nc-selected="{found["selected"]["run_id"]}" data-nc-cheapest="{found["cheapest"]["run_id"]}" '
        f'data-nc-value="{_raw(found["energy_share"])}"><div class="nc-tradeoff-text">{e(describe(found))}</div>'
        + chart("pareto", svg, "") + "</div>"
        for found, svg in fronts
    )  # fmt: skip
    note = ('<div class="nc-note">the costliest results whose runs logged a metric; within: of the '
            "selected run's value; %carbon sweeps lists them all</div>")  # fmt: skip
    return head.format(len(fronts)) + items + note + "</div>"


def redundant(snapshot: Snapshot) -> str:
    """The latest redundant runs, each with the earlier run it repeats."""
    total = snapshot.redundant_total
    if not total:
        return (
            '<div class="nc-redundant" data-nc-count="0"><h4>Redundant runs</h4>'
            '<div class="nc-note">none: no run repeated an earlier identical one</div></div>'
        )
    rows = "".join(
        f'<tr class="nc-redundant-run" data-nc-run="{row.run.id}" data-nc-repeats="{row.repeats.id}">'
        f"<td>{_run_text(row.run)}</td>"
        + _cell("nc-redundant-energy", energy_text(row.energy_j), row.energy_j)
        + f'<td class="nc-repeats">repeats {_run_text(row.repeats)}</td></tr>'
        for row in snapshot.redundant
    )
    shown = len(snapshot.redundant)
    note = f'<div class="nc-note">the latest {shown:,} of {total:,}</div>' if shown < total else ""
    energy = snapshot.redundant_energy_j
    return (
        f'<div class="nc-redundant" data-nc-count="{total}" data-nc-value="{_raw(energy)}">'
        f"<h4>Redundant runs: {total:,}, {e(energy_text(energy))}</h4>"
        '<div class="nc-note">same code, inputs and parameters as an earlier run that finished ok</div>'
        '<table class="nc-table"><tr><th>run</th><th>energy</th><th>repeats</th></tr>'
        f"{rows}</table>{note}</div>"
    )


def latest(snapshot: Snapshot) -> str:
    """A page of the project's runs, newest first: run, sweep, status, energy, emissions, when."""
    if not snapshot.latest:
        return '<div class="nc-latest" data-nc-count="0"><h4>Latest runs</h4><div class="nc-note">no runs yet</div></div>'
    now = snapshot.read_at
    rows = "".join(
        f'<tr class="nc-latest-run nc-status-{e(row.status)}" data-nc-run="{row.run.id}" title="{e(row.status)}">'
        f'<td class="nc-latest-name">{e(f"run {row.run.id}" + (f" {row.run.name}" if row.run.name else ""))}</td>'
        f'<td class="nc-latest-sweep nc-wide">{e(row.sweep or "–")}</td>'
        f'<td class="nc-latest-status nc-wide">{e(row.status)}</td>'
        + _cell("nc-latest-energy", energy_text(row.energy_j), row.energy_j)
        + _cell("nc-latest-emissions nc-wide", emissions_text(row.emissions_g), row.emissions_g)
        + f'<td class="nc-latest-when" title="{e(_utc_text(row.run.started))}">{e(_ago(row.run.started, now))}</td></tr>'
        for row in snapshot.latest
    )  # fmt: skip
    first = snapshot.runs_offset + 1
    last = snapshot.runs_offset + len(snapshot.latest)
    return (
        f'<div class="nc-latest" data-nc-count="{snapshot.runs_total}" data-nc-offset="{snapshot.runs_offset}">'
        f"<h4>Latest runs: {first:,}\u2013{last:,} of {snapshot.runs_total:,}</h4>"
        '<table class="nc-table"><tr><th>run</th><th class="nc-wide">sweep</th><th class="nc-wide">status</th><th>energy</th>'
        f'<th class="nc-wide">CO2e</th><th>started</th></tr>{rows}</table></div>'
    )


def _ago(started: pd.Timestamp | None, now: Any) -> str:
    """How long before ``now`` a run started: ``12 s ago``, ``5 min ago``, ``3 h ago``, ``2 d ago``."""
    if started is None or pd.isna(started):
        return "–"
    seconds = max((pd.Timestamp(now) - started).total_seconds(), 0.0)
    for size, unit in ((86400, "d"), (3600, "h"), (60, "min")):
        if seconds >= size:
            return f"{int(seconds // size)} {unit} ago"
    return f"{int(seconds)} s ago"


def _utc_text(started: pd.Timestamp | None) -> str:
    return "" if started is None or pd.isna(started) else started.strftime("%Y-%m-%d %H:%M:%S UTC")


def _run_text(ref: RunRef) -> str:
    text = f"run {ref.id}"
    if ref.name:
        text += f" {ref.name}"
    if ref.started is not None and not pd.isna(ref.started):
        text += f", {ref.started.strftime('%Y-%m-%d %H:%M')} UTC"
    return f'<span class="nc-run" data-nc-run="{ref.id}">{e(text)}</span>'


def chart(kind: str, svg: str | None, empty: str) -> str:
    """A chart's SVG in its frame (``kind``: ``cumulative``, ``sweeps`` or ``pareto``), or ``empty`` as a note."""
    inner = svg if svg is not None else f'<div class="nc-note">{e(empty)}</div>'
    return f'<div class="nc-chart nc-chart-{kind}" data-nc-chart="{kind}">{inner}</div>'


def summary_line(snapshot: Snapshot | None) -> str:
    """One line for a text-only front end: the project's runs, energy and emissions."""
    if snapshot is None:
        return "notebook-carbon dashboard (not read yet)"
    facts = snapshot.scope("project").facts or {}
    totals = facts.get("totals", {})
    runs = totals.get("runs", 0)
    if not runs:
        return f"notebook-carbon dashboard: project {plain_text(snapshot.project)}, no runs yet"
    return (
        f"notebook-carbon dashboard: project {plain_text(snapshot.project)}, {runs:,} runs, "
        f"{energy_text(totals['energy_j']['value'])}, {emissions_text(totals['total_g']['value'])}"
    )

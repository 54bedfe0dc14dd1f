"""Charts of a registry's runs (altair), and how to save and show them without a network.

Each chart function takes a frame from ``analysis.runs`` (or a registry and a run) and returns an
``altair.Chart`` whose data is inline in its spec, never a URL or a file beside it, whatever data
transformer is enabled. ``save`` writes SVG, PNG or PDF with vl-convert (Vega in a bundled
JavaScript engine), refusing any external data request; ``to_svg`` and ``StaticChart`` give the
SVG for a notebook, where altair's default renderer would load Vega from a CDN and show nothing
offline (and JupyterLab 4's own Vega extension does not render Vega-Lite 6).

Text (run and sweep names) goes into the spec as data, never into markup or expressions; Vega
escapes it when it writes the SVG, so hostile names (``<img src=x onerror=...>``) come out as text.
Times are shown in UTC. An axis is in the unit its largest value is shown in by the one display
scheme (``units.unit_for``: mJ to kJ, then Wh to GWh; mg to t CO2e), converted here, at the edge.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

import altair as alt
import numpy as np
import pandas as pd

from .analysis import CATEGORIES, categorise
from .analysis.frame import opened
from .errors import ConfigError, NotebookCarbonError, RegistryError
from .units import unit_for

FORMATS = (".svg", ".png", ".pdf")
"""The file suffixes ``save`` writes."""

CATEGORY_COLOURS = ("#2b8a3e", "#c92a2a", "#e67700", "#868e96")
"""Colours of ``analysis.CATEGORIES`` (final, failed, redundant, other) in ``sweep_energy``."""

__all__ = [
    "CATEGORY_COLOURS",
    "FORMATS",
    "StaticChart",
    "accuracy_energy",
    "cumulative_emissions",
    "power_timeline",
    "save",
    "sweep_energy",
    "to_svg",
    "vega_lite_version",
]


# -- the charts -------------------------------------------------------------------------------


def cumulative_emissions(df: pd.DataFrame, *, by: str | None = None, max_points: int = 2000) -> alt.Chart:
    """Emissions (CO2e) summed over time, as a step line: each run counts at its start.

    ``by`` names a column of ``df`` (``project``, ``notebook``) to draw one line per value. Past
    ``max_points`` runs (per line) the line keeps the last run of each of ``max_points`` equal
    spans of time: the steps within a span merge, the totals stay exact.
    """
    if by is not None and by not in df:
        raise ConfigError(
            f"cumulative_emissions: by must be a column of the frame (project, notebook); got {by!r}"
        )
    order = np.lexsort((df.index.to_numpy(), df["started_at"].to_numpy()))
    frame = pd.DataFrame(
        {
            "t_ms": df["started_at"].to_numpy(dtype=float)[order] * 1000.0,
            "group": df[by].to_numpy(dtype=object)[order] if by else "all",
            "emissions_g": df["emissions_g"].fillna(0.0).to_numpy(dtype=float)[order],
        }
    )
    frame["group"] = frame["group"].map(lambda v: v if isinstance(v, str) else "(none)")
    frame["total_g"] = frame.groupby("group", sort=False)["emissions_g"].cumsum()
    frame = _thin_steps(frame, max_points)
    size, unit = unit_for("emissions", frame["total_g"].abs().max() if len(frame) else 0.0)
    values = [
        {"time": t, "group": g, "emissions": e / size}
        for t, g, e in zip(frame["t_ms"].tolist(), frame["group"].tolist(), frame["total_g"].tolist())
    ]
    encoding: dict[str, Any] = {
        "x": alt.X("time:T", title="run start (UTC)", scale=_time_scale(frame["t_ms"]),
                   axis=alt.Axis(format=_time_format(frame["t_ms"]), labelOverlap=True)),
        "y": alt.Y("emissions:Q", title=f"cumulative emissions ({unit})"),
        "tooltip": [alt.Tooltip("time:T", title="run start (UTC)", format="%Y-%m-%d %H:%M:%S"),
                    alt.Tooltip("emissions:Q", title=unit, format=".3~g")],
    }  # fmt: skip
    if by:
        encoding["color"] = alt.Color("group:N", title=by)
    return (
        alt.Chart(alt.Data(values=values))
        .mark_line(interpolate="step-after", point=len(values) <= 20)  # a few runs are points: one is not nothing
        .encode(**encoding)
        .properties(title="Cumulative emissions", width=480, height=240)
    )


MIN_SPAN_MS = 10 * 60 * 1000.0
"""The least time a chart's axis spans: runs within a few seconds are not drawn over milliseconds."""


def _time_scale(t_ms: pd.Series) -> alt.Scale:
    """UTC; widened around the runs to ``MIN_SPAN_MS`` when they are closer in time than that."""
    if not len(t_ms):
        return alt.Scale(type="utc")
    first, last = float(t_ms.min()), float(t_ms.max())
    pad = max(MIN_SPAN_MS - (last - first), 0.0) / 2
    return alt.Scale(type="utc", domain=[first - pad, last + pad], nice=False)


def _time_format(t_ms: pd.Series) -> str:
    """Hours and minutes within a day or two, else dates: never bare milliseconds (``.500``)."""
    span = float(t_ms.max() - t_ms.min()) if len(t_ms) else 0.0
    return "%H:%M" if span < 2 * 86400 * 1000 else "%Y-%m-%d"


def sweep_energy(df: pd.DataFrame, *, top: int = 20) -> alt.Chart:
    """Energy per sweep, as stacked bars split by ``analysis.categorise``: each run in exactly one of
    final (its sweep's selected run), failed, redundant, other, in that precedence.

    Runs in no sweep are left out. The ``top`` sweeps with the most energy get a bar each, most
    first; the rest share one last bar. A sweep is named by its label, with its project when the
    frame holds several, and its key where two sweeps would otherwise share a name.
    """
    if top < 1:
        raise ConfigError(f"sweep_energy: top must be at least 1; got {top!r}")
    swept = df[df["sweep_key"].notna()]
    frame = pd.DataFrame(
        {
            "project": swept["project"].to_numpy(dtype=object),
            "key": swept["sweep_key"].to_numpy(dtype=object),
            "label": swept["sweep_label"].to_numpy(dtype=object),
            "category": categorise(swept).to_numpy(dtype=object),
            "energy_j": swept["energy_j"].fillna(0.0).to_numpy(dtype=float),
        }
    )
    totals = (
        frame.groupby(["project", "key"], sort=False)["energy_j"]
        .sum()
        .sort_values(ascending=False, kind="stable")
    )
    names = _sweep_names(totals.index, frame, several_projects=frame["project"].nunique() > 1)
    shown = list(totals.index[:top])
    rest = len(totals) - len(shown)
    if rest:
        names.update({pair: f"{rest} other sweep{'s' if rest > 1 else ''}" for pair in totals.index[top:]})
    frame["sweep"] = [names[pair] for pair in zip(frame["project"], frame["key"])]
    parts = frame.groupby(["sweep", "category"], sort=False).agg(
        energy_j=("energy_j", "sum"), runs=("key", "size")
    )
    size, unit = unit_for("energy", totals.max() if len(totals) else 0.0)
    order = [names[pair] for pair in shown] + ([names[totals.index[top]]] if rest else [])
    values = [
        {
            "sweep": sweep,
            "category": category,
            "energy": energy / size,
            "runs": runs,
            "rank": CATEGORIES.index(category),
        }
        for (sweep, category), energy, runs in zip(
            parts.index, parts["energy_j"].tolist(), parts["runs"].tolist()
        )
    ]
    return (
        alt.Chart(alt.Data(values=values))
        .mark_bar()
        .encode(
            x=alt.X("energy:Q", title=f"energy ({unit})", stack="zero"),
            y=alt.Y("sweep:N", title=None, sort=order, axis=alt.Axis(labelLimit=320)),
            color=alt.Color(
                "category:N",
                title="runs",
                scale=alt.Scale(domain=list(CATEGORIES), range=list(CATEGORY_COLOURS)),
            ),
            order=alt.Order("rank:Q"),
            tooltip=[
                alt.Tooltip("sweep:N"),
                alt.Tooltip("category:N"),
                alt.Tooltip("runs:Q"),
                alt.Tooltip("energy:Q", title=unit, format=".3~g"),
            ],
        )
        .properties(title="Energy per sweep", width=420)
    )


def power_timeline(registry: Any, run: int | str, *, max_points: int = 2000) -> alt.Chart:
    """A run's power samples (W) over the seconds since it started, one line per component and device.

    ``registry`` is what ``analysis.runs`` takes (a ``Registry``, a location, or None); ``run`` the
    run's id or uid. A run without samples gives a chart that says so. Past ``max_points`` samples
    a line is averaged over ``max_points`` equal spans of time.
    """
    with opened(registry) as reg:
        found = reg.get_run(run)
        if found is None:
            raise RegistryError(f"there is no run {run!r} in registry {reg.where}")
        samples = reg.samples(found["uid"])
    frame = pd.DataFrame(
        {
            "t_s": [s["t_s"] for s in samples],
            "series": [
                f"{s['component']}: {s['device']}" if s["device"] else s["component"] for s in samples
            ],
            "power_w": [math.nan if s["power_w"] is None else s["power_w"] for s in samples],
        }
    )
    frame = _thin_means(frame, max_points)
    values = [
        {"t_s": t, "series": series, "power_w": None if math.isnan(p) else p}
        for t, series, p in zip(frame["t_s"].tolist(), frame["series"].tolist(), frame["power_w"].tolist())
    ]
    title = f"Power of run {found['id']}" + (f": {found['name']}" if found.get("name") else "")
    subtitle = "no power samples recorded for this run" if not samples else f"{len(samples)} samples"
    return (
        alt.Chart(alt.Data(values=values))
        .mark_line()
        .encode(
            x=alt.X("t_s:Q", title="time since the run started (s)"),
            y=alt.Y("power_w:Q", title="power (W)"),
            color=alt.Color("series:N", title="component"),
        )
        .properties(title=alt.TitleParams(title, subtitle=subtitle), width=480, height=240)
    )


# -- rendering offline ------------------------------------------------------------------------


def accuracy_energy(tradeoff: dict[str, Any]) -> alt.Chart:
    """A sweep's runs by energy and metric (``analysis.tradeoffs``, with ``points``): each run a
    point, the front (runs no other beats on both) a line, the selected run and the cheapest run
    within the tolerance of it marked; energy on a logarithmic axis in one unit."""
    rows = tradeoff.get("points") or []
    if not rows:
        raise ConfigError("this sweep's runs logged no metric to chart (see %carbon log)")
    front = set(tradeoff["front"])
    size, unit = unit_for("energy", max(energy for _, energy, _ in rows))
    marks = {tradeoff["cheapest"]["run_id"]: "cheapest within tolerance", tradeoff["selected"]["run_id"]: "selected"}
    values = [{"run": run, "energy": energy / size, "value": value, "on_front": run in front,
               "which": marks.get(run, "on the front" if run in front else "other")} for run, energy, value in rows]  # fmt: skip
    x = alt.X("energy:Q", title=f"energy ({unit})", scale=alt.Scale(type="log" if all(v["energy"] > 0 for v in values) else "linear"))
    y = alt.Y("value:Q", title=f"{tradeoff['metric']} ({tradeoff['direction']} is better)", scale=alt.Scale(zero=False))
    base = alt.Chart(alt.Data(values=values))
    line = base.transform_filter("datum.on_front").mark_line(interpolate="step-after", color="#888").encode(x=x, y=y)
    dots = base.mark_point(filled=True, size=50).encode(
        x=x, y=y, color=alt.Color("which:N", title="run", scale=alt.Scale(
            domain=["selected", "cheapest within tolerance", "on the front", "other"],
            range=["#d62728", "#2ca02c", "#1f77b4", "#bbbbbb"])),
        tooltip=[alt.Tooltip("run:Q", title="run"), alt.Tooltip("energy:Q", title=unit, format=".3~g"),
                 alt.Tooltip("value:Q", title=tradeoff["metric"], format=".4~g")],
    )  # fmt: skip
    title = f"{tradeoff.get('label') or tradeoff['sweep']}: {tradeoff['metric']} against energy"
    return (line + dots).properties(title=title, width=480, height=280)


def vega_lite_version() -> str:
    """The Vega-Lite version (``6.4``) for vl-convert to render altair's specs with: altair's own,
    else the newest of the same major version that vl-convert bundles."""
    import vl_convert

    wanted = alt.SCHEMA_VERSION.lstrip("v").split(".")
    bundled = vl_convert.get_vegalite_versions()
    if ".".join(wanted[:2]) in bundled:
        return ".".join(wanted[:2])
    same_major = sorted(
        (v for v in bundled if v.split(".")[0] == wanted[0]),
        key=lambda v: tuple(int(p) for p in v.split(".")),
    )
    if not same_major:
        raise NotebookCarbonError(
            f"altair {alt.__version__} writes Vega-Lite {alt.SCHEMA_VERSION}, which vl-convert-python "
            f"{vl_convert.__version__} cannot render (it bundles {', '.join(bundled)}); upgrade it: "
            "pip install -U vl-convert-python"
        )
    return same_major[-1]


def to_svg(chart: alt.TopLevelMixin, *, validate: bool = True) -> str:
    """The chart as an SVG document (text), rendered offline; ``validate=False`` skips checking the
    spec against Vega-Lite's schema (half the time of a chart of a few hundred points), for specs
    the tests check."""
    return _render(chart, ".svg", validate=validate)  # type: ignore[return-value]


def save(chart: alt.TopLevelMixin, path: str | os.PathLike[str], *, scale: float = 2.0) -> Path:
    """Write the chart to ``path`` as SVG, PNG or PDF, by its suffix (``FORMATS``), rendered offline;
    ``scale`` multiplies a PNG's pixels (SVG and PDF are vector graphics). Returns the path."""
    path = Path(path)
    kind = path.suffix.lower()
    if kind not in FORMATS:
        raise ConfigError(
            f"cannot save a chart as {path.name!r}: the file name must end in one of {', '.join(FORMATS)}"
        )
    rendered = _render(chart, kind, scale=scale)
    if isinstance(rendered, str):
        path.write_text(rendered, encoding="utf-8")
    else:
        path.write_bytes(rendered)
    return path


class StaticChart:
    """A chart shown as SVG: ``display(StaticChart(chart))`` (or the last expression of a cell)
    renders without a network and without a Vega extension in the front end. The SVG is made once,
    on first use."""

    def __init__(self, chart: alt.TopLevelMixin) -> None:
        self.chart = chart
        self._svg: str | None = None

    @property
    def svg(self) -> str:
        if self._svg is None:
            self._svg = to_svg(self.chart)
        return self._svg

    def save(self, path: str | os.PathLike[str], *, scale: float = 2.0) -> Path:
        return save(self.chart, path, scale=scale)

    def _repr_svg_(self) -> str:
        return self.svg

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, str]:
        return {"image/svg+xml": self.svg}

    def __repr__(self) -> str:
        return f"StaticChart({type(self.chart).__name__})"


def _render(chart: alt.TopLevelMixin, kind: str, *, scale: float = 1.0, validate: bool = True) -> str | bytes:
    import vl_convert

    spec = chart.to_dict(validate=validate)
    options = {"vl_version": vega_lite_version(), "allowed_base_urls": []}  # no external data, ever
    try:
        if kind == ".svg":
            return vl_convert.vegalite_to_svg(spec, **options)
        if kind == ".png":
            return vl_convert.vegalite_to_png(spec, scale=scale, **options)
        return vl_convert.vegalite_to_pdf(spec, **options)  # vector: no scale
    except ValueError as exc:
        raise NotebookCarbonError(f"rendering the chart as {kind[1:].upper()} failed: {exc}") from exc


# -- helpers ----------------------------------------------------------------------------------


def _sweep_names(pairs: pd.Index, frame: pd.DataFrame, *, several_projects: bool) -> dict[tuple, str]:
    """A distinct display name per ``(project, sweep_key)``: the label, with the project when there
    are several, and the key's start when two sweeps would share a name."""
    labels = frame.drop_duplicates(["project", "key"]).set_index(["project", "key"])["label"]
    names = {}
    for project, key in pairs:
        label = labels.get((project, key))
        label = label if isinstance(label, str) and label else key
        names[(project, key)] = f"{project}: {label}" if several_projects else label
    counts = pd.Series(list(names.values())).value_counts()
    for pair, name in names.items():
        if counts[name] > 1:
            names[pair] = f"{name} [{pair[1][:13]}]"
    return names


def _thin_steps(frame: pd.DataFrame, max_points: int) -> pd.DataFrame:
    """At most about ``max_points`` rows per group of a cumulative step line: the last row of each
    of ``max_points`` equal spans of time (each group's final total is kept)."""
    if max_points < 1:
        raise ConfigError(f"max_points must be at least 1; got {max_points!r}")
    if not len(frame) or frame.groupby("group").size().max() <= max_points:
        return frame
    start, end = frame["t_ms"].min(), frame["t_ms"].max()
    span = (end - start) or 1.0
    bins = np.minimum(((frame["t_ms"] - start) / span * max_points).astype(np.int64), max_points - 1)
    return frame.assign(bin=bins).drop_duplicates(["group", "bin"], keep="last").drop(columns="bin")


def _thin_means(frame: pd.DataFrame, max_points: int) -> pd.DataFrame:
    """At most ``max_points`` rows per series: the mean time and power of equal spans of time."""
    if max_points < 1:
        raise ConfigError(f"max_points must be at least 1; got {max_points!r}")
    if not len(frame) or frame.groupby("series").size().max() <= max_points:
        return frame
    start, span = frame["t_s"].min(), (frame["t_s"].max() - frame["t_s"].min()) or 1.0
    bins = np.minimum(((frame["t_s"] - start) / span * max_points).astype(np.int64), max_points - 1)
    return frame.groupby(["series", bins.rename("bin")], sort=True)[["t_s", "power_w"]].mean().reset_index(0)

"""The dashboard's charts as SVG, drawn offline by vl-convert (``charts.to_svg``): cumulative
emissions, energy per sweep, and each weighed result's metric against energy.

A chart of metric against energy takes about a tenth of a second for a few hundred runs, and a refresh after a metered cell changes at most the one sweep that
cell ran in: ``FrontCharts`` keeps the SVG of each result as last drawn and draws again only a
result whose figures changed.
"""

from __future__ import annotations

import json
import threading
from typing import Any

__all__ = ["FrontCharts", "draw_charts"]

_ALTAIR = threading.Lock()
"""Held while charts are built with altair's validation off: ``debug_mode`` sets a global of
altair's, which two chart threads (a refresh during a draw) would restore out of order, leaving it
off for the user's own charts."""


class FrontCharts:
    """The SVG of each result's metric against energy, by its figures: what the last refresh drew."""

    def __init__(self) -> None:
        self._drawn: dict[str, str] = {}
        self._lock = threading.Lock()  # two refreshes' chart threads may overlap
        self.drawn = 0
        """How many charts were drawn (not taken from those kept): what a test counts."""

    def svgs(self, tradeoffs: list[dict[str, Any]]) -> list[tuple[dict[str, Any], str]]:
        """Each of ``tradeoffs`` (``analysis.tradeoffs``, with points) with its chart's SVG; only
        those kept are kept afterwards."""
        from altair.utils.schemapi import debug_mode

        from ..charts import accuracy_energy, to_svg

        with self._lock:
            kept = dict(self._drawn)
        found, now = [], {}
        for tradeoff in tradeoffs:
            key = json.dumps(tradeoff, sort_keys=True, default=str)
            svg = kept.get(key)
            if svg is None:
                with _ALTAIR, debug_mode(False):  # (see draw_charts)
                    svg = to_svg(accuracy_energy(tradeoff), validate=False)
                with self._lock:
                    self.drawn += 1
            found.append((tradeoff, svg))
            now[key] = svg
        with self._lock:
            self._drawn = now
        return found


def draw_charts(df: Any, *, max_points: int, top_bars: int) -> tuple[str | None, str | None]:
    """The SVG of cumulative emissions (at most ``max_points`` steps) and of energy per sweep
    (``top_bars`` sweeps) of the runs ``df`` (None: nothing to draw)."""
    from altair.utils.schemapi import debug_mode

    from ..charts import cumulative_emissions, sweep_energy, to_svg

    # altair validates a spec against Vega-Lite's schema when it is built (in its debug mode, the
    # default) and again when it is written for vl-convert: half of each chart's time, for specs
    # that are our code's, the same every time, and validated by the tests (tests/test_charts.py)
    with _ALTAIR, debug_mode(False):
        cumulative = cumulative_emissions(df, max_points=max_points) if len(df) else None
        per_sweep = sweep_energy(df, top=top_bars) if df["sweep_key"].notna().any() else None
        drawn = [to_svg(chart, validate=False) if chart is not None else None for chart in (cumulative, per_sweep)]
    return drawn[0], drawn[1]

"""``Dashboard``: the project's costs in a notebook, as an ipywidgets ``VBox``.

Each refresh reads the totals the database keeps (``figures``: a few indexed reads, whatever the
number of runs), lays them out as escaped HTML (``markup``), and draws its charts as SVG through
vl-convert (``drawing``) on a thread of its own, from the project's runs and the metrics of its
costliest results: no Vega in
the browser, no network, nothing that a front end without a Vega extension could fail to show. Each part is an ``ipywidgets.HTML`` whose value is
replaced on refresh, so the widgets (and a browser's view of them) stay the same objects.

A dashboard that ``follow``\\ s an extension refreshes after every cell the extension meters,
from IPython's ``post_run_cell`` event (never by polling), after the extension has queued that
cell's run: it flushes the session's background writer first, so it reads what was committed.
Its charts, drawn on their own thread, are finished before the next cell starts (``pre_run_cell``,
ahead of every other callback), so their work never falls inside a metered run.
``close`` unregisters the callbacks.
"""

from __future__ import annotations

import os
import threading
import time
from typing import Any

import ipywidgets as widgets

from ..analysis.frame import opened, runs
from ..errors import ConfigError, NotebookCarbonError
from ..settings import Settings
from . import figures, markup
from .drawing import FrontCharts, draw_charts
from .pager import RunsPager

FLUSH_TIMEOUT_S = 10.0
"""How long a refresh waits for the session's pending registry writes before reading anyway."""

SNAPSHOT_MIME = "application/vnd.notebook-carbon.dashboard+json"
"""A marker in the dashboard's output: notebook-carbon's JupyterLab extension then shows the static
snapshot, not the widget renderer's "model not found", once the kernel is gone."""

CHART_WAIT_S = 30.0
"""How long the next cell waits, before it starts, for the charts a refresh is still drawing."""


class Dashboard(widgets.VBox):
    """Totals of this session, this notebook and the project; the costliest sweeps; the redundant
    runs and what they repeat; cumulative emissions and energy per sweep, as SVG; and for the
    costliest result sweeps whose runs logged a metric, whether the selected run was worth its
    energy, with the chart of metric against energy (``analysis.tradeoffs``).

    ``registry`` (a ``Registry``, a file path or database URL), ``project`` and ``settings``
    default to those of ``session``, else of the loaded extension's session, else of the
    configuration. With a session, each refresh first waits for its pending writes and marks
    the runs of dead kernels crashed (as ``%carbon sweeps`` does). ``notebook`` is the current
    notebook's path as runs record it (default: the one this kernel runs, if any). At most
    ``top_sweeps`` sweeps and ``top_redundant`` redundant runs are listed; the charts draw at most
    ``max_points`` steps of the cumulative line and ``top_bars`` sweeps, and at most
    ``top_tradeoffs`` sweeps' metric against energy (drawn with the charts). The first charts are drawn
    before the dashboard is returned; ``wait=False`` draws them on a thread of their own instead
    (``%carbon dashboard`` does, as the dashboard it shows follows the cells: see ``refresh``).
    """

    def __init__(
        self,
        registry: Any = None,
        project: str | None = None,
        session: Any = None,
        *,
        notebook: str | None = None,
        settings: Settings | None = None,
        shell: Any = None,
        top_sweeps: int = 20,
        top_redundant: int = 20,
        max_points: int = 300,
        top_bars: int = 12,
        top_tradeoffs: int = 3,
        wait: bool = True,
    ) -> None:
        for name, value in (("top_sweeps", top_sweeps), ("top_redundant", top_redundant),
                            ("max_points", max_points), ("top_bars", top_bars), ("top_tradeoffs", top_tradeoffs)):  # fmt: skip
            if not isinstance(value, int) or value < 1:
                raise ConfigError(f"Dashboard: {name} must be a whole number of at least 1; got {value!r}")
        if session is None and registry is None:
            from ..session import shell_session

            session = shell_session()
        self.session = session
        self._registry_arg, self._project_arg, self._settings_arg = registry, project, settings
        self.notebook = notebook if notebook is not None else figures.current_notebook(shell)
        self.kernel = figures.this_kernel()
        self.limits = {"top_sweeps": top_sweeps, "top_redundant": top_redundant}
        self.max_points, self.top_bars, self.top_tradeoffs = max_points, top_bars, top_tradeoffs
        self.snapshot: figures.Snapshot | None = None
        self.status: str | None = None
        self._drawing: list[threading.Thread] = []  # charts being drawn, the latest refresh's last
        self._chart_generation = 0
        self._fronts = FrontCharts()  # each result's chart of metric against energy, as last drawn
        self.sidecar: Any = None
        self.display_handle: Any = None  # set by whoever displays it with a display id: see refresh_static
        self._static_sent: str | None = None
        self._followed: Any = None  # the extension whose metered cells trigger a refresh
        self._last_seen: Any = None
        self._reader: tuple[str, Any] | None = None  # (location, Registry) the refreshes read, kept open

        self._header = _html("nc-header-widget")
        self._button = widgets.Button(
            description="Refresh", icon="refresh", tooltip="read the registry again"
        )
        self._button.add_class("nc-refresh")
        self._button.on_click(lambda _: self._refresh_reporting())
        self._totals = _html("nc-totals-widget")
        self._cumulative = _html("nc-chart-widget")
        self._sweep_chart = _html("nc-chart-widget")
        self._sweeps = _html("nc-sweeps-widget")
        self._tradeoffs = _html("nc-tradeoffs-widget")
        self._redundant = _html("nc-redundant-widget")
        self._latest = RunsPager(self._refresh_reporting)
        top = widgets.HBox(
            [self._header, self._button], layout=widgets.Layout(justify_content="space-between", flex_flow="row wrap")
        )
        charts = widgets.HBox(
            [self._cumulative, self._sweep_chart], layout=widgets.Layout(flex_flow="row wrap")
        )
        self._parts = (self._header, self._button, self._totals, self._cumulative, self._sweep_chart,
                       self._sweeps, self._tradeoffs, self._redundant, self._latest, top, charts)  # fmt: skip
        super().__init__([top, self._totals, charts, self._sweeps, self._tradeoffs, self._redundant, self._latest])
        self.add_class("nc-dashboard")
        try:
            self.refresh(wait=wait)
        except BaseException:
            self.close()  # a dashboard that cannot read its registry leaves no widgets behind
            raise

    # -- what it shows --------------------------------------------------------------------------

    @property
    def settings(self) -> Settings:
        if self._settings_arg is not None:
            return self._settings_arg
        if self.session is not None:
            return self.session.settings
        from ..settings import resolve

        return resolve()

    @property
    def project(self) -> str:
        return self._project_arg or self.settings.project

    @property
    def registry(self) -> Any:
        """Where the runs are read: the ``registry`` given, else the settings' location."""
        return self._registry_arg if self._registry_arg is not None else self.settings.registry_location()

    def refresh(self, *, wait: bool = False) -> figures.Snapshot:
        """Read the registry again and show what it holds now; return the figures shown.

        The figures are read from the totals the database keeps, on this thread, in a few
        milliseconds whatever the number of runs. The two charts need every run's start and
        emissions: they are drawn on a thread of their own and replace the old ones when done
        (``charts_drawn`` waits for them), unless ``wait``, which draws them before returning.
        """
        settings = self.settings
        project = self._project_arg or settings.project
        registry = self._registry_arg if self._registry_arg is not None else settings.registry_location()
        self.status = self._flush()
        try:
            snapshot = figures.snapshot(
                self._read(registry), project=project, notebook=self.notebook, kernel=self.kernel,
                settings=settings, runs_offset=self._latest.offset, **self.limits,
            )  # fmt: skip
        except BaseException:
            self._close_reader()  # the next refresh opens the registry afresh
            raise
        self.snapshot = snapshot
        self._header.value = markup.header(snapshot, self.status)
        self._totals.value = markup.totals(snapshot)
        self._sweeps.value = markup.sweeps(snapshot.sweeps, snapshot.sweeps_total)
        self._redundant.value = markup.redundant(snapshot)
        self._latest.show(snapshot)
        self._draw_charts(registry, project, wait=wait)
        return snapshot

    def _read(self, registry: Any) -> Any:
        """The ``Registry`` the refreshes read: the one given, else the registry at that location,
        opened read-only once and kept open until ``close`` (or until the location changes), so a
        refresh after each cell does not pay for opening it and preparing its statements again."""
        from ..registry.store import Registry

        if not isinstance(registry, (str, os.PathLike)):
            with opened(registry) as reg:  # a Registry, kept open by its owner; else opened's error
                return reg
        location = os.fspath(registry)
        if self._reader is None or self._reader[0] != location:
            self._close_reader()
            self._reader = (location, Registry.open(location, read_only=True))
        return self._reader[1]

    def _close_reader(self) -> None:
        reader, self._reader = getattr(self, "_reader", None), None
        if reader is not None:
            reader[1].close()

    def charts_drawn(self, timeout: float | None = None) -> bool:
        """Wait until every chart being drawn is done (the latest refresh's shown); False if
        ``timeout`` (s) ran out first."""
        deadline = None if timeout is None else time.monotonic() + timeout
        for drawing in list(self._drawing):
            drawing.join(None if deadline is None else max(deadline - time.monotonic(), 0.0))
        self._drawing = [drawing for drawing in self._drawing if drawing.is_alive()]
        return not self._drawing

    def _draw_charts(self, registry: Any, project: str, *, wait: bool) -> None:
        generation = self._chart_generation = self._chart_generation + 1

        def draw() -> None:
            from ..analysis.tradeoffs import sweep_tradeoffs

            found, failed, unweighed = [], None, None  # each part's failure is shown in its place only
            try:
                with opened(registry) as reg:
                    df = runs(reg, project=project, columns=figures.CHART_COLUMNS)
                    try:
                        found = sweep_tradeoffs(reg, project, points=True, limit=self.top_tradeoffs)
                    except Exception as exc:
                        unweighed = f"the results could not be read: {_said(exc)}"
                cumulative, per_sweep = self._charts(df)
            except Exception as exc:  # shown where the charts are, never raised into a later cell
                cumulative, per_sweep, failed = None, None, f"the charts could not be drawn: {_said(exc)}"
            if generation != self._chart_generation:
                return  # a newer refresh draws its own
            self._cumulative.value = markup.chart("cumulative", cumulative, failed or "no runs yet: nothing to draw")
            self._sweep_chart.value = markup.chart("sweeps", per_sweep, failed or "no sweeps yet: nothing to draw")
            try:  # after the two charts are shown: the results' take as long again when they change
                fronts = self._fronts.svgs(found)
            except Exception as exc:
                fronts, unweighed = [], f"the results' charts could not be drawn: {_said(exc)}"
            if generation == self._chart_generation:
                self._tradeoffs.value = markup.tradeoffs(fronts, unweighed or (failed if not found else None))

        if wait:
            draw()
            return
        drawing = threading.Thread(target=draw, name="notebook-carbon-dashboard-charts", daemon=True)
        self._drawing = [*(d for d in self._drawing if d.is_alive()), drawing]
        drawing.start()

    def _flush(self) -> str | None:
        """Wait for the session's pending writes to its registry; what to tell the user, if anything."""
        if self.session is None or (
            self._registry_arg is not None and not _same_place(self._registry_arg, self.session)
        ):
            return None
        writer = self.session.writer()
        # Also creates the registry when the session has not written yet, so it can be read.
        writer.reap_crashed()
        if not writer.flush(FLUSH_TIMEOUT_S):
            return (
                f"registry writes still pending after {FLUSH_TIMEOUT_S:g} s: the latest runs may be missing"
            )
        return None

    def _charts(self, df) -> tuple[str | None, str | None]:
        """The SVG of cumulative emissions and of energy per sweep (None: nothing to draw)."""
        return draw_charts(df, max_points=self.max_points, top_bars=self.top_bars)

    # -- refreshing after metered cells --------------------------------------------------------

    def follow(self, extension: Any) -> None:
        """Refresh after every cell that ``extension`` (a loaded ``CarbonExtension``) meters, from
        IPython's ``post_run_cell`` event, until ``unfollow`` or ``close``."""
        self.unfollow()
        self._followed, self._last_seen = extension, extension.last
        extension.shell.events.register("post_run_cell", self._after_cell)
        # First of every pre_run_cell callback, before any run can open: the charts being drawn
        # are finished before the next cell's code runs, so their work is never measured in its run.
        extension.shell.events.callbacks["pre_run_cell"].insert(0, self._before_cell)

    def unfollow(self) -> None:
        """Stop refreshing after metered cells (the Refresh button still works)."""
        extension, self._followed = self._followed, None
        if extension is None:
            return
        for event, callback in (("post_run_cell", self._after_cell), ("pre_run_cell", self._before_cell)):
            try:
                extension.shell.events.unregister(event, callback)
            except ValueError:  # the shell's callbacks were reset meanwhile: nothing left to remove
                pass

    @property
    def following(self) -> bool:
        return self._followed is not None

    def _before_cell(self, info: Any = None) -> None:
        """``pre_run_cell``: wait for the charts of the last refresh (at most ``CHART_WAIT_S``), then
        replace the static snapshot the displayed output carries (``refresh_static``)."""
        self.charts_drawn(CHART_WAIT_S)
        self.refresh_static()

    # -- the static snapshot ---------------------------------------------------------------------

    def static_html(self) -> str:
        """What the dashboard shows now, as one piece of HTML with its charts as inline SVG: what a
        saved notebook, ``nbconvert --to html`` or GitHub shows without a kernel."""
        return markup.static(self._header.value, self._totals.value, self._cumulative.value,
                             self._sweep_chart.value, self._sweeps.value, self._tradeoffs.value, self._redundant.value,
                             self._latest.html.value)  # fmt: skip

    def _repr_mimebundle_(self, **kwargs: Any) -> dict[str, Any]:
        """The widget's view, its line of text, the static snapshot (``text/html``), which a front
        end with the kernel's widgets passes over and one without them shows, and ``SNAPSHOT_MIME``."""
        data = super()._repr_mimebundle_(**kwargs)
        self._static_sent = data["text/html"] = self.static_html()
        # for notebook-carbon's JupyterLab extension: the snapshot, not an error, once the kernel is gone
        data[SNAPSHOT_MIME] = {"version": 1}
        return data

    def refresh_static(self) -> None:
        """Send the output displayed with ``display_handle`` again, when its snapshot has changed, so
        the notebook saved now keeps the figures shown now. On the kernel's main thread only (a
        cell's event), so the update goes where the dashboard was displayed."""
        if self.display_handle is not None and self.static_html() != self._static_sent:
            self.display_handle.update(self)

    def _after_cell(self, result: Any = None) -> None:
        """``post_run_cell``: registered after the extension's, so a metered cell's run is queued
        by now; a cell that metered nothing leaves ``extension.last`` as it was."""
        extension = self._followed
        if extension is None or extension.last is self._last_seen:
            return
        self._last_seen = extension.last
        self._refresh_reporting(extension.warn)

    def _refresh_reporting(self, warn: Any = None) -> None:
        """``refresh`` from an event (a cell, a click): a failure is shown in the dashboard and,
        given ``warn``, as one warning line, instead of a traceback under the user's cell."""
        try:
            self.refresh()
        except Exception as exc:
            message = _said(exc)
            self.status = f"could not refresh: {message}"
            if self.snapshot is not None:
                self._header.value = markup.header(self.snapshot, self.status)
            if warn is not None:
                warn(f"the dashboard could not refresh: {message}")

    # -- the side panel and the end -------------------------------------------------------------

    def show_side(self, title: str | None = None) -> Any:
        """Open this dashboard in a JupyterLab side panel (``sidecar``); return the panel's widget."""
        try:
            from sidecar import Sidecar
        except ImportError as exc:
            raise ConfigError(
                "the side panel needs the sidecar package: pip install sidecar (or show the dashboard "
                "in the notebook, without --side)"
            ) from exc
        if self.sidecar is not None:
            self.sidecar.close()
        self.sidecar = Sidecar(title=title or f"carbon: {self.project}")
        # The output set on the panel's model itself: unlike ``with sidecar: display(...)`` this
        # needs no front end to route the display message, so it shows in any client.
        self.sidecar.append_display_data(self)
        return self.sidecar

    def close(self) -> None:
        """Stop following cells, close the parts and the side panel, then the dashboard itself."""
        # getattr: ipywidgets also calls this from __del__, on a dashboard whose __init__ failed
        if getattr(self, "_followed", None) is not None:
            self.unfollow()
        sidecar, self.sidecar = getattr(self, "sidecar", None), None
        if sidecar is not None:
            sidecar.close()
        for part in getattr(self, "_parts", ()):
            part.close()
        self._close_reader()
        super().close()

    def __repr__(self) -> str:
        # the text/plain of the widget's output: one line, not ipywidgets' repr of every child
        return markup.summary_line(self.snapshot)


def _said(exc: Exception) -> str:
    """What went wrong, for a line in the dashboard: our own errors say it; others are named."""
    return str(exc) if isinstance(exc, NotebookCarbonError) else f"{type(exc).__name__}: {exc}"


def _html(css_class: str) -> widgets.HTML:
    part = widgets.HTML()
    part.add_class(css_class)
    return part


def _same_place(registry: Any, session: Any) -> bool:
    """Whether ``registry`` (as given to ``Dashboard``) is where ``session`` writes."""
    if isinstance(registry, (str, os.PathLike)):
        return os.fspath(registry) == session.settings.registry_location()
    return getattr(registry, "where", None) == session.settings.registry_location()

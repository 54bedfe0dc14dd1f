"""The dashboard on registries of known runs, figures checked by hand and against the statement;
``%carbon dashboard`` through a real CarbonExtension in a real IPython shell (only the meters are
fake); hostile names kept text; charts as inline SVG. No browser: what a front end would receive
is the widgets' state, checked here."""

from __future__ import annotations

import html.parser
import os
import subprocess
import sys
import time

import ipywidgets
import pytest
from IPython.core.error import UsageError
from IPython.core.interactiveshell import InteractiveShell
from IPython.utils.capture import capture_output

from notebook_carbon.magic import load_ipython_extension, unload_ipython_extension
from notebook_carbon.meters.detect import Detection, host_info
from notebook_carbon.registry import Registry, new_uid
from notebook_carbon.registry.liveness import process_started_at
from notebook_carbon.session import Session
from notebook_carbon.settings import Settings, resolve
from notebook_carbon.statements import statement_facts
from notebook_carbon.testing import FakeMeter
from notebook_carbon.units import emissions_text
from notebook_carbon.widgets import USAGE, Dashboard, dashboard_magic
from notebook_carbon.widgets.figures import Kernel
from notebook_carbon.widgets.dashboard import SNAPSHOT_MIME

HOSTILE = "<img src=x onerror=alert(1)>"
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
H = 3600.0
EF = 1.5 * 100.0 / 3.6e6  # g CO2e per J at PUE 1.5 and 100 g/kWh
T0 = 1.7e9  # 2023-11-14 UTC: before this test process started


def _split(energy_j: float) -> dict:
    """70 % GPU by energy counter (+-5 %), 20 % CPU by RAPL (+-10 %), 10 % RAM estimated (+-40 %)."""
    return {
        "gpu_energy_j": 0.7 * energy_j,
        "gpu_method": "nvml-counter",
        "cpu_energy_j": 0.2 * energy_j,
        "cpu_method": "rapl",
        "ram_energy_j": 0.1 * energy_j,
        "ram_method": "estimate-ram",
    }


def _record(
    reg,
    *,
    project="thesis",
    t,
    energy,
    status="ok",
    name=None,
    sweep=None,
    code=None,
    params=None,
    notebook=None,
    pid=1,
    host="lab-1",
    final=False,
    redundant_of=None,
):
    where = {
        "pue": 1.5,
        "intensity_g_per_kwh": 100.0,
        "intensity_region": "FR",
        "intensity_source": "test grid",
        "cpu_model": "Xeon Test",
        "gpu_model": "Test GPU",
        "gpu_count": 1,
        "attribution": "machine",
    }
    return reg.record_run(
        {
            "uid": new_uid(),
            "project": project,
            "name": name,
            "sweep": sweep,
            "code_fingerprint": code,
            "cell_source": f"train({code})" if code else None,
            "params": params or {},
            "notebook": notebook,
            "pid": pid,
            "host": host,
            "started_at": t,
            "is_final": final,
            "redundant_of": redundant_of,
            **where,
        },
        {
            "status": status,
            "energy_j": energy,
            "emissions_g": energy * EF,
            "embodied_g": 10.0,
            "water_l": energy / 1000,
            "duration_s": 60.0,
            "ended_at": t + 60.0,
            **_split(energy),
        },
    )


@pytest.fixture
def known(tmp_path):
    """Project thesis: sweep lr (ok, failed, ok marked final) and an automatic sweep of code b (ok,
    then an identical repeat); one run in no sweep by an earlier process that had this process's
    id; another project. Runs 3 to 5 are this process's. PUE 1.5 at 100 g/kWh; 10 g embodied each."""
    path = str(tmp_path / "registry.sqlite")
    me, host = os.getpid(), host_info()["hostname"]
    now = process_started_at(me) + 60.0  # a minute after this process started
    with Registry.open(path) as reg:
        _record(
            reg,
            t=T0,
            energy=H,
            name=HOSTILE,
            sweep="lr",
            code="a",
            params={"lr": 0.1},
            notebook="paper.ipynb",
        )
        _record(
            reg,
            t=T0 + H,
            energy=2 * H,
            status="failed",
            sweep="lr",
            code="a",
            params={"lr": 0.2},
            notebook="paper.ipynb",
        )
        _record(
            reg,
            t=now + 1,
            energy=H,
            name="third",
            sweep="lr",
            code="a",
            params={"lr": 0.3},
            notebook="paper.ipynb",
            pid=me,
            host=host,
            final=True,
        )
        first_b = _record(
            reg,
            t=now + 2,
            energy=H / 2,
            name="first b",
            code="b",
            params={"bs": 32},
            notebook="other.ipynb",
            pid=me,
            host=host,
        )
        _record(
            reg,
            t=now + 3,
            energy=H / 2,
            name="again",
            code="b",
            params={"bs": 32},
            notebook="paper.ipynb",
            pid=me,
            host=host,
            redundant_of=first_b,
        )
        _record(reg, t=T0 + 2 * H, energy=360.0, name="reused pid", notebook="paper.ipynb", pid=me, host=host)
        _record(reg, project="elsewhere", t=T0, energy=99 * H, code="z")
    return path


@pytest.fixture
def settings():
    return resolve({"hardware": "workstation", "embodied_kg": 1000.0, "lifetime_years": 4.0}, environ={})


class _Elements(html.parser.HTMLParser):
    """Each element with a class, by class: its attributes and its text (nested text included)."""

    def __init__(self, markup: str) -> None:
        super().__init__()
        self.found: dict[str, list[dict]] = {}
        self._open: list[dict] = []
        self.feed(markup)

    def handle_starttag(self, tag, attrs):
        element = {"tag": tag, **dict(attrs), "text": ""}
        for name in (element.get("class") or "").split():
            self.found.setdefault(name, []).append(element)
        if tag not in ("br", "img", "input", "meta", "link"):
            self._open.append(element)

    def handle_endtag(self, tag):
        if self._open:
            self._open.pop()

    def handle_data(self, data):
        for element in self._open:
            element["text"] += data

    def one(self, css_class: str) -> dict:
        (element,) = self.found[css_class]
        return element


def _markup(board: Dashboard) -> str:
    return "".join(part.value for part in _html_parts(board))


def _html_parts(board: Dashboard) -> list[ipywidgets.HTML]:
    found, todo = [], [board]
    while todo:
        widget = todo.pop(0)
        if isinstance(widget, ipywidgets.HTML):
            found.append(widget)
        todo.extend(getattr(widget, "children", ()))
    return found


def _value(element: dict, name: str = "data-nc-value") -> float:
    return float(element[name])


# -- figures -----------------------------------------------------------------------------------


def test_totals_match_the_registry_by_hand_and_the_statement(known, settings):
    board = Dashboard(known, "thesis", notebook="paper.ipynb", settings=settings)
    snap = board.snapshot
    session, notebook, project = (snap.scope(name).facts for name in ("session", "notebook", "project"))
    # by hand: the project's six runs; this session's runs 3 to 5 (not run 6: an earlier process
    # with the same id); the notebook's runs 1, 2, 3, 5, 6
    for facts, runs, energy in ((project, 6, 18360.0), (session, 3, 7200.0), (notebook, 5, 16560.0)):
        t = facts["totals"]
        assert t["runs"] == runs and t["energy_j"]["value"] == pytest.approx(energy)
        assert t["energy_j"]["low"] == pytest.approx(energy * 0.905)  # 0.7 x 0.95 + 0.2 x 0.9 + 0.1 x 0.6
        assert t["energy_j"]["high"] == pytest.approx(energy * 1.095)
        assert t["emissions_g"]["value"] == pytest.approx(energy * EF)
        assert t["embodied_g"]["value"] == pytest.approx(10.0 * runs)
        assert t["total_g"]["value"] == pytest.approx(energy * EF + 10.0 * runs)
        assert t["water_l"]["value"] == pytest.approx(energy / 1000)
    # the one result is run 3 (marked final), 3,600 J: code b ran once and then as an identical
    # repeat, which makes no result (development, however many times it is repeated)
    assert project["development"]["results"] == [{"sweep": "lr", "label": "lr"}]
    assert project["development"]["ratio"] == pytest.approx(18360 / 3600)
    assert session["development"]["ratio"] == pytest.approx(7200 / 3600)
    assert notebook["development"]["ratio"] == pytest.approx(16560 / 3600)
    assert project["development"]["failed_share"] == pytest.approx(7200 / 18360)
    # the very figures of the statements of the same runs
    for facts, selection in ((project, {}), (notebook, {"notebook": "paper.ipynb"})):
        statement = statement_facts(known, project="thesis", settings=settings, **selection)
        for part in ("totals", "development"):
            assert facts[part] == statement[part]
    shown = [(s.key, s.runs, s.energy_j, s.overhead_ratio, s.failed_energy_j) for s in snap.sweeps]
    stated = statement_facts(known, project="thesis", settings=settings)["sweeps"]
    assert shown == [(s["key"], s["runs"], s["energy_j"], s["overhead_ratio"], s["failed_energy_j"]) for s in stated]
    # and what the widget shows, as text and as data
    cells = _Elements(_markup(board))
    emissions = cells.one("nc-total-project-emissions")
    assert _value(emissions) == project["totals"]["emissions_g"]["value"]
    assert _value(emissions, "data-nc-low") == project["totals"]["emissions_g"]["low"]
    assert _value(emissions, "data-nc-high") == project["totals"]["emissions_g"]["high"]
    assert emissions["text"].startswith(emissions_text(18360 * EF))
    assert cells.one("nc-total-session-runs")["text"] == "3"
    assert _value(cells.one("nc-total-notebook-energy")) == pytest.approx(16560.0)
    share = cells.one("nc-total-project-embodied")["text"]
    assert share == "60 g CO2e" + "98.7 % of the total"  # 60 g of 60.765 g
    assert cells.one("nc-total-project-overhead")["text"].startswith("5.1\u00d7")
    assert repr(board) == "notebook-carbon dashboard: project thesis, 6 runs, 5.1 Wh, 60.8 g CO2e"
    board.close()


def test_sweeps_and_redundant_runs(known, settings):
    board = Dashboard(known, "thesis", notebook="paper.ipynb", settings=settings)
    lr, b = board.snapshot.sweeps
    assert (lr.key, lr.runs, lr.energy_j, lr.overhead_ratio) == ("lr", 3, 14400.0, 4.0)
    assert (lr.failed_runs, lr.failed_energy_j, lr.redundant_runs) == (1, 7200.0, 0)
    assert lr.varying == {"lr": (0.1, 0.2, 0.3)}
    assert (b.key, b.label, b.runs, b.overhead_ratio, b.redundant_runs, b.varying) == (
        "code:b",
        "again ... first b",  # what its runs' names share: nothing, so the first and last (issue 15)
        2,
        2.0,
        1,
        {},
    )
    cells = _Elements(_markup(board))
    rows = cells.found["nc-sweep"]
    assert [row["data-nc-sweep"] for row in rows] == ["lr", "code:b"]
    assert cells.found["nc-sweep-varying"][0]["text"] == "lr: 0.1, 0.2, 0.3"
    assert cells.found["nc-sweep-failed"][0]["text"] == "1 (2 Wh)"
    assert cells.found["nc-sweep-overhead"][0]["text"] == "4\u00d7"
    (repeat,) = board.snapshot.redundant
    assert (repeat.run.id, repeat.run.name, repeat.repeats.id, repeat.repeats.name) == (
        5,
        "again",
        4,
        "first b",
    )
    (row,) = cells.found["nc-redundant-run"]
    assert (row["data-nc-run"], row["data-nc-repeats"]) == ("5", "4")
    started = repeat.repeats.started.strftime("%Y-%m-%d %H:%M")
    assert cells.one("nc-repeats")["text"] == f"repeats run 4 first b, {started} UTC"
    assert cells.one("nc-redundant")["data-nc-count"] == "1"
    board.close()


def test_only_the_top_sweeps_are_listed_and_the_rest_counted(known, settings):
    board = Dashboard(known, "thesis", settings=settings, top_sweeps=1)
    assert [s.key for s in board.snapshot.sweeps] == ["lr"] and board.snapshot.sweeps_total == 2
    assert "1 more sweep " in _Elements(_markup(board)).one("nc-more")["text"]
    board.close()
    with pytest.raises(ValueError, match="top_bars must be a whole number of at least 1"):
        Dashboard(known, "thesis", settings=settings, top_bars=0)


def test_refreshes_read_one_registry_kept_open_and_see_every_new_run(known, settings, tmp_path):
    """The registry is opened once, read-only, for all refreshes (not once per refresh), sees what
    others commit meanwhile, follows the settings to another registry, and is closed with the board."""
    from notebook_carbon.registry import store

    opened_at: list[str] = []
    real_open = store.Registry.open.__func__

    def counting_open(cls, location, *args, **kwargs):
        opened_at.append(str(location))
        return real_open(cls, location, *args, **kwargs)

    store.Registry.open = classmethod(counting_open)
    try:
        board = Dashboard(known, "thesis", settings=settings)
        before = board.snapshot.scope("project").facts["totals"]["runs"]
        with Registry.open(known) as reg:  # another writer, between two refreshes
            _record(reg, t=T0 + 3 * H, energy=H, name="later", notebook="paper.ipynb")
        board.refresh(wait=True)
        assert board.snapshot.scope("project").facts["totals"]["runs"] == before + 1
        # one open for the refreshes; the rest are the charts' own, on their thread, and the writer's
        assert opened_at.count(known) == 1 + 2 + 1, opened_at
        other = str(tmp_path / "other.sqlite")
        with Registry.open(other) as reg:
            _record(reg, t=T0, energy=H, name="elsewhere")
        board._registry_arg = other  # as a changed configuration would move it
        board.refresh(wait=True)
        assert board.snapshot.scope("project").facts["totals"]["runs"] == 1
        reader, closed = board._reader[1], []
        reader.close = lambda: closed.append(reader)
        board.close()
        assert closed == [reader]
    finally:
        store.Registry.open = classmethod(real_open)


def test_session_runs_are_this_process_since_it_started(known):
    """This kernel's runs: its host and process id, started after it did (run 6 was an earlier
    process given the same id); summed by the database, as the dashboard's session column is."""
    from notebook_carbon.analysis.frame import opened

    me = Kernel(host=host_info()["hostname"], pid=os.getpid(), started_at=process_started_at(os.getpid()))
    with opened(known) as reg:
        mine = reg.aggregate("thesis", since=me.started_at - 1.0, pid=me.pid, host=me.host)
        assert mine.runs == 3 and mine.energy_j == pytest.approx(7200.0)
        assert reg.aggregate("thesis", since=me.started_at - 1.0, pid=me.pid, host="elsewhere").runs == 0
        assert reg.aggregate("thesis", since=me.started_at - 1.0, pid=me.pid + 1, host=me.host).runs == 0


def test_without_a_notebook_its_column_says_so(known, settings):
    board = Dashboard(known, "thesis", settings=settings)
    assert board.notebook is None and board.snapshot.scope("notebook").facts is None
    assert _Elements(_markup(board)).one("nc-total-notebook-energy")["text"] == "not run from a notebook"
    board.close()


# -- escaping and charts -----------------------------------------------------------------------


def test_hostile_names_are_shown_as_text(tmp_path, settings):
    path = str(tmp_path / "names.sqlite")
    hostile_sweep, hostile_notebook = "<b onmouseover=alert(2)>sweep</b>", '"><script>alert(3)</script>.ipynb'
    with Registry.open(path) as reg:
        first = _record(
            reg,
            project=HOSTILE,
            t=T0,
            energy=H,
            name=HOSTILE,
            sweep=hostile_sweep,
            params={"<i>k</i>": "<script>alert(4)</script>"},
            notebook=hostile_notebook,
        )
        _record(
            reg,
            project=HOSTILE,
            t=T0 + H,
            energy=H,
            name=HOSTILE,
            sweep=hostile_sweep,
            params={"<i>k</i>": "<script>alert(5)</script>"},
            notebook=hostile_notebook,
        )
        _record(
            reg,
            project=HOSTILE,
            t=T0 + 2 * H,
            energy=H,
            name="<svg onload=alert(6)>",
            code="c",
            notebook=hostile_notebook,
        )
        _record(
            reg,
            project=HOSTILE,
            t=T0 + 3 * H,
            energy=H,
            name="x",
            code="c",
            notebook=hostile_notebook,
            redundant_of=first,
        )
    board = Dashboard(path, HOSTILE, notebook=hostile_notebook, settings=settings)
    markup = _markup(board)
    for raw in ("<img", "<script", "<b ", "<i>", "<svg onload"):
        assert raw not in markup
    assert "&lt;img src=x onerror=alert(1)&gt;" in markup  # the project and the repeated run's name
    assert "&lt;b onmouseover=alert(2)&gt;sweep&lt;/b&gt;" in markup  # the sweep's label
    assert "&lt;i&gt;k&lt;/i&gt;: &#x27;&lt;script&gt;alert(4)&lt;/script&gt;&#x27;" in markup  # params
    assert "&quot;&gt;&lt;script&gt;alert(3)&lt;/script&gt;.ipynb" in markup  # the notebook
    cells = _Elements(markup)
    assert cells.one("nc-project")["text"] == HOSTILE
    assert cells.found["nc-sweep"][0]["data-nc-sweep"] == hostile_sweep  # the attribute, decoded
    assert cells.one("nc-repeats")["text"].startswith(f"repeats run 1 {HOSTILE}, ")
    assert repr(board).startswith(f"notebook-carbon dashboard: project {HOSTILE}, 4 runs")
    board.close()


def test_charts_are_inline_svg_with_no_vega_in_the_front_end(known, settings):
    board = Dashboard(known, "thesis", settings=settings, wait=True)
    cells = _Elements(_markup(board))
    for kind in ("cumulative", "sweeps"):
        chart = next(p.value for p in _html_parts(board) if f'data-nc-chart="{kind}"' in p.value)
        assert "<svg" in chart and "</svg>" in chart
        assert cells.one(f"nc-chart-{kind}")["data-nc-chart"] == kind
    markup = _markup(board).lower()
    for absent in ("<script", "vega-embed", "vega-lite@", "cdn.jsdelivr", "unpkg.com", "https://cdn", "<img"):
        assert absent not in markup
    InteractiveShell.instance()  # display() goes to a shell's display publisher, captured here
    with capture_output() as shown:
        from IPython.display import display

        display(board)
    (output,) = shown.outputs
    # never a Vega or Vega-Lite mimetype; the static snapshot for a reader without the kernel
    assert set(output.data) == {"text/plain", "text/html", WIDGET_VIEW, SNAPSHOT_MIME}
    assert output.data["text/html"] == board.static_html() and "<script" not in output.data["text/html"].lower()
    assert output.data[WIDGET_VIEW]["model_id"] == board.model_id
    assert output.data["text/plain"] == repr(board)
    assert "nc-dashboard" in board._dom_classes
    board.close()


def test_an_empty_project_draws_nothing_and_says_so(known, settings):
    board = Dashboard(known, "nobody", settings=settings, wait=True)
    markup = _markup(board)
    assert "<svg" not in markup and "no runs yet" in markup and "no sweeps yet" in markup
    assert repr(board) == "notebook-carbon dashboard: project nobody, no runs yet"
    board.close()


def test_a_registry_that_cannot_be_read_is_an_error_and_a_click_reports_it(known, settings, tmp_path):
    from notebook_carbon.errors import RegistryError

    with pytest.raises(RegistryError, match="no registry"):
        Dashboard(str(tmp_path / "missing.sqlite"), "thesis", settings=settings)
    board = Dashboard(known, "thesis", settings=settings)
    board._registry_arg = str(tmp_path / "missing.sqlite")
    board._button.click()
    assert board.status.startswith("could not refresh: there is no registry")
    assert "could not refresh" in _Elements(_markup(board)).one("nc-status")["text"]
    board.close()


# -- the magic, in a real shell ------------------------------------------------------------------


@pytest.fixture
def session(tmp_path):
    detection = Detection(
        meters=(
            FakeMeter("cpu", "rapl", "package-0", 30.0),
            FakeMeter("ram", "estimate-ram", "RAM 16 GB", 6.0),
        ),
        notes=("no GPU component: test machine",),
    )
    return Session(
        Settings(registry=str(tmp_path / "registry.sqlite"), region="FR", project="paper"),
        detection=detection,
    )


@pytest.fixture
def extension(session, monkeypatch):
    monkeypatch.setenv("JPY_SESSION_NAME", "paper.ipynb")  # what Jupyter tells its kernels
    shell = InteractiveShell.instance()
    shell.reset(new_session=False)
    ext = load_ipython_extension(shell, session=session)
    yield ext
    unload_ipython_extension(shell)


def _shown_dashboard(shown) -> Dashboard:
    from ipywidgets.widgets.widget import _instances  # model id -> widget, as the front end resolves it

    (output,) = shown.outputs
    board = _instances[output.data[WIDGET_VIEW]["model_id"]]
    assert isinstance(board, Dashboard)
    return board


def test_magic_shows_a_dashboard_that_refreshes_after_each_metered_cell(extension, capsys, monkeypatch):
    shell = extension.shell
    with capture_output() as shown:
        dashboard_magic(extension, [])
    board = _shown_dashboard(shown)
    assert board.following and board.project == "paper" and board.notebook == "paper.ipynb"
    assert board.snapshot.scope("project").facts["totals"]["runs"] == 0  # a new registry, created to be read
    assert board._after_cell in shell.events.callbacks["post_run_cell"]

    drawn = board._charts

    def slow_charts(df):  # charts that take a while: the next cell must still wait for them
        time.sleep(0.5)
        return drawn(df)

    monkeypatch.setattr(board, "_charts", slow_charts)
    result = shell.run_cell("%%carbon --name fresh --sweep s --param lr=0.1\nx = 1\n", store_history=True)
    assert result.success
    snap = board.snapshot
    for scope in ("session", "notebook", "project"):
        assert snap.scope(scope).facts["totals"]["runs"] == 1
    recorded = snap.scope("project").facts["totals"]["energy_j"]["value"]
    assert recorded == pytest.approx(extension.last.row["energy_j"], abs=1e-6) and recorded > 0  # to the microjoule
    assert _Elements(_markup(board)).one("nc-total-session-runs")["text"] == "1"

    # the charts of that refresh are drawn on their own thread, finished before the next cell's
    # code runs: their work never falls inside a metered run
    shell.run_cell("import threading\ndrawing = [t for t in threading.enumerate() "
                   "if t.name == 'notebook-carbon-dashboard-charts']\n", store_history=True)
    assert shell.user_ns["drawing"] == [] and "<svg" in board._cumulative.value
    shell.run_cell("y = 2\n", store_history=True)  # metered nothing: no new read
    assert board.snapshot is snap
    shell.run_cell("%%carbon --quiet --sweep s --param lr=0.2\nx = 2\n", store_history=True)
    assert board.snapshot is not snap and board.snapshot.scope("project").facts["totals"]["runs"] == 2
    assert board.snapshot.sweeps[0].varying == {"lr": (0.1, 0.2)}
    assert "Error in callback" not in capsys.readouterr().out
    board.close()


def test_closing_the_dashboard_unregisters_its_callback(extension):
    shell = extension.shell
    with capture_output() as shown:
        dashboard_magic(extension, [])
    board = _shown_dashboard(shown)
    callbacks = len(shell.events.callbacks["post_run_cell"])
    snap = board.snapshot
    board.close()
    assert len(shell.events.callbacks["post_run_cell"]) == callbacks - 1
    assert board._after_cell not in shell.events.callbacks["post_run_cell"] and not board.following
    assert board.comm is None  # closed: the front end drops its views
    shell.run_cell("%%carbon --quiet\nz = 3\n", store_history=True)
    assert board.snapshot is snap
    board.close()  # twice is harmless


def test_side_opens_the_dashboard_in_a_sidecar(extension, capsys):
    from ipywidgets.widgets.widget import _instances
    from sidecar import Sidecar

    before = set(_instances)
    with capture_output() as shown:
        dashboard_magic(extension, ["--side"])
    assert shown.outputs == []  # nothing in the notebook itself
    assert "in the side panel" in shown.stdout
    created = [_instances[key] for key in set(_instances) - before]
    (panel,) = [w for w in created if isinstance(w, Sidecar)]
    (board,) = [w for w in created if isinstance(w, Dashboard)]
    assert panel.title == "carbon: paper" and board.sidecar is panel and board.following
    (output,) = panel.outputs
    assert output["output_type"] == "display_data"
    assert output["data"][WIDGET_VIEW]["model_id"] == board.model_id
    assert output["data"]["text/plain"] == repr(board)
    board.close()
    assert panel.comm is None and board.sidecar is None


def test_side_without_the_sidecar_package_says_how_to_get_it(extension, monkeypatch):
    monkeypatch.setitem(sys.modules, "sidecar", None)  # as if it were not installed
    callbacks = list(extension.shell.events.callbacks["post_run_cell"])
    with pytest.raises(UsageError, match="needs the sidecar package: pip install sidecar"):
        dashboard_magic(extension, ["--side"])
    assert extension.shell.events.callbacks["post_run_cell"] == callbacks  # nothing left following


@pytest.mark.parametrize("args", [["--bogus"], ["--side", "--side"], ["side"], ["--side", "now"]])
def test_bad_arguments_are_usage_errors(extension, args):
    with pytest.raises(UsageError, match="takes no argument, or --side to open it in a side panel"):
        dashboard_magic(extension, args)


def test_dashboard_without_arguments_uses_the_loaded_extension(extension):
    board = Dashboard()
    assert board.session is extension.session and board.project == "paper"
    assert board.registry == extension.session.settings.registry_location()
    board.close()
    assert USAGE.startswith("%carbon dashboard [--side]")


def test_metering_never_imports_the_widgets(tmp_path):
    """Loading the extension and metering a cell leave ipywidgets and the dashboard unimported."""
    code = f"""
import sys
from IPython.core.interactiveshell import InteractiveShell
from notebook_carbon.magic import load_ipython_extension
from notebook_carbon.meters.detect import Detection
from notebook_carbon.session import Session
from notebook_carbon.settings import Settings
from notebook_carbon.testing import FakeMeter
session = Session(Settings(registry={str(tmp_path / "r.sqlite")!r}),
                  detection=Detection(meters=(FakeMeter("cpu", "rapl", "package-0", 30.0),), notes=()))
shell = InteractiveShell.instance()
load_ipython_extension(shell, session=session)
assert shell.run_cell("%%carbon --quiet\\nx = 1\\n").success
shell.run_cell("%carbon sweeps")
session.writer().flush(10)
print(sorted(m for m in ("ipywidgets", "sidecar", "notebook_carbon.widgets") if m in sys.modules))
"""
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "[]"


def test_the_latest_runs_a_page_at_a_time(tmp_path, settings):
    """The dashboard lists the project's runs, newest first, ten to a page: run, sweep (its label),
    status, energy, emissions and how long ago it started; Older and Newer turn the page."""
    from notebook_carbon.registry import new_uid

    path = str(tmp_path / "r.sqlite")
    now = time.time()
    with Registry.open(path) as reg:
        for i in range(23):
            reg.record_run({"uid": new_uid(), "project": "p", "name": f"lr={i}", "sweep": "lr",
                            "started_at": now - 3600 * (23 - i)},
                           {"status": "failed" if i == 22 else "ok", "energy_j": 3600.0 * (i + 1),
                            "emissions_g": 0.1})  # fmt: skip
    board = Dashboard(path, "p", settings=settings)
    cells = _Elements(_markup(board))
    rows = cells.found["nc-latest-run"]
    assert [r["data-nc-run"] for r in rows] == [str(i) for i in range(23, 13, -1)]
    assert cells.one("nc-latest")["data-nc-count"] == "23" and "Latest runs: 1\u201310 of 23" in _markup(board)
    first = rows[0]
    assert "run 23 lr=22" in first["text"] and "failed" in first["text"] and "1 h ago" in first["text"]
    assert cells.found["nc-latest-sweep"][0]["text"] == "lr" and cells.found["nc-latest-energy"][0]["text"] == "23 Wh"
    assert board._latest.newer.disabled and not board._latest.older.disabled
    board._latest.older.click()
    cells = _Elements(_markup(board))
    assert [r["data-nc-run"] for r in cells.found["nc-latest-run"]][:2] == ["13", "12"]
    assert "Latest runs: 11\u201320 of 23" in _markup(board) and not board._latest.newer.disabled
    board._latest.older.click()
    assert len(_Elements(_markup(board)).found["nc-latest-run"]) == 3 and board._latest.older.disabled
    assert "Latest runs" in board.static_html()  # the page shown is in the snapshot too
    board.close()


def test_results_against_energy_weigh_each_result_and_draw_its_front(tmp_path, settings):
    """(issue 17) A result sweep whose runs logged a metric is weighed as ``%carbon sweeps`` weighs
    it: its selected run, the cheapest run within 1 % of its metric and that run's share of the
    energy, with the chart of metric against energy as inline SVG, the costliest sweep first, at
    most ``top_tradeoffs``; a sweep with no metric is left out; a hostile sweep label and metric
    name stay text; the static snapshot keeps it all."""
    from notebook_carbon.registry.metrics import log_metrics, set_direction

    path = str(tmp_path / "r.sqlite")
    weird, metric = "<b onmouseover=alert(7)>tune</b>", "<i>score</i>"
    with Registry.open(path) as reg:
        ids = [_record(reg, t=T0 + i * H, energy=(i + 1) * H, name=f"lr{i}", sweep="lr", final=i == 3)
               for i in range(4)]  # fmt: skip
        for run, acc in zip(ids, (0.80, 0.925, 0.90, 0.93)):
            log_metrics(reg, run, {"acc": acc, "loss": 1 - acc})
        odd = [_record(reg, t=T0 + (5 + i) * H, energy=H / (i + 1), sweep=weird, final=i == 0) for i in range(2)]
        set_direction(reg, "thesis", metric, "lower")
        for run, score in zip(odd, (2.0, 2.01)):
            log_metrics(reg, run, {metric: score})
        for i in range(2):  # a result with no metric: nothing to weigh
            _record(reg, t=T0 + (8 + i) * H, energy=9 * H, sweep="plain", final=i == 1)
    board = Dashboard(path, "thesis", settings=settings, wait=True)
    markup = _markup(board)
    cells = _Elements(markup)
    assert cells.one("nc-tradeoffs")["data-nc-count"] == "2"
    lr, odd_one = cells.found["nc-tradeoff"]  # the costliest first: lr (10 Wh) before the other (1.5 Wh)
    assert (lr["data-nc-sweep"], lr["data-nc-metric"]) == ("lr", "acc")
    assert (lr["data-nc-selected"], lr["data-nc-cheapest"]) == (str(ids[3]), str(ids[1]))
    assert _value(lr) == pytest.approx(0.5)  # 2 Wh of 4 Wh
    assert (f"lr: selected run {ids[3]}, acc 0.93 with 4 Wh; run {ids[1]} (acc 0.925, within 1 %) used 50 % "
            f"of that energy (higher is better; front: runs {ids[0]}, {ids[1]}, {ids[3]})") in lr["text"]  # fmt: skip
    assert odd_one["data-nc-metric"] == metric and odd_one["data-nc-sweep"] == weird  # the attributes, decoded
    assert f"{weird}: selected run {odd[0]}" in odd_one["text"] and "lower is better" in odd_one["text"]
    assert "<b onmouseover" not in markup and "<i>score" not in markup
    charts = cells.found["nc-chart-pareto"]
    assert len(charts) == 2 and all(chart["tag"] == "div" for chart in charts)
    pareto = next(p.value for p in _html_parts(board) if "nc-tradeoffs" in p.value)
    assert pareto.count("<svg") == 2 and "acc against energy" in pareto
    assert pareto in board.static_html()
    # a refresh draws again only the chart of a result whose figures changed (each takes vl-convert
    # a fifth of a second): none after a cell elsewhere, one after a new value in sweep lr
    assert board._fronts.drawn == 2
    board.refresh(wait=True)
    assert board._fronts.drawn == 2
    with Registry.open(path) as reg:
        log_metrics(reg, ids[0], {"acc": 0.85})
    board.refresh(wait=True)
    assert board._fronts.drawn == 3 and _markup(board).count("<svg") >= 4
    board.close()
    one = Dashboard(path, "thesis", settings=settings, wait=True, top_tradeoffs=1)
    assert [t["data-nc-sweep"] for t in _Elements(_markup(one)).found["nc-tradeoff"]] == ["lr"]
    one.close()
    with pytest.raises(Exception, match="top_tradeoffs must be a whole number"):
        Dashboard(path, "thesis", settings=settings, top_tradeoffs=0)


def test_results_against_energy_say_how_to_log_a_metric_when_none_was(known, settings):
    board = Dashboard(known, "thesis", settings=settings, wait=True)
    cells = _Elements(_markup(board))
    assert cells.one("nc-tradeoffs")["data-nc-count"] == "0" and "nc-tradeoff" not in cells.found
    assert "%carbon log acc=0.93" in cells.one("nc-tradeoffs")["text"]
    board.close()


def test_results_that_cannot_be_read_leave_the_other_charts_drawn(known, settings, monkeypatch):
    """A review found one failure blanking every chart: the results' read failing says so in its
    section only; the cumulative and sweep charts are drawn."""
    import notebook_carbon.analysis.tradeoffs as tradeoffs

    def broken(*args, **kwargs):
        raise RuntimeError("metrics table locked")

    monkeypatch.setattr(tradeoffs, "sweep_tradeoffs", broken)
    board = Dashboard(known, "thesis", settings=settings, wait=True)
    cells = _Elements(_markup(board))
    assert "<svg" in board._cumulative.value and "<svg" in board._sweep_chart.value
    assert "the results could not be read: RuntimeError: metrics table locked" in cells.one("nc-tradeoffs")["text"]
    board.close()


def test_charts_drawn_at_once_leave_altair_s_validation_as_it_was(known, settings):
    """The dashboard turns altair's validation off while it draws (a global of altair's): two chart
    threads at once (a refresh during a draw) must not leave it off for the user's own charts."""
    import threading

    from altair.utils import schemapi

    from notebook_carbon.analysis.frame import runs
    from notebook_carbon.widgets import figures
    from notebook_carbon.widgets.drawing import draw_charts

    df = runs(known, project="thesis", columns=figures.CHART_COLUMNS)
    assert schemapi.DEBUG_MODE is True
    threads = [threading.Thread(target=draw_charts, args=(df,), kwargs={"max_points": 300, "top_bars": 12})
               for _ in range(6)]  # fmt: skip
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert schemapi.DEBUG_MODE is True

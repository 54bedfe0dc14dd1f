"""The live meter (``live.py``): the line itself, and what each kind of front end gets.

Real parts throughout: an IPython ``InteractiveShell`` (terminal-like, no kernel), nbclient executing
a notebook (headless), and real kernels driven by ``FakeWidgetFrontEnd``, which does with the kernel's
messages what JupyterLab's widget manager does (checked against ``@jupyter-widgets/base`` and
``@jupyter-widgets/controls`` 8: comm targets, model creation, the ``DirectionalLinkModel`` copy, the
restore on connecting). Only the hardware is fake (``notebook_carbon.testing``).
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import nbformat
import pytest
from IPython.core.interactiveshell import InteractiveShell
from jupyter_client.manager import start_new_kernel
from nbclient import NotebookClient

from notebook_carbon.impact.intensity import resolve_intensity
from notebook_carbon.live import LiveMeter, format_power, live_html, live_text
from notebook_carbon.magic import load_ipython_extension, unload_ipython_extension
from notebook_carbon.measure import Window
from notebook_carbon.session import Session
from notebook_carbon.settings import Settings
from notebook_carbon.testing import FakeMeter, FakeWidgetFrontEnd, fake_detection

VIEW = "application/vnd.jupyter.widget-view+json"

# -- the line (pure) ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("watts", "text"),
    [(253.4, "253 W"), (41.24, "41.2 W"), (6.0, "6 W"), (0.5, "500 mW"), (999.4, "999 W"), (1234, "1.23 kW")],
)
def test_power_reads_with_three_significant_figures(watts, text):
    assert format_power(watts) == text


@pytest.mark.parametrize(
    ("name", "elapsed_s", "power_w", "energy_j", "emissions_g", "expected"),
    [
        (
            "lr=0.1", 12.7, {"ram": 6.0, "gpu": 253.4, "cpu": 41.24}, 11160.0, 0.62,
            "carbon [lr=0.1] (running): 3.1 Wh · 620 mg CO2e · 12 s · now GPU 253 W, CPU 41.2 W, RAM 6 W",
        ),
        (None, 1.02, {}, 0.0, 0.0, "carbon (running): 0 J · 0 g CO2e · 1 s · no power reading yet"),
        (
            None, 133.9, {"cpu": 65.0}, 8703.5, 0.135,
            "carbon (running): 2.42 Wh · 135 mg CO2e · 2 min 13 s · now CPU 65 W",
        ),
    ],
)
def test_live_text(name, elapsed_s, power_w, energy_j, emissions_g, expected):
    assert live_text(name, elapsed_s, power_w, energy_j, emissions_g) == expected


def test_live_html_escapes_everything_the_user_typed():
    value = live_html(live_text('<img src=x onerror="alert(1)"> & co', 2.0, {"cpu": 10.0}, 20.0, 0.001))
    assert "<img" not in value and "&lt;img src=x onerror=&quot;alert(1)&quot;&gt; &amp; co" in value
    assert value.startswith('<span class="nc-live-meter" ') and value.count("<") == 2  # our span only


# -- the meter on its own, with a real window and a clock the test moves --------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_shows_after_a_second_then_at_most_about_once_a_second_and_closes(capsys):
    clock = Clock()
    meters = (FakeMeter("gpu", "nvml-counter", "GPU 0", 250.0), FakeMeter("cpu", "rapl", "package-0", 40.0))
    meter = LiveMeter(InteractiveShell.instance(), name="run <1>", intensity=resolve_intensity("FR"), pue=1.0)
    # interval: the sampler thread never gets to this window; the test reads it as the sampler would
    window = Window(meters, interval_s=3600, clock=clock, on_sample=meter.on_sample).start()
    shown = []
    try:
        for t in (0.2, 0.6, 0.99, 1.0, 1.3, 1.85, 1.95, 2.0, 2.9, 3.5, 3.9):
            clock.now = 1000.0 + t
            window._tick()  # one sampler read, which calls the hook
            shown.append(meter.values_shown)
        widget = meter._widget
        assert widget.value.count("carbon [run &lt;1&gt;] (running): ") == 1
        assert "now GPU 250 W, CPU 40 W" in widget.value
    finally:
        assert meter.close() is None
        window.stop()
    assert shown == [0, 0, 0, 1, 1, 1, 2, 2, 3, 3, 4]  # at 1.0 s, then once 0.9 s of the run has passed
    assert widget.comm is None and widget.layout.comm is None and widget.style.comm is None  # all closed
    meter.on_sample(window)  # a read in flight when the cell ended changes nothing
    assert meter.values_shown == 4 and meter._widget is None
    assert capsys.readouterr().out == ""  # no text/plain: nothing for a front end without widgets to print


# -- a terminal-like shell: no kernel, so never a widget --------------------------------------------


def test_a_terminal_shell_prints_only_the_summary_line(tmp_path, capsys):
    session = Session(
        Settings(registry=str(tmp_path / "r.sqlite"), region="FR", sample_interval_s=0.05),
        detection=fake_detection(),
    )
    shell = InteractiveShell.instance()
    ext = load_ipython_extension(shell, session=session)
    try:
        result = shell.run_cell("%%carbon --name long\nimport time\ntime.sleep(1.3)\n", store_history=True)
        assert result.success
        assert not ext.frontend.renders_widgets() and ext._live == {}
    finally:
        unload_ipython_extension(shell)
    out = capsys.readouterr()
    assert out.out.count("\n") == 1 and out.out.startswith("carbon [long]: ") and out.err == ""


# -- headless execution: nbclient --------------------------------------------------------------------


def test_nbclient_gets_one_summary_line_and_no_widget(tmp_path):
    nb = nbformat.v4.new_notebook()
    sources = [
        "%load_ext notebook_carbon",
        "%%carbon --name headless\nimport time\ntime.sleep(2.5)\n'slept'",
        "%%carbon --quiet\ntime.sleep(1.5)",
        "%%carbon\nquick = 1",
        "import sys\n'ipywidgets' in sys.modules",
    ]
    nb.cells = [nbformat.v4.new_code_cell(source) for source in sources]
    registry = str(tmp_path / "r.sqlite")
    env = {**os.environ, "NOTEBOOK_CARBON_REGISTRY": registry, "NOTEBOOK_CARBON_REGION": "FR"}
    NotebookClient(nb, timeout=120, kernel_name="python3").execute(env=env)

    _, slept, quiet, quick, imported = nb.cells
    assert [o.output_type for o in slept.outputs] == ["execute_result", "stream"]
    assert slept.outputs[0].data == {"text/plain": "'slept'"}
    assert slept.outputs[1].name == "stdout" and slept.outputs[1].text.startswith("carbon [headless]: ")
    assert slept.outputs[1].text.count("\n") == 1  # one line: no partial line before it
    assert quiet.outputs == []
    assert [o.output_type for o in quick.outputs] == ["stream"]
    assert imported.outputs[0].data["text/plain"] == "False"  # no cell here ever imported ipywidgets
    assert "widgets" not in nb.metadata  # nbclient recorded no widget state: the probe has no parent here
    assert not any(VIEW in o.get("data", {}) for cell in nb.cells for o in cell.outputs)


# -- a kernel and a front end with a widget manager ---------------------------------------------------


SETUP = """
import time
from notebook_carbon.magic import current_extension, load_ipython_extension
from notebook_carbon.session import Session
from notebook_carbon.settings import Settings
from notebook_carbon.testing import fake_detection

load_ipython_extension(get_ipython(), session=Session(
    Settings(registry={registry!r}, region="FR", sample_interval_s=0.25), detection=fake_detection()))

def wait_for_live(values, timeout_s=60):
    '''Until the live line of the running cell has shown ``values`` values.'''
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if any(meter.values_shown >= values for meter in current_extension()._live.values()):
            return
        time.sleep(0.02)
    raise TimeoutError(f"the live line showed fewer than {{values}} values in {{timeout_s}} s")
"""


@pytest.fixture
def kernel(tmp_path):
    manager, client = start_new_kernel(kernel_name="python3", env=dict(os.environ), startup_timeout=60)
    yield manager, client, SETUP.format(registry=str(tmp_path / "kernel.sqlite"))
    client.stop_channels()
    manager.shutdown_kernel(now=True)


@pytest.fixture
def lab(kernel):
    """A kernel whose front end has answered the probe (the cells after the extension's first)."""
    manager, client, setup = kernel
    front = FakeWidgetFrontEnd(client)
    front.run(setup)
    front.run("pass")  # the probe's answer is read once the kernel is idle, before this cell
    front.manager = manager
    return front


def of_kind(messages: list[dict], kind: str) -> list[dict]:
    return [m for m in messages if m["msg_type"] == kind]


def stream(messages: list[dict], name: str = "stdout") -> str:
    return "".join(m["content"]["text"] for m in of_kind(messages, "stream") if m["content"]["name"] == name)


def printed(front: FakeWidgetFrontEnd, code: str):
    """The value a cell prints, as Python evaluates it (for looking inside the kernel)."""
    return eval(stream(front.run(f"print(repr({code}))")))  # noqa: S307 (our own kernel's repr)


def check_live_line(messages: list[dict], *, summary_head: str) -> list[str]:
    """The live line's life in one cell's messages, in order; returns the values it showed."""
    kinds = [m["msg_type"] for m in messages]
    opened = {m["content"]["comm_id"]: m["content"]["data"]["state"] for m in of_kind(messages, "comm_open")}
    ((model_id, state),) = [(comm_id, s) for comm_id, s in opened.items() if s["_model_name"] == "HTMLModel"]
    (display,) = of_kind(messages, "display_data")
    view = {"version_major": 2, "version_minor": 0, "model_id": model_id}
    assert display["content"]["data"] == {VIEW: view}
    display_id = display["content"]["transient"]["display_id"]
    updates = [m["content"] for m in of_kind(messages, "comm_msg") if m["content"]["comm_id"] == model_id]
    values = [state["value"]] + [update["data"]["state"]["value"] for update in updates]
    closed = {m["content"]["comm_id"] for m in of_kind(messages, "comm_close")}
    parts = {model_id, state["layout"].removeprefix("IPY_MODEL_"), state["style"].removeprefix("IPY_MODEL_")}
    assert parts <= closed
    (emptied,) = of_kind(messages, "update_display_data")
    assert emptied["content"]["data"] == {} and emptied["content"]["transient"] == {"display_id": display_id}
    last_close = max(i for i, m in enumerate(messages) if m["msg_type"] == "comm_close")
    summary = [i for i, m in enumerate(messages) if summary_head in m["content"].get("text", "")]
    assert len(summary) == 1 and stream(messages).count(summary_head) == 1
    assert kinds.index("comm_open") < kinds.index("display_data") < last_close < summary[0]
    assert kinds.index("update_display_data") < summary[0]
    return values


def test_the_live_line_updates_then_gives_way_to_the_summary(lab):
    quick = lab.run("%%carbon\nquick = 1")
    assert not of_kind(quick, "comm_open") and not of_kind(quick, "display_data")
    assert printed(lab, "'ipywidgets' in __import__('sys').modules") is False  # a quick cell never imports it
    # the sampler and the registry writer are running since the first metered cell
    threads = printed(lab, "sorted(t.name for t in __import__('threading').enumerate())")

    before = len(lab.messages)
    cell = lab.execute("%%carbon --name '<b>bold</b> & co'\nwait_for_live(3)\n'done'")
    messages = lab.wait(cell)
    during = [m for m in lab.messages[before:] if m["msg_type"] not in ("status", "execute_input")]
    # every message the cell caused carries its parent: nothing went to another cell
    assert during == [m for m in messages if m["msg_type"] not in ("status", "execute_input")]
    values = check_live_line(messages, summary_head="carbon [<b>bold</b> & co]: ")
    assert len(values) >= 3 and len(set(values)) == len(values)  # each value new: the figures advance
    assert all("carbon [&lt;b&gt;bold&lt;/b&gt; &amp; co] (running): " in v for v in values)
    assert not any("<b>" in v for v in values)
    assert "now GPU 300 W, CPU 65 W, RAM 6 W" in values[-1]
    assert of_kind(messages, "execute_result")[0]["content"]["data"]["text/plain"] == "'done'"
    assert [m for m in lab.models.values() if m.get("_model_name") == "HTMLModel"] == []  # gone from the page

    assert printed(lab, "len(__import__('ipywidgets').widgets.widget._instances)") == 0  # every widget closed
    assert printed(lab, "current_extension()._live") == {}
    assert printed(lab, "sorted(t.name for t in __import__('threading').enumerate())") == threads


def test_a_failing_cell_closes_its_live_line(lab):
    messages = lab.run("%%carbon --name broken\nwait_for_live(1)\nraise RuntimeError('diverged')")
    check_live_line(messages, summary_head="carbon [broken] (failed): ")
    assert [m["content"]["ename"] for m in of_kind(messages, "error")] == ["RuntimeError"]
    assert printed(lab, "len(__import__('ipywidgets').widgets.widget._instances)") == 0


def test_an_interrupted_cell_closes_its_live_line(lab):
    def interrupt_once_shown(msg):
        if msg["msg_type"] == "display_data":
            lab.manager.interrupt_kernel()  # what the stop button does: SIGINT to the kernel

    cell = lab.execute("%%carbon --name stopped\nimport time\ntime.sleep(120)")
    messages = lab.wait(cell, on_message=interrupt_once_shown)
    check_live_line(messages, summary_head="carbon [stopped] (interrupted): ")
    assert [m["content"]["ename"] for m in of_kind(messages, "error")] == ["KeyboardInterrupt"]
    assert printed(lab, "len(__import__('ipywidgets').widgets.widget._instances)") == 0


def test_a_cell_that_raises_keyboard_interrupt_closes_its_live_line(lab):
    messages = lab.run("%%carbon\nwait_for_live(1)\nraise KeyboardInterrupt")
    check_live_line(messages, summary_head="carbon (interrupted): ")


def test_quiet_shows_nothing_at_all(lab):
    messages = lab.run("%%carbon --quiet\nimport time\ntime.sleep(2.5)")
    assert [m["msg_type"] for m in messages] == ["status", "execute_input", "status"]


def test_a_failing_live_line_is_one_warning_and_the_cell_result_stands(lab):
    lab.run("import notebook_carbon.live as live\nlive.live_html = lambda text: 1 / 0")
    messages = lab.run("%%carbon --name fine\nimport time\ntime.sleep(1.6)\n'result'")
    stderr = stream(messages, "stderr")
    assert stderr.count("notebook-carbon warning: the live meter stopped and is off for this session: ") == 1
    assert "ZeroDivisionError" in stderr
    assert of_kind(messages, "execute_result")[0]["content"]["data"]["text/plain"] == "'result'"
    assert stream(messages).startswith("carbon [fine]: ")
    again = lab.run("%%carbon\ntime.sleep(1.6)")
    assert not of_kind(again, "comm_open")  # off for the session, and not said again:
    assert [m["content"]["name"] for m in of_kind(again, "stream")] == ["stdout"]


def test_run_all_right_after_loading_shows_the_line_in_a_notebook_front_end(kernel):
    """The probe's answer waits behind cells already queued: a front end naming its cells and letting
    them read input gets the line meanwhile; a client doing neither does not."""
    _, client, setup = kernel
    front = FakeWidgetFrontEnd(client)
    cells = [
        front.execute(setup, cell_id="c1"),
        front.execute("%%carbon --name lab\nwait_for_live(1)", cell_id="c2"),
        front.execute("%%carbon --name plain\nimport time\ntime.sleep(1.6)", allow_stdin=False),
    ]
    messages = [front.wait(msg_id) for msg_id in cells]
    check_live_line(messages[1], summary_head="carbon [lab]: ")
    assert not of_kind(messages[2], "comm_open") and not of_kind(messages[2], "display_data")
    assert printed(front, "current_extension().frontend._answer") is True  # answered since


def test_a_front_end_without_widgets_refuses_and_gets_only_the_summary(kernel):
    _, client, setup = kernel
    front = FakeWidgetFrontEnd(client, widgets=False)
    front.run(setup, cell_id="c1")
    messages = front.run("%%carbon --name plain\nimport time\ntime.sleep(1.6)", cell_id="c2")
    assert not of_kind(messages, "comm_open") and not of_kind(messages, "display_data")
    assert stream(messages).startswith("carbon [plain]: ") and stream(messages).count("\n") == 1
    assert printed(front, "current_extension().frontend._answer") is False


def test_loading_the_extension_imports_no_widgets():
    code = textwrap.dedent(
        """
        import sys
        from IPython.core.interactiveshell import InteractiveShell
        shell = InteractiveShell.instance()
        shell.run_cell("%load_ext notebook_carbon")
        shell.run_cell("%%carbon --quiet\\nx = 1")
        print('ipywidgets' in sys.modules)
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "False"


def test_a_kernel_records_the_cell_jupyterlab_names_for_magic_nested_and_track_runs(kernel, tmp_path):
    """In a real kernel, each run records the id of the cell the front end sent it with (the view
    opens the notebook there): a ``%%carbon`` cell, a ``%%carbon`` cell run by ``run_cell`` inside
    another cell (the outer cell's id: the inner one has none of its own), a ``track()`` block,
    and nothing for a front end that sends no id."""
    _, client, setup = kernel
    front = FakeWidgetFrontEnd(client, widgets=False)
    front.run(setup, cell_id="setup")
    front.run("%%carbon --name magic --quiet\nx = 1", cell_id="cell-magic")
    front.run("get_ipython().run_cell('%%carbon --name inner --quiet\\ny = 2')", cell_id="cell-outer")
    front.run("import notebook_carbon\nwith notebook_carbon.track(name='block', quiet=True):\n    z = 3", cell_id="c-track")
    front.run("with notebook_carbon.track(name='no id', quiet=True):\n    z = 4")
    front.run("assert current_extension().session.writer().flush(10)")
    from notebook_carbon.registry import Registry

    with Registry.open(str(tmp_path / "kernel.sqlite")) as reg:
        runs = {run["name"]: run for run in reg.runs()}
    assert {name: run["cell_id"] for name, run in runs.items()} == {
        "magic": "cell-magic", "inner": "cell-outer", "block": "c-track", "no id": None}  # fmt: skip
    assert runs["block"]["execution_count"] is not None  # its cell's In [n], as the magic's runs have

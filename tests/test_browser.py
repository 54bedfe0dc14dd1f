"""The notebooks as a user sees them: JupyterLab in a real browser (Debian's chromium, driven by
Playwright) runs the quickstart, and a test notebook shows the live meter and the dashboard.

Skipped without chromium, jupyterlab or playwright, except under CI, where they fail (``browser.py``).
Each test leaves a screenshot in its ``tmp_path`` (and in ``NOTEBOOK_CARBON_TEST_ARTIFACTS`` when set).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import time
from pathlib import Path

import browser  # tests/browser.py
import nbformat
import pytest
from pg import in_ci

from notebook_carbon.impact.footprint import format_mass_g
from notebook_carbon.registry import new_uid
from notebook_carbon.registry.store import Registry
from notebook_carbon.statements import statement_facts

QUICKSTART = Path(__file__).resolve().parent.parent / "example_notebooks" / "quickstart.ipynb"
WIDGETS = Path(__file__).resolve().parent / "data" / "browser-widgets.ipynb"
# On stderr, what is no mere chatter: a magic's UsageError, a traceback, notebook-carbon's own
# warnings (a cell run unmetered, a live meter stopped, a registry not written).
FAILED = re.compile(
    r"^UsageError|Traceback \(most recent call last\)|^notebook-carbon warning:", re.MULTILINE
)
SUMMARY = re.compile(r"^carbon(?: \[(?P<name>[^\]]*)\])?: .* CO2e .*")
LIVE = re.compile(r"^carbon \[slow-cell\] \(running\): .* CO2e")


@pytest.fixture(scope="module")
def browser_requirements():
    """Skip without chromium, jupyterlab or playwright; fail instead under CI, or when
    ``NOTEBOOK_CARBON_TEST_CHROMIUM`` names no executable."""
    reason = browser.missing()
    if reason is not None:
        if in_ci():
            pytest.fail(f"{reason}. CI is set, so the browser tests must run, not skip", pytrace=False)
        pytest.skip(reason)
    reason = browser.unusable()
    if reason is not None:
        pytest.fail(reason, pytrace=False)


@pytest.fixture(scope="module")
def jupyterlab(browser_requirements, tmp_path_factory):
    """One JupyterLab server for the module, serving copies of the notebooks, recording into its
    own registry (``jupyterlab.registry``)."""
    base = tmp_path_factory.mktemp("jupyterlab")
    root = base / "notebooks"
    root.mkdir()
    shutil.copy(QUICKSTART, root / "quickstart.ipynb")
    shutil.copy(WIDGETS, root / WIDGETS.name)
    try:
        lab = browser.JupyterLab(root, base / "home", str(base / "registry.sqlite"))
    except RuntimeError as exc:
        pytest.fail(str(exc), pytrace=False)
    yield lab
    lab.close()


@pytest.fixture(scope="module")
def chromium(browser_requirements):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=browser.CHROMIUM, args=list(browser.CHROMIUM_ARGS), headless=True
        )
        yield launched
        launched.close()


@pytest.fixture
def page(chromium, jupyterlab):
    """A fresh browser context and page; the kernels it started are shut down after the test.
    The page's JavaScript errors are printed, so a failing test shows them."""
    context = chromium.new_context(viewport={"width": 1280, "height": 1000})
    context.set_default_timeout(30_000)
    opened = context.new_page()
    problems: list[str] = []
    opened.on("pageerror", lambda error: problems.append(f"page error: {error}"))
    opened.on(
        "console", lambda m: problems.append(f"console {m.type}: {m.text}") if m.type == "error" else None
    )
    yield opened
    context.close()
    jupyterlab.shut_down_kernels()
    if problems:
        print("the page's JavaScript errors:", *problems, sep="\n")


def run_notebook(
    page, jupyterlab, name: str, out: Path, *, before_run: str | None = None
) -> nbformat.NotebookNode:
    """Open, run all cells, save and screenshot notebook ``name``; return it as saved.
    ``before_run``: JavaScript evaluated just before Run All, given ``browser.CODE_CELLS``."""
    try:
        browser.open_notebook(page, jupyterlab, name)
        if before_run:
            page.evaluate(before_run, browser.CODE_CELLS)
        browser.run_all_cells(page)
        browser.save_notebook(page)
        page.locator(f"{browser.CODE_CELLS} >> nth=-1").scroll_into_view_if_needed()
    finally:  # also, and most useful, when the run went wrong
        browser.screenshot(page, out, Path(name).stem)
    return nbformat.read(jupyterlab.root / name, as_version=4)


def assert_ran_without_errors(page, saved: nbformat.NotebookNode, name: str) -> None:
    """Every code cell ran, and none left an error output or an error on stderr."""
    code = [cell for cell in saved.cells if cell.cell_type == "code"]
    errors = [
        f"code cell {i}: " + (f"{o.ename}: {o.evalue}" if o.output_type == "error" else o.text.strip())
        for i, cell in enumerate(code)
        for o in cell.outputs
        if o.output_type == "error"
        or (o.output_type == "stream" and o.name == "stderr" and FAILED.search(o.text))
    ]
    assert not errors, f"errors in the outputs of {name}: {errors}"
    unexecuted = browser.unexecuted_cells(page)
    assert not unexecuted, f"code cells {unexecuted} of {name} never ran"
    assert all(cell.execution_count for cell in code)


def assert_no_chart_placeholder(page) -> None:
    """No chart left as JupyterLab's stand-in for a mimetype it cannot render (altair's Vega-Lite 6)."""
    placeholder = re.search(r"VegaLite \d+ object", page.locator("body").text_content())
    assert placeholder is None, f"a chart shows as {placeholder.group(0)!r} instead of rendering"


def test_quickstart_runs_in_jupyterlab(jupyterlab, page, tmp_path):
    saved = run_notebook(page, jupyterlab, "quickstart.ipynb", tmp_path)
    assert_ran_without_errors(page, saved, "quickstart.ipynb")
    assert_no_chart_placeholder(page)

    lines = [line for cell in browser.output_texts(page) for text in cell for line in text.splitlines()]
    summaries = [found for found in map(SUMMARY.match, lines) if found]
    assert [s["name"] for s in summaries] == ["baseline", None, None, "lr=2.0", "lr=4.0"], lines
    assert all("FR grid" in s.group(0) for s in summaries)
    assert any(line.startswith("run 3 [unnamed] status ok") for line in lines)  # %carbon last

    # The kernel JupyterLab started recorded into the server's registry, naming this notebook.
    with Registry.open(jupyterlab.registry) as registry:
        runs = [r for r in registry.runs() if r["notebook"] == str(jupyterlab.root / "quickstart.ipynb")]
    assert sorted(r["status"] for r in runs) == ["ok"] * 5
    # Its last cell shows the dashboard (%carbon dashboard), charts drawn offline.
    assert_dashboard_shows_the_registry(page, jupyterlab, tmp_path)
    # The README's picture: this notebook with the sidebar open, light theme, 400 px (run alone, with
    # -k quickstart, the registry holds this notebook's runs only)
    page.locator(f".jp-SideBar .lm-TabBar-tab[data-id='{SIDEBAR[1:]}']").click()
    page.wait_for_selector(f"{SIDEBAR} .jp-NotebookCarbon-chart svg path", timeout=30_000)
    resize_sidebar(page, 400)
    # the metered cells of its sweep (the dashboard, at the end, names this machine's paths)
    page.locator(".jp-MarkdownCell", has_text="A small sweep").evaluate("cell => cell.scrollIntoView({block: 'start'})")
    page.wait_for_timeout(300)
    found = page.evaluate(SIDEBAR_LAYOUT, SIDEBAR)
    shot = browser.screenshot(page, tmp_path, "quickstart-sidebar")
    if SIDEBAR_SCREENSHOT:  # on request (README)
        shutil.copy(shot, SIDEBAR_SCREENSHOT)
    assert not found["scrolls"] and not found["wider"] and not found["split"], found
    assert re.match(rf"{registry_runs(jupyterlab)}( |$)", sidebar_value(page, "Runs"))


# The live meter is caught by an observer, not by polling: it shows for about 2 s, while the cell runs.
WATCH_LIVE_METER = """codeCells => {
    window.ncLiveMeter = null;
    const look = () => {
        const meter = document.querySelector('.nc-live-meter');
        if (meter === null) return;
        const seen = window.ncLiveMeter || (window.ncLiveMeter = {
            cell: [...document.querySelectorAll(codeCells)].findIndex(c => c.contains(meter)),
            texts: [],
        });
        const text = meter.textContent.trim();
        if (text && !seen.texts.includes(text) && seen.texts.length < 50) seen.texts.push(text);
    };
    new MutationObserver(look).observe(document.body, {
        childList: true, subtree: true, characterData: true, attributes: true, attributeFilter: ['class'],
    });
}"""


def test_live_meter_and_dashboard_in_jupyterlab(jupyterlab, page, tmp_path):
    """The widgets of a metered notebook: the live meter while a 3 s cell runs, then the dashboard
    with the project's total (as the registry has it) and its chart drawn as SVG."""
    name = WIDGETS.name
    saved = run_notebook(page, jupyterlab, name, tmp_path, before_run=WATCH_LIVE_METER)
    code = [cell for cell in saved.cells if cell.cell_type == "code"]
    slow = next(i for i, cell in enumerate(code) if "time.sleep(3)" in cell.source)

    seen = page.evaluate("window.ncLiveMeter")
    assert seen is not None, "no element with class nc-live-meter appeared while the 3 s metered cell ran"
    assert seen["cell"] == slow, (
        f"the live meter appeared in code cell {seen['cell']}, not the metered cell {slow}"
    )
    assert any(LIVE.match(text) for text in seen["texts"]), f"the live meter read {seen['texts']}"

    assert_ran_without_errors(page, saved, name)

    assert_dashboard_shows_the_registry(page, jupyterlab, tmp_path)


def assert_dashboard_shows_the_registry(page, jupyterlab, out: Path) -> None:
    """One dashboard, whose project total is the registry's (as the statement computes it), with
    its charts drawn as SVG and no chart placeholder anywhere."""
    dashboard = page.locator(".nc-dashboard")
    assert dashboard.count() == 1, (
        f"{dashboard.count()} elements with class nc-dashboard after %carbon dashboard"
    )
    dashboard.scroll_into_view_if_needed()
    # the charts are drawn on the kernel's own thread after the figures, and arrive a moment later
    try:
        dashboard.locator("svg").first.wait_for(state="attached", timeout=60_000)
    except Exception:  # said below, with the screenshot of what was shown
        pass
    browser.screenshot(page, out, "dashboard")
    total = dashboard.locator(".nc-total-project-emissions")
    assert total.count() == 1, "the dashboard shows no project total (class nc-total-project-emissions)"
    expected_g = statement_facts(jupyterlab.registry, project="default")["totals"]["emissions_g"]["value"]
    shown = total.text_content()
    shown_g, tolerance_g = shown_mass_g(shown)
    assert abs(shown_g - expected_g) <= tolerance_g, (
        f"the dashboard's project total reads {shown!r}; the registry has {format_mass_g(expected_g)}"
        f" ({expected_g} g)"
    )
    assert float(total.get_attribute("data-nc-value")) == pytest.approx(expected_g, rel=1e-9)

    charts = dashboard.locator("svg")
    assert charts.count() >= 1, "the dashboard has no chart drawn as SVG"
    box = charts.first.bounding_box()
    assert box is not None and box["width"] > 50 and box["height"] > 50, (
        f"the dashboard's chart is drawn {box}"
    )
    assert_no_chart_placeholder(page)


def shown_mass_g(text: str) -> tuple[float, float]:
    """The first CO2e mass in ``text`` ("2.25 mg", "1,204 g", "1.2 kg") in grams, and half a unit of
    its last shown digit: how far from the exact figure a correctly rounded display can be."""
    found = re.search(r"(\d[\d,]*(?:\.(\d+))?)\s*(mg|g|kg|t)(?![A-Za-z])", text)
    assert found, f"no mass with a unit in {text!r}"
    scale = {"mg": 1e-3, "g": 1.0, "kg": 1e3, "t": 1e6}[found.group(3)]
    decimals = len(found.group(2) or "")
    return float(found.group(1).replace(",", "")) * scale, 0.5 * 10**-decimals * scale * (1 + 1e-9)


@pytest.mark.parametrize(
    ("text", "grams", "tolerance"),
    [
        ("2.25 mg CO2e", 2.25e-3, 0.005e-3),
        ("total: 1,204 g", 1204.0, 0.5),
        ("1.2 kg", 1200.0, 50.0),
        ("0.467 mg0.28-0.65 mg", 0.467e-3, 0.0005e-3),  # a figure and its range, as textContent joins them
    ],
)
def test_shown_mass_g_reads_a_mass_and_its_precision(text, grams, tolerance):
    shown, within = shown_mass_g(text)
    assert shown == pytest.approx(grams) and within == pytest.approx(tolerance)


SIDEBAR = "#notebook-carbon-sidebar"
# Read at import: the suite's clean_environ fixture removes NOTEBOOK_CARBON_* variables from each test.
SIDEBAR_SCREENSHOT = os.environ.get("NOTEBOOK_CARBON_SIDEBAR_SCREENSHOT")
HOSTILE = "<img src=x onerror=alert(1)>"


def sidebar_value(page, label: str) -> str:
    """The value of the project section's row ``label`` in the sidebar."""
    row = page.locator(f"{SIDEBAR} .jp-NotebookCarbon-section >> nth=0").locator(
        ".jp-NotebookCarbon-row", has=page.locator(".jp-NotebookCarbon-label", has_text=re.compile(f"^{label}$"))
    )
    return row.locator(".jp-NotebookCarbon-value").text_content()


def registry_runs(lab) -> int:
    """How many runs of project default the registry of JupyterLab ``lab`` holds."""
    return statement_facts(lab.registry, project="default")["totals"]["runs"]


def record_job(reg: Registry, *, ranks: int, nodes: int) -> int:
    """A finished distributed job of ``ranks`` ranks on ``nodes`` nodes, one GPU each; its run id."""
    from notebook_carbon.registry import jobs, new_uid

    key, now = f"slurm:{new_uid()[:6]}", time.time() - 2  # the newest run: among the sidebar's latest
    for rank in range(ranks):
        node = f"node-{rank * nodes // ranks}"
        part = {"uid": new_uid(), "job": key, "block": 1, "rank": rank, "node": node, "started_at": now}
        run_id = jobs.start_part(reg, {"uid": new_uid(), "project": "default", "started_at": now, "name": "ddp",
                                       "job": key, "job_block": 1, "job_world_size": ranks}, part)  # fmt: skip
        device = {"component": "gpu", "device": f"GPU {rank}", "method": "nvml-counter", "energy_j": 50.0,
                  "machine_energy_j": 50.0, "share": 1.0}  # fmt: skip
        jobs.update_part(reg, part["uid"], {"status": "ok", "ended_at": now + 1, "duration_s": 1.0, "energy_j": 50.0,
                                            "emissions_g": 0.5, "devices": [device]}, final=True)  # fmt: skip
    return run_id


def test_sidebar_shows_the_registry_and_follows_a_metered_cell(jupyterlab, page, tmp_path):
    """The sidebar (the built labextension over the server extension): its project totals are the
    registry's, a metered cell run in the notebook updates it, and a hostile label stays text."""
    name = "sidebar.ipynb"
    notebook = nbformat.v4.new_notebook()
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    notebook.cells = [
        nbformat.v4.new_code_cell("%load_ext notebook_carbon"),
        nbformat.v4.new_code_cell(f"%%carbon --name sidebar-check --sweep '{HOSTILE}'\nx = sum(range(1000))"),
    ]
    nbformat.write(notebook, jupyterlab.root / name)

    def registry_runs() -> int:
        return statement_facts(jupyterlab.registry, project="default")["totals"]["runs"]

    with Registry.open(jupyterlab.registry) as reg:  # run alone, this test may come first: an empty registry
        record_job(reg, ranks=4, nodes=2)
    before = registry_runs()
    try:
        browser.open_notebook(page, jupyterlab, name)
        page.locator(f".jp-SideBar .lm-TabBar-tab[data-id='{SIDEBAR[1:]}']").click()
        page.wait_for_selector(f"{SIDEBAR} .jp-NotebookCarbon-section", timeout=30_000)
        assert re.match(rf"{before}( |$)", sidebar_value(page, "Runs")), sidebar_value(page, "Runs")
        shown_g, tolerance_g = shown_mass_g(sidebar_value(page, "Emissions"))
        expected_g = statement_facts(jupyterlab.registry, project="default")["totals"]["emissions_g"]["value"]
        assert abs(shown_g - expected_g) <= tolerance_g

        browser.run_all_cells(page)
        page.wait_for_function(
            """([selector, runs]) => {
                const row = [...document.querySelectorAll(selector + ' .jp-NotebookCarbon-row')]
                    .find(r => r.querySelector('.jp-NotebookCarbon-label').textContent === 'Runs');
                return row && row.querySelector('.jp-NotebookCarbon-value').textContent === String(runs);
            }""",
            arg=[SIDEBAR, before + 1],
            timeout=30_000,
        )
        assert registry_runs() == before + 1
        here = page.locator(f"{SIDEBAR} .jp-NotebookCarbon-section >> nth=1").text_content()
        assert here.startswith(f"This notebook: {name}") and re.search(r"Runs1(?!\d)", here), here
        text = page.locator(SIDEBAR).text_content()
        assert HOSTILE in text, "the sweep named by --sweep is not listed as text"
        assert "4 ranks · 2 nodes" in text, "the distributed job is not shown as one run of its ranks"
        assert page.locator(f"{SIDEBAR} img").count() == 0, "user text became an element in the sidebar"
    finally:
        browser.screenshot(page, tmp_path, "sidebar")


# In the side panel: nothing wider than the panel, and no figure broken across two lines.
SIDE_LAYOUT = """() => {
    const board = [...document.querySelectorAll('.jp-LinkedOutputView .nc-dashboard, .jp-SideBar .nc-dashboard,'
        + ' .lm-DockPanel .nc-dashboard')].find(b => !b.closest('.jp-Notebook'));
    if (!board) return null;
    const box = board.getBoundingClientRect();
    const wider = [...board.querySelectorAll('*')].filter(el => {
        const r = el.getBoundingClientRect();
        return r.width > 0 && (r.right > box.right + 1 || r.left < box.left - 1)
            && getComputedStyle(el).display !== 'none';
    }).map(el => el.className || el.tagName).slice(0, 5);
    const split = [...board.querySelectorAll('td[data-nc-value]')].filter(td => {
        if (getComputedStyle(td).display === 'none') return false;
        const range = document.createRange();
        const text = [...td.childNodes].find(n => n.nodeType === 3 && n.textContent.trim());
        if (!text) return false;
        range.selectNodeContents(text);
        return new Set([...range.getClientRects()].map(r => Math.round(r.top))).size > 1;
    }).map(td => td.className).slice(0, 5);
    return {width: box.width, wider, split, scrolls: board.scrollWidth > board.clientWidth + 1};
}"""


def test_the_dashboard_in_its_side_panel_fits_its_width(jupyterlab, page, tmp_path):
    """``%carbon dashboard --side`` at the side panel's default width: one column, nothing wider
    than the panel and no figure split across lines."""
    name = "side.ipynb"
    notebook = nbformat.v4.new_notebook()
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    notebook.cells = [nbformat.v4.new_code_cell(source) for source in (
        "%load_ext notebook_carbon",
        "%%carbon --name side-check --sweep 'a sweep with a rather long name for a narrow panel'\nx = sum(range(1000))",
        "%carbon dashboard --side",
    )]  # fmt: skip
    nbformat.write(notebook, jupyterlab.root / name)
    try:
        browser.open_notebook(page, jupyterlab, name)
        browser.run_all_cells(page)
        page.wait_for_function(SIDE_LAYOUT, timeout=60_000)
        page.wait_for_timeout(1000)  # its charts, drawn on their own thread
        found = page.evaluate(SIDE_LAYOUT)
    finally:
        browser.screenshot(page, tmp_path, "dashboard-side")
    assert found["width"] < 540, f"the side panel is {found['width']} px wide: not the narrow layout"
    assert not found["scrolls"] and not found["wider"], f"wider than the panel: {found['wider']}"
    assert not found["split"], f"figures split across lines: {found['split']}"



# The sidebar at a given width: what is wider than the panel, and which figures wrap onto two lines.
SIDEBAR_LAYOUT = """selector => {
    const panel = document.querySelector(selector);
    const box = panel.getBoundingClientRect();
    const wider = [...panel.querySelectorAll('*')].filter(el => {
        const r = el.getBoundingClientRect();
        return r.width > 0 && r.right > box.right + 1;
    }).map(el => el.className || el.tagName).slice(0, 5);
    const lines = el => new Set([...el.getClientRects()].map(r => Math.round(r.top))).size;
    const split = [...panel.querySelectorAll('.jp-NotebookCarbon-value, .jp-NotebookCarbon-range')]
        .filter(el => el.getClientRects().length && lines(el) > 1).map(el => el.textContent).slice(0, 5);
    return {width: box.width, wider, split, scrolls: panel.scrollWidth > panel.clientWidth + 1};
}"""

LONG = "resnet50 " + "x" * 191  # 200 characters


def resize_sidebar(page, width: int) -> None:
    """Drag the handle between the notebook and the right sidebar, as a user does, until the
    sidebar's panel is ``width`` px wide."""
    for _ in range(3):
        box = page.locator(SIDEBAR).bounding_box()
        if abs(box["width"] - width) < 2:
            return
        handle = page.locator("#jp-main-split-panel > .lm-SplitPanel-handle:not(.lm-mod-hidden)").last.bounding_box()
        x, y = handle["x"] + handle["width"] / 2, handle["y"] + handle["height"] / 2
        page.mouse.move(x, y)
        page.mouse.down()
        page.mouse.move(x + box["width"] - width, y, steps=8)
        page.mouse.up()


def test_the_sidebar_fits_250_and_400_px_in_both_themes_and_downloads_the_statement(jupyterlab, page, tmp_path):
    """A realistic project (sweeps, a failed run, a repeat, 200-character names, a sweep whose
    runs logged their accuracy) in the sidebar at 250 px and 400 px, light and dark: nothing wider
    than the panel, no figure split across lines, the result weighed against its energy with its
    runs drawn; its button downloads the statement in the format chosen."""
    from notebook_carbon.registry.metrics import log_metrics

    ids = []
    with Registry.open(jupyterlab.registry) as reg:
        now = time.time()
        for i, (name, status) in enumerate([("lr=0.1", "ok"), ("lr=0.5", "failed"), (LONG, "ok"), (LONG, "ok"),
                                            (LONG, "ok")]):  # fmt: skip
            ids.append(run := reg.record_run({"uid": new_uid(), "project": "default", "name": name, "sweep": LONG if i > 1 else "lr",
                                  "started_at": now - 600 * (5 - i), "gpu_count": 1},
                                 {"status": status, "energy_j": 3.6e6 * (i + 1), "emissions_g": 180.0 * (i + 1),
                                  "duration_s": 600.0, "gpu_energy_j": 3.6e6 * (i + 1), "gpu_method": "nvml-counter"}))  # fmt: skip
            if i > 1:
                log_metrics(reg, run, {"val_accuracy": (0.90, 0.80, 0.905)[i - 2]})
    shots = []
    try:
        browser.open_notebook(page, jupyterlab, WIDGETS.name)
        page.locator(f".jp-SideBar .lm-TabBar-tab[data-id='{SIDEBAR[1:]}']").click()
        page.wait_for_selector(f"{SIDEBAR} .jp-NotebookCarbon-section .jp-NotebookCarbon-row", timeout=30_000)
        for theme in ("JupyterLab Light", "JupyterLab Dark"):
            if theme != "JupyterLab Light":
                browser.menu(page, "Settings", "Theme", theme)
                page.wait_for_function("t => document.body.dataset.jpThemeName === t", arg=theme, timeout=30_000)
            for width in (250, 400):
                resize_sidebar(page, width)
                found = page.evaluate(SIDEBAR_LAYOUT, SIDEBAR)
                shots.append(browser.screenshot(page, tmp_path, f"sidebar-{width}-{theme.split()[-1].lower()}"))
                assert abs(found["width"] - width) < 4, found
                assert not found["scrolls"] and not found["wider"], f"{theme}, {width} px: wider than the panel: {found}"
                assert not found["split"], f"{theme}, {width} px: figures split across lines: {found['split']}"
        text = page.locator(SIDEBAR).text_content()
        assert LONG in text and "updated" in page.locator(f"{SIDEBAR} .jp-NotebookCarbon-state").text_content()
        # the sweep's selected run (the fifth, the latest) against the third, within 1 % of its accuracy with 60 % of its energy
        weighed = page.locator(f"{SIDEBAR} .jp-NotebookCarbon-tradeoff").filter(has_text=LONG)  # (the quickstart's too)
        assert weighed.count() == 1
        said = weighed.locator(".jp-NotebookCarbon-tradeoff-text").text_content()
        assert said.startswith(f"selected run {ids[4]} (the latest: none marked final), val_accuracy 0.905 with 5 kWh")
        assert f"run {ids[2]} (val_accuracy 0.9, within 1 %) used 60 % of that energy" in said, said
        dots = weighed.locator("circle")
        assert dots.count() == 3 and weighed.locator(".jp-NotebookCarbon-dot-selected").get_attribute("data-run") == str(ids[4])
        assert weighed.locator(".jp-NotebookCarbon-dot-cheapest").get_attribute("data-run") == str(ids[2])
        assert weighed.locator(".jp-NotebookCarbon-dot-other").get_attribute("data-run") == str(ids[3])  # beaten on both
        assert weighed.locator(".jp-NotebookCarbon-pareto-front").count() == 1
        weighed.scroll_into_view_if_needed()
        shots.append(browser.screenshot(page, tmp_path, "sidebar-results-against-energy"))
        for value, check in (("md", lambda t: t.startswith("## Environmental impact")),
                             ("json", lambda t: json.loads(t)["scope"]["project"] == "default")):  # fmt: skip
            page.locator(f"{SIDEBAR} .jp-NotebookCarbon-format select").select_option(value)
            with page.expect_download(timeout=30_000) as download:
                page.locator(f"{SIDEBAR} .jp-NotebookCarbon-download").click()
            saved = Path(download.value.path()).read_text(encoding="utf-8")
            assert check(saved), f"the {value} statement downloaded reads {saved[:200]!r}"
            assert download.value.suggested_filename == f"carbon-statement-default.{value}"
        # a server extension older than the sidebar (not restarted after an upgrade) has no tradeoffs
        # endpoint: that section says so, the rest of the panel still shows
        page.route("**/notebook-carbon/tradeoffs*", lambda route: route.fulfill(
            status=404, content_type="application/json", body='{"message": "Not Found"}'))  # fmt: skip
        try:
            page.locator(f"{SIDEBAR} .jp-NotebookCarbon-refresh").click()
            page.wait_for_function(
                "s => document.querySelector(s)?.textContent.includes('Could not be read: Not Found')", arg=SIDEBAR,
                timeout=30_000)  # fmt: skip
            assert re.match(r"\d+", sidebar_value(page, "Runs")) and page.locator(f"{SIDEBAR} .jp-NotebookCarbon-error").count() == 0
        finally:
            page.unroute("**/notebook-carbon/tradeoffs*")
    finally:
        browser.menu(page, "Settings", "Theme", "JupyterLab Light")


# Which cell of the notebook shown is active, and whether it is in view.
ACTIVE_CELL = """() => {
    const panel = [...document.querySelectorAll('.jp-NotebookPanel')].find(p => !p.classList.contains('lm-mod-hidden'));
    if (!panel) return null;
    const cells = [...panel.querySelectorAll('.jp-Notebook .jp-Cell')];
    const active = panel.querySelector('.jp-Notebook .jp-Cell.jp-mod-active');
    if (!active) return null;
    const shown = active.getBoundingClientRect(), view = panel.querySelector('.jp-WindowedPanel-outer, .jp-Notebook')
        .getBoundingClientRect();
    const index = active.dataset.windowedListIndex !== undefined ? Number(active.dataset.windowedListIndex)
        : cells.indexOf(active);
    return {title: document.querySelector('.lm-DockPanel-tabBar .lm-TabBar-tab.lm-mod-current').textContent,
            index, inView: shown.bottom > view.top && shown.top < view.bottom};
}"""


def test_a_run_in_the_sidebar_opens_its_notebook_at_its_cell_and_a_redundant_run_at_the_cell_it_repeats(
    jupyterlab, page, tmp_path
):
    """A notebook in a folder runs the same cell twice, 25 cells apart: the kernel records the cell
    ids JupyterLab sent; with the notebook closed, the sidebar's redundant run opens it at the
    first cell (in view, selected), and the latest run's link goes to the second."""
    (jupyterlab.root / "study").mkdir(exist_ok=True)
    name = "study/repeat.ipynb"
    code = "%%carbon --name probe --sweep repeat-check\nsquares = [i * i for i in range(100)]"
    notebook = nbformat.v4.new_notebook()
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    filler = [nbformat.v4.new_markdown_cell(f"## Note {i}\n\n" + "A paragraph of notes. " * 20) for i in range(25)]
    notebook.cells = [nbformat.v4.new_code_cell("%load_ext notebook_carbon"), nbformat.v4.new_code_cell(code),
                      *filler, nbformat.v4.new_code_cell(code)]  # fmt: skip
    first_id, second_id = notebook.cells[1].id, notebook.cells[-1].id
    nbformat.write(notebook, jupyterlab.root / name)
    try:
        browser.open_notebook(page, jupyterlab, name)
        browser.run_all_cells(page)
        with Registry.open(jupyterlab.registry) as reg:
            runs = [run for run in reg.runs(project="default") if run["sweep"] == "repeat-check"]
        assert [(run["cell_id"], run["redundant_of"]) for run in runs] == [(second_id, runs[1]["id"]), (first_id, None)]
        browser.save_notebook(page)
        browser.menu(page, "File", "Close Tab")
        page.wait_for_function("() => !document.querySelector('.jp-NotebookPanel:not(.lm-mod-hidden)')")
        page.locator(f".jp-SideBar .lm-TabBar-tab[data-id='{SIDEBAR[1:]}']").click()
        redundant = page.locator(f"{SIDEBAR} .jp-NotebookCarbon-redundant", has_text=f"#{runs[0]['id']} probe")
        link = redundant.locator(".jp-NotebookCarbon-repeats .jp-NotebookCarbon-link")
        assert link.text_content() == f"repeats #{runs[1]['id']} probe (ok)"
        assert link.get_attribute("title") == f"Open {name} at the cell it ran in"
        link.click()
        page.wait_for_function(f"() => {{ const a = ({ACTIVE_CELL})(); return a && a.index === 1 && a.inView; }}",
                               timeout=30_000)  # fmt: skip
        assert page.evaluate(ACTIVE_CELL)["title"].startswith("repeat.ipynb")
        mode = page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook").get_attribute("class")
        assert "jp-mod-commandMode" in mode.split(), "the cell opened for editing: a key pressed next would change it"
        browser.screenshot(page, tmp_path, "cell-link-repeated")
        latest = page.locator(f"{SIDEBAR} .jp-NotebookCarbon-item", has_text=f"#{runs[0]['id']} probe").first
        latest.locator(".jp-NotebookCarbon-name .jp-NotebookCarbon-link").click()
        last = len(notebook.cells) - 1
        page.wait_for_function(f"() => {{ const a = ({ACTIVE_CELL})(); return a && a.index === {last} && a.inView; }}",
                               timeout=30_000)  # fmt: skip
    finally:
        browser.screenshot(page, tmp_path, "cell-link")


def test_a_saved_dashboard_reopened_after_its_kernel_is_gone_shows_its_snapshot(jupyterlab, page, tmp_path):
    """The live dashboard while its kernel runs, and again when the page is loaded again; the
    notebook saved, its kernel shut down and the notebook opened again (a new kernel, which has no
    such widget): the snapshot it carries, with its totals and charts, where JupyterLab's widget
    renderer alone shows "model not found"."""
    name = "saved-dashboard.ipynb"
    notebook = nbformat.v4.new_notebook()
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    notebook.cells = [nbformat.v4.new_code_cell(source) for source in (
        "%load_ext notebook_carbon", "%%carbon --name snapshot-check\nx = sum(range(1000))", "%carbon dashboard")]  # fmt: skip
    nbformat.write(notebook, jupyterlab.root / name)
    board = ".jp-Notebook .jp-OutputArea-output .nc-dashboard"
    try:
        browser.open_notebook(page, jupyterlab, name)
        browser.run_all_cells(page)
        page.wait_for_selector(f"{board}:not(.nc-static) .nc-chart-cumulative svg", timeout=60_000)
        assert page.locator(f"{board}.nc-static").count() == 0, "the snapshot shows beside the live dashboard"
        live_total = page.locator(f"{board} .nc-total-project-emissions").first.text_content()
        browser.save_notebook(page)
        browser.open_notebook(page, jupyterlab, name)  # the page loaded again: the same kernel, its widget live
        page.wait_for_selector(f"{board}:not(.nc-static) .nc-chart-cumulative svg", timeout=60_000)
        assert page.locator(f"{board}.nc-static").count() == 0, "the snapshot, where the kernel has the widget"
        browser.menu(page, "Kernel", "Shut Down Kernel")
        browser.menu(page, "File", "Close Tab")
        browser.open_notebook(page, jupyterlab, name)  # a new kernel
        page.wait_for_selector(f"{board}.nc-static .nc-chart-cumulative svg", timeout=60_000)
        page.wait_for_timeout(1000)  # the widget renderer has had its chance to fail by now
        text = page.locator(".jp-Notebook").text_content()
        assert "Error displaying widget" not in text and "model not found" not in text
        assert page.locator(f"{board}.nc-static .nc-total-project-emissions").first.text_content() == live_total
        assert "a snapshot of the notebook-carbon dashboard" in text
    finally:
        browser.screenshot(page, tmp_path, "saved-dashboard")

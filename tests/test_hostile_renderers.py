"""Hostile user text through every renderer: a run, sweep, project, notebook, host or grid named
with terminal escapes, control characters, markup, template syntax, LaTeX commands or table
separators stays text, whole, in Markdown (rendered by mistune, Jupyter's nbconvert renderer),
LaTeX (compiled by pdflatex under a time limit, its text read back from the PDF), JSON, the model
card's YAML and the dashboard's HTML.

Names reach the registry as a hand edit in SQL would write them (not through ``record_run``, whose
checks may refuse some of them): every reader must cope with whatever a row holds.
"""

from __future__ import annotations

import html.parser
import json
import os
import re
import shutil
import sqlite3
import subprocess
import unicodedata
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings as hypothesis_settings, strategies as st

from notebook_carbon.registry import Registry, new_uid
from notebook_carbon.settings import resolve
from notebook_carbon.statements import impact_statement, statement_facts
from notebook_carbon.statements.escape import latex_escape, markdown_escape

HOSTILE = (
    "\x1b[2J\x1b[H\x1b]0;owned\x07title",
    "carriage\rreturn",
    "two\nlines\r\nthree",
    "nul\x00byte",
    "bidi \u202eevil\u202c txt",
    "<img src=x onerror=alert(1)>",
    "</script><script>alert(1)</script>",
    "{{ 7*7 }} {% raw %}",
    r"\input{/etc/passwd}",
    "[2J]",
    "[2J] starts a row",
    "*starred",
    "* leading star",
    "[opt] leading option",
    "$x$ math $y$",
    "a|b|c",
    "50%_lr&{bs}#1 ~^ -- `q' \"d\" !` ?`",
    "tab\there \x0b\x0c\x85\u2028\u2029 separators",
    "long" + "x" * 2000,
)
"""Names no renderer may turn into anything but text."""

SETTINGS = resolve({"hardware": "workstation", "embodied_kg": 1000.0, "lifetime_years": 4.0}, environ={})
FIXED = {"pue": 1.2, "intensity_g_per_kwh": 100.0, "host": "lab", "attribution": "machine"}


def hostile_registry(path: Path, project: str, names: list[str]) -> str:
    """A registry of project ``project`` with two runs per name (so each name's sweep is a result
    and its row of the sweeps table follows another), each name as run name, sweep, notebook, tag,
    CPU, GPU, grid region and grid source. Written through ``record_run`` with plain names, then
    given the hostile ones by hand in SQL."""
    location = str(path)
    with Registry.open(location) as reg:
        for i in range(len(names)):
            for j, status in enumerate(("ok", "failed")):
                reg.record_run(
                    {"uid": new_uid(), "project": "p", "sweep": f"s{i}", "code_fingerprint": "c", "name": f"n{i}",
                     "started_at": 1.8e9 + 10 * i + j, "gpu_count": 1, **FIXED},
                    {"status": status, "energy_j": 1000.0 * (len(names) - i), "emissions_g": 0.03, "duration_s": 1.0,
                     "ended_at": 1.8e9 + 10 * i + j + 1, "cpu_energy_j": 1000.0 * (len(names) - i), "cpu_method": "rapl"},
                )  # fmt: skip
    with sqlite3.connect(location) as conn:
        for i, name in enumerate(names):
            conn.execute(
                "UPDATE runs SET project = ?, name = ?, sweep = ?, notebook = ?, tags = ?, cpu_model = ?,"
                " gpu_model = ?, intensity_region = ?, intensity_source = ? WHERE name = ?",
                (project, name, name, name, json.dumps([name, "all"]), name, name, name, name, f"n{i}"),
            )
    conn.close()
    return location


def shown(name: str) -> str:
    """What a name may read as once rendered: every control, line or paragraph separator and
    bidirectional formatting character a space."""
    return "".join(" " if _unsafe(c) else c for c in name)


def _unsafe(char: str) -> bool:
    return unicodedata.category(char) in ("Cc", "Zl", "Zp") or unicodedata.bidirectional(char) in (
        "LRE", "RLE", "LRO", "RLO", "PDF", "LRI", "RLI", "FSI", "PDI") or char in "\u200e\u200f\u061c"  # fmt: skip


def _no_unsafe_characters(text: str) -> None:
    found = sorted({f"U+{ord(c):04X}" for c in text if _unsafe(c) and c != "\n"})
    assert not found, f"control or bidi characters in the output: {found}"


def _unescaped(text: str, char: str) -> list[int]:
    """Where ``char`` appears in ``text`` not escaped by a backslash (an odd run of them before it)."""
    found = []
    for match in re.finditer(re.escape(char), text):
        backslashes = len(text[: match.start()]) - len(text[: match.start()].rstrip("\\"))
        if backslashes % 2 == 0:
            found.append(match.start())
    return found


# -- Markdown --------------------------------------------------------------------------------


class _Cells(html.parser.HTMLParser):
    """The tags of an HTML document and the text of each table row's cells."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: set[str] = set()
        self.rows: list[list[str]] = []
        self._cell: list[str] | None = None

    def handle_starttag(self, tag, attrs):
        self.tags.add(tag)
        if tag == "tr":
            self.rows.append([])
        elif tag in ("td", "th"):
            self._cell = []

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None:
            self.rows[-1].append("".join(self._cell))
            self._cell = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)


MARKDOWN_TAGS = {"h2", "h3", "p", "table", "thead", "tbody", "tr", "th", "td", "strong", "ul", "li"}


def check_markdown(md: str, names: list[str]) -> None:
    import mistune

    _no_unsafe_characters(md)
    assert not _unescaped(md, "$"), "an unescaped $ starts math in Jupyter and on GitHub"
    rendered = mistune.create_markdown(escape=False, plugins=["table", "strikethrough"])(md)
    cells = _Cells()
    cells.feed(rendered)
    assert cells.tags <= MARKDOWN_TAGS, f"markup from user text: {cells.tags - MARKDOWN_TAGS}"
    sweeps = [row for row in cells.rows if len(row) == 7 and row[0] != "Sweep"]
    assert all(len(row) in (3, 4, 7) for row in cells.rows), [len(row) for row in cells.rows]
    assert sorted(row[0] for row in sweeps) == sorted(shown(name).strip() for name in names)


@pytest.mark.parametrize("project", ["plain", *HOSTILE[:6], "$x$", "[2J]"])
def test_markdown_keeps_hostile_names_text_and_tables_whole(tmp_path, project):
    path = hostile_registry(tmp_path / "r.sqlite", project, list(HOSTILE))
    md = impact_statement(path, project=project, settings=SETTINGS, format="md")
    check_markdown(md, list(HOSTILE))
    # the appendix's first line, after the paragraph for the main text: "Project <name>: n metered runs ..."
    first = next(part for part in md.split("\n\n") if part.startswith("Project "))
    assert "\n" not in first.strip() or project == "plain"


# hypothesis's text without surrogates (which no database stores) and its own control characters
NAMES = st.text(
    st.characters(blacklist_categories=("Cs",)) | st.sampled_from(list("\x1b\r\n\x00\u202e|$*[]<>&\\`#_")),
    min_size=1, max_size=40,
).filter(lambda name: shown(name).strip())  # fmt: skip


@hypothesis_settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(name=NAMES)
def test_markdown_escape_of_any_text(name):
    """One table cell of any text: one cell, of that text, and no markup or math."""
    import mistune

    escaped = markdown_escape(name)
    _no_unsafe_characters(escaped)
    assert not _unescaped(escaped, "$") and not _unescaped(escaped, "|")
    rendered = mistune.create_markdown(escape=False, plugins=["table"])(f"| a | b |\n|---|---|\n| {escaped} | x |\n")
    cells = _Cells()
    cells.feed(rendered)
    assert cells.tags <= MARKDOWN_TAGS
    assert cells.rows[1] == [shown(name).strip(), "x"]


# -- LaTeX -----------------------------------------------------------------------------------

needs_pdflatex = pytest.mark.skipif(
    shutil.which("pdflatex") is None and not os.environ.get("CI"),
    reason="no pdflatex here; .ci/run installs it (texlive-latex-base), so CI runs this",
)


def compile_latex(tex: str, where: Path) -> str:
    """``tex`` compiled by pdflatex in batch mode under a time limit: the PDF's text (pdftotext),
    or without pdftotext the log, after checking it has no error and no missing character."""
    where.mkdir(parents=True, exist_ok=True)
    (where / "s.tex").write_text(tex, encoding="utf-8")
    try:
        done = subprocess.run(
            ["pdflatex", "-interaction=nonstopmode", "-halt-on-error", "-no-shell-escape", "s.tex"],
            cwd=where, capture_output=True, text=True, errors="replace", timeout=60, stdin=subprocess.DEVNULL,
        )
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"pdflatex did not finish in 60 s (a name made it loop): {str(exc.stdout)[-2000:]}")
    log = (where / "s.log").read_text(errors="replace")
    assert done.returncode == 0, done.stdout[-3000:]
    assert "Missing character" not in log and "! " not in log, log[-3000:]
    if shutil.which("pdftotext") is None:
        return log
    return subprocess.run(["pdftotext", "-nopgbrk", "s.pdf", "-"], cwd=where, capture_output=True, text=True,
                          check=True, timeout=60).stdout  # fmt: skip


def skeleton(text: str) -> str:
    """The letters, digits, brackets and stars of ``text``, accents dropped: what survives any font
    encoding, so a name's skeleton must be found in the PDF's."""
    return re.sub(r"[^A-Za-z0-9\[\]*]", "", unicodedata.normalize("NFKD", text))


def check_pdf_text(text: str, names: list[str]) -> None:
    if shutil.which("pdftotext") is None:
        return
    found = skeleton(text)
    for name in names:
        assert skeleton(name)[:60] in found, f"{name!r} is not in the PDF"


@needs_pdflatex
def test_latex_with_every_hostile_name_compiles_and_prints_them(tmp_path):
    names = list(HOSTILE)
    project = "[2J] *p $x$ \\input{/etc/passwd}"
    path = hostile_registry(tmp_path / "r.sqlite", project, names)
    tex = impact_statement(path, project=project, settings=SETTINGS, format="latex", regions=["DE"])
    text = compile_latex(tex, tmp_path / "tex")
    check_pdf_text(text, [project, *(n for n in names if not n.startswith("long"))])
    assert "[2J] starts a row" in text.replace("\n", " ") or shutil.which("pdftotext") is None


@needs_pdflatex
@pytest.mark.parametrize("name", ["[2J]", "*", "[opt]", "[", "]", "*[x]"])
def test_latex_name_at_the_start_of_a_later_table_row_and_of_the_document(tmp_path, name):
    """``\\\\`` then ``[`` reads a length (``[2J]`` loops forever), ``\\\\`` then ``*`` is its starred
    form: each would stop the document or vanish from it."""
    path = hostile_registry(tmp_path / "r.sqlite", name, ["first row", name])
    tex = impact_statement(path, project=name, settings=SETTINGS, format="latex")
    text = compile_latex(tex, tmp_path / "tex")
    check_pdf_text(text, [name])
    if shutil.which("pdftotext"):
        assert f"Project {name}:" in text


LATEX_NAMES = st.text(
    st.characters(min_codepoint=32, max_codepoint=126) | st.sampled_from(list("\x1b\r\n\x00\u202e\t\u00e9\u00fc")),
    min_size=1, max_size=30,
).filter(lambda name: skeleton(name))  # fmt: skip


@needs_pdflatex
@hypothesis_settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(name=LATEX_NAMES)
def test_latex_of_any_text_compiles_and_prints_it(tmp_path_factory, name):
    where = tmp_path_factory.mktemp("latex")
    path = hostile_registry(where / "r.sqlite", name, ["first row", name])
    tex = impact_statement(path, project=name, settings=SETTINGS, format="latex")
    check_pdf_text(compile_latex(tex, where / "tex"), [name])


@given(name=NAMES)
@hypothesis_settings(max_examples=60, deadline=None)
def test_latex_escape_leaves_nothing_a_macro_can_take(name):
    """No bracket or star can follow ``\\\\`` or ``\\item`` as an argument, no brace or backslash is
    unbalanced, no control character is left."""
    escaped = latex_escape(name)
    assert not re.search(r"(?<!\{)[\[\]*]|[\[\]*](?!\})", escaped), escaped
    assert not any(unicodedata.category(c).startswith("C") for c in escaped)
    depth = 0
    for match in re.finditer(r"\\.|[{}]", escaped):
        depth += {"{": 1, "}": -1}.get(match.group(), 0)
        assert depth >= 0
    assert depth == 0


def tradeoff_registry(path: Path, project: str, names: list[str]) -> str:
    """(issue 17) A registry of ``project`` with one result sweep per name, the name its label and
    its metric's (declared higher is better): two ok runs, the selected one (final) with 0.9 and
    2 kJ, the other within 1 % of it (0.895) with half the energy, so each sweep has a sentence."""
    from notebook_carbon.registry.metrics import log_metrics, set_direction

    location = str(path)
    with Registry.open(location) as reg:
        for i in range(len(names)):
            for j, (energy, value) in enumerate(((2000.0, 0.9), (1000.0, 0.895))):
                run = reg.record_run(
                    {"uid": new_uid(), "project": "p", "sweep": f"s{i}", "name": f"n{i}", "is_final": j == 0,
                     "started_at": 1.8e9 + 10 * i + j, **FIXED},
                    {"status": "ok", "energy_j": energy, "emissions_g": 0.03, "duration_s": 1.0,
                     "ended_at": 1.8e9 + 10 * i + j + 1},
                )  # fmt: skip
                log_metrics(reg, run, {f"m{i}": value})
            set_direction(reg, "p", f"m{i}", "higher")
    with sqlite3.connect(location) as conn:
        for i, name in enumerate(names):
            conn.execute("UPDATE runs SET project = ?, sweep = ? WHERE name = ?", (project, name, f"n{i}"))
            conn.execute("UPDATE metrics SET name = ? WHERE name = ?", (name, f"m{i}"))
            conn.execute("UPDATE metric_directions SET project = ?, name = ? WHERE name = ?", (project, name, f"m{i}"))
    conn.close()
    return location


TRADEOFF_NAMES = [n for n in HOSTILE if not n.startswith("long")][:12]


def _tradeoffs_said(text: str) -> int:
    """How many results' sentences ``text`` holds (the run ids vary; a page's number may fall inside one)."""
    return len(re.findall(r"the selected run \d+ reached", " ".join(text.split())))


def test_markdown_weighs_results_with_hostile_sweep_and_metric_names_as_text(tmp_path):
    """Each result's sentence ("In “<sweep>”, the selected run ... reached <metric> ...") keeps a
    hostile label and metric name text: no markup, no math, no broken line."""
    import mistune

    path = tradeoff_registry(tmp_path / "r.sqlite", "p", TRADEOFF_NAMES[:8])
    md = impact_statement(path, project="p", settings=SETTINGS, format="md")
    _no_unsafe_characters(md)
    assert not _unescaped(md, "$")
    rendered = mistune.create_markdown(escape=False, plugins=["table", "strikethrough"])(md)
    cells = _Cells()
    cells.feed(rendered)
    assert cells.tags <= MARKDOWN_TAGS, cells.tags - MARKDOWN_TAGS
    assert _tradeoffs_said(md) == 8, md


@needs_pdflatex
def test_latex_weighs_results_with_hostile_sweep_and_metric_names_and_compiles(tmp_path):
    """The LaTeX statement says each result's sentence too (it had none before), hostile names
    printed as themselves; more than eight results are counted, not listed."""
    path = tradeoff_registry(tmp_path / "r.sqlite", "p", TRADEOFF_NAMES)
    tex = impact_statement(path, project="p", settings=SETTINGS, format="latex")
    text = compile_latex(tex, tmp_path / "tex")
    check_pdf_text(text, TRADEOFF_NAMES)
    if shutil.which("pdftotext"):
        flat = " ".join(text.split())
        assert _tradeoffs_said(flat) == 8 and f"{len(TRADEOFF_NAMES) - 8} more results are in the JSON form" in flat
        assert "reached [2J] 0.9 with 2 kJ" in flat and "(2 runs logged [2J]; higher is better)" in flat


# -- JSON, model card ------------------------------------------------------------------------


def test_json_round_trips_every_hostile_name(tmp_path):
    project = HOSTILE[0]
    path = hostile_registry(tmp_path / "r.sqlite", project, list(HOSTILE))
    text = impact_statement(path, project=project, settings=SETTINGS, format="json", tags=["all"])
    document = json.loads(text)
    assert document["scope"]["project"] == project and document["scope"]["tags"] == ["all"]
    assert sorted(s["label"] for s in document["sweeps"]) == sorted(HOSTILE)
    assert sorted(document["hardware"]["cpus"]) == sorted(HOSTILE)
    assert sorted(g["source"] for g in document["methods"]["intensity"]["grids"]) == sorted(HOSTILE)
    assert document == statement_facts(path, project=project, settings=SETTINGS, tags=["all"],
                                       now=_generated_at(document))  # fmt: skip


def _generated_at(document):
    import datetime

    return datetime.datetime.fromisoformat(document["generated_at"])


@hypothesis_settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(name=NAMES)
@example(name="0\x85")  # NEL: a line break to YAML, read back as a space when written raw
@example(name="a\u2028b")
def test_json_and_model_card_of_any_name_parse_back_to_it(tmp_path_factory, name):
    import yaml
    from huggingface_hub import ModelCard

    path = hostile_registry(tmp_path_factory.mktemp("json") / "r.sqlite", name, [name])
    document = json.loads(impact_statement(path, project=name, settings=SETTINGS, format="json"))
    assert document["scope"]["project"] == name and [s["label"] for s in document["sweeps"]] == [name]
    card = impact_statement(path, project=name, settings=SETTINGS, format="model-card")
    assert card.startswith("---\n") and card.endswith("\n---\n")
    metadata = yaml.safe_load(card[len("---\n") : -len("---\n")])
    co2 = metadata["co2_eq_emissions"]
    assert f"runs of project {name}, every sweep" in co2["source"]
    assert co2["hardware_used"] == f"1 x {name}, {name}" and co2["geographical_location"] == name
    assert ModelCard(card + "\n# A model\n").data.co2_eq_emissions == co2


# -- the dashboard's HTML --------------------------------------------------------------------


def test_dashboard_html_escapes_hostile_names(tmp_path):
    from notebook_carbon.widgets import markup

    for name in HOSTILE:
        out = markup.e(name)
        _no_unsafe_characters(out)
        assert "<" not in out and ">" not in out and '"' not in out


def test_dashboard_snapshot_of_hostile_names_is_escaped_html(tmp_path):
    from notebook_carbon import analysis
    from notebook_carbon.analysis.frame import opened
    from notebook_carbon.widgets import figures, markup

    project = "<b>p</b>\x1b[2J"
    path = hostile_registry(tmp_path / "r.sqlite", project, list(HOSTILE))
    kernel = figures.Kernel(host="lab", pid=1, started_at=0.0)
    with opened(path) as reg:
        snapshot = figures.snapshot(reg, project=project, notebook=HOSTILE[1], kernel=kernel, settings=SETTINGS)
    page = markup.header(snapshot) + markup.totals(snapshot) + markup.sweeps(snapshot.sweeps, len(snapshot.sweeps))
    page += markup.redundant(snapshot)
    _no_unsafe_characters(page)
    _no_unsafe_characters(markup.summary_line(snapshot))  # plain text, for a terminal
    tags = _Cells()
    tags.feed(page)
    assert tags.tags <= {"style", "div", "b", "span", "table", "tr", "th", "td", "h4", "details", "summary",
                         "thead", "tbody", "code", "small", "ul", "li", "em", "abbr"}, tags.tags  # fmt: skip
    assert "<img" not in page and "<script" not in page and "&lt;img src=x onerror=alert(1)&gt;" in page

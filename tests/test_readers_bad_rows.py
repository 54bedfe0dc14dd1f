"""One absurd row never makes a project unreadable: every reader (the frame, the statement in each
format, the server's summaries, pages and sweeps) names the run, says why with ``record.BOUNDS``'s
reason, and leaves it out of its totals.

The bad rows are written as an older version, a bad import or a hand edit would leave them: with
plain SQL behind the registry's back, on SQLite and PostgreSQL.
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import subprocess

import pytest
from close import assert_close
from sqlalchemy import text

from notebook_carbon import analysis
from notebook_carbon.record import check_figure
from notebook_carbon.registry import Registry, new_uid
from notebook_carbon.server.reader import RegistryReader
from notebook_carbon.settings import Settings
from notebook_carbon.statements import SCHEMA_PATH, impact_statement, statement_facts
from notebook_carbon.statements.escape import markdown_escape

HOUR = 3600.0
YEAR_ONE = -62135596800.0  # 0001-01-01 UTC
BAD = [
    ("energy_j", math.inf),
    ("energy_j", -math.inf),
    ("energy_j", 1e308),
    ("emissions_g", 1e300),
    ("duration_s", -5.0),
    ("started_at", YEAR_ONE),
    ("started_at", 1e300),
    ("ended_at", math.inf),
    ("water_l", 1e200),
    ("pue", 0.0),
    ("gpu_energy_j", -1.0),
    ("gpu_count", 10**6),
]
"""Column and value of a run no reader may count: each outside ``record.BOUNDS``."""


def _run(i: int, **start) -> tuple[dict, dict]:
    energy = HOUR * (i + 1)
    return (
        {"uid": new_uid(), "project": "proj", "name": f"run{i}", "sweep": "lr", "code_fingerprint": "a",
         "notebook": "a.ipynb", "started_at": 1.8e9 + i * HOUR, "pue": 1.5, "intensity_g_per_kwh": 100.0,
         "intensity_region": "FR", "intensity_source": "test grid", "gpu_count": 1, "tags": ["t"], **start},
        {"status": "ok", "energy_j": energy, "emissions_g": energy / 3.6e6 * 150.0, "duration_s": 60.0,
         "ended_at": 1.8e9 + i * HOUR + 60.0, "embodied_g": 1.0, "cpu_energy_j": energy, "cpu_method": "rapl"},
    )  # fmt: skip


def project(location: str) -> list[int]:
    """Four runs of sweep lr (the last marked final) and one in no sweep; their ids."""
    with Registry.open(location) as reg:
        ids = [reg.record_run(*_run(i, is_final=i == 3)) for i in range(4)]
        ids.append(reg.record_run(*_run(4, sweep=None, code_fingerprint=None, notebook="b.ipynb")))
    return ids


def spoil(engine, run_id: int, column: str, value) -> None:
    """``column`` of run ``run_id`` set to ``value`` in plain SQL, as a hand edit would."""
    with engine.begin() as conn:
        conn.execute(text(f"UPDATE runs SET {column} = :value WHERE id = :id"), {"value": value, "id": run_id})


@pytest.mark.parametrize(("column", "value"), BAD, ids=[f"{c}={v!r}" for c, v in BAD])
def test_the_frame_leaves_out_an_absurd_row_and_names_it(registry_url, registry_engine, column, value):
    ids = project(registry_url)
    spoil(registry_engine, ids[1], column, value)
    df = analysis.runs(registry_url, project="proj")
    assert list(df.index) == [ids[0], ids[2], ids[3], ids[4]]
    (left_out,) = analysis.excluded(df)
    assert (left_out.id, left_out.name, left_out.project) == (ids[1], "run1", "proj")
    assert left_out.reason == check_figure(column, value)
    assert df["is_selected"].sum() == 1 and df.loc[ids[3], "is_selected"]
    # what the frame is made of: only plausible figures, so every total is finite
    assert math.isfinite(df["energy_j"].sum()) and df["started"].notna().all()
    # what the frame is the runs of: the database's totals leave out the same run
    totals = analysis.totals(registry_url, project="proj")
    assert totals.excluded_runs == 1 and totals.runs == len(df) and totals.energy_j == pytest.approx(df["energy_j"].sum())
    assert totals.overhead_ratio == pytest.approx((1 + 3 + 4 + 5) / 4)  # all runs over the selected one


def test_a_frame_without_bad_rows_excludes_nothing_and_filters_apply_to_the_excluded(tmp_path):
    location = str(tmp_path / "r.sqlite")
    ids = project(location)
    assert analysis.excluded(analysis.runs(location, project="proj")) == ()
    with Registry.open(location) as reg:
        bad = reg.record_run(*_run(5, notebook="b.ipynb", tags=["other"]))
    import sqlite3

    with sqlite3.connect(location) as conn:
        conn.execute("UPDATE runs SET energy_j = 9e999 WHERE id IN (?, ?)", (ids[1], bad))
    conn.close()
    assert [r.id for r in analysis.excluded(analysis.runs(location, project="proj"))] == [ids[1], bad]
    assert [r.id for r in analysis.excluded(analysis.runs(location, project="proj", notebook="a.ipynb"))] == [ids[1]]
    assert [r.id for r in analysis.excluded(analysis.runs(location, project="proj", tags="other"))] == [bad]
    assert analysis.excluded(analysis.runs(location, project="elsewhere")) == ()


@pytest.mark.parametrize(("column", "value"), BAD[:6], ids=[f"{c}={v!r}" for c, v in BAD[:6]])
def test_the_statement_says_which_run_it_left_out_and_why(tmp_path, column, value):
    import jsonschema

    location = str(tmp_path / "r.sqlite")
    ids = project(location)
    good = statement_facts(location, project="proj", settings=Settings())
    with Registry.open(location) as reg:
        reg.record_run(*_run(9, name="*bad* | $x$ <b>"))  # its figures are spoiled below
    from sqlalchemy import create_engine

    engine = create_engine(f"sqlite:///{location}")
    spoil(engine, ids[-1] + 1, column, value)
    engine.dispose()
    facts = statement_facts(location, project="proj", settings=Settings())
    reason = check_figure(column, value)
    assert facts["scope"]["excluded"] == [{"id": ids[-1] + 1, "name": "*bad* | $x$ <b>", "reason": reason}]
    assert_close(facts["totals"], good["totals"])
    assert_close(facts["development"], good["development"])
    schema = json.loads(SCHEMA_PATH.read_text())
    jsonschema.Draft202012Validator(schema).validate(facts)
    md = impact_statement(location, project="proj", settings=Settings(), format="md")
    said = f"1 run left out of these figures: run {ids[-1] + 1} (\\*bad\\* \\| \\$x\\$ &lt;b&gt;), {markdown_escape(reason)}."
    assert said in md
    rest = md.replace(said, "")  # no 300-digit or infinite figure elsewhere
    assert not re.search(r"\d[eE][+-]?\d|\binf\b|\d{16}", rest), rest
    card = impact_statement(location, project="proj", settings=Settings(), format="model-card")
    assert "1 run left out" in card


def test_the_selected_run_left_out_leaves_its_sweep_without_a_result(tmp_path):
    location = str(tmp_path / "r.sqlite")
    ids = project(location)
    import sqlite3

    with sqlite3.connect(location) as conn:
        conn.execute("UPDATE runs SET energy_j = 9e999 WHERE id = ?", (ids[3],))  # the run marked final
    conn.close()
    facts = statement_facts(location, project="proj", settings=Settings())
    assert [r["id"] for r in facts["scope"]["excluded"]] == [ids[3]]
    assert facts["development"]["selected_runs"] == 0 and facts["development"]["ratio"] is None
    assert facts["totals"]["energy_j"]["value"] == pytest.approx(HOUR * (1 + 2 + 3 + 5))


@pytest.mark.skipif(shutil.which("pdflatex") is None and not os.environ.get("CI"),
                    reason="no pdflatex here; .ci/run installs it (texlive-latex-base), so CI runs this")
def test_the_latex_statement_with_runs_left_out_compiles(tmp_path):
    location = str(tmp_path / "r.sqlite")
    ids = project(location)
    import sqlite3

    with sqlite3.connect(location) as conn:
        conn.execute("UPDATE runs SET energy_j = 9e999, name = '[2J] *x' WHERE id = ?", (ids[1],))
        conn.execute("UPDATE runs SET duration_s = -1, name = '\\input{x}' WHERE id = ?", (ids[2],))
    conn.close()
    tex = tmp_path / "s.tex"
    impact_statement(location, project="proj", settings=Settings(), format="latex", output=tex)
    assert "2 runs left out of these figures" in tex.read_text()
    done = subprocess.run(["pdflatex", "-interaction=nonstopmode", "-halt-on-error", tex.name], cwd=tmp_path,
                          capture_output=True, text=True, errors="replace", timeout=60, stdin=subprocess.DEVNULL)
    assert done.returncode == 0, done.stdout[-3000:]


# -- the server's own reads ------------------------------------------------------------------


def _document(value) -> dict:
    """``value`` as the handlers send it: JSON that refuses NaN and infinities."""
    return json.loads(json.dumps(value, allow_nan=False))


def test_the_server_summary_follows_bad_rows_as_the_statement(registry_url, registry_engine):
    ids = project(registry_url)
    reader = RegistryReader(registry_url, settings=Settings())
    try:
        _document(reader.summary("proj"))  # counted before any row went bad
        # the last, a run in no sweep: only its updated_at tells the server it changed (docs/server.md)
        for run_id, (column, value) in zip(ids[1:], [BAD[0], BAD[5], BAD[3], BAD[4]]):
            spoil(registry_engine, run_id, column, value)
            if run_id == ids[4]:
                spoil(registry_engine, run_id, "updated_at", 2e9)
            got = _document(reader.summary("proj"))
            wanted = statement_facts(registry_url, project="proj", settings=Settings())
            assert_close(got["totals"], wanted["totals"])
            assert_close(got["development"], wanted["development"])
            assert got["excluded"] == wanted["scope"]["excluded"] and got["runs"] == wanted["scope"]["runs"]
            for notebook in ("a.ipynb", "b.ipynb"):
                mine = statement_facts(registry_url, project="proj", notebook=notebook, settings=Settings())
                assert_close(_document(reader.summary("proj", notebook))["totals"], mine["totals"])
                assert reader.summary("proj", notebook)["excluded"] == mine["scope"]["excluded"]
        assert [r["id"] for r in got["excluded"]] == ids[1:]
        # a first summary of a project with bad rows: read in one go
        fresh = RegistryReader(registry_url, settings=Settings())
        try:
            assert _document(fresh.summary("proj"))["excluded"] == got["excluded"]
        finally:
            fresh.close()
    finally:
        reader.close()


def test_a_sum_too_large_for_a_block_statistic_is_no_error(tmp_path):
    location = str(tmp_path / "r.sqlite")
    ids = project(location)
    import sqlite3

    with sqlite3.connect(location) as conn:  # fsum of these overflows; of inf and -inf, is undefined
        conn.execute("UPDATE runs SET energy_j = 1e308 WHERE id IN (?, ?)", (ids[0], ids[1]))
        conn.execute("UPDATE runs SET emissions_g = 9e999 WHERE id = ?", (ids[2],))
        conn.execute("UPDATE runs SET emissions_g = -9e999 WHERE id = ?", (ids[3],))
    conn.close()
    reader = RegistryReader(location, settings=Settings())
    try:
        summary = _document(reader.summary("proj"))
        assert summary["runs"] == 1 and len(summary["excluded"]) == 4
        assert _document(reader.redundant("proj", limit=5, offset=0))["total"] == 0
    finally:
        reader.close()


def test_pages_and_sweeps_of_bad_rows_are_valid_json(registry_url, registry_engine):
    ids = project(registry_url)
    with Registry.open(registry_url) as reg:
        extra = reg.record_run(*_run(7, params={"x": 1.0, "y": [2.0]}))
    with registry_engine.begin() as conn:  # what `--param x=1e999` and a NaN metric leave in params
        conn.execute(text("UPDATE runs SET params = :p WHERE id = :id"),
                     {"p": '{"x": Infinity, "y": [-Infinity, NaN], "z": "Infinity"}', "id": extra})  # fmt: skip
    spoil(registry_engine, ids[1], "energy_j", math.inf)
    spoil(registry_engine, ids[2], "started_at", YEAR_ONE)
    reader = RegistryReader(registry_url, settings=Settings())
    try:
        page = _document(reader.runs("proj", status=None, sweep=None, limit=50, offset=0))
        by_id = {row["id"]: row for row in page["runs"]}
        assert by_id[extra]["params"] == {"x": "Infinity", "y": ["-Infinity", "NaN"], "z": "Infinity"}
        assert by_id[ids[1]]["energy_j"] is None and by_id[ids[1]]["excluded"] == check_figure("energy_j", math.inf)
        assert by_id[ids[2]]["excluded"] == check_figure("started_at", YEAR_ONE) and by_id[ids[0]]["excluded"] is None
        _document(reader.sweeps("proj"))
    finally:
        reader.close()


def test_a_figure_that_is_not_a_number_or_json_that_is_not_json_is_left_out(tmp_path):
    """SQLite keeps whatever a hand edit writes: text in a number's column, broken JSON."""
    location = str(tmp_path / "r.sqlite")
    ids = project(location)
    import sqlite3

    with sqlite3.connect(location) as conn:
        conn.execute("UPDATE runs SET energy_j = 'lots' WHERE id = ?", (ids[0],))
        conn.execute("UPDATE runs SET gpu_count = 'two' WHERE id = ?", (ids[1],))
        conn.execute("UPDATE runs SET params = '{broken' WHERE id = ?", (ids[2],))
    conn.close()
    df = analysis.runs(location, project="proj")
    assert list(df.index) == ids[3:] and df["energy_j"].dtype == "float64" and df["gpu_count"].dtype == "Int64"
    assert [(e.id, e.reason) for e in analysis.excluded(df)] == [
        (ids[0], check_figure("energy_j", "lots")),
        (ids[1], check_figure("gpu_count", "two")),
        (ids[2], "params is not valid JSON: '{broken'"),
    ]
    # a statement does not read params: that run's figures are counted
    facts = statement_facts(location, project="proj", settings=Settings())
    assert [e["id"] for e in facts["scope"]["excluded"]] == ids[:2]
    reader = RegistryReader(location, settings=Settings())
    try:
        assert [e["id"] for e in _document(reader.summary("proj"))["excluded"]] == ids[:2]
        page = _document(reader.runs("proj", status=None, sweep=None, limit=50, offset=0))
        assert {row["id"]: row["params"] for row in page["runs"]}[ids[2]] == {}  # unreadable JSON reads as empty
    finally:
        reader.close()


def test_the_dashboard_names_the_runs_it_left_out(tmp_path):
    from notebook_carbon.analysis.frame import opened
    from notebook_carbon.widgets import figures, markup

    location = str(tmp_path / "r.sqlite")
    ids = project(location)
    import sqlite3

    with sqlite3.connect(location) as conn:
        conn.execute("UPDATE runs SET energy_j = 9e999, name = '<b>x</b>' WHERE id = ?", (ids[1],))
    conn.close()
    with opened(location) as reg:
        snapshot = figures.snapshot(reg, project="proj", notebook="b.ipynb", kernel=figures.Kernel("lab", 1, 0.0),
                                    settings=Settings())  # fmt: skip
    assert [x["id"] for x in snapshot.scope("project").facts["scope"]["excluded"]] == [ids[1]]
    assert snapshot.scope("notebook").facts["scope"]["excluded"] == []  # run 2 is of a.ipynb
    html = markup.totals(snapshot)
    assert f"1 run left out of these figures: run {ids[1]} &lt;b&gt;x&lt;/b&gt;: energy_j = inf" in html

"""Sweep labels and results kept by the database (issue 15), on SQLite and PostgreSQL: the label
rule (``record.names_label``, ``record.cell_label``), a single unmarked run as development, and the
upgrade from schema v8 that relabels what is recorded, and repeats that make no result (v10)."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import text
from totals_oracle import check

from notebook_carbon.record import cell_label, is_result, names_label
from notebook_carbon.registry import Registry, new_uid
from notebook_carbon.registry.schema import SCHEMA_VERSION
from notebook_carbon.registry.triggers import drop_statements


@pytest.mark.parametrize(("names", "label"), [
    (["lr=0.1", "lr=0.5"], "lr"),
    (["lr=0.1", "lr=0.15", "lr=0.2"], "lr"),
    (["resnet50-a", "resnet50-b"], "resnet50"),
    (["run1", "run2", None], "run"),
    (["baseline"], "baseline"),
    (["same", "same"], "same"),
    (["adam", "sgd"], "adam ... sgd"),
    ([None, ""], None),
    (["x" * 70 + "a", "x" * 70 + "b"], "x" * 60),
])  # fmt: skip
def test_names_label(names, label):
    assert names_label(names) == label


def test_cell_label():
    assert cell_label("projects/vision/digits.ipynb", 5, "ab") == "digits.ipynb, cell 5"
    assert cell_label("digits.ipynb", None, "0123456789abcdef") == "digits.ipynb, code 01234567"
    assert cell_label(None, 7, None) == "cell 7"
    assert len(cell_label("n" * 100 + ".ipynb", 12345, None)) == 60
    assert is_result(True, 1) and is_result(False, 2) and not is_result(False, 1)


def _run(reg, t, energy, **row):
    return reg.record_run({"uid": new_uid(), "project": "p", "started_at": 1.7e9 + t, **row},
                          {"status": "ok", "energy_j": energy, "emissions_g": energy / 100, "duration_s": 1.0})


def test_names_the_database_keeps_follow_every_write(registry_url, registry_engine):
    """The label the triggers keep equals ``names_label`` of the sweep's names after inserts, a
    rename and a delete by hand; a sweep name wins."""
    with Registry.open(registry_url) as reg:
        _run(reg, 0, 1.0, code_fingerprint="a", name="lr=0.1", notebook="nb.ipynb", execution_count=3)
        assert [s.label for s in reg.sweeps("p")] == ["lr=0.1"]
        _run(reg, 1, 1.0, code_fingerprint="a", name="lr=0.5", notebook="nb.ipynb", execution_count=4)
        assert [s.label for s in reg.sweeps("p")] == ["lr"]
        _run(reg, 2, 1.0, code_fingerprint="a", notebook="nb.ipynb", execution_count=5)
        assert [s.label for s in reg.sweeps("p")] == ["lr"]
        _run(reg, 3, 9.0, code_fingerprint="b", notebook="nb.ipynb", execution_count=6)
        _run(reg, 4, 9.0, code_fingerprint="c", sweep="study", name="x")
        assert {s.key: s.label for s in reg.sweeps("p")} == {"code:a": "lr", "code:b": "nb.ipynb, cell 6", "study": "study"}
        check(reg, "p")
        for edit, expected in (
            ("UPDATE runs SET name = 'adam' WHERE id = 1", "adam ... lr=0.5"),
            ("DELETE FROM runs WHERE id = 2", "adam"),
            ("UPDATE runs SET name = NULL WHERE id = 1", "nb.ipynb, cell 3"),
        ):
            with registry_engine.begin() as conn:
                conn.execute(text(edit))
            assert {s.key: s.label for s in reg.sweeps("p")}["code:a"] == expected, edit
            check(reg, "p")


def test_a_single_ad_hoc_run_does_not_change_the_overhead_and_a_marked_one_does(registry_url):
    """Ten runs of a sweep, one the result (overhead 10x); a sleep-like cell run once is
    development, not a result: the overhead stays 10x plus its energy, never the 1.x of a
    second result. Marked final, a single run is a result."""
    with Registry.open(registry_url) as reg:
        for i in range(10):
            _run(reg, i, 100.0, code_fingerprint="train", name=f"lr={i}")
        before = reg.totals("p")
        assert before.overhead_ratio == pytest.approx(10.0) and before.results == (("code:train", "lr"),)
        sleep = _run(reg, 20, 500.0, code_fingerprint="sleep", notebook="nb.ipynb", execution_count=9)
        after = reg.totals("p")
        assert after.selected_energy_j == before.selected_energy_j == 100.0
        assert after.overhead_ratio == pytest.approx(15.0)  # (1000 + 500) / 100: the cell is development
        assert after.results == before.results and after.sweeps == 2
        assert {s.key: s.is_result for s in reg.sweeps("p")} == {"code:train": True, "code:sleep": False}
        facts = reg.figures("p")
        assert facts.totals.selected_energy_j == 100.0 and facts.totals.results == before.results
        reg.set_final(sleep)
        marked = reg.totals("p")
        assert marked.selected_energy_j == 600.0 and marked.overhead_ratio == pytest.approx(1500.0 / 600.0)
        assert [label for _, label in marked.results] == ["nb.ipynb, cell 9", "lr"]
        check(reg, "p")


def test_the_statement_names_its_results(registry_url):
    from notebook_carbon.settings import Settings
    from notebook_carbon.statements import statement_facts

    with Registry.open(registry_url) as reg:
        for i in range(3):
            _run(reg, i, 10.0, code_fingerprint="a", name=f"seed {i}")
        _run(reg, 5, 10.0, code_fingerprint="b", notebook="nb.ipynb", execution_count=2)
    facts = statement_facts(registry_url, project="p", settings=Settings())
    assert facts["development"]["results"] == [{"sweep": "code:a", "label": "seed"}]
    assert facts["development"]["ratio"] == pytest.approx(4.0)
    from notebook_carbon.statements.render import render

    said = "The results are “seed”: a sweep counts as a result when one of its runs is marked final"
    assert said in render(facts, "md")
    assert "The results are ``seed'': a sweep counts" in render(facts, "latex")


def test_v8_to_v9_relabels_what_is_recorded(registry_url, registry_engine):
    """A registry put back to its v8 shape (labels the first line of code, no first label, no
    results, no execution count) is upgraded on open: every run and sweep relabelled, the results
    decided, the totals unchanged, and the triggers then follow new runs."""
    with Registry.open(registry_url) as reg:
        for i, name in enumerate(("lr=0.1", "lr=0.5")):
            _run(reg, i, 10.0, code_fingerprint="a", name=name, notebook="work/nb.ipynb", cell_source="scores = {}\n")
        _run(reg, 2, 5.0, code_fingerprint="b0123456789", notebook="work/nb.ipynb", cell_source="time.sleep(5)\n")
        _run(reg, 3, 5.0, sweep="study", cell_source="fit()\n")
        totals_before = reg.totals("p")
    undo = [*drop_statements(registry_engine.dialect.name), "DROP INDEX ix_runs_distinct", "DROP INDEX ix_runs_sweep_names",
            "ALTER TABLE runs DROP COLUMN execution_count", "ALTER TABLE sweeps DROP COLUMN first_label",
            "ALTER TABLE sweeps DROP COLUMN is_result",
            "UPDATE runs SET sweep_label = substr(cell_source, 1, length(cell_source) - 1) WHERE sweep IS NULL",
            "UPDATE sweeps SET label = (SELECT min(r.sweep_label) FROM runs r WHERE r.sweep_key = sweeps.sweep_key)",
            "UPDATE meta SET value = '8' WHERE key = 'schema_version'"]  # fmt: skip
    with registry_engine.begin() as conn:
        for statement in undo:
            conn.execute(text(statement))
        assert conn.execute(text("SELECT label FROM sweeps ORDER BY sweep_key")).scalars().all() == [
            "scores = {}", "time.sleep(5)", "study"]

    with Registry.open(registry_url) as reg:
        assert reg.schema_version() == SCHEMA_VERSION
        assert {s.key: (s.label, s.is_result) for s in reg.sweeps("p")} == {
            "code:a": ("lr", True), "code:b0123456789": ("nb.ipynb, code b0123456", False), "study": ("study", False)}
        assert [r["sweep_label"] for r in reg.runs(project="p")] == [
            "study", "nb.ipynb, code b0123456", "nb.ipynb, code a", "nb.ipynb, code a"]
        after = reg.totals("p")
        assert (after.energy_j, after.energy_low_j, after.energy_high_j) == (
            totals_before.energy_j, totals_before.energy_low_j, totals_before.energy_high_j)
        assert after.selected_energy_j == 10.0 and after.results == (("code:a", "lr"),)
        check(reg, "p")
        _run(reg, 9, 1.0, code_fingerprint="b0123456789", name="warm-up", execution_count=4)
        assert {s.key: (s.label, s.is_result) for s in reg.sweeps("p")}["code:b0123456789"] == ("warm-up", True)
        check(reg, "p")


def test_an_ad_hoc_cell_run_again_unchanged_is_still_development(registry_url):
    """A cell run twice with nothing changed: the second run repeats the first (``redundant_of``),
    so the sweep has one run that counts and stays development; the overhead keeps its 10x plus the
    two runs' energy. A third run that is no repeat (another input) makes it a result."""
    with Registry.open(registry_url) as reg:
        for i in range(10):
            _run(reg, i, 100.0, code_fingerprint="train", name=f"lr={i}")
        first_id = _run(reg, 20, 500.0, code_fingerprint="sleep", notebook="nb.ipynb", execution_count=9)
        _run(reg, 21, 500.0, code_fingerprint="sleep", notebook="nb.ipynb", execution_count=10, redundant_of=first_id)
        repeated = reg.totals("p")
        assert {s.key: s.is_result for s in reg.sweeps("p")} == {"code:train": True, "code:sleep": False}
        assert repeated.results == (("code:train", "lr"),) and repeated.selected_energy_j == 100.0
        assert repeated.overhead_ratio == pytest.approx(20.0)  # (1000 + 2 x 500) / 100
        check(reg, "p")
        _run(reg, 22, 500.0, code_fingerprint="sleep", notebook="nb.ipynb", execution_count=11, inputs_fingerprint="x")
        assert {s.key: s.is_result for s in reg.sweeps("p")}["code:sleep"] is True
        check(reg, "p")


def test_v9_to_v10_decides_the_results_again(registry_url, registry_engine):
    """A v9 registry, whose sweep of a cell run twice unchanged was a result, is upgraded on open:
    that sweep becomes development, a real sweep stays a result, nothing recorded changes, and the
    triggers then follow the rule."""
    with Registry.open(registry_url) as reg:
        for i in range(3):
            _run(reg, i, 10.0, code_fingerprint="a", name=f"seed {i}")
        first_id = _run(reg, 5, 5.0, code_fingerprint="b", notebook="nb.ipynb", execution_count=2)
        _run(reg, 6, 5.0, code_fingerprint="b", notebook="nb.ipynb", execution_count=3, redundant_of=first_id)
        runs_before = reg.runs(project="p")
    with registry_engine.begin() as conn:  # as version 9 kept it: two runs made a result, no index for it
        conn.execute(text("DROP INDEX ix_runs_distinct"))
        conn.execute(text("UPDATE sweeps SET is_result = true WHERE sweep_key = 'code:b'"))
        conn.execute(text("UPDATE meta SET value = '9' WHERE key = 'schema_version'"))
    with Registry.open(registry_url) as reg:
        assert reg.schema_version() == SCHEMA_VERSION == 12
        from sqlalchemy import inspect

        assert "ix_runs_distinct" in {index["name"] for index in inspect(registry_engine).get_indexes("runs")}
        assert {s.key: s.is_result for s in reg.sweeps("p")} == {"code:a": True, "code:b": False}
        assert reg.runs(project="p") == runs_before
        assert reg.totals("p").results == (("code:a", "seed"),)
        check(reg, "p")
        _run(reg, 9, 1.0, code_fingerprint="b", notebook="nb.ipynb", execution_count=4, inputs_fingerprint="y")
        assert {s.key: s.is_result for s in reg.sweeps("p")}["code:b"] is True
        check(reg, "p")


def test_the_command_line_takes_a_sweep_by_its_label_and_lists_runs_with_it(tmp_path, capsys):
    """``--sweep`` takes the label every view shows (``lr``, ``nb.ipynb, cell 6``) as well as the key;
    an unknown one is told with the labels, not ``code:`` fingerprints; ``runs`` shows the labels."""
    from notebook_carbon.cli import main

    location = str(tmp_path / "r.sqlite")
    with Registry.open(location) as reg:
        _run(reg, 0, 1.0, code_fingerprint="a", name="lr=0.1", notebook="nb.ipynb", execution_count=3)
        _run(reg, 1, 2.0, code_fingerprint="a", name="lr=0.5", notebook="nb.ipynb", execution_count=4)
        _run(reg, 2, 4.0, code_fingerprint="b", notebook="nb.ipynb", execution_count=6)
    base = ["statement", "--registry", location, "--project", "p", "--format", "json"]
    for given, energy in (("lr", 3.0), ("nb.ipynb, cell 6", 4.0), ("code:b", 4.0)):
        assert main([*base, "--sweep", given]) == 0
        assert json.loads(capsys.readouterr().out)["totals"]["energy_j"]["value"] == energy, given
    assert main([*base, "--sweep", "l"]) == 2
    err = capsys.readouterr().err
    assert "no sweep 'l'" in err and "'lr'" in err and "code:" not in err
    assert main(["runs", "--registry", location, "--project", "p"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[3] for line in lines[1:3]] == ["lr", "lr"] and "nb.ipynb, cell 6" in lines[3]


def test_whether_a_sweep_is_a_result_is_two_index_searches_on_sqlite(tmp_path):
    """Every write decides its sweep's ``is_result``: on SQLite, which has no statistics, the
    planner took ``ix_runs_sweep_names`` for the final mark and read the whole sweep (10 ms a write
    in a sweep of 6,652 runs); it is now told the two partial indexes, whatever the sweep's size."""
    import sqlite3

    from notebook_carbon.registry.triggers import _is_result

    path = str(tmp_path / "r.sqlite")
    with Registry.open(path) as reg:
        for i in range(30):
            _run(reg, i, 1.0, code_fingerprint="a", name=f"lr={i}", notebook="nb.ipynb")
    with sqlite3.connect(path) as conn:
        sql = f"SELECT {_is_result('x', 'sqlite')} FROM (SELECT 'p' AS project, 'code:a' AS sweep_key) AS x"
        plan = " | ".join(row[-1] for row in conn.execute(f"EXPLAIN QUERY PLAN {sql}"))
        assert "USING INDEX ix_runs_final" in plan and "ix_runs_distinct" in plan, plan
        assert "ix_runs_sweep_names" not in plan, plan
        assert conn.execute(sql).fetchone() == (1,)
    conn.close()

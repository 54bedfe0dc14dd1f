"""What a run achieved (issue 17): metrics logged with ``%carbon log`` in and after a metered cell,
with ``track().log``, and by the registry itself (SQLite and PostgreSQL): the last value of each,
steps, directions declared per project and sweep, bad input refused with what to do, and the
upgrade from v11 that keeps every run."""

from __future__ import annotations

import re

import numpy as np
import pytest
from IPython.core.error import UsageError
from sqlalchemy import text
from totals_oracle import check

from notebook_carbon import track
from notebook_carbon.errors import ConfigError, RegistryError
from notebook_carbon.meters.detect import Detection
from notebook_carbon.registry import Registry, new_uid
from notebook_carbon.registry.metrics import (
    directions,
    latest_metrics,
    log_metrics,
    set_direction,
    sweeps_with_metrics,
)
from notebook_carbon.registry.schema import SCHEMA_VERSION
from notebook_carbon.session import Session
from notebook_carbon.settings import Settings
from notebook_carbon.testing import FakeMeter


def _run(reg, t=0.0, **row):
    return reg.record_run({"uid": new_uid(), "project": "p", "started_at": 1.7e9 + t, **row},
                          {"status": "ok", "energy_j": 10.0, "emissions_g": 0.1, "duration_s": 1.0})  # fmt: skip


def test_a_run_s_value_is_the_last_one_logged_step_or_none(registry_url):
    """Per-epoch values at steps, then a held-out value without a step: the held-out one is the
    run's (a review found the highest step winning over a final evaluation logged after it)."""
    with Registry.open(registry_url) as reg:
        first, second = _run(reg), _run(reg, 1)
        uid = reg.get_run(first)["uid"]
        log_metrics(reg, first, {"acc": 0.5}, step=1, logged_at=1.7e9 + 10)
        log_metrics(reg, uid, {"acc": 0.7, "loss": 0.4}, step=3, logged_at=1.7e9 + 20)
        log_metrics(reg, first, {"acc": 0.6}, step=2, logged_at=1.7e9 + 30)  # a late write of an earlier step
        log_metrics(reg, first, {"loss": 0.3}, step=3, logged_at=1.7e9 + 40)  # the same step again: the latest
        log_metrics(reg, second, {"acc": 0.1}, logged_at=1.7e9 + 50)
        log_metrics(reg, second, {"acc": 0.2}, logged_at=1.7e9 + 60)  # no steps: the latest
        log_metrics(reg, second, {"f1": 0.5}, step=9, logged_at=1.7e9 + 70)
        log_metrics(reg, second, {"f1": 0.4}, logged_at=1.7e9 + 80)  # the final evaluation, no step
        found = latest_metrics(reg, [uid, reg.get_run(second)["uid"], new_uid()])
        assert found == {uid: {"acc": 0.6, "loss": 0.3}, reg.get_run(second)["uid"]: {"acc": 0.2, "f1": 0.4}}
        check(reg, "p")  # the runs' totals are untouched


def test_values_logged_at_one_time_the_last_written_wins_and_the_sweeps_with_metrics(registry_url):
    """Two values of a metric logged in the same instant (a clock's resolution): the one written
    last is the run's. Only the sweeps holding a run with a metric are found, in one read, and
    not another project's."""
    with Registry.open(registry_url) as reg:
        run = _run(reg, sweep="lr")
        _run(reg, 1, sweep="plain")
        other = reg.record_run({"uid": new_uid(), "project": "q", "sweep": "elsewhere", "started_at": 1.7e9},
                               {"status": "ok", "energy_j": 1.0, "emissions_g": 0.1})  # fmt: skip
        for value in (0.1, 0.3, 0.2):
            log_metrics(reg, run, {"acc": value}, logged_at=1.7e9 + 5)
        log_metrics(reg, run, {"acc": 0.7}, logged_at=1.7e9 + 1)  # written last, logged earlier: not the last
        log_metrics(reg, other, {"acc": 1.0})
        automatic = _run(reg, 2, code_fingerprint="f00d")  # an automatic sweep, keyed by its code
        log_metrics(reg, automatic, {"loss": 0.5})
        assert latest_metrics(reg, [reg.get_run(run)["uid"]]) == {reg.get_run(run)["uid"]: {"acc": 0.2}}
        key = reg.get_run(automatic)["sweep_key"]
        assert key.startswith("code:") and sweeps_with_metrics(reg, "p") == {"lr", key}
        assert sweeps_with_metrics(reg, "nobody") == set()


@pytest.mark.parametrize(("values", "step", "says"), [
    ({}, None, "give at least one metric"),
    ({"acc": float("nan")}, None, "metric 'acc' must be a finite number; got nan"),
    ({"acc": float("inf")}, None, "must be a finite number"),
    ({"acc": True}, None, "must be a finite number; got True"),
    ({"acc": "0.9"}, None, "must be a finite number; got '0.9'"),
    ({"": 1.0}, None, "a metric's name is 1 to 200 characters"),
    ({"x" * 201: 1.0}, None, "a metric's name is 1 to 200 characters"),
    ({"a\x00b": 1.0}, None, "without NUL"),
    ({"acc": 0.9}, -1, "a metric's step is a whole number of 0 or more; got -1"),
    ({"acc": 0.9}, 1.5, "a metric's step is a whole number"),
])  # fmt: skip
def test_bad_metrics_are_refused_and_nothing_is_written(registry_url, values, step, says):
    with Registry.open(registry_url) as reg:
        run = _run(reg)
        with pytest.raises(ConfigError, match=says.replace("(", r"\(").replace(")", r"\)")):
            log_metrics(reg, run, values, step=step)
        assert latest_metrics(reg, [reg.get_run(run)["uid"]]) == {}
        with pytest.raises(RegistryError, match="there is no run 999"):
            log_metrics(reg, 999, {"acc": 1.0})


def test_directions_declared_for_a_project_and_a_sweep(registry_url):
    with Registry.open(registry_url) as reg:
        assert directions(reg, "p") == {}
        set_direction(reg, "p", "score", "lower")
        set_direction(reg, "p", "score", "higher")  # declared again: replaced
        set_direction(reg, "p", "reward", "higher", sweep_key="rl")
        set_direction(reg, "p", "score", "lower", sweep_key="golf")
        set_direction(reg, "q", "score", "lower")
        assert directions(reg, "p") == {"score": "higher"}
        assert directions(reg, "p", "golf") == {"score": "lower"}
        assert directions(reg, "p", "rl") == {"score": "higher", "reward": "higher"}
        with pytest.raises(ConfigError, match="higher or lower"):
            set_direction(reg, "p", "score", "max")


def test_v11_to_v12_adds_the_metrics_tables_and_keeps_every_run(registry_url, registry_engine):
    with Registry.open(registry_url) as reg:
        run = _run(reg, name="kept")
        before = reg.runs(project="p")
    with registry_engine.begin() as conn:
        conn.execute(text("DROP TABLE metrics"))
        conn.execute(text("DROP TABLE metric_directions"))
        conn.execute(text("UPDATE meta SET value = '11' WHERE key = 'schema_version'"))
    with Registry.open(registry_url) as reg:
        assert reg.schema_version() == SCHEMA_VERSION == 12
        assert reg.runs(project="p") == before
        log_metrics(reg, run, {"acc": 0.9})
        assert latest_metrics(reg, [before[0]["uid"]]) == {before[0]["uid"]: {"acc": 0.9}}


@pytest.fixture
def session(tmp_path):
    detection = Detection(meters=(FakeMeter("cpu", "rapl", "package-0", 30.0),), notes=())
    return Session(Settings(registry=str(tmp_path / "r.sqlite"), region="FR", project="m"), detection=detection)


def _metrics(session) -> dict[str, dict[str, float]]:
    assert session.writer().flush(10)
    with Registry.open(session.settings.registry_location()) as reg:
        runs = reg.runs(project="m")
        found = latest_metrics(reg, [run["uid"] for run in runs])
        return {run["name"]: found.get(run["uid"], {}) for run in runs}


def test_carbon_log_in_a_metered_cell_after_it_and_bad_input(shell, session, capsys):
    """``%carbon log`` inside a ``%%carbon`` cell logs for that cell's run; in the next cell, for the
    last run; a value that is no number, a missing ``=`` or step, or no run yet is a UsageError that
    says what to write, and logs nothing."""
    with pytest.raises(UsageError, match="no run to log metrics for yet"):
        shell.run_line_magic("carbon", "log acc=0.5")
    cell = "%%carbon --name train\nx = 1\nget_ipython().run_line_magic('carbon', 'log acc=0.91 loss=0.3')\n"
    assert shell.run_cell(cell, store_history=True).success
    assert "logged acc=0.91, loss=0.3 for this cell's run" in capsys.readouterr().out
    shell.run_line_magic("carbon", "log acc=0.93 --step 7")
    assert "logged acc=0.93 at step 7 for the last run (train)" in capsys.readouterr().out
    for bad, says in (("acc=high", "acc must be a number, got 'high'"), ("acc", "takes NAME=VALUE pairs"),
                      ("acc=nan", "must be a finite number"), ("acc=1 --step -2", "--step takes a whole number"),
                      ("", "give at least one metric")):  # fmt: skip
        with pytest.raises(UsageError, match=says):
            shell.run_line_magic("carbon", f"log {bad}")
    assert _metrics(session) == {"train": {"acc": 0.93, "loss": 0.3}}


def test_numpy_numbers_and_a_metric_named_step(shell, session, capsys):
    """NumPy's scalars are numbers (a review found np.float32 refused); a metric named ``step``,
    which a keyword cannot be, goes in a mapping, and ``%carbon log step=3`` works inside a cell."""
    with track(name="np", session=session, quiet=True) as block:
        block.log(acc=np.float32(0.5), n=np.int64(3))
        block.log({"step": 4.0}, step=1)
    cell = "%%carbon --name cell\nget_ipython().run_line_magic('carbon', 'log step=3 acc=0.1')\n"
    assert shell.run_cell(cell, store_history=True).success
    assert _metrics(session) == {"np": {"acc": 0.5, "n": 3.0, "step": 4.0}, "cell": {"step": 3.0, "acc": 0.1}}


def test_track_log_during_and_after_the_block_and_a_nested_block_logs_for_its_run(session):
    with track(name="outer", session=session, quiet=True) as outer:
        outer.log(acc=0.5)
        with track(name="inner", session=session, quiet=True) as inner:
            inner.log(f1=0.4)  # a block inside a run: that run's, which counts its energy
    outer.log(acc=0.8, step=2)
    with pytest.raises(ConfigError, match="must be a finite number"):
        outer.log(acc=float("nan"))
    with pytest.raises(ConfigError, match="this block has no run"):
        track(name="never entered", session=session).log(acc=1.0)
    assert _metrics(session) == {"outer": {"acc": 0.8, "f1": 0.4}}


def test_sweeps_and_the_statement_say_whether_the_result_was_worth_its_energy(shell, session, capsys):
    """A sweep of four runs logging accuracy and loss (accuracy is the metric: higher is better),
    each longer than the one before, so each used more energy (a fake 30 W meter): its selected run
    is the last; the cheapest run within 1 % of its accuracy is named with its share of the
    energy, in ``%carbon sweeps``, the statement's JSON (valid against its schema) and its
    Markdown; a run beaten on both is not on the front."""
    import json

    import jsonschema

    from notebook_carbon.statements import SCHEMA_PATH, impact_statement

    for i, acc in enumerate((0.80, 0.925, 0.90, 0.93)):
        cell = f"%%carbon --sweep lr --name lr{i}\nimport time\ntime.sleep({0.05 * (i + 1)})\n"
        cell += f"get_ipython().run_line_magic('carbon', 'log acc={acc} loss={1 - acc:.3f}')\n"
        assert shell.run_cell(cell, store_history=True).success
    capsys.readouterr()
    shell.run_line_magic("carbon", "sweeps")
    out = capsys.readouterr().out
    with Registry.open(session.settings.registry_location()) as reg:
        ids = {run["name"]: run["id"] for run in reg.runs(project="m")}
        energy = {run["name"]: run["energy_j"] for run in reg.runs(project="m")}
    share = energy["lr1"] / energy["lr3"]  # 0.925 is within 1 % of 0.93; 0.90 is not
    assert f"lr: selected run {ids['lr3']} (the latest: none marked final), acc 0.93 with" in out, out
    assert f"run {ids['lr1']} (acc 0.925, within 1 %) used" in out and "higher is better" in out, out
    facts = json.loads(impact_statement(session.settings.registry_location(), format="json", project="m"))
    jsonschema.validate(facts, json.loads(SCHEMA_PATH.read_text()))
    (tradeoff,) = facts["tradeoffs"]
    assert (tradeoff["metric"], tradeoff["direction"], tradeoff["runs"]) == ("acc", "higher", 4)
    assert (tradeoff["selected"]["run_id"], tradeoff["cheapest"]["run_id"]) == (ids["lr3"], ids["lr1"])
    assert tradeoff["energy_share"] == pytest.approx(share)
    assert tradeoff["front"][-1] == ids["lr3"] and ids["lr2"] not in tradeoff["front"]  # 0.90 at more energy than 0.925
    text = impact_statement(session.settings.registry_location(), format="md", project="m")
    assert f"In “lr”, the selected run {ids['lr3']} (the latest; none was marked final) reached acc 0.93 with" in text
    assert tradeoff["marked"] is False
    assert f"run {ids['lr1']}, within 1 % of that acc (0.925), used" in text


def test_the_pareto_chart_of_a_sweep_from_the_command_line(shell, session, tmp_path, capsys):
    """``notebook-carbon chart pareto --sweep lr``: the runs by energy and accuracy as SVG, drawn
    offline, each run a point; a sweep whose runs logged no metric says what to do."""
    import xml.etree.ElementTree as ET

    from notebook_carbon.cli import main

    for i, acc in enumerate((0.80, 0.925, 0.90, 0.93)):
        cell = f"%%carbon --sweep lr --name lr{i} --quiet\nimport time\ntime.sleep({0.02 * (i + 1)})\n"
        assert shell.run_cell(cell + f"get_ipython().run_line_magic('carbon', 'log acc={acc}')\n").success
    assert shell.run_cell("%%carbon --sweep plain --quiet\nx = 1\n").success
    assert shell.run_cell("%%carbon --sweep plain --quiet\nx = 2\n").success
    assert session.writer().flush(10)
    registry = session.settings.registry_location()
    out = tmp_path / "pareto.svg"
    assert main(["chart", "pareto", "--registry", registry, "--project", "m", "--sweep", "lr", "-o", str(out)]) == 0
    svg = out.read_text()
    ET.fromstring(svg)  # well-formed
    assert "lr: acc against energy" in svg and "acc (higher is better)" in svg and "selected" in svg
    capsys.readouterr()
    assert main(["chart", "pareto", "--registry", registry, "--project", "m", "--sweep", "plain", "-o", str(out)]) != 0
    assert "has nothing to chart" in capsys.readouterr().err
    assert main(["chart", "pareto", "--registry", registry, "--project", "m", "-o", str(out)]) != 0
    assert "give --sweep NAME" in capsys.readouterr().err


def test_carbon_metric_declares_which_is_better(shell, session, capsys):
    shell.run_line_magic("carbon", "metric score lower")
    shell.run_line_magic("carbon", "metric score higher --sweep tune")
    assert "a lower score is better in project m" in capsys.readouterr().out
    for bad in ("score", "score best", "score higher --sweeps tune", ""):
        with pytest.raises(UsageError, match=re.escape("%carbon metric takes NAME higher|lower")):
            shell.run_line_magic("carbon", f"metric {bad}")
    # a sweep or a metric named with spaces is quoted, as in a shell (a review found it cut at the
    # space); a backslash is part of a name; a sweep with no run yet is said to be one
    shell.run_line_magic("carbon", """metric "top-1 acc" lower --sweep 'lr sweep'""")
    assert "a lower top-1 acc is better in sweep lr sweep (no run of it yet)" in capsys.readouterr().out
    shell.run_line_magic("carbon", r"metric val\acc higher")
    assert r"a higher val\acc is better in project m" in capsys.readouterr().out
    # an automatic sweep is named by the label %carbon sweeps shows: its key is what is declared
    assert shell.run_cell("%%carbon --quiet\nx = 1\n").success and shell.run_cell("%%carbon --quiet\nx = 1\n").success
    assert session.writer().flush(10)
    with Registry.open(session.settings.registry_location()) as reg:
        (auto,) = reg.sweeps("m", params=False)
    assert auto.key.startswith("code:") and auto.label != auto.key
    shell.run_line_magic("carbon", f'metric score higher --sweep "{auto.label}"')
    assert f"in sweep {auto.label}\n" in capsys.readouterr().out
    with pytest.raises(UsageError, match="No closing quotation in .*close the quotes around a name"):
        shell.run_line_magic("carbon", 'metric acc higher --sweep "lr sweep')
    with Registry.open(session.settings.registry_location()) as reg:
        assert directions(reg, "m") == {"score": "lower", "val\\acc": "higher"}
        assert directions(reg, "m", "tune") == {"score": "higher", "val\\acc": "higher"}
        assert directions(reg, "m", "lr sweep") == {"score": "lower", "val\\acc": "higher", "top-1 acc": "lower"}
        assert directions(reg, "m", auto.key)["score"] == "higher"

"""Redundant runs, automatic params and sweeps, through the magic in a real IPython shell."""

from __future__ import annotations

import pytest

from notebook_carbon.errors import RedundantRunError
from notebook_carbon.meters.detect import Detection
from notebook_carbon.registry.store import Registry
from notebook_carbon.session import Session
from notebook_carbon.settings import Settings
from notebook_carbon.testing import FakeMeter

CELL = "%%carbon --name train\nacc = lr * 2\nacc\n"


@pytest.fixture
def session(tmp_path):
    detection = Detection(meters=(FakeMeter("cpu", "rapl", "package-0", 30.0),), notes=())
    return Session(Settings(registry=str(tmp_path / "r.sqlite"), region="FR", project="paper"), detection=detection)


def run(shell, cell):
    return shell.run_cell(cell, store_history=True)


def runs_of(session) -> list[dict]:
    assert session.writer().flush(10)
    with Registry.open(session.settings.registry_location()) as registry:
        return list(reversed(registry.runs()))


def test_repeating_a_cell_with_the_same_inputs_is_flagged_and_a_new_lr_is_not(shell, session, capsys):
    run(shell, "lr = 0.1")
    run(shell, CELL)
    assert "repeats" not in capsys.readouterr().err
    result = run(shell, CELL)  # same code, same lr: redundant, but it runs (warn)
    assert result.result == 0.2
    err = capsys.readouterr().err
    assert err.count("notebook-carbon warning") == 1
    assert "this cell repeats run 1 ('train'," in err and "CO2e" in err
    run(shell, "lr = 0.5")
    run(shell, CELL)
    assert "repeats" not in capsys.readouterr().err
    first, second, third = runs_of(session)
    assert [r["redundant_of"] for r in (first, second, third)] == [None, first["id"], None]
    assert [r["params"] for r in (first, second, third)] == [{"lr": 0.1}, {"lr": 0.1}, {"lr": 0.5}]
    assert first["code_fingerprint"] == second["code_fingerprint"] == third["code_fingerprint"]
    assert first["inputs_fingerprint"] == second["inputs_fingerprint"] != third["inputs_fingerprint"]

    run(shell, "%carbon sweeps")
    out = capsys.readouterr().out
    assert "project paper: 1 sweep\n" in out
    line = next(line for line in out.splitlines() if line.startswith("train "))  # its runs' name, not its code
    assert " 3 " in line and "3/0/1" in line and "lr: 0.1, 0.5" in line and "run 3 (latest ok)" in line


def test_explicit_params_win_over_automatic_ones_and_change_the_fingerprint(shell, session):
    run(shell, "lr = 0.1")
    run(shell, "%%carbon --param lr=0.3 seed=1\nacc = lr * 2")
    run(shell, "%%carbon --param lr=0.3 seed=2\nacc = lr * 2")
    a, b = runs_of(session)
    assert a["params"] == {"lr": 0.3, "seed": 1}
    assert a["redundant_of"] is None and b["redundant_of"] is None


def test_on_duplicate_skip_does_not_run_the_cell_and_says_so(shell, session, capsys):
    run(shell, "lr = 0.1")
    run(shell, "%%carbon\nprint('trained with', lr)")
    assert "trained with 0.1" in capsys.readouterr().out
    result = run(shell, "%%carbon --on-duplicate skip\nprint('trained with', lr)")
    assert result.success  # skipping is not a failure: Run All goes on
    out = capsys.readouterr().out
    assert "trained with" not in out
    assert "not run: this cell is identical to run 1" in out
    assert len(runs_of(session)) == 1


def test_on_duplicate_error_raises_without_running(shell, session, capsys):
    run(shell, "lr = 0.1")
    run(shell, "%%carbon\nprint('trained with', lr)")
    capsys.readouterr()
    result = run(shell, "%%carbon --on-duplicate error\nprint('trained with', lr)")
    assert isinstance(result.error_in_exec, RedundantRunError)
    out = capsys.readouterr().out
    assert "trained with" not in out
    assert "RedundantRunError: this cell repeats run 1" in out and "Traceback" not in out
    assert len(runs_of(session)) == 1


def test_the_setting_applies_when_the_cell_says_nothing(shell, session, capsys):
    run(shell, "%carbon config on_duplicate=skip")
    run(shell, "lr = 0.1")
    run(shell, "%%carbon\nprint('trained with', lr)")
    run(shell, "%%carbon\nprint('trained with', lr)")
    assert capsys.readouterr().out.count("trained with") == 1


def test_a_mutated_input_is_a_new_input(shell, session):
    run(shell, "calls = []")
    run(shell, "%%carbon --on-duplicate skip\ncalls.append(1)")
    run(shell, "%%carbon --on-duplicate skip\ncalls.append(1)")  # calls is [1] now: not the same input
    assert shell.user_ns["calls"] == [1, 1]


def test_unknown_inputs_are_never_called_redundant(shell, session, capsys, tmp_path):
    handle = (tmp_path / "data.txt").open("w")
    shell.user_ns["handle"] = handle
    try:
        run(shell, "%%carbon --on-duplicate skip\nhandle.write('x')")
        run(shell, "%%carbon --on-duplicate skip\nhandle.write('x')")
    finally:
        handle.close()
    first, second = runs_of(session)
    assert first["inputs_fingerprint"] is None and second["redundant_of"] is None


def test_a_failed_run_is_not_a_reason_to_skip(shell, session):
    run(shell, "lr = 0.0")
    run(shell, "%%carbon\n1 / lr")
    run(shell, "%%carbon --on-duplicate skip\n1 / lr")
    assert [r["status"] for r in runs_of(session)] == ["failed", "failed"]


def test_final_marks_the_selected_run(shell, session, capsys):
    for lr in (0.1, 0.2, 0.3):
        run(shell, f"lr = {lr}")
        run(shell, "%%carbon --sweep lr" + (" --final" if lr == 0.2 else "") + "\nacc = lr * 2")
    run(shell, "%carbon sweeps")
    assert "run 2 (final)" in capsys.readouterr().out
    run(shell, "%carbon final 3")
    assert "run 3 is now the selected result of lr" in capsys.readouterr().out
    run(shell, "%carbon sweeps")
    assert "run 3 (final)" in capsys.readouterr().out
    result = run(shell, "%carbon final 99")
    assert "there is no run 99" in capsys.readouterr().err and not result.success


def test_auto_mode_records_repeats_without_warning(shell, session, capsys):
    run(shell, "lr = 0.1")
    run(shell, "%carbon auto on")
    run(shell, "acc = lr * 2")
    run(shell, "acc = lr * 2")
    run(shell, "%carbon auto off")
    assert "repeats" not in capsys.readouterr().err
    first, second = runs_of(session)
    assert second["redundant_of"] == first["id"]


def test_the_repeat_count_includes_runs_whose_writes_are_still_queued(session):
    """Identical runs finished while the registry's writes wait (another process holds its write
    lock, as a colleague's long write would): the lookup before each next run counts every
    identical ok run so far, 1, 2, 3, 4, not only those already in the file (a notebook saw its
    count go 8, 8, 10, 11, 12, 12); once the writes land, the file holds them all."""
    import sqlite3

    fingerprints = {"code_fingerprint": "c", "inputs_fingerprint": "i", "params_fingerprint": "p"}
    first = session.begin(name="train", fingerprints=fingerprints).start().finish("ok")
    assert first.recorded() is None
    blocker = sqlite3.connect(session.settings.registry_location(), timeout=1)
    blocker.execute("BEGIN IMMEDIATE")  # the writer's next transaction waits behind this one
    counts = [session.find_redundant(fingerprints)["repeats"]]
    try:
        for _ in range(3):
            session.begin(name="train", fingerprints=fingerprints).start().finish("ok")  # its write is queued
            counts.append(session.find_redundant(fingerprints)["repeats"])
    finally:
        blocker.rollback()
        blocker.close()
    assert counts == [1, 2, 3, 4]
    assert len(runs_of(session)) == 4
    assert session.find_redundant(fingerprints)["repeats"] == 4  # from the file alone now

"""Sweep labels from real cells (issue 15): never a line of code; what the runs' names share; the
sweep name first; the notebook and cell otherwise; the same label in the statement, the CLI and
the server."""

from __future__ import annotations

import json

import pytest

from notebook_carbon.errors import ConfigError
from notebook_carbon.meters.detect import Detection
from notebook_carbon.registry.store import Registry
from notebook_carbon.session import Session
from notebook_carbon.settings import Settings
from notebook_carbon.testing import FakeMeter


@pytest.fixture
def registry_path(tmp_path):
    return tmp_path / "registry.sqlite"


@pytest.fixture
def session(registry_path):
    detection = Detection(meters=(FakeMeter("cpu", "rapl", "package-0", 30.0),), notes=())
    return Session(Settings(registry=str(registry_path), region="FR", project="labels"), detection=detection)


def _sweeps(session) -> dict[str, object]:
    assert session.writer().flush(10)
    with Registry.open(session.settings.registry_location()) as reg:
        return {s.key: s for s in reg.sweeps("labels")}


def _code_lines(cells: list[str]) -> set[str]:
    return {line.strip() for cell in cells for line in cell.splitlines() if line.strip()}


def test_names_cells_and_auto_mode_never_give_a_line_of_code(shell, session):
    shell.user_ns["__session__"] = "projects/vision/digits.ipynb"
    cells = [
        "%%carbon --name lr=0.1\nscores = {}\nacc = 0.1 * 2\n",
        "%%carbon --name lr=0.5\nscores = {}\nacc = 0.1 * 2\n",
        "%%carbon\nLogisticRegression = dict\nmodel = LogisticRegression(C=-1.0)\n",
        "%%carbon\nimport time\ntime.sleep(0)\n",
    ]
    for cell in cells:
        assert shell.run_cell(cell, store_history=True).success
    shell.run_cell("%carbon auto on", store_history=True)
    auto_cells = ["accuracy = len('train(0.1)')\n", "total = sum(range(3))\n"]
    for cell in auto_cells:
        assert shell.run_cell(cell, store_history=True).success
    shell.run_cell("%carbon auto off", store_history=True)
    sweeps = _sweeps(session)
    labels = {s.label for s in sweeps.values()}
    assert len(sweeps) == 5
    assert not labels & _code_lines(cells + auto_cells), labels
    assert "lr" in labels  # the names' common prefix
    # unnamed cells: the notebook's file name and the cell's In [n]
    assert all(label == "lr" or label.startswith("digits.ipynb, cell ") for label in labels), labels
    with Registry.open(session.settings.registry_location()) as reg:
        runs = reg.runs(project="labels")
    counts = {r["execution_count"] for r in runs}
    assert None not in counts and len(counts) == len(runs)
    for run in runs:
        if run["name"] is None:
            assert sweeps[run["sweep_key"]].label == f"digits.ipynb, cell {run['execution_count']}"


def test_the_sweep_name_wins_over_the_names(shell, session):
    for name in ("lr=0.1", "lr=0.5"):
        assert shell.run_cell(f"%%carbon --sweep study --name {name}\nacc = 1\n", store_history=True).success
    (sweep,) = _sweeps(session).values()
    assert (sweep.key, sweep.label, sweep.explicit) == ("study", "study", True)


def test_without_a_notebook_the_label_is_the_cell(shell, session):
    shell.user_ns.pop("__session__", None)
    assert shell.run_cell("%%carbon\nq = 3\n", store_history=True).success
    (sweep,) = _sweeps(session).values()
    assert sweep.label.startswith("cell ") and sweep.label[5:].isdigit()


def test_one_label_in_the_statement_the_cli_and_the_server(shell, session, capsys):
    from notebook_carbon.cli import main
    from notebook_carbon.server.reader import RegistryReader
    from notebook_carbon.statements import statement_facts

    shell.user_ns["__session__"] = "digits.ipynb"
    for lr in ("0.1", "0.5"):  # the same cell with another input: no repeat, so the sweep is a result
        shell.user_ns["lr"] = float(lr)
        assert shell.run_cell(f"%%carbon --name resnet50-lr{lr}\nfit = 2 * lr\n", store_history=True).success
    assert shell.run_cell("%%carbon --final\nother = 1\n", store_history=True).success
    sweeps = _sweeps(session)
    labels = sorted(s.label for s in sweeps.values())
    assert "resnet50-lr" in labels and any(label.startswith("digits.ipynb, cell ") for label in labels)
    location = session.settings.registry_location()

    facts = statement_facts(location, project="labels", settings=session.settings)
    facts = json.loads(json.dumps(facts))
    assert sorted(s["label"] for s in facts["sweeps"]) == labels
    # both are results: several runs, and a run marked final; the statement names them
    assert sorted(r["label"] for r in facts["development"]["results"]) == labels

    capsys.readouterr()
    assert main(["sweeps", "--registry", str(location), "--project", "labels"]) == 0
    out = capsys.readouterr().out
    assert all(label in out for label in labels), out

    reader = RegistryReader(str(location), settings=session.settings)
    try:
        served = reader.sweeps("labels")
    finally:
        reader.close()
    assert sorted(s["label"] for s in served["sweeps"]) == labels


def test_a_run_records_the_cell_it_ran_in(shell, session):
    """The cell's id JupyterLab sends with it (nbformat 4.5) is recorded with its run, metered by
    ``%%carbon`` or in auto mode, so a view opens the notebook at that cell; an id that is not one
    (a front end's bug, a hostile message) is not recorded and the cell is metered all the same."""
    cells = [("%%carbon --name a\nx = 1\n", "0f9c-4e_a"), ("%%carbon --name b\nx = 2\n", None),
             ("%%carbon --name c\nx = 3\n", "not an id; <b>"), ("%%carbon --name d\nx = 4\n", "x" * 65)]  # fmt: skip
    for source, cell_id in cells:
        assert shell.run_cell(source, store_history=True, cell_id=cell_id).success
    shell.run_cell("%carbon auto on", store_history=True)
    assert shell.run_cell("y = 5\n", store_history=True, cell_id="auto-cell").success
    shell.run_cell("%carbon auto off", store_history=True)
    assert session.writer().flush(10)
    with Registry.open(session.settings.registry_location()) as reg:
        runs = {run["name"]: run for run in reg.runs(project="labels")}
    assert {name: run["cell_id"] for name, run in runs.items()} == {
        "a": "0f9c-4e_a", "b": None, "c": None, "d": None, None: "auto-cell"}  # fmt: skip
    with pytest.raises(ConfigError, match="a cell id is 1 to 64 letters"):
        session.begin(name="e", cell_id="no spaces")

"""Nested and auto metering: each joule is counted once.

A ``track()`` block in a metered cell (or in any cell with auto mode on) and a ``%%carbon`` cell run
from inside another used to be recorded as runs of their own beside the enclosing run, so the
project counted their energy twice (36.7 J stored for about 18 J used). They are parts now.
"""

from __future__ import annotations

import pytest
from IPython.core.interactiveshell import InteractiveShell

import notebook_carbon
from notebook_carbon import analysis
from notebook_carbon.magic import load_ipython_extension, unload_ipython_extension
from notebook_carbon.meters.detect import Detection
from notebook_carbon.registry.parts import parts
from notebook_carbon.registry.store import Registry
from notebook_carbon.session import Session
from notebook_carbon.settings import Settings
from notebook_carbon.statements import statement_facts
from notebook_carbon.testing import FakeMeter


@pytest.fixture
def shell(tmp_path):
    session = Session(
        Settings(registry=str(tmp_path / "registry.sqlite"), region="FR", project="nest"),
        detection=Detection(meters=(FakeMeter("cpu", "rapl", "package-0", 10.0),), notes=()),
    )
    shell = InteractiveShell.instance()
    ext = load_ipython_extension(shell, session=session)
    yield shell, ext
    unload_ipython_extension(shell)


def recorded(ext):
    location = ext.session.settings.registry_location()
    with Registry.open(location) as reg:
        runs = list(reversed(reg.runs()))
        return runs, {run["uid"]: parts(reg, run["uid"]) for run in runs}, reg


def counted_once(ext, runs) -> None:
    """Every reader's total is the sum of the runs, parts left out: the enclosing runs measured them."""
    location = ext.session.settings.registry_location()
    total = sum(r["energy_j"] for r in runs)
    frame = analysis.runs(location, project="nest")
    assert len(frame) == len(runs) and frame["energy_j"].sum() == pytest.approx(total)
    with Registry.open(location) as reg:
        swept = [r["energy_j"] for r in runs if r["code_fingerprint"] or r["sweep"]]
        # the registry's totals are exact to the microjoule (integers of them): one per run at most
        assert sum(s.energy_j for s in reg.sweeps("nest")) == pytest.approx(sum(swept), abs=1e-6 * len(swept))
    facts = statement_facts(location, project="nest")
    assert facts["totals"]["energy_j"]["value"] == pytest.approx(total, abs=1e-6 * len(runs))


def test_track_inside_an_auto_metered_cell_is_a_part_of_the_cells_run(shell, capsys) -> None:
    ip, ext = shell
    ip.run_cell("%carbon auto on")
    ip.run_cell(
        "import time, notebook_carbon\n"
        "with notebook_carbon.track(name='inner', params={'lr': 0.1}):\n"
        "    time.sleep(0.3)\n"
        "time.sleep(0.1)"
    )
    ip.run_cell("%carbon auto off")
    runs, by_run, _ = recorded(ext)
    assert len(runs) == 1  # the cell; the block is not a run beside it
    (part,) = by_run[runs[0]["uid"]]
    assert (part["name"], part["params"], part["status"]) == ("inner", {"lr": 0.1}, "ok")
    assert part["parent_uid"] == runs[0]["uid"]
    assert 0 < part["energy_j"] < runs[0]["energy_j"]  # inside the cell's energy, not added to it
    assert "a part of the enclosing metered run" in capsys.readouterr().err
    counted_once(ext, runs)


def test_a_nested_carbon_cell_is_a_part_of_the_outer_cell(shell, capsys) -> None:
    ip, ext = shell
    ip.run_cell(
        "%%carbon --name outer\n"
        "import time\n"
        "get_ipython().run_cell('%%carbon --name inner\\ntime.sleep(0.2)')\n"
        "time.sleep(0.1)"
    )
    runs, by_run, _ = recorded(ext)
    assert [r["name"] for r in runs] == ["outer"]
    assert [p["name"] for p in by_run[runs[0]["uid"]]] == ["inner"]
    out = capsys.readouterr().out
    assert "carbon [inner]" in out and "a part of the enclosing metered run" in out and "carbon [outer]" in out
    counted_once(ext, runs)


def test_track_in_a_metered_cell_and_blocks_after_it(shell) -> None:
    ip, ext = shell
    ip.run_cell(
        "%%carbon --name cell\n"
        "import notebook_carbon\n"
        "for lr in (0.1, 0.2):\n"
        "    with notebook_carbon.track(name=f'lr={lr}', sweep='lr', params={'lr': lr}, quiet=True):\n"
        "        sum(range(10000))"
    )
    with notebook_carbon.track(name="after", quiet=True, session=ext.session):  # nothing open: a run
        sum(range(10000))
    runs, by_run, _ = recorded(ext)
    assert [r["name"] for r in runs] == ["cell", "after"]
    assert [p["name"] for p in by_run[runs[0]["uid"]]] == ["lr=0.1", "lr=0.2"]
    counted_once(ext, runs)


def test_a_block_in_another_thread_is_a_run_of_its_own(shell) -> None:
    # Threads run beside each other, not inside: the shorter block must not swallow the longer one.
    import threading
    import time

    ip, ext = shell

    def block(name: str, seconds: float) -> None:
        with notebook_carbon.track(name=name, quiet=True, session=ext.session):
            time.sleep(seconds)

    short = threading.Thread(target=block, args=("short", 0.2))
    long = threading.Thread(target=block, args=("long", 0.6))
    short.start()
    time.sleep(0.05)
    long.start()
    short.join()
    long.join()
    runs, by_run, _ = recorded(ext)
    assert sorted(r["name"] for r in runs) == ["long", "short"]
    assert all(parts == [] for parts in by_run.values())
    assert {r["name"]: round(r["energy_j"]) for r in runs} == {"short": 2, "long": 6}  # 10 W each


def test_a_block_for_another_registry_is_a_run_there(shell, tmp_path) -> None:
    ip, ext = shell
    other = Session(Settings(registry=str(tmp_path / "other.sqlite"), region="FR", project="beta"),
                    detection=Detection(meters=(FakeMeter("cpu", "rapl", "package-0", 10.0),), notes=()))
    with notebook_carbon.track(name="outer", quiet=True, session=ext.session):
        with notebook_carbon.track(name="elsewhere", quiet=True, session=other):
            pass
    with Registry.open(str(tmp_path / "other.sqlite")) as reg:
        assert [(r["name"], r["project"]) for r in reg.runs()] == [("elsewhere", "beta")]
    runs, by_run, _ = recorded(ext)
    assert [r["name"] for r in runs] == ["outer"] and by_run[runs[0]["uid"]] == []


def test_final_on_a_nested_cell_is_ignored_with_a_word_not_a_false_registry_warning(shell, capsys) -> None:
    ip, ext = shell
    ip.run_cell("%%carbon --name outer\nget_ipython().run_cell('%%carbon --final --name inner\\nx = 1')")
    err = capsys.readouterr().err
    assert "--final is ignored" in err and "not recorded" not in err


def test_a_run_whose_start_was_interrupted_takes_in_no_block_as_its_part(tmp_path, monkeypatch) -> None:
    """An interrupt while a run opens its window (the researcher pressed it as a cell began): the run
    records nothing measured, so a block that runs after it must not become its part, whose energy
    its zero total would then leave out. The block is a run of its own."""
    from notebook_carbon.measure import Window

    session = Session(
        Settings(registry=str(tmp_path / "registry.sqlite"), region="FR", project="nest"),
        detection=Detection(meters=(FakeMeter("cpu", "rapl", "package-0", 10.0),), notes=()),
    )
    start = Window.start

    def interrupted(self):
        monkeypatch.setattr(Window, "start", start)  # once
        raise KeyboardInterrupt

    monkeypatch.setattr(Window, "start", interrupted)
    outer = session.begin(name="outer")
    with pytest.raises(KeyboardInterrupt):
        outer.start()
    with notebook_carbon.track(name="after", session=session, quiet=True) as block:
        sum(range(1000))
    finished = outer.finish("interrupted", "interrupted as it started")
    assert block.result.parent_uid is None and finished.row["energy_j"] == 0.0
    assert finished.recorded() is None and block.result.recorded() is None
    with Registry.open(session.settings.registry_location()) as reg:
        assert {r["name"] for r in reg.runs(project="nest")} == {"outer", "after"}

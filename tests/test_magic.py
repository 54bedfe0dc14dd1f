"""The magic in a real IPython ``InteractiveShell``: the cell behaves exactly as without it, and
every metered cell is a run in a real SQLite registry. Only the hardware is fake."""

from __future__ import annotations

import pytest
from IPython.core.error import UsageError
from IPython.core.interactiveshell import InteractiveShell

from notebook_carbon.magic import load_ipython_extension, parse_cell_args, transform_carbon_cell, unload_ipython_extension
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
    detection = Detection(
        meters=(FakeMeter("cpu", "rapl", "package-0", 30.0), FakeMeter("ram", "estimate-ram", "RAM 16 GB", 6.0)),
        notes=("no GPU component: test machine",),
    )
    return Session(Settings(registry=str(registry_path), region="FR"), detection=detection)


def recorded_runs(session) -> list[dict]:
    assert session.writer().flush(10)
    registry = Registry.open(session.settings.registry_location())
    try:
        return list(reversed(registry.runs()))
    finally:
        registry.close()


def test_variables_persist_and_the_run_is_recorded(shell, session, capsys):
    result = shell.run_cell("%%carbon --name warmup --param lr=0.1 bs=32 opt=adam --tag a --tag b\nx = 40 + 2\n", store_history=True)
    assert result.success
    assert shell.user_ns["x"] == 42
    out = capsys.readouterr().out
    assert out.startswith("carbon [warmup]: ")
    assert "CPU" in out and "rapl" in out and "estimate-ram" in out and "FR grid" in out
    (run,) = recorded_runs(session)
    assert run["status"] == "ok" and run["name"] == "warmup"
    assert run["params"] == {"lr": 0.1, "bs": 32, "opt": "adam"}
    assert run["tags"] == ["a", "b"]
    assert run["cell_source"] == "x = 40 + 2\n"
    assert run["cpu_method"] == "rapl" and run["ram_method"] == "estimate-ram" and run["gpu_method"] == "none"
    assert run["energy_j"] == pytest.approx(run["cpu_energy_j"] + run["ram_energy_j"])
    assert run["emissions_g"] == pytest.approx(run["energy_j"] / 3.6e6 * run["intensity_g_per_kwh"])
    assert run["intensity_region"] == "FR"


def test_last_expression_is_displayed_before_the_summary(shell, capsys):
    result = shell.run_cell("%%carbon\n6 * 7\n", store_history=True)
    assert result.result == 42
    assert shell.user_ns["_"] == 42
    out = capsys.readouterr().out
    assert out.index("42") < out.index("carbon: ")


def test_trailing_semicolon_still_silences_the_value(shell, capsys):
    shell.run_cell("%%carbon --quiet\n6 * 7;\n", store_history=True)
    assert capsys.readouterr().out == ""


def test_exception_shows_a_normal_traceback_and_records_failed(shell, session, capsys):
    result = shell.run_cell("%%carbon --name boom\ny = 1\n1 / 0\n", store_history=True)
    assert isinstance(result.error_in_exec, ZeroDivisionError)
    assert shell.user_ns["y"] == 1
    out = capsys.readouterr().out
    assert "ZeroDivisionError" in out
    assert "line 3" in out  # line numbers are those of the cell as typed
    assert "notebook_carbon" not in out.split("carbon [boom]")[0]  # no frames of ours
    assert out.count("ZeroDivisionError") == out.split("carbon [boom]")[0].count("ZeroDivisionError")
    assert "carbon [boom] (failed): " in out
    (run,) = recorded_runs(session)
    assert run["status"] == "failed"
    assert run["error"] == "ZeroDivisionError: division by zero"


def test_keyboard_interrupt_records_interrupted(shell, session, capsys):
    result = shell.run_cell("%%carbon\nraise KeyboardInterrupt\n", store_history=True)
    assert isinstance(result.error_in_exec, KeyboardInterrupt)
    assert "(interrupted)" in capsys.readouterr().out
    (run,) = recorded_runs(session)
    assert run["status"] == "interrupted"


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("--bogus", "unrecognized arguments: --bogus"),
        ("--param lr", "--param takes KEY=VALUE"),
        ("--name", "expected one argument"),
        ("--name 'unclosed", "cannot parse"),
        ("--sweep ''", "--sweep must not be empty"),
    ],
)
def test_bad_arguments_are_a_usage_error_and_the_cell_does_not_run(shell, session, capsys, line, message):
    result = shell.run_cell(f"%%carbon {line}\nside_effect = 1\n", store_history=True)
    assert isinstance(result.error_in_exec, UsageError)
    assert "side_effect" not in shell.user_ns
    output = capsys.readouterr()
    assert message in output.out + output.err
    assert "Traceback" not in output.out
    assert recorded_runs(session) == []


def test_quiet_prints_nothing_but_records(shell, session, capsys):
    shell.run_cell("%%carbon --quiet\nz = 3\n", store_history=True)
    assert capsys.readouterr().out == ""
    assert [r["status"] for r in recorded_runs(session)] == ["ok"]


def test_top_level_await_works(shell, session):
    result = shell.run_cell("%%carbon\nimport asyncio\nawait asyncio.sleep(0)\nawaited = 'yes'\n", store_history=True)
    assert result.success, result.error_in_exec
    assert shell.user_ns["awaited"] == "yes"
    assert [r["status"] for r in recorded_runs(session)] == ["ok"]


def test_another_cell_magic_inside_works(shell, session, capsys):
    shell.run_cell("%%carbon\n%%capture captured\nprint('hidden')\n", store_history=True)
    assert "hidden" in shell.user_ns["captured"].stdout
    assert "hidden" not in capsys.readouterr().out
    assert len(recorded_runs(session)) == 1


def test_auto_mode_meters_every_cell_once(shell, session, capsys):
    shell.run_cell("%carbon auto on", store_history=True)
    shell.run_cell("a = 1", store_history=True)
    shell.run_cell("b = a + 1", store_history=True)
    shell.run_cell("get_ipython().run_cell('c = b + 1')")  # nested cell: part of the outer run
    shell.run_cell("%%carbon --name explicit\nd = 4")  # metered once, by its own magic
    shell.run_cell("%carbon auto off", store_history=True)
    shell.run_cell("e = 5", store_history=True)
    assert shell.user_ns["c"] == 3
    runs = recorded_runs(session)
    assert [r["cell_source"] for r in runs] == [
        "a = 1",
        "b = a + 1",
        "get_ipython().run_cell('c = b + 1')",
        "d = 4",
    ]
    assert runs[-1]["name"] == "explicit"
    assert capsys.readouterr().out.count("carbon") >= 4


def test_config_changes_region_and_rejects_unknown_regions(shell, session, capsys):
    shell.run_cell("%carbon config region=DE pue=1.2", store_history=True)
    assert session.settings.region == "DE" and session.settings.pue == 1.2
    result = shell.run_cell("%carbon config region=ZZZ", store_history=True)
    assert isinstance(result.error_in_exec, UsageError)
    assert "notebook-carbon regions" in capsys.readouterr().err
    assert session.settings.region == "DE"  # nothing changed by the bad value
    shell.run_cell("%%carbon\npass", store_history=True)
    (run,) = recorded_runs(session)
    assert run["intensity_region"] == "DE" and run["pue"] == 1.2


def test_config_without_arguments_lists_settings(shell, capsys):
    shell.run_cell("%carbon config", store_history=True)
    out = capsys.readouterr().out
    assert "region" in out and "FR" in out and "registry" in out


def test_last_reports_components_methods_and_intensity_source(shell, capsys):
    shell.run_cell("%carbon last", store_history=True)
    assert "no cell has been metered" in capsys.readouterr().out
    shell.run_cell("%%carbon --name report --param lr=0.5\npass", store_history=True)
    capsys.readouterr()
    shell.run_cell("%carbon last", store_history=True)
    out = capsys.readouterr().out
    assert "run 1 [report] status ok" in out
    assert "package-0" in out and "rapl" in out and "estimate-ram" in out
    assert "lr=0.5" in out
    assert "no GPU component: test machine" in out


def test_unknown_line_command_is_a_usage_error(shell, capsys):
    result = shell.run_cell("%carbon frobnicate", store_history=True)
    assert isinstance(result.error_in_exec, UsageError)
    assert "unknown command" in capsys.readouterr().err


def test_direct_cell_magic_call_still_meters(shell, session):
    value = shell.run_cell_magic("carbon", "--name direct --quiet", "q = 5\nq * 2\n")
    assert value == 10 and shell.user_ns["q"] == 5
    (run,) = recorded_runs(session)
    assert run["name"] == "direct" and run["status"] == "ok"


def test_metering_failure_is_one_warning_and_the_cell_still_runs(shell, session, capsys, monkeypatch):
    def broken(**_):
        raise RuntimeError("sensor exploded")

    monkeypatch.setattr(session, "begin", broken)
    result = shell.run_cell("%%carbon\nsurvivor = 1\nsurvivor", store_history=True)
    assert result.success and result.result == 1
    captured = capsys.readouterr()
    assert captured.err.count("notebook-carbon warning") == 1
    assert "this cell runs unmetered" in captured.err and "sensor exploded" in captured.err


def test_unwritable_registry_is_one_warning_and_the_cell_result_stands(tmp_path, capsys):
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("a file where a directory should be")
    session = Session(
        Settings(registry=str(blocker / "registry.sqlite"), region="FR"),
        detection=Detection(meters=(FakeMeter("cpu", "rapl", "package-0", 1.0),), notes=()),
    )
    shell = InteractiveShell.instance()
    load_ipython_extension(shell, session=session)
    try:
        result = shell.run_cell("%%carbon\n'still here'", store_history=True)
        in_the_cell = capsys.readouterr().err  # said in the cell that lost its run, not one later
        shell.run_cell("%%carbon\n'again'", store_history=True)
        shell.run_cell("1 + 1")
    finally:
        unload_ipython_extension(shell)
    assert result.success and result.result == "still here"
    assert in_the_cell.count("notebook-carbon warning") == 1
    assert "this cell's run was not recorded in registry" in in_the_cell
    assert str(blocker) in in_the_cell  # says which file
    assert capsys.readouterr().err.count("notebook-carbon warning") == 0  # once per cause, not per cell


@pytest.mark.parametrize(
    ("lines", "expected"),
    [
        (["x = 1\n"], ["x = 1\n"]),
        (["%%carbonara\n", "x\n"], ["%%carbonara\n", "x\n"]),
        (["%%carbon --name a\n", "x = 1\n"], ["# %%carbon --name a\n", "x = 1\n"]),
        (["%%carbon\n"], ["# %%carbon\n"]),
        (["%%carbon\n", "%%time\n", "x\n"], ["%%time\n", "x\n"]),
    ],
)
def test_transformer_keeps_line_numbers_and_lets_other_magics_through(lines, expected):
    assert transform_carbon_cell(lines) == expected


def test_param_values_keep_their_types():
    args = parse_cell_args("--param lr=1e-3 layers=[64,64] flag=True name='a b' raw=adam")
    assert args.fields()["params"] == {"lr": 0.001, "layers": [64, 64], "flag": True, "name": "a b", "raw": "adam"}


def test_bad_environment_setting_makes_load_ext_a_clear_usage_error(monkeypatch, capsys):
    shell = InteractiveShell.instance()
    monkeypatch.setenv("NOTEBOOK_CARBON_PUE", "lots")
    result = shell.run_cell("%load_ext notebook_carbon", store_history=True)
    try:
        assert isinstance(result.error_in_exec, UsageError)
        err = capsys.readouterr().err
        assert "notebook-carbon could not load: setting pue='lots' (from environment)" in err
        assert "Traceback" not in err
    finally:
        shell.extension_manager.loaded.discard("notebook_carbon")
        unload_ipython_extension(shell)


def test_a_registry_problem_that_comes_back_after_runs_were_recorded_is_said_again(tmp_path, capsys):
    # Said once per cause while it lasts; a run recorded in between ends it: when the same cause
    # comes back (the disk fills up again), the researcher hears of it again.
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("a file where a directory should be")
    blocked, good = str(blocker / "registry.sqlite"), str(tmp_path / "good.sqlite")
    session = Session(
        Settings(registry=blocked, region="FR"),
        detection=Detection(meters=(FakeMeter("cpu", "rapl", "package-0", 1.0),), notes=()),
    )
    shell = InteractiveShell.instance()
    load_ipython_extension(shell, session=session)
    try:
        said = []
        for registry in (blocked, blocked, good, blocked):
            session.configure(registry=registry)
            shell.run_cell("%%carbon --quiet\nx = 1", store_history=True)
            said.append(capsys.readouterr().err.count("was not recorded"))
    finally:
        unload_ipython_extension(shell)
    assert said == [1, 0, 0, 1]


def test_the_summary_of_a_run_that_was_not_recorded_says_so_in_every_cell(tmp_path, capsys):
    # The warning explains the cause once; each line of a run that did not reach the registry says so.
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("a file where a directory should be")
    session = Session(
        Settings(registry=str(blocker / "registry.sqlite"), region="FR"),
        detection=Detection(meters=(FakeMeter("cpu", "rapl", "package-0", 1.0),), notes=()),
    )
    shell = InteractiveShell.instance()
    load_ipython_extension(shell, session=session)
    try:
        shell.run_cell("%%carbon --name one\nx = 1", store_history=True)
        shell.run_cell("%%carbon --name two\nx = 2", store_history=True)
    finally:
        unload_ipython_extension(shell)
    out = capsys.readouterr().out
    assert out.count("NOT RECORDED") == 2 and "carbon [two]" in out

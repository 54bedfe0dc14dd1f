"""Whatever is typed on a ``%%carbon`` line: a usage error before the cell runs, or a run every reader reads.

``--param x=1j`` (also ``{1,2}``, ``...``, ``1e999``) used to run the cell and drop the run with a
misleading "registry could not be written" warning; a NUL in the line became a SyntaxError and a
``failed`` run; ``%carbon final`` with a huge or unknown id was followed by false registry warnings.
"""

from __future__ import annotations

import contextlib
import json
import math
import shlex
import string

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from IPython.core.error import UsageError
from IPython.core.interactiveshell import InteractiveShell

from notebook_carbon import analysis
from notebook_carbon.cell.args import parse_cell_args
from notebook_carbon.magic import load_ipython_extension, unload_ipython_extension
from notebook_carbon.meters.detect import Detection
from notebook_carbon.registry.store import Registry
from notebook_carbon.session import Session
from notebook_carbon.settings import Settings
from notebook_carbon.testing import FakeMeter

HOSTILE = ["\x1b]8;;http://x\x07", "\x00", "\r", "\n", "\u202e", "1j", "{1,2}", "...", "1e999", "-1e999",
           "nan", "'", '"', "\\", "--", "=", "10**400", "[1, {2: 3}]", "{'a': 1j}", "(1,)", "True", "None"]
TEXT = st.text(st.sampled_from(string.printable + "\x00\x1b\u202e\u00e9\U0001f600"), max_size=40)
LINE = st.lists(st.one_of(st.sampled_from(HOSTILE), TEXT), max_size=6).map(" ".join)
ONE_LINE = LINE.filter(lambda line: len(f"x{line}y".splitlines()) == 1)
"""A line break (\\r, \\n, \\x0b, \\u2028 ...) ends the ``%%carbon`` line: what follows is the cell's code."""
PARAM_VALUE = st.one_of(st.sampled_from(HOSTILE), TEXT, st.integers().map(str), st.floats().map(repr))


@contextlib.contextmanager
def metered_shell(tmp_path):
    session = Session(
        Settings(registry=str(tmp_path / "registry.sqlite"), region="FR"),
        detection=Detection(meters=(FakeMeter("cpu", "rapl", "package-0", 5.0),), notes=()),
    )
    shell = InteractiveShell.instance()
    ext = load_ipython_extension(shell, session=session)
    try:
        yield shell, ext
    finally:
        unload_ipython_extension(shell)


def stored_runs(ext) -> list[dict]:
    location = ext.session.settings.registry_location()
    with contextlib.suppress(Exception):
        with Registry.open(location, read_only=True) as reg:
            runs = reg.runs()
        frame = analysis.runs(location)
        assert len(frame) == len(runs)  # every stored run is readable by the analysis too
        return runs
    return []


@settings(max_examples=300, deadline=None)
@given(LINE)
def test_any_line_parses_or_is_a_usage_error(line: str) -> None:
    try:
        args = parse_cell_args(line)
    except UsageError:
        return
    # what parses can be recorded: its params are JSON (finite numbers), its names hold no NUL
    json.dumps(dict(args.params), allow_nan=False)
    for text in (args.name, args.sweep, *args.tags):
        assert text is None or "\x00" not in text


@settings(max_examples=200, deadline=None)
@given(PARAM_VALUE)
def test_any_param_value_is_recorded_as_given_or_refused(value: str) -> None:
    try:
        args = parse_cell_args(f"--param x={value!s}".replace("\x00", "\\x00"))
    except UsageError as exc:
        assert "--param" in str(exc) or "cannot parse" in str(exc)
        return
    recorded = dict(args.params).get("x")
    assert json.loads(json.dumps(recorded, allow_nan=False)) == recorded
    if isinstance(recorded, float):
        assert math.isfinite(recorded)


@pytest.mark.parametrize("value", ["1j", "{1,2}", "...", "1e999", "-1e999", "{'a': 1j}", "[1, ...]"])
def test_an_unrecordable_param_is_a_usage_error_before_the_cell_runs(tmp_path, capsys, value: str) -> None:
    with metered_shell(tmp_path) as (shell, ext):
        result = shell.run_cell(f"%%carbon --param {shlex.quote('x=' + value)}\nran = True")
        assert isinstance(result.error_in_exec, UsageError)
        assert "ran" not in shell.user_ns
        err = capsys.readouterr().err
        assert "cannot be recorded" in err and "quote it" in err
        assert "registry" not in err  # no false registry warning
        assert stored_runs(ext) == []


def test_a_nul_in_the_line_is_a_usage_error_not_a_failed_run(tmp_path, capsys) -> None:
    with metered_shell(tmp_path) as (shell, ext):
        result = shell.run_cell("%%carbon --name a\x00b\nran = True")
        assert isinstance(result.error_in_exec, UsageError) and "NUL" in str(result.error_in_exec)
        assert "ran" not in shell.user_ns
        assert stored_runs(ext) == []


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(line=ONE_LINE)
def test_a_fuzzed_line_in_a_real_shell_runs_and_records_or_is_a_usage_error(tmp_path_factory, line: str) -> None:
    with metered_shell(tmp_path_factory.mktemp("fuzz")) as (shell, ext):
        shell.user_ns.pop("ran", None)
        result = shell.run_cell(f"%%carbon {line}\nran = True")
        runs = stored_runs(ext)
        if isinstance(result.error_in_exec, UsageError):
            assert "ran" not in shell.user_ns and runs == []
        else:
            assert result.success and shell.user_ns["ran"] is True
            assert [r["status"] for r in runs] == ["ok"]


@pytest.mark.parametrize("run_id", ["99999999999999999999", "999", "0", "-1", "1.5", "\u0661"])
def test_carbon_final_with_an_unknown_or_huge_id_is_one_usage_error_and_no_registry_warning(
    tmp_path, capsys, run_id: str
) -> None:
    with metered_shell(tmp_path) as (shell, ext):
        shell.run_cell("%%carbon --name first\nx = 1")
        capsys.readouterr()
        result = shell.run_cell(f"%carbon final {run_id}")
        assert isinstance(result.error_in_exec, UsageError)
        assert "Traceback" not in capsys.readouterr().err
        shell.run_cell("%%carbon --name second\nx = 2")  # the next cells: no warning about the registry
        shell.run_cell("y = 3")
        assert "notebook-carbon warning" not in capsys.readouterr().err
        assert [r["name"] for r in stored_runs(ext)] == ["second", "first"]

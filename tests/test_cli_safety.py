"""The CLI and every terminal table are safe and never mislead: user text is shown escaped and
truncated after escaping; numbers out of range, bad budgets, unknown projects, notebooks and sweeps
and missing registries are one-line errors; reading never creates a registry; a run whose process
died reads crashed; a reader that stops reading ends the command quietly."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

import pg  # tests/pg.py
import psutil
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st
from sqlalchemy import create_engine
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

from notebook_carbon.cli import main
from notebook_carbon.meters.detect import host_info
from notebook_carbon.registry import Registry, new_uid

RAW = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
"""What a terminal acts on (or str.splitlines breaks at) besides the line ends a table puts there."""
OSC_LINK = "\x1b]8;;http://evil.example\x07click\x1b]8;;\x07"
HOSTILE = [
    OSC_LINK,
    "\x1b[2J\x1b[Hcleared",
    "over\rwrite",
    "two\nlines",
    "abc\u202efed.ipynb",
    "nul\x00byte",
    "c1\x9b31m\x85",
    "<img src=x onerror=alert(1)>",
    "x" * 5000,
]
CLI = str(Path(sys.executable).with_name("notebook-carbon"))


def record(location, *, project="thesis", name="run", sweep=None, notebook=None, status="ok", params=None,
           started_at=1.8e9, tags=(), error=None, **extra):
    with Registry.open(location) as reg:
        row = {"uid": new_uid(), "project": project, "name": name, "sweep": sweep, "notebook": notebook,
               "code_fingerprint": "c0de", "started_at": started_at, "params": params or {}, "tags": list(tags),
               **extra}
        if status == "running":
            return reg.start_run(row)
        return reg.record_run(row, {"status": status, "energy_j": 3600.0, "emissions_g": 0.1, "error": error,
                                    "ended_at": started_at + 60, "cpu_energy_j": 3600.0, "cpu_method": "rapl"})


def lines_of(text):
    assert not RAW.search(text), f"raw control character in {text!r}"
    return text.split("\n")


# -- escaping: every table, whatever the names -------------------------------------------------------


def _tables(capsys, location, name):
    """The text of runs, sweeps and summary over a registry of two runs of ``name``'s sweep."""
    outputs = []
    for args in (["runs"], ["sweeps", f"--project={name}"], ["summary", f"--project={name}"]):
        assert main([*args, "--registry", location]) == 0
        outputs.append(capsys.readouterr().out)
    return outputs


def _hostile_registry(directory, name):
    location = os.path.join(directory, "r.sqlite")
    for i in range(2):
        record(location, project=name, name=name, sweep=name, notebook=name, tags=[name],
               params={name: name + str(i)}, started_at=1.8e9 + i, error=name)
    return location


@pytest.fixture
def reference_lines(capsys):
    """The line counts of each table for a plain name: a hostile name must not add lines."""
    with tempfile.TemporaryDirectory() as directory:
        return [len(lines_of(text)) for text in _tables(capsys, _hostile_registry(directory, "plain"), "plain")]


names = st.one_of(
    st.sampled_from(HOSTILE),
    st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=1, max_size=60),
    st.text(alphabet="\x00\x07\x1b\x9b\x9d\r\n\t\u202e\u2066\u2028[]8;:/ab", min_size=1, max_size=30),
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(name=names)
def test_hostile_names_never_reach_the_terminal_raw(capsys, reference_lines, name):
    with tempfile.TemporaryDirectory() as directory:
        outputs = _tables(capsys, _hostile_registry(directory, name), name)
    for text, expected in zip(outputs, reference_lines):
        assert len(lines_of(text)) == expected, text


def test_truncation_never_cuts_an_osc_sequence_in_half(tmp_path, capsys):
    location = str(tmp_path / "r.sqlite")
    record(location, name="a" * 10 + OSC_LINK, sweep="b" * 5 + OSC_LINK)
    assert main(["runs", "--registry", location]) == 0
    row = lines_of(capsys.readouterr().out)[1]
    assert "aaaaaaaaaa\\x1b]…" in row and "bbbbb\\x1b]8;;http:/…" in row  # the escape whole, then the cut


def test_error_text_with_controls_is_escaped(tmp_path, capsys):
    location = str(tmp_path / "r.sqlite")
    record(location, project="thesis")
    assert main(["summary", "--registry", location, "--project", "\x1b]0;pwned\x07thesis"]) == 2
    err = capsys.readouterr().err
    assert len(lines_of(err)) == 2 and "\\x1b]0;pwned\\x07thesis" in err  # one line and its end


def test_summary_line_and_run_report_escape_the_run_name(tmp_path, monkeypatch, capsys):
    from notebook_carbon import track
    from notebook_carbon.summary import run_report

    monkeypatch.setenv("NOTEBOOK_CARBON_REGISTRY", str(tmp_path / "r.sqlite"))
    monkeypatch.setenv("NOTEBOOK_CARBON_REGION", "FR")
    with track(name=OSC_LINK + "\n", params={"lr\x1b[8m": "0.1\r"}, sweep="s\u202e") as run:
        pass
    (summary_line,) = lines_of(capsys.readouterr().err)[:-1]
    assert summary_line.startswith("carbon [\\x1b]8;;http://evil.example\\x07click")
    report = run_report(run.result)
    first, *rest = lines_of(report)  # a name cannot start a line of its own
    assert first.startswith("run ") and rest and all(line.startswith("  ") for line in rest)
    assert "\\x1b]8;;" in report and "\\u202e" in report and "lr\\x1b[8m" in report


# -- numbers: one line and exit 2, never a traceback -------------------------------------------------


@pytest.mark.parametrize(
    "argv",
    [
        ["runs", "--limit", str(10**23)],
        ["runs", "--limit", "0"],
        ["runs", "--limit", "1000001"],
        ["runs", "--limit", "ten"],
        ["chart", "power", "--run", str(10**24), "-o", "x.svg"],
        ["chart", "power", "--run", str(2**63), "-o", "x.svg"],
        ["chart", "power", "--run", "0", "-o", "x.svg"],
        ["chart", "power", "--run", "-3", "-o", "x.svg"],
        ["chart", "power", "--run", "12x", "-o", "x.svg"],
        ["check", "--budget", "1e999kg"],
        ["check", "--budget", "0g"],
        ["check", "--budget", "1e-400g"],
        ["check", "--budget", "nan"],
        ["check", "--budget", "-5kg"],
    ],
)
def test_out_of_range_numbers_are_one_line_errors(tmp_path, capsys, argv):
    location = str(tmp_path / "r.sqlite")
    record(location)
    with pytest.raises(SystemExit) as exit_info:
        main([*argv, "--registry", location])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2
    assert "Traceback" not in err and err.strip().splitlines()[-1].startswith("notebook-carbon ")


def test_the_largest_run_id_is_looked_up(tmp_path, capsys):
    location = str(tmp_path / "r.sqlite")
    record(location)
    assert main(["chart", "power", "--run", str(2**63 - 1), "--registry", location, "-o", str(tmp_path / "p.svg")]) == 2
    assert "there is no run 9223372036854775807 in registry" in capsys.readouterr().err
    assert main(["chart", "power", "--run", "1", "--registry", location, "-o", str(tmp_path / "p.svg")]) == 0


def test_a_budget_is_positive_and_finite(tmp_path, capsys):
    location = str(tmp_path / "r.sqlite")
    record(location)
    for budget in ("1e999kg", "0kg"):
        with pytest.raises(SystemExit):
            main(["check", "--budget", budget, "--registry", location])
        assert "budget must be" in capsys.readouterr().err
    assert main(["check", "--budget", "1kg", "--registry", location, "--project", "thesis"]) == 0


# -- names: an unknown project, notebook or sweep is an error naming the close ones ---------------


@pytest.mark.parametrize(
    ("argv", "close"),
    [
        (["check", "--budget", "1g", "--project", "thesys"], "did you mean 'thesis'"),
        (["statement", "--project", "nosuch"], "known projects: 'thesis'"),
        (["summary", "--project", "thesi"], "did you mean 'thesis'"),
        (["runs", "--project", "Thesis"], "did you mean 'thesis'"),
        (["sweeps", "--project", "nosuch"], "no project 'nosuch'"),
        (["chart", "cumulative", "--project", "nosuch", "-o", "c.svg"], "no project 'nosuch'"),
        (["statement", "--project", "thesis", "--sweep", "lr-swep"], "did you mean 'lr-sweep'"),
        (["summary", "--project", "thesis", "--notebook", "trian.ipynb"], "train.ipynb"),
    ],
)
def test_unknown_names_are_errors_naming_close_matches(registry_url, capsys, argv, close, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    record(registry_url, sweep="lr-sweep", notebook=str(tmp_path / "train.ipynb"))
    assert main([*argv, "--registry", registry_url]) == 2
    err = capsys.readouterr().err
    assert close in err and len(err.splitlines()) == 1 and "Traceback" not in err


@pytest.mark.parametrize("given", ["./train.ipynb", "train.ipynb", "ABSOLUTE", "sub/../train.ipynb"])
@pytest.mark.parametrize("recorded", ["ABSOLUTE", "train.ipynb"])
def test_a_notebook_is_found_however_its_path_is_written(tmp_path, monkeypatch, capsys, given, recorded):
    monkeypatch.chdir(tmp_path)
    absolute = str(tmp_path / "train.ipynb")
    location = str(tmp_path / "r.sqlite")
    record(location, notebook=absolute if recorded == "ABSOLUTE" else recorded)
    record(location, notebook=str(tmp_path / "other.ipynb"), name="other")
    notebook = absolute if given == "ABSOLUTE" else given
    assert main(["statement", "--registry", location, "--project", "thesis", "--notebook", notebook,
                 "--format", "json"]) == 0
    assert '"runs": 1,' in capsys.readouterr().out


def test_an_empty_registry_lists_no_runs_but_a_named_project_is_unknown(tmp_path, capsys):
    location = str(tmp_path / "r.sqlite")
    Registry.open(location).close()
    assert main(["runs", "--registry", location]) == 0
    assert capsys.readouterr().out == "no runs recorded\n"
    assert main(["sweeps", "--registry", location]) == 0
    assert capsys.readouterr().out == "no runs recorded\n"
    assert main(["runs", "--registry", location, "--project", "thesis"]) == 2
    assert "no project 'thesis'" in capsys.readouterr().err


# -- reading never creates a registry ----------------------------------------------------------------


@pytest.mark.parametrize(
    "argv",
    [["runs"], ["sweeps"], ["summary"], ["statement"], ["check", "--budget", "1kg"],
     ["chart", "cumulative", "-o", "c.svg"], ["chart", "power", "--run", "1", "-o", "p.svg"]],
)
def test_reading_a_missing_registry_is_one_error_and_creates_nothing(tmp_path, monkeypatch, capsys, argv):
    monkeypatch.chdir(tmp_path)
    assert main([*argv, "--registry", "typo/dir/x.sqlite"]) == 1
    err = capsys.readouterr().err
    assert err == "notebook-carbon: error: there is no registry at typo/dir/x.sqlite; check --registry " \
                  "(or NOTEBOOK_CARBON_REGISTRY), or run a metered cell to create one\n"
    assert list(tmp_path.iterdir()) == []


# -- runs whose process died -------------------------------------------------------------------------


def _dead_run(location):
    """A run left ``running`` by a process that is gone: its pid now belongs to a newer process."""
    started_at = psutil.Process().create_time() - 60  # a minute before this process began
    record(location, name="fine", started_at=started_at - 60)
    return record(location, name="killed", status="running", started_at=started_at, pid=os.getpid(),
                  host=host_info()["hostname"])


def test_summary_shows_a_dead_run_as_crashed_and_records_it(tmp_path, capsys):
    location = str(tmp_path / "r.sqlite")
    dead = _dead_run(location)
    assert main(["summary", "--registry", location, "--project", "thesis"]) == 0
    out = capsys.readouterr().out
    assert "1 crashed, 1 ok" in out and "running" not in out
    with Registry.open(location, read_only=True) as reg:
        assert reg.get_run(dead)["status"] == "crashed"


@pytest.fixture
def reader_url(postgres_server):
    """A PostgreSQL registry and the URL of a database user who may read it and nothing else."""
    url = postgres_server.create_database()
    role = f"notebook_carbon_reader_{uuid.uuid4().hex[:12]}"
    admin = create_engine(pg.ADMIN_URL.replace("postgresql://", "postgresql+psycopg://", 1), poolclass=NullPool,
                          isolation_level="AUTOCOMMIT")
    owner = create_engine(make_url(url), poolclass=NullPool, isolation_level="AUTOCOMMIT")
    try:
        Registry.open(url).close()
        with admin.connect() as conn:
            conn.exec_driver_sql(f'CREATE ROLE "{role}" LOGIN')
        with owner.connect() as conn:
            conn.exec_driver_sql(f'GRANT SELECT ON ALL TABLES IN SCHEMA public TO "{role}"')
        yield url, make_url(url).set(username=role).render_as_string(hide_password=False)
    finally:
        owner.dispose()
        postgres_server.drop_database(url)
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP ROLE IF EXISTS "{role}"')
        admin.dispose()


def test_a_read_only_registry_still_reads_and_shows_dead_runs_crashed(reader_url, capsys):
    url, read_only = reader_url
    dead = _dead_run(url)
    for argv, shown in ((["summary", "--project", "thesis"], "1 crashed, 1 ok"), (["runs"], " crashed "),
                        (["sweeps", "--project", "thesis"], "1/1/0")):
        assert main([*argv, "--registry", read_only]) == 0
        out = capsys.readouterr().out
        assert shown in out and "running" not in out
    with Registry.open(url, read_only=True) as reg:
        assert reg.get_run(dead)["status"] == "running"  # nothing was written


# -- a closed pipe -----------------------------------------------------------------------------------


@pytest.mark.parametrize("argv", [["regions"], ["runs"]])
def test_a_closed_pipe_ends_the_command_quietly(tmp_path, argv):
    """As `notebook-carbon regions | head -1`: the reader is gone before the command writes."""
    location = str(tmp_path / "r.sqlite")
    for i in range(300):
        record(location, started_at=1.8e9 + i)
    read_end, write_end = os.pipe()
    os.close(read_end)  # every write now fails with EPIPE
    try:
        done = subprocess.run([CLI, *argv, *(["--registry", location] if argv == ["runs"] else [])],
                              stdout=write_end, stderr=subprocess.PIPE, text=True, timeout=120)
    finally:
        os.close(write_end)
    assert done.stderr == "" and done.returncode == 1

"""``%%carbon --job [NAME]`` in a real IPython shell: the cell owns its distributed job's run, and the
ranks it starts (real processes calling ``track()``, reading ``NOTEBOOK_CARBON_JOB``) are its parts.

The cell's meters are fake; the ranks meter this machine (no GPU, for speed) and write to the same
SQLite registry. A rank given ``NOTEBOOK_CARBON_HOST=node-b`` stands for a rank on another node."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import pytest
from IPython.core.error import UsageError
from sqlalchemy import select

from notebook_carbon.cell.args import MAX_JOB_CHARS, parse_cell_args
from notebook_carbon.distributed.environment import JOB_VARIABLE, MAX_KEY_CHARS, detect_job
from notebook_carbon.errors import ConfigError
from notebook_carbon.magic import extension_for
from notebook_carbon.magic.jobs import NESTED_WARNING
from notebook_carbon.meters.detect import Detection
from notebook_carbon.registry import Registry
from notebook_carbon.registry.schema import run_parts
from notebook_carbon.session import Session
from notebook_carbon.settings import Settings
from notebook_carbon.testing import FakeMeter

RANK = """
import json, os, sys, time
import notebook_carbon
go = sys.argv[1] if len(sys.argv) > 1 else None
while go and not os.path.exists(go):  # a rank that reports later: it waits for the test's word
    time.sleep(0.01)
with notebook_carbon.track(name="rank") as run:
    time.sleep(0.05)
print(json.dumps({"uid": run.result.uid, "run_id": run.result.run_id()}))
"""


def start_rank(rank: int, world_size: int = 2, *, go: str | None = None, **env: str) -> subprocess.Popen:
    """A rank of the job: this process's environment as it is now (the cell's, with the job's key)."""
    environ = dict(os.environ, RANK=str(rank), WORLD_SIZE=str(world_size), **env)
    command = [sys.executable, "-c", RANK, *([go] if go else [])]
    return subprocess.Popen(command, env=environ, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finished(process: subprocess.Popen, timeout_s: float = 60.0) -> dict:
    out, err = process.communicate(timeout=timeout_s)
    assert process.returncode == 0, err
    return json.loads(out.strip().splitlines()[-1])


@pytest.fixture
def session(tmp_path, monkeypatch):
    registry = str(tmp_path / "registry.sqlite")
    monkeypatch.setenv("NOTEBOOK_CARBON_REGISTRY", registry)  # the ranks' registry: the cell's
    monkeypatch.setenv("NOTEBOOK_CARBON_GPU", "off")
    detection = Detection(
        meters=(
            FakeMeter("cpu", "rapl", "package-0", 30.0),
            FakeMeter("ram", "estimate-ram", "RAM 16 GB", 6.0),
        ),
        notes=("no GPU component: test machine",),
    )
    return Session(Settings(registry=registry, region="FR"), detection=detection)


@pytest.fixture
def ip(shell):
    shell.user_ns.update(start_rank=start_rank, finished=finished)
    return shell


def recorded(session) -> tuple[list[dict], dict[str, list[dict]]]:
    """The runs, oldest first, and each run's parts (by run uid, the driver first)."""
    assert session.writer().flush(10)
    with Registry.open(session.settings.registry_location()) as registry:
        runs = list(reversed(registry.runs()))
        parts = registry.select(select(run_parts).order_by(run_parts.c.id), "reading the parts")
    by_run = {run["uid"]: [part for part in parts if part["parent_uid"] == run["uid"]] for run in runs}
    return runs, by_run


def test_ranks_the_cell_starts_on_its_machine_are_parts_inside_its_measurement(ip, session, capsys):
    result = ip.run_cell("%%carbon --job --name launch\nranks = [finished(start_rank(r)) for r in (0, 1)]\n")
    assert result.success, result.error_in_exec
    key = extension_for(ip).last.job.key
    assert re.fullmatch(r"cell-[0-9a-f]{8}", key)
    (run,), by_run = recorded(session)
    assert (run["job"], run["job_block"], run["name"], run["status"]) == (key, None, "launch", "ok")
    driver, *ranks = by_run[run["uid"]]
    assert (driver["rank"], driver["counted"], driver["name"]) == (None, True, "launch")
    assert sorted(part["rank"] for part in ranks) == [0, 1]
    assert all(part["counted"] is False and part["status"] == "ok" for part in ranks)
    assert {r["run_id"] for r in ip.user_ns["ranks"]} == {run["id"]}
    assert run["energy_j"] == pytest.approx(
        driver["energy_j"]
    )  # the ranks are inside the cell's process tree
    assert run["job_parts"] == 3
    out = capsys.readouterr().out
    assert out.startswith("carbon [launch]: ")
    assert f" · job {key}: ranks that report it are added to run {run['id']}\n" in out


def test_a_rank_on_another_node_is_counted(ip, session):
    result = ip.run_cell(
        "%%carbon --job remote --quiet\nranks = [finished(start_rank(0)), finished(start_rank(1, NOTEBOOK_CARBON_HOST='node-b'))]"
    )
    assert result.success, result.error_in_exec
    (run,), by_run = recorded(session)
    driver, *ranks = by_run[run["uid"]]
    local, remote = sorted(ranks, key=lambda part: part["rank"])
    assert (local["node"], local["counted"]) == (driver["node"], False)
    assert (remote["node"], remote["counted"]) == ("node-b", True)
    assert run["energy_j"] == pytest.approx(driver["energy_j"] + remote["energy_j"])
    assert run["job_nodes"] == 2 and "node-b" in run["host"]


@pytest.mark.parametrize("before", [None, "set-by-hand"])
@pytest.mark.parametrize("body", ["pass", "raise ValueError('boom')", "raise KeyboardInterrupt"])
def test_the_variable_is_set_while_the_cell_runs_and_restored_after(ip, session, monkeypatch, before, body):
    if before is not None:
        monkeypatch.setenv(JOB_VARIABLE, before)
    ip.run_cell(f"%%carbon --job --quiet\nimport os\nseen = os.environ.get({JOB_VARIABLE!r})\n{body}\n")
    result = extension_for(ip).last
    assert ip.user_ns["seen"] == result.job.key != before
    assert os.environ.get(JOB_VARIABLE) == before
    (run,), _ = recorded(session)
    assert run["job"] == result.job.key
    assert run["status"] == {"pass": "ok", "raise ValueError('boom')": "failed"}.get(body, "interrupted")


def test_a_directly_called_cell_magic_sets_and_restores_the_variable_too(ip, session):
    with pytest.raises(ValueError, match="boom"):
        ip.run_cell_magic(
            "carbon",
            "--job direct --quiet",
            "import os\nseen = os.environ['NOTEBOOK_CARBON_JOB']\nraise ValueError('boom')",
        )
    assert ip.user_ns["seen"] == "direct" and JOB_VARIABLE not in os.environ
    (run,), by_run = recorded(session)
    assert (run["job"], run["status"], len(by_run[run["uid"]])) == ("direct", "failed", 1)


def test_a_rank_reporting_after_the_cell_ended_joins_its_run(ip, session, tmp_path):
    go = tmp_path / "go"
    ip.run_cell(f"%%carbon --job --quiet\nlate = start_rank(0, 1, go={str(go)!r})\n")
    (run,), by_run = recorded(session)
    assert run["status"] == "ok" and len(by_run[run["uid"]]) == 1
    go.write_text("now")
    reported = finished(ip.user_ns["late"])
    (run,), by_run = recorded(session)
    assert reported["run_id"] == run["id"]
    driver, rank = by_run[run["uid"]]
    # its block began after the cell's window closed: outside the cell's measurement, so counted
    assert (rank["rank"], rank["status"], rank["counted"]) == (0, "ok", True)
    assert run["status"] == "ok" and run["job_parts"] == 2
    assert run["energy_j"] == pytest.approx(driver["energy_j"] + rank["energy_j"])


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("''", "--job NAME must not be blank"),
        ("'   '", "--job NAME must not be blank"),
        ("=", "--job NAME must not be blank"),
        ("x" * (MAX_JOB_CHARS + 1), f"--job NAME has at most {MAX_JOB_CHARS} characters"),
        ("'a\x07b'", "--job NAME must be printable text"),
    ],
)
def test_bad_job_names_are_a_usage_error_and_nothing_runs_or_is_recorded(ip, session, capsys, name, message):
    line = f"--job{name}" if name == "=" else f"--job {name}"
    result = ip.run_cell(f"%%carbon {line}\nside_effect = 1\n")
    assert isinstance(result.error_in_exec, UsageError)
    assert message in str(result.error_in_exec)
    assert "side_effect" not in ip.user_ns and JOB_VARIABLE not in os.environ
    assert recorded(session)[0] == []
    with pytest.raises(UsageError, match=re.escape(message)):
        ip.run_cell_magic("carbon", line, "side_effect = 1")
    assert "side_effect" not in ip.user_ns and recorded(session)[0] == []


def test_the_names_the_cell_accepts_are_those_its_ranks_accept():
    assert MAX_JOB_CHARS == MAX_KEY_CHARS
    longest = "j" * MAX_JOB_CHARS
    assert parse_cell_args(f"--job {longest}").job_name == detect_job({}, longest).key == longest
    assert parse_cell_args("--job ' padded '").job_name == detect_job({}, " padded ").key == "padded"
    with pytest.raises(ConfigError):
        detect_job({}, longest + "j")
    assert parse_cell_args("--job --name n") == parse_cell_args("--name n --job")
    assert (parse_cell_args("--job").job, parse_cell_args("--job").job_name) == (True, None)
    assert parse_cell_args("").job is False


def test_the_same_name_twice_makes_two_runs_and_ranks_join_the_latest(ip, session):
    ip.run_cell("%%carbon --job same --quiet\nfirst = finished(start_rank(0, 1))\n")
    ip.run_cell("%%carbon --job same --quiet\nsecond = finished(start_rank(0, 1))\n")
    later = finished(start_rank(1, 2, NOTEBOOK_CARBON_JOB="same", NOTEBOOK_CARBON_HOST="node-b"))
    (one, two), by_run = recorded(session)
    assert one["job"] == two["job"] == "same" and one["id"] != two["id"]
    assert ip.user_ns["first"]["run_id"] == one["id"]
    assert ip.user_ns["second"]["run_id"] == later["run_id"] == two["id"]
    assert [part["rank"] for part in by_run[one["uid"]]] == [None, 0]
    assert [part["rank"] for part in by_run[two["uid"]]] == [None, 0, 1]


def test_a_job_without_a_name_gets_a_new_key_each_run(ip, session):
    for _ in range(2):
        ip.run_cell("%%carbon --job --quiet\nx = 1\n")
    runs, _ = recorded(session)
    assert len({run["job"] for run in runs}) == 2


def test_job_with_name_sweep_params_and_final(ip, session):
    result = ip.run_cell(
        "%%carbon --job --name train --sweep lr --param lr=0.1 --tag ddp --final --quiet\nr = finished(start_rank(0, 1))\n"
    )
    assert result.success, result.error_in_exec
    (run,), by_run = recorded(session)
    assert (run["name"], run["sweep"], run["params"], run["tags"]) == ("train", "lr", {"lr": 0.1}, ["ddp"])
    assert run["is_final"] and run["status"] == "ok" and len(by_run[run["uid"]]) == 2


@pytest.mark.parametrize("outer", ["%%carbon --name outer\n", "%carbon auto on\n"])
def test_a_job_cell_inside_another_metered_run_is_a_part_and_its_job_ignored(ip, session, capsys, outer):
    if outer.startswith("%carbon auto"):
        ip.run_cell(outer)
        outer = ""
    inner = "%%carbon --job inner --name inner\nimport os\nseen = os.environ.get('NOTEBOOK_CARBON_JOB')"
    ip.run_cell(f"{outer}get_ipython().run_cell({inner!r})\n")
    assert ip.user_ns["seen"] is None and JOB_VARIABLE not in os.environ
    assert NESTED_WARNING in capsys.readouterr().err
    runs, _ = recorded(session)
    assert len(runs) == 1 and runs[0]["job"] is None


def test_in_auto_mode_a_job_cell_still_drives_its_job(ip, session):
    ip.run_cell("%carbon auto on")
    ip.run_cell("%%carbon --job auto-job --quiet\nr = finished(start_rank(0, 1))\n")
    ip.run_cell("%carbon auto off")
    runs, by_run = recorded(session)
    (run,) = [run for run in runs if run["job"] is not None]
    assert run["job"] == "auto-job" and [part["rank"] for part in by_run[run["uid"]]] == [None, 0]


def test_last_reports_the_jobs_run(ip, session, capsys):
    ip.run_cell("%%carbon --job --quiet\nr = finished(start_rank(0, 1))\n")
    capsys.readouterr()
    ip.run_cell("%carbon last")
    (run,), _ = recorded(session)
    assert capsys.readouterr().out.startswith(f"run {run['id']} [unnamed] status ok")


def test_a_job_cell_whose_post_run_event_never_came_puts_the_variable_back_at_the_next_cell(ip, session):
    from IPython.core.interactiveshell import ExecutionInfo

    ext = extension_for(ip)
    ext.pre_run_cell(ExecutionInfo("%%carbon --job lost --quiet\nx = 1\n", False, False, True, None))
    assert os.environ[JOB_VARIABLE] == "lost"
    ip.run_cell("y = 2")  # its pre_run_cell drops the cell left open
    assert JOB_VARIABLE not in os.environ
    (run,), _ = recorded(session)
    assert (run["job"], run["status"]) == ("lost", "interrupted")


def test_ranks_inherit_the_registry_and_project_the_notebook_records_into(ip, session, tmp_path):
    """``%carbon config`` moved the notebook to another registry and project than its environment
    names: the ranks the cell starts record where the cell's run is, and the environment is put back."""
    lab = str(tmp_path / "lab.sqlite")
    ip.run_cell(f"%carbon config registry={lab} project=bert")
    before = dict(os.environ)
    result = ip.run_cell("%%carbon --job --quiet\nranks = [finished(start_rank(r)) for r in (0, 1)]\n")
    assert result.success, result.error_in_exec
    assert session.writer().flush(10)
    with Registry.open(lab) as registry:
        (run,) = registry.runs()
        listed = registry.select(select(run_parts).where(run_parts.c.parent_uid == run["uid"]), "reading the parts")
    assert run["project"] == "bert" and sorted(p["rank"] for p in listed if p["rank"] is not None) == [0, 1]
    assert {r["run_id"] for r in ip.user_ns["ranks"]} == {run["id"]}
    assert {k: os.environ.get(k) for k in before if k.startswith("NOTEBOOK_CARBON_")} == {
        k: v for k, v in before.items() if k.startswith("NOTEBOOK_CARBON_")}
    assert "NOTEBOOK_CARBON_PROJECT" not in os.environ

"""Crash safety: a killed process leaves a run that reads `crashed` with its checkpointed energy."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from sqlalchemy import update

from notebook_carbon.registry import Registry, new_uid
from notebook_carbon.registry.liveness import reap_crashed
from notebook_carbon.registry.schema import runs


def test_sigkilled_process_leaves_a_crashed_run_with_its_checkpointed_energy(registry_url):
    location = registry_url
    script = textwrap.dedent(
        """
        import time, notebook_carbon
        with notebook_carbon.track("doomed", params={"lr": 0.1}, quiet=True):
            print("started", flush=True)
            time.sleep(600)
        """
    )
    env = {
        "PATH": os.environ.get("PATH", ""),
        "NOTEBOOK_CARBON_REGISTRY": location,
        "NOTEBOOK_CARBON_REGION": "FR",
        "NOTEBOOK_CARBON_SAMPLE_INTERVAL_S": "0.05",
        "NOTEBOOK_CARBON_CHECKPOINT_INTERVAL_S": "0.2",
    }
    proc = subprocess.Popen([sys.executable, "-c", script], env=env, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "started"
        deadline = time.monotonic() + 60
        checkpointed = None
        while checkpointed is None:
            assert time.monotonic() < deadline, "no checkpoint was written"
            time.sleep(0.1)
            with Registry.open(location) as reg:
                runs = reg.runs()
            if runs and runs[0]["energy_j"]:
                checkpointed = runs[0]
        time.sleep(0.5)  # a few more checkpoints: the last one is what must survive
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(30)
    with Registry.open(location) as reg:
        (before,) = reg.runs()
        assert before["status"] == "running"  # a dead process cannot say so itself
        assert reap_crashed(reg) == [before["id"]]
        assert reap_crashed(reg) == []  # once is enough
        run = reg.get_run(before["id"])
    assert run["status"] == "crashed"
    assert run["energy_j"] == before["energy_j"] >= checkpointed["energy_j"] > 0
    assert run["cpu_method"] and run["ram_method"]  # how the checkpointed energy was obtained
    assert run["emissions_g"] == pytest.approx(run["energy_j"] / 3.6e6 * 56.0, rel=0.05)
    assert f"pid {proc.pid}" in run["error"] and "last checkpoint" in run["error"]
    assert run["ended_at"] == before["updated_at"]
    assert run["duration_s"] == pytest.approx(before["updated_at"] - before["started_at"])
    assert run["params"] == {"lr": 0.1} and run["name"] == "doomed"


def _running(reg, **fields) -> str:
    uid = new_uid()
    reg.start_run({"uid": uid, "status": "running", **fields})
    return uid


def test_only_dead_processes_and_silent_hosts_are_reaped(registry_url, registry_engine):
    now = time.time()
    with Registry.open(registry_url) as reg:
        alive = _running(reg, host="here", pid=10, started_at=now - 50, updated_at=now - 1)
        dead = _running(reg, host="here", pid=11, started_at=now - 50)
        reused = _running(reg, host="here", pid=12, started_at=now - 50)
        remote_live = _running(reg, host="there", pid=10, started_at=now - 500, checkpoint_interval_s=10.0)
        remote_silent = _running(reg, host="there", pid=11, started_at=now - 500, checkpoint_interval_s=10.0)
        remote_unknown = _running(reg, host="there", pid=12, started_at=now - 5000)  # no interval: never judged
        finished = _running(reg, host="here", pid=11, started_at=now - 50)
        reg.finish_run(finished, {"status": "ok", "ended_at": now - 40})
        reg.checkpoint_run(remote_live, {"energy_j": 5.0})  # a heartbeat now
        reg.checkpoint_run(remote_silent, {"energy_j": 7.0})
        with registry_engine.begin() as db:  # ... and that host's last one was 400 s ago
            db.execute(update(runs).where(runs.c.uid == remote_silent).values(updated_at=now - 400))
        starts = {10: now - 3600, 11: None, 12: now - 10}  # pid 12 now belongs to a newer process
        reaped = reap_crashed(reg, host="here", now=now, started_at_of=starts.get)
        by_uid = {uid: reg.get_run(uid) for uid in (alive, dead, reused, remote_live, remote_silent, remote_unknown, finished)}
    assert sorted(reaped) == sorted(by_uid[u]["id"] for u in (dead, reused, remote_silent))
    assert [by_uid[u]["status"] for u in (alive, remote_live, remote_unknown)] == ["running"] * 3
    assert by_uid[finished]["status"] == "ok"
    assert "no longer exists" in by_uid[dead]["error"]
    assert "newer process" in by_uid[reused]["error"]
    assert "no heartbeat from there for 400 s" in by_uid[remote_silent]["error"]
    assert by_uid[remote_silent]["energy_j"] == 7.0 and by_uid[remote_silent]["ended_at"] == now - 400


def test_a_run_marked_crashed_can_still_bring_its_real_result(registry_url):
    with Registry.open(registry_url) as reg:
        uid = _running(reg, host="here", pid=99, started_at=1.0)
        reap_crashed(reg, host="here", now=100.0, started_at_of=lambda pid: None)
        assert reg.get_run(uid)["status"] == "crashed"
        reg.finish_run(uid, {"status": "ok", "energy_j": 3.0})
        assert reg.get_run(uid)["status"] == "ok"

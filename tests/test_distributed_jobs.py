"""The ranks of a distributed job, run as real processes with their launcher's exact environment,
are recorded as one run: its parts one per rank, each device counted once.

Each rank is ``tests/distributed_worker.py``: the machine's real CPU and RAM meters, and a fake
node of four GPUs of which it holds a context on its local rank's only. The SLURM job runs on
PostgreSQL (the lab registry where a job's nodes meet) with two "nodes" named per process and
clocks seconds apart, and loses a rank to SIGKILL.
"""

from __future__ import annotations

import json
import math
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from distributed_worker import watts  # tests/distributed_worker.py: the fake devices' powers
from notebook_carbon.registry import Registry
from notebook_carbon.registry.parts import parts

WORKER = str(Path(__file__).parent / "distributed_worker.py")
HERE = socket.gethostname()  # a loopback rendezvous is every machine's own: the key names the node


def torchrun_env(rank: int, world: int, *, local_world: int | None = None, group_rank: int = 0,
                 port: int = 29500, run_id: str = "none") -> dict[str, str]:  # fmt: skip
    """What torchrun's local elastic agent sets for worker ``rank`` (torch.distributed.elastic)."""
    local_world = local_world or world
    local = rank % local_world
    return {
        "LOCAL_RANK": str(local), "RANK": str(rank), "GROUP_RANK": str(group_rank), "ROLE_RANK": str(rank),
        "ROLE_NAME": "default", "LOCAL_WORLD_SIZE": str(local_world), "WORLD_SIZE": str(world),
        "GROUP_WORLD_SIZE": str(world // local_world), "ROLE_WORLD_SIZE": str(world),
        "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port), "TORCHELASTIC_RESTART_COUNT": "0",
        "TORCHELASTIC_MAX_RESTARTS": "0", "TORCHELASTIC_RUN_ID": run_id, "TORCHELASTIC_USE_AGENT_STORE": "True",
        "TORCH_NCCL_ASYNC_ERROR_HANDLING": "1", "OMP_NUM_THREADS": "1",
        "TORCHELASTIC_ERROR_FILE": os.path.join(tempfile.gettempdir(), f"torchelastic_{rank}", "error.json"),
    }  # fmt: skip


def slurm_env(task: int, *, nodes: int = 2, per_node: int = 2, job_id: str = "81234", step: str = "0") -> dict[str, str]:
    """What ``srun`` sets for task ``task`` of a step of ``nodes`` x ``per_node`` tasks."""
    node = task // per_node
    names = [f"node-{chr(ord('a') + i)}" for i in range(nodes)]
    return {
        "SLURM_JOB_ID": job_id, "SLURM_JOBID": job_id, "SLURM_STEP_ID": step, "SLURM_STEPID": step,
        "SLURM_PROCID": str(task), "SLURM_LOCALID": str(task % per_node), "SLURM_NODEID": str(node),
        "SLURM_NTASKS": str(nodes * per_node), "SLURM_NPROCS": str(nodes * per_node), "SLURM_NNODES": str(nodes),
        "SLURM_TASKS_PER_NODE": f"{per_node}(x{nodes})", "SLURM_STEP_NUM_TASKS": str(nodes * per_node),
        "SLURM_JOB_NODELIST": f"node-[a-{chr(ord('a') + nodes - 1)}]", "SLURMD_NODENAME": names[node],
        "SLURM_CLUSTER_NAME": "lab", "SLURM_JOB_NAME": "train",
        "NOTEBOOK_CARBON_HOST": names[node],  # the node's name, as each node's own host name would be
    }  # fmt: skip


def launch(registry: str, envs: list[dict[str, str]], seconds: list[float], *, interval_s: float = 2.0) -> list[subprocess.Popen]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("NOTEBOOK_CARBON_", "SLURM", "TORCHELASTIC"))}
    base.update(NOTEBOOK_CARBON_REGISTRY=registry, NOTEBOOK_CARBON_REGION="FR",
                NOTEBOOK_CARBON_CHECKPOINT_INTERVAL_S=str(interval_s))  # fmt: skip
    processes = []
    for env, secs in zip(envs, seconds):
        argv = [sys.executable, WORKER, repr(secs), "busy"]
        processes.append(subprocess.Popen(argv, env={**base, **env}, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    return processes


def results(processes: list[subprocess.Popen]) -> list[dict]:
    found = []
    for process in processes:
        out, err = process.communicate(timeout=120)
        assert process.returncode == 0, err
        found.append(json.loads(out.strip().splitlines()[-1]))
    return found


def checkpointed(location: str, *, rank: int, timeout_s: float = 60.0) -> None:
    """Wait until rank ``rank``'s part is in the registry with energy checkpointed."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            with Registry.open(location, read_only=True) as reg:
                found = [p for run in reg.runs() for p in parts(reg, run["uid"]) if p["rank"] == rank]
            if found and (found[0]["energy_j"] or 0) > 0:
                return
        except Exception:  # noqa: BLE001 - not created yet
            pass
        time.sleep(0.1)
    raise AssertionError(f"rank {rank} never checkpointed")


def devices(part: dict, component: str) -> list[dict]:
    return [d for d in part["devices"] if d["component"] == component]


def test_four_torchrun_ranks_on_one_node_are_one_run_each_gpu_counted_once(tmp_path):
    registry = str(tmp_path / "registry.sqlite")
    done = results(launch(registry, [torchrun_env(rank, 4) for rank in range(4)], [1.5] * 4))
    assert len({r["run_id"] for r in done}) == 1  # every rank was told the same run

    with Registry.open(registry) as reg:
        (run,) = reg.runs()
        found = parts(reg, run["uid"])
    assert run["status"] == "ok" and run["job"] == f"rendezvous:127.0.0.1@{HERE}:29500" and run["job_block"] == 1
    assert (run["job_world_size"], run["job_parts"], run["job_nodes"]) == (4, 4, 1)
    assert sorted(p["rank"] for p in found) == [0, 1, 2, 3] and all(p["counted"] for p in found)
    # each rank was charged the device it holds a context on, all of it, and none of the others
    drawn = []
    for part in found:
        gpus = devices(part, "gpu")
        mine = [d for d in gpus if d["share"] > 0]
        assert [d["device"].split(":")[0] for d in mine] == [f"GPU {part['local_rank']}"]
        (device,) = mine
        assert device["share"] == 1.0 and device["energy_j"] == device["machine_energy_j"]
        # what that device drew: its constant power over the rank's window
        assert device["energy_j"] == pytest.approx(watts(part["local_rank"]) * part["duration_s"], rel=0.05)
        assert all(d["energy_j"] == 0.0 for d in gpus if d is not device)
        drawn.append(device["energy_j"])
    assert run["gpu_energy_j"] == math.fsum(drawn)  # the sum of the four devices, exactly
    assert run["gpu_count"] == 4
    # the node's CPU is counted once, as the ranks' shares of it, not once per rank
    cpus = [d for p in found for d in devices(p, "cpu")]
    assert all(d["share"] < 1.0 for d in cpus)  # no rank was charged the whole node
    node_cpu = max(d["machine_energy_j"] for d in cpus)
    assert 0 < run["cpu_energy_j"] == pytest.approx(min(math.fsum(d["energy_j"] for d in cpus), node_cpu))
    assert run["cpu_energy_j"] < math.fsum(d["machine_energy_j"] for d in cpus) / 2  # far from 4 x the node
    assert run["machine_energy_j"] < math.fsum(p["machine_energy_j"] for p in found)  # not the ranks' sum
    assert run["energy_j"] == pytest.approx(run["gpu_energy_j"] + run["cpu_energy_j"] + run["ram_energy_j"])
    with Registry.open(registry) as reg:
        (sweep,) = reg.sweeps(run["project"])
        assert sweep.runs == 1 and sweep.energy_j == pytest.approx(run["energy_j"])
        assert reg.totals(run["project"]).runs == 1


def test_slurm_two_nodes_on_postgresql_one_rank_killed_leaves_the_job_crashed_with_every_part(postgres_server):
    url = postgres_server.create_database()
    try:
        envs = [slurm_env(task) for task in range(4)]
        for env in envs[2:]:
            env["SKEW_S"] = "3.5"  # node-b's clock is seconds ahead of node-a's
        order = [2, 0, 1, 3]  # the rank to kill first, so it is the one told to signal
        processes = launch(url, [envs[i] for i in order], [60.0, 10.0, 10.0, 10.0], interval_s=0.2)
        killed = processes[0]
        checkpointed(url, rank=2)  # its energy so far is in the registry: what the kill must not lose
        killed.send_signal(signal.SIGKILL)
        killed.wait()
        done = results(processes[1:])
        assert len({r["run_id"] for r in done}) == 1

        with Registry.open(url) as reg:
            (run,) = reg.runs()
            found = {p["rank"]: p for p in parts(reg, run["uid"])}
        assert run["job"] == "slurm:lab/81234.0" and run["job_world_size"] == 4 and run["job_nodes"] == 2
        assert run["host"] == "node-a, node-b"
        assert run["status"] == "crashed" and "rank 2 on node-b crashed" in run["error"]
        assert {rank: p["status"] for rank, p in found.items()} == {0: "ok", 1: "ok", 2: "crashed", 3: "ok"}
        assert found[2]["energy_j"] > 0  # the killed rank's energy up to its last checkpoint, kept
        assert {p["node"] for p in found.values()} == {"node-a", "node-b"}
        gpu = [d["energy_j"] for p in found.values() for d in devices(p, "gpu") if d["share"] > 0]
        assert run["gpu_energy_j"] == math.fsum(gpu) and len(gpu) == 4
        # the duration is measured on each node's own clock: node-b's 3.5 s ahead does not stretch it
        assert run["duration_s"] < max(p["duration_s"] for p in found.values()) + 1.0
        # a reader of the registry shows it crashed too; reaping again changes nothing
        with Registry.open(url) as reg:
            assert reg.reap_crashed(host="node-b") == [] and reg.get_run(run["id"])["status"] == "crashed"
    finally:
        postgres_server.drop_database(url)


def test_two_unrelated_jobs_at_once_and_ranks_without_a_job_on_one_registry(tmp_path):
    registry = str(tmp_path / "registry.sqlite")
    job_a = [torchrun_env(rank, 2, port=29500) for rank in range(2)]
    job_b = [torchrun_env(rank, 2, port=29501, run_id="b7c9") for rank in range(2)]
    # RANK and WORLD_SIZE but nothing naming the job: each its own run, said once per process
    lone = [{"RANK": str(rank), "WORLD_SIZE": "2", "LOCAL_RANK": str(rank)} for rank in range(2)]
    processes = launch(registry, job_a + job_b + lone, [1.0] * 6)
    errors = []
    for process in processes:
        out, err = process.communicate(timeout=120)
        assert process.returncode == 0, err
        errors.append(err)
    assert all("no variable names the job" in err for err in errors[4:])
    assert not any("no variable names the job" in err for err in errors[:4])

    with Registry.open(registry) as reg:
        runs = {run["job"]: run for run in reg.runs()}
        assert set(runs) == {f"rendezvous:127.0.0.1@{HERE}:29500", "torchelastic:b7c9", None} and len(reg.runs()) == 4
        for key in (f"rendezvous:127.0.0.1@{HERE}:29500", "torchelastic:b7c9"):
            assert sorted(p["rank"] for p in parts(reg, runs[key]["uid"])) == [0, 1]
            assert runs[key]["job_parts"] == 2 and runs[key]["status"] == "ok"


def test_a_rank_s_blocks_are_the_job_s_runs_and_a_reused_key_starts_a_new_run(tmp_path):
    """Two blocks per rank: two runs of the job. The same rendezvous address later, after the
    first job completed: a new run, not a third part of the old one."""
    registry = str(tmp_path / "registry.sqlite")
    script = (
        "import notebook_carbon, sys\n"
        "for name in ('train', 'eval'):\n"
        "    with notebook_carbon.track(name=name, quiet=True):\n"
        "        sum(range(100000))\n"
    )
    base = {k: v for k, v in os.environ.items() if not k.startswith(("NOTEBOOK_CARBON_", "SLURM", "TORCHELASTIC"))}
    base.update(NOTEBOOK_CARBON_REGISTRY=registry, NOTEBOOK_CARBON_GPU="off")
    for _ in range(2):  # the same job launched twice, one after the other
        processes = [subprocess.Popen([sys.executable, "-c", script], env={**base, **torchrun_env(rank, 2)},
                                      stderr=subprocess.PIPE, text=True) for rank in range(2)]  # fmt: skip
        for process in processes:
            assert process.wait(timeout=120) == 0, process.stderr.read()
    with Registry.open(registry) as reg:
        runs = list(reversed(reg.runs()))
        assert [(r["name"], r["job_block"], r["job_parts"]) for r in runs] == [
            ("train", 1, 2), ("eval", 2, 2), ("train", 1, 2), ("eval", 2, 2)
        ]

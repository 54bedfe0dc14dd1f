"""A job's run as the sum of its parts (``registry.jobs``), written part by part on either database."""

from __future__ import annotations

import math
import time

import pytest

from totals_oracle import check

from notebook_carbon.registry import Registry, jobs, new_uid
from notebook_carbon.registry.catalog import dead_runs
from notebook_carbon.registry.parts import parts

T0 = 1.75e9


def run_row(job: str = "slurm:1", block: int | None = 1, world: int | None = 2, **extra) -> dict:
    return {"uid": new_uid(), "project": "p", "started_at": T0, "job": job, "job_block": block,
            "job_world_size": world, "attribution": "share", "pue": 1.0, "host": "node-a", **extra}  # fmt: skip


def part_row(rank: int | None, node: str = "node-a", *, job: str = "slurm:1", block: int | None = 1, at: float = T0,
             pid: int = 0) -> dict:  # fmt: skip
    return {"uid": new_uid(), "job": job, "block": block, "rank": rank, "node": node, "started_at": at, "pid": pid,
            "checkpoint_interval_s": 2.0}  # fmt: skip


def gpu(device: str, energy: float, machine: float | None, share: float | None = None) -> dict:
    if share is None and machine is not None:
        share = energy / machine if machine else 0.0
    return {"component": "gpu", "device": device, "method": "nvml-counter", "energy_j": energy,
            "machine_energy_j": machine, "share": share}  # fmt: skip


def cpu(energy: float, machine: float | None) -> dict:
    return {"component": "cpu", "device": "package-0", "method": "rapl", "energy_j": energy,
            "machine_energy_j": machine, "share": None if machine is None else energy / machine}  # fmt: skip


def final(devices: list[dict], *, status: str = "ok", duration: float = 10.0, at: float = T0, emissions_per_j: float = 0.1,
          embodied: float = 5.0, error: str | None = None) -> dict:  # fmt: skip
    energy = math.fsum(d["energy_j"] for d in devices)
    return {"status": status, "error": error, "ended_at": at + duration, "duration_s": duration, "energy_j": energy,
            "emissions_g": energy * emissions_per_j, "water_l": energy * 0.01, "embodied_g": embodied,
            "devices": devices}  # fmt: skip


@pytest.fixture
def reg(registry_url):
    with Registry.open(registry_url) as registry:
        yield registry


def test_shares_summed_per_device_and_capped_whole_devices_once_nodes_clocks_kept_apart(reg):
    parts_ = [part_row(0, "node-a"), part_row(1, "node-a"), part_row(2, "node-b", at=T0 + 30), part_row(3, "node-b", at=T0 + 31)]
    ids = {jobs.start_part(reg, run_row(world=4), p) for p in parts_}
    assert len(ids) == 1
    (run_id,) = ids
    assert reg.get_run(run_id)["status"] == "running"
    # node-a: two ranks, one GPU each, sharing the CPU (their shares add to 0.9 of it; their two
    # readings of it differ a little: the larger is what it drew). node-b: charged whole (machine
    # attribution): each rank metered the node's two GPUs and CPU; counted once. Its clock is 30 s ahead.
    ends = [
        final([gpu("GPU 0", 100.0, 100.0), cpu(30.0, 60.0)], duration=10.0),
        final([gpu("GPU 1", 200.0, 200.0), cpu(24.0, 58.0)], duration=11.0, at=T0 + 0.5),
        final([gpu("GPU 0", 150.0, None), gpu("GPU 1", 150.0, None), cpu(40.0, None)], duration=9.0, at=T0 + 30),
        final([gpu("GPU 0", 155.0, None), gpu("GPU 1", 150.0, None), cpu(41.0, None)], duration=9.5, at=T0 + 31),
    ]
    for part, end in zip(parts_, ends):
        assert jobs.update_part(reg, part["uid"], end, final=True)
    run = reg.get_run(run_id)
    assert run["status"] == "ok" and run["job_parts"] == 4 and run["job_nodes"] == 2
    assert run["gpu_energy_j"] == 100.0 + 200.0 + 155.0 + 150.0
    assert run["cpu_energy_j"] == 54.0 + 41.0  # node-a: the shares, under the 60 J drawn; node-b: once
    assert run["energy_j"] == run["gpu_energy_j"] + run["cpu_energy_j"]
    assert run["machine_energy_j"] == 100.0 + 200.0 + 60.0 + 155.0 + 150.0 + 41.0
    counted_energy = math.fsum(e["energy_j"] for e in ends)
    assert run["emissions_g"] == pytest.approx(counted_energy * 0.1 * run["energy_j"] / counted_energy)
    assert run["embodied_g"] == 10.0  # each node's once: 5 g on node-a, 5 g on node-b
    assert run["duration_s"] == pytest.approx(11.5)  # node-a's span on its clock; node-b's 30 s ahead not counted
    assert run["host"] == "node-a, node-b" and run["gpu_count"] == 4
    components = {c["device"]: c for c in reg.components(run["uid"])}
    assert components["node-a: package-0"]["share_how"] == "the shares of ranks 0, 1, summed"
    assert components["node-a: GPU 1"]["share_how"] == "the share of rank 1"
    assert components["node-b: GPU 0"]["share_how"] == "the whole device, counted once"
    assert "2 ranks" not in run["notes"][0] and "4 ranks on 2 nodes" in run["notes"][0]
    check(reg, "p")
    assert reg.totals("p").runs == 1 and reg.totals("p").energy_j == run["energy_j"]


def test_which_run_a_rank_joins(reg):
    a = jobs.start_part(reg, run_row(), part_row(0))
    assert jobs.start_part(reg, run_row(), part_row(1, at=T0 + 2)) == a
    assert jobs.start_part(reg, run_row(block=2), part_row(0, block=2)) != a  # its next block: the job's next run
    # the same rank and block again while the first runs: another job reusing the key, a run of its own
    assert jobs.start_part(reg, run_row(), part_row(0, at=T0 + 5)) != a
    # a key a later job may reuse joins only within its window
    key = "rendezvous:node-a:29500"
    c = jobs.start_part(reg, run_row(job=key, world=3), part_row(0, job=key), window_s=60)
    assert jobs.start_part(reg, run_row(job=key, world=3), part_row(1, job=key, at=T0 + 30), window_s=60) == c
    assert jobs.start_part(reg, run_row(job=key, world=3), part_row(2, job=key, at=T0 + 3600), window_s=60) != c
    assert len(reg.runs(project="p")) == 5


def test_a_complete_job_is_not_joined_by_a_reused_key(reg):
    ranks = [part_row(0), part_row(1)]
    a = {jobs.start_part(reg, run_row(), p) for p in ranks}
    for p in ranks:
        jobs.update_part(reg, p["uid"], final([cpu(1.0, 2.0)]), final=True)
    assert jobs.start_part(reg, run_row(), part_row(1, at=T0 + 100)) not in a


def test_a_driver_s_run_takes_every_block_and_its_own_machine_s_descendants_are_inside_it(reg):
    driver = part_row(None, "kernel-host", job="cell-1", block=None, pid=4242)
    run = jobs.start_part(reg, run_row(job="cell-1", block=None, world=None, host="kernel-host", pid=4242), driver,
                          driver=True)  # fmt: skip
    local = part_row(0, "kernel-host", job="cell-1", block=3, at=T0 + 1)
    remote = part_row(1, "node-b", job="cell-1", block=1, at=T0 + 900)
    assert jobs.start_part(reg, run_row(job="cell-1", block=3), local, ancestors=(999, 4242, 1)) == run
    assert jobs.start_part(reg, run_row(job="cell-1", block=1), remote, ancestors=(999, 4242, 1)) == run
    # a second driver with the same key is a new run, which ranks then join
    again = jobs.start_part(reg, run_row(job="cell-1", block=None, host="kernel-host", pid=4242),
                            part_row(None, "kernel-host", job="cell-1", block=None), driver=True)  # fmt: skip
    assert again != run
    jobs.update_part(reg, driver["uid"], final([cpu(10.0, 20.0)]), final=True)
    jobs.update_part(reg, local["uid"], final([cpu(7.0, 20.0)]), final=True)
    found = {p["rank"]: p for p in parts(reg, reg.get_run(run)["uid"])}
    assert found[0]["counted"] in (False, 0) and found[1]["counted"] in (True, 1) and found[None]["counted"] in (True, 1)
    assert reg.get_run(run)["status"] == "running"  # the remote rank still runs
    jobs.update_part(reg, remote["uid"], final([cpu(5.0, 9.0)]), final=True)
    done = reg.get_run(run)
    assert done["status"] == "ok" and done["cpu_energy_j"] == 15.0  # the driver's and the remote rank's
    assert "inside its measurement" in done["notes"][0]


def test_checkpoints_ends_and_a_start_that_never_reached_the_registry(reg):
    p = part_row(0)
    run = jobs.start_part(reg, run_row(), p)
    assert jobs.update_part(reg, p["uid"], {"energy_j": 3.0, "duration_s": 1.0, "devices": [cpu(3.0, 6.0)]}, final=False)
    assert reg.get_run(run)["cpu_energy_j"] == 3.0 and reg.get_run(run)["status"] == "running"
    jobs.update_part(reg, p["uid"], final([cpu(4.0, 8.0)], status="failed", error="ValueError: x"), final=True)
    assert not jobs.update_part(reg, p["uid"], {"energy_j": 9.0}, final=False)  # ended: a late checkpoint changes nothing
    with pytest.raises(Exception, match="already finished"):
        jobs.update_part(reg, p["uid"], final([cpu(4.0, 8.0)]), final=True)
    assert reg.get_run(run)["status"] == "failed"  # from the parts reported: a rank that never reports cannot hold it
    lost = part_row(1)
    run_id = jobs.finish_part(reg, lost["uid"], final([cpu(2.0, 8.0)]), [],
                              start={"run_row": run_row(), "part": lost})  # fmt: skip
    assert run_id == run
    done = reg.get_run(run)
    assert done["status"] == "failed" and done["error"] == "rank 0 on node-a failed: ValueError: x"
    assert done["cpu_energy_j"] == 6.0


def test_ranks_whose_process_died_are_reaped_and_a_reader_shows_the_job_crashed(reg):
    alive, gone = part_row(0, "node-a", pid=11), part_row(1, "node-b", pid=22)
    run = jobs.start_part(reg, run_row(), alive)
    jobs.start_part(reg, run_row(), gone)
    jobs.update_part(reg, gone["uid"], {"energy_j": 5.0, "duration_s": 3.0, "devices": [cpu(5.0, 9.0)]}, final=False)
    started = {11: T0 - 10, 22: None}.get  # on node-b, pid 22 no longer exists
    assert dead_runs(reg, host="node-b", started_at_of=started) == {}  # rank 0 may still run
    assert reg.reap_crashed(host="node-b", started_at_of=started) == [run]
    found = {p["rank"]: p for p in parts(reg, reg.get_run(run)["uid"])}
    assert found[1]["status"] == "crashed" and found[1]["energy_j"] == 5.0
    assert reg.get_run(run)["status"] == "running"
    # from another host, rank 0's heartbeat is old: it is shown crashed, without writing
    later = time.time() + 3600
    assert list(dead_runs(reg, host="elsewhere", now=later)) == [run]
    assert reg.get_run(run)["status"] == "running"
    assert reg.reap_crashed(host="elsewhere", now=later) == [run]
    crashed = reg.get_run(run)
    assert crashed["status"] == "crashed" and crashed["cpu_energy_j"] == 5.0


def test_only_the_first_running_rank_s_checkpoints_write_the_job_s_run(reg):
    """A job of hundreds of ranks writes its run once per checkpoint interval, not once per rank."""
    first, second = part_row(0), part_row(1)
    run = jobs.start_part(reg, run_row(), first)
    jobs.start_part(reg, run_row(), second)
    jobs.update_part(reg, second["uid"], {"energy_j": 4.0, "duration_s": 1.0, "devices": [cpu(4.0, 9.0)]}, final=False)
    assert reg.get_run(run)["energy_j"] == 0.0  # rank 1's checkpoint is kept with its part only
    assert [p["energy_j"] for p in parts(reg, reg.get_run(run)["uid"]) if p["rank"] == 1] == [4.0]
    jobs.update_part(reg, first["uid"], {"energy_j": 2.0, "duration_s": 1.0, "devices": [cpu(2.0, 9.0)]}, final=False)
    assert reg.get_run(run)["energy_j"] == 6.0  # rank 0's settles the run: both checkpoints in it
    jobs.update_part(reg, first["uid"], final([cpu(3.0, 9.0)]), final=True)
    jobs.update_part(reg, second["uid"], {"energy_j": 5.0, "duration_s": 2.0, "devices": [cpu(5.0, 9.0)]}, final=False)
    assert reg.get_run(run)["energy_j"] == 8.0  # rank 1 is now the first running rank


def test_a_driver_s_local_ranks_stay_inside_it_after_other_nodes_report_and_its_own_threads_too(reg):
    driver = part_row(None, "kernel-host", job="cell-2", block=None, pid=4242)
    run = jobs.start_part(reg, run_row(job="cell-2", block=None, world=None, host="kernel-host", pid=4242), driver,
                          driver=True)  # fmt: skip
    remote = part_row(0, "node-b", job="cell-2", block=1)
    jobs.start_part(reg, run_row(job="cell-2"), remote)
    jobs.update_part(reg, remote["uid"], final([cpu(1.0, 2.0)]), final=True)
    jobs.update_part(reg, driver["uid"], {"energy_j": 1.0, "devices": [cpu(1.0, 3.0)]}, final=False)
    assert reg.get_run(run)["host"] == "kernel-host, node-b"  # the run now names both nodes
    local = part_row(1, "kernel-host", job="cell-2", block=1, pid=555)
    thread = part_row(None, "kernel-host", job="cell-2", block=1, pid=4242)  # a track() on another thread of the kernel
    jobs.start_part(reg, run_row(job="cell-2"), local, ancestors=(4242, 1))
    jobs.start_part(reg, run_row(job="cell-2"), thread, ancestors=(1,))
    counted = {p["uid"]: p["counted"] for p in parts(reg, reg.get_run(run)["uid"])}
    assert not counted[local["uid"]] and not counted[thread["uid"]] and counted[remote["uid"]]


def test_unknown_water_and_embodied_stay_unknown_and_a_finished_job_of_unknown_size_is_not_joined(reg):
    first = part_row(None, job="eval")
    run = jobs.start_part(reg, run_row(job="eval", world=None), first)
    end = final([cpu(2.0, 4.0)], at=T0 + 100)
    end.update(water_l=None, embodied_g=None)
    jobs.update_part(reg, first["uid"], end, final=True)
    done = reg.get_run(run)
    assert done["water_l"] is None and done["embodied_g"] is None and done["emissions_g"] == pytest.approx(0.2)
    assert done["ended_at"] == T0 + 110.0
    # the same name in a later launch of the script: its own run, not a part of the finished one
    assert jobs.start_part(reg, run_row(job="eval", world=None), part_row(None, job="eval", at=T0 + 900)) != run


def test_gpus_are_told_apart_by_their_uuid_when_every_rank_calls_its_own_gpu_0(reg):
    """A launcher or container that shows each rank only its GPU: all four call it GPU 0."""
    ranks = [part_row(rank) for rank in range(4)]
    run = {jobs.start_part(reg, run_row(world=4), p) for p in ranks}.pop()
    for rank, part in enumerate(ranks):
        device = {**gpu("GPU 0: NVIDIA H100", 100.0 + rank, 100.0 + rank), "device_id": f"GPU-{rank:04d}-uuid"}
        jobs.update_part(reg, part["uid"], final([device]), final=True)
    done = reg.get_run(run)
    assert done["gpu_energy_j"] == 100.0 + 101.0 + 102.0 + 103.0 and done["gpu_count"] == 4
    assert sorted(c["machine_energy_j"] for c in reg.components(done["uid"])) == [100.0, 101.0, 102.0, 103.0]


def test_a_driver_s_blocks_and_restarts_that_ran_one_after_another_are_added_and_the_latest_attempt_says_how_it_ended(reg):
    driver = part_row(None, "laptop", job="cell-3", block=None, pid=7)
    run = jobs.start_part(reg, run_row(job="cell-3", block=None, world=None, host="laptop"), driver, driver=True)
    blocks = []
    for block, attempt, status, energy, at in ((1, 0, "failed", 300.0, T0), (1, 1, "ok", 500.0, T0 + 100),
                                               (2, 1, "ok", 200.0, T0 + 700)):  # fmt: skip
        part = {**part_row(0, "node-b", job="cell-3", block=block, at=at), "attempt": attempt}
        jobs.start_part(reg, run_row(job="cell-3", block=block), part)
        end = final([gpu("GPU 0", energy, energy), cpu(energy / 10, None)], status=status, at=at,
                    error="RuntimeError: NCCL timeout" if status == "failed" else None)  # fmt: skip
        jobs.update_part(reg, part["uid"], end, final=True)
        blocks.append(part)
    jobs.update_part(reg, driver["uid"], final([cpu(1.0, 2.0)], at=T0), final=True)
    done = reg.get_run(run)
    # one device, used in turn by three windows: each window's energy, added; machine attribution too
    assert done["gpu_energy_j"] == 300.0 + 500.0 + 200.0 and done["cpu_energy_j"] == 30.0 + 50.0 + 20.0 + 1.0
    assert done["status"] == "ok" and done["error"] is None  # the restart succeeded
    assert any(note.startswith("restarted 1 time") for note in done["notes"])


def test_blocks_metered_inside_a_rank_s_block_are_listed_with_the_job_s_parts(reg):
    rank = part_row(0)
    run = jobs.start_part(reg, run_row(world=1), rank)
    reg.record_part({"uid": new_uid(), "parent_uid": rank["uid"], "name": "epoch-1", "status": "ok",
                     "started_at": T0 + 1, "energy_j": 2.0})  # fmt: skip
    listed = parts(reg, reg.get_run(run)["uid"])
    assert [(p["rank"], p["name"], p["job"]) for p in listed] == [(0, None, "slurm:1"), (None, "epoch-1", None)]


def test_a_failed_rank_named_in_the_error_is_the_first_to_fail(reg):
    ranks = [part_row(rank) for rank in range(3)]
    run = {jobs.start_part(reg, run_row(world=3), p) for p in ranks}.pop()
    # rank 2 fails first (its NCCL error is the cause); ranks 0 and 1 fail after, waiting for it
    for rank, ended in ((2, T0 + 5), (0, T0 + 9), (1, T0 + 9)):
        end = final([cpu(1.0, 3.0)], status="failed", error=f"error of rank {rank}")
        end["ended_at"] = ended
        jobs.update_part(reg, ranks[rank]["uid"], end, final=True)
    assert reg.get_run(run)["error"] == "rank 2 on node-a failed: error of rank 2"

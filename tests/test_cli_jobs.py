"""``notebook-carbon runs`` of a distributed job: the job is one run, listed once with its ranks and
nodes; ``--parts`` lists its ranks (node, status, energy, GPUs charged, counted) under it, and a
run's nested blocks too; hostile node names and job keys are escaped; and four real ranks, started
with torchrun's environment, read the same."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import pytest

from notebook_carbon.cli import main
from notebook_carbon.cli_runs import charged_gpus, job_text, print_rows
from notebook_carbon.registry import Registry, jobs, new_uid
from notebook_carbon.units import energy_text

RAW = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
"""What a terminal acts on besides the line ends a table puts there."""
START = 1.8e9
NODES = ("node-a", "node-a", "node-b", "node-b")


def gpu(index: int, *, share: float | None, energy: float = 1000.0) -> dict:
    return {"component": "gpu", "device": f"GPU {index}: NVIDIA H100", "method": "nvml-counter", "energy_j": energy,
            "machine_energy_j": None if share is None else energy / share if share else 500.0, "share": share}


def record_job(location, *, nodes=NODES, key="slurm:1234.0", name="train", project="thesis", devices=None) -> int:
    """A job of ``len(nodes)`` ranks, rank i on ``nodes[i]``, every rank finished ``ok`` with 1.1 kJ:
    its GPU ``i % 2`` whole, a quarter of its node's CPU package, and none of a GPU it saw; the run's id."""
    run_row = {"project": project, "name": name, "started_at": START, "job": key, "job_block": 1,
               "job_world_size": len(nodes), "host": "unused"}  # fmt: skip
    with Registry.open(location) as reg:
        uids = [new_uid() for _ in nodes]
        for rank, (uid, node) in enumerate(zip(uids, nodes)):
            run_id = jobs.start_part(reg, {**run_row, "uid": new_uid()},
                                     {"uid": uid, "job": key, "block": 1, "rank": rank, "local_rank": rank % 2,
                                      "node": node, "started_at": START + rank, "name": name})  # fmt: skip
        for rank, uid in enumerate(uids):
            charged = devices(rank) if devices else [
                gpu(rank % 2, share=None),
                {"component": "cpu", "device": "package-0", "method": "rapl", "energy_j": 100.0,
                 "machine_energy_j": 400.0, "share": 0.25},
                gpu(2 + rank % 2, share=0.0, energy=0.0),
            ]  # fmt: skip
            jobs.update_part(reg, uid, {"status": "ok", "ended_at": START + 60, "duration_s": 60.0 - rank,
                                        "energy_j": 1100.0, "gpu_energy_j": 1000.0, "cpu_energy_j": 100.0,
                                        "gpu_method": "nvml-counter", "cpu_method": "rapl", "emissions_g": 0.5,
                                        "devices": charged}, final=True)  # fmt: skip
    return run_id


def record_run(location, *, name="plain", project="thesis", started_at=START - 3600) -> int:
    with Registry.open(location) as reg:
        return reg.record_run(
            {"uid": new_uid(), "project": project, "name": name, "started_at": started_at},
            {"status": "ok", "energy_j": 3600.0, "emissions_g": 0.1, "cpu_energy_j": 3600.0, "cpu_method": "rapl",
             "duration_s": 60.0, "ended_at": started_at + 60},
        )


def runs(capsys, location, *more) -> list[str]:
    assert main(["runs", "--registry", location, *more]) == 0
    out, err = capsys.readouterr()
    assert err == "" and not RAW.search(out), out
    return out.rstrip("\n").split("\n")


def test_a_job_of_four_ranks_on_two_nodes_is_listed_once(registry_url, capsys):
    plain = record_run(registry_url)
    job = record_job(registry_url)
    header, first, second = runs(capsys, registry_url)
    assert header.split() == ["id", "status", "name", "sweep", "energy", "CO2e", "time", "job", "methods"]
    assert first.split()[:2] == [str(plain), "ok"] and "rank" not in first
    assert second.split()[:3] == [str(job), "ok", "train"]
    assert "  4 ranks, 2 nodes  " in second
    # each device once: four whole GPUs (4 kJ) and each node's CPU package charged half (2 x 200 J)
    assert f" {energy_text(4400.0)} " in second
    assert header.index("job") == second.index("4 ranks") and header.index("methods") == second.index("gpu nvml")
    with Registry.open(registry_url, read_only=True) as reg:
        assert len(reg.runs(project="thesis")) == 2


def test_runs_without_a_job_keep_their_columns(tmp_path, capsys):
    location = str(tmp_path / "r.sqlite")
    record_run(location)
    header, line = runs(capsys, location, "--parts")
    assert header.split() == ["id", "status", "name", "sweep", "energy", "CO2e", "time", "methods"]
    assert line.endswith("  cpu rapl")


def test_runs_parts_shows_each_rank_with_its_node(registry_url, capsys):
    record_run(registry_url)
    job = record_job(registry_url)
    lines = runs(capsys, registry_url, "--parts")
    assert lines[1].split() == ["part", "node", "status", "energy", "counted", "GPUs", "charged"]
    at = next(i for i, line in enumerate(lines) if line.split()[:1] == [str(job)])
    assert lines[at + 1] == "      job slurm:1234.0 (block 1)"
    ranks = lines[at + 2:]
    assert len(ranks) == 4
    for rank, line in enumerate(ranks):
        assert line.startswith("      ") and line.split() == [
            "rank", str(rank), NODES[rank], "ok", *energy_text(1100.0).split(), "yes", "GPU", str(rank % 2)
        ]
    # the plain run has no parts: nothing under it
    assert lines[2].split()[1] == "ok" and lines[3].split()[0] == str(job)


def test_runs_without_parts_lists_no_ranks(tmp_path, capsys):
    location = str(tmp_path / "r.sqlite")
    record_job(location)
    lines = runs(capsys, location)
    assert len(lines) == 2 and not any("rank " in line for line in lines)


def test_the_gpus_charged_are_those_of_a_share_above_zero():
    devices = [gpu(0, share=None), gpu(1, share=0.5), gpu(2, share=0.0, energy=0.0),
               {"component": "cpu", "device": "package-0", "method": "rapl", "energy_j": 1.0, "share": None}]
    assert [d["device"] for d in charged_gpus(devices)] == ["GPU 0: NVIDIA H100", "GPU 1: NVIDIA H100"]
    assert charged_gpus("not json") == charged_gpus('{"a": 1}') == charged_gpus(None) == []


def test_a_shared_gpu_is_shown_with_the_share_charged(tmp_path, capsys):
    location = str(tmp_path / "r.sqlite")
    record_job(location, nodes=("n", "n"), devices=lambda rank: [gpu(0, share=0.5, energy=500.0)])
    lines = runs(capsys, location, "--parts")
    assert "1 node" in lines[2] and "2 ranks" in lines[2]
    assert [line.split("  ")[-1] for line in lines[4:]] == ["GPU 0 (50 %)", "GPU 0 (50 %)"]


HOSTILE_NODES = ("\x1b]8;;http://evil.example\x07click\x1b]8;;\x07", "two\nlines", "abc\u202efed", "\x1b[2Jcleared")


def test_hostile_node_names_and_job_keys_are_escaped(tmp_path, capsys):
    location = str(tmp_path / "r.sqlite")
    record_job(location, nodes=HOSTILE_NODES, key="slurm:\x1b[31mred\r\n", name="x\x1b[2J")
    out = "\n".join(runs(capsys, location, "--parts"))  # no raw control character: checked there
    assert "job slurm:\\x1b[31mred\\r\\n (block 1)" in out
    assert "\\x1b]8;;http://…" in out and "two\\nlines" in out and "abc\\u202efed" in out
    assert "x\\x1b[2J" in out
    # the run's host (every node's name) is not printed by `runs`; the parts' are, escaped, one line each
    assert len(out.split("\n")) == 2 + 1 + 1 + 4


def test_a_driven_job_and_nested_blocks_are_listed_under_their_run(tmp_path, capsys):
    """A notebook cell driving a job: its own part (the driver) first, a rank it started on its own
    machine (inside its measurement, not counted again), a rank elsewhere; and a plain run's nested
    block, under it, its energy inside its run's."""
    location = str(tmp_path / "r.sqlite")
    cell = {"uid": new_uid(), "project": "thesis", "name": "launch", "started_at": START, "job": "cell-job",
            "job_block": None, "host": "lab", "pid": 4242}  # fmt: skip
    parts = [({"uid": new_uid(), "job": "cell-job", "node": "lab", "pid": 4242, "started_at": START}, {"driver": True}),
             ({"uid": new_uid(), "job": "cell-job", "block": 1, "rank": 0, "node": "lab", "started_at": START + 1},
              {"ancestors": (4242, 1)}),
             ({"uid": new_uid(), "job": "cell-job", "block": 1, "rank": 1, "node": "far", "started_at": START + 1},
              {})]  # fmt: skip
    parent = new_uid()
    with Registry.open(location) as reg:
        for part, options in parts:
            run_id = jobs.start_part(reg, cell, part, **options)
        for part, _ in parts:
            jobs.update_part(reg, part["uid"], {"status": "ok", "energy_j": 10.0, "ended_at": START + 9,
                                                "duration_s": 8.0}, final=True)  # fmt: skip
        reg.record_run({"uid": parent, "project": "thesis", "name": "outer", "started_at": START + 100},
                       {"status": "ok", "energy_j": 50.0})  # fmt: skip
        reg.record_part({"uid": new_uid(), "parent_uid": parent, "name": "inner\x1b[0m", "status": "failed",
                         "started_at": START + 101, "energy_j": 20.0})  # fmt: skip
    lines = runs(capsys, location, "--parts")
    assert "driver + 2 parts, 2 nodes" in lines[2] and lines[2].split()[0] == str(run_id)
    assert lines[3] == "      job cell-job (driven by a notebook cell)"
    assert [line.split()[:3] for line in lines[4:7]] == [["driver", "lab", "ok"], ["rank", "0", "lab"],
                                                         ["rank", "1", "far"]]  # fmt: skip
    counted = lines[1].index("counted")
    assert [line[counted:counted + 9].strip() for line in lines[4:7]] == ["yes", "in cell", "yes"]
    assert lines[7].split()[1:3] == ["ok", "outer"]
    assert lines[8].split() == ["inner\\x1b[0m", "-", "failed", *energy_text(20.0).split(), "nested", "-"]


def test_running_ranks_of_a_run_shown_crashed_are_shown_crashed(capsys):
    """A reader that cannot write (``runs`` on a read-only registry) shows a job whose ranks all died
    crashed: so its ranks still marked running."""
    run = {"id": 7, "uid": "a" * 32, "status": "running", "name": "train", "job": "slurm:9", "job_block": 1,
           "job_world_size": 2, "job_parts": 2, "job_nodes": 1}  # fmt: skip
    parts = [{"job": "slurm:9", "block": 1, "rank": r, "node": "n", "status": s, "energy_j": 1.0, "counted": True,
              "devices": None, "started_at": START} for r, s in ((0, "running"), (1, "ok"))]  # fmt: skip
    print_rows([run], frozenset({7}), {run["uid"]: parts})
    lines = capsys.readouterr().out.split("\n")
    assert lines[2].split()[:2] == ["7", "crashed"]
    assert [line.split()[3] for line in lines[4:6]] == ["crashed", "ok"]


@pytest.mark.parametrize(
    ("counts", "said"),
    [
        ({"job_block": 1, "job_world_size": 4, "job_parts": 4, "job_nodes": 2}, "4 ranks, 2 nodes"),
        ({"job_block": 1, "job_world_size": 4, "job_parts": 3, "job_nodes": 2}, "3 of 4 ranks, 2 nodes"),
        ({"job_block": 2, "job_world_size": None, "job_parts": 1, "job_nodes": 1}, "1 rank, 1 node"),
        ({"job_block": None, "job_world_size": None, "job_parts": 2, "job_nodes": 1}, "driver + 1 part, 1 node"),
    ],
)
def test_job_text(counts, said):
    assert job_text({"job": "k", **counts}) == said
    assert job_text({"job": None, **counts}) == ""


RANK = """
import time
from notebook_carbon import track
with track(name="train", project="thesis"):
    time.sleep(0.2)
"""


def test_four_real_ranks_started_as_torchrun_starts_them(tmp_path, capsys):
    """Four processes with torchrun's environment (no ``--rdzv-id``: the rendezvous names the job),
    two per node: one run, its four parts with their nodes."""
    location = str(tmp_path / "r.sqlite")
    script = tmp_path / "rank.py"
    script.write_text(RANK)
    base = {k: v for k, v in os.environ.items() if not k.startswith(("NOTEBOOK_CARBON_", "SLURM_", "OMPI_", "PMI"))}
    ranks = []
    for rank in range(4):
        env = dict(base, NOTEBOOK_CARBON_REGISTRY=location, NOTEBOOK_CARBON_HOST=NODES[rank], RANK=str(rank),
                   LOCAL_RANK=str(rank % 2), WORLD_SIZE="4", LOCAL_WORLD_SIZE="2", GROUP_RANK=str(rank // 2),
                   MASTER_ADDR="node-a", MASTER_PORT="29517", TORCHELASTIC_RUN_ID="none")  # fmt: skip
        ranks.append(subprocess.Popen([sys.executable, str(script)], env=env, cwd=tmp_path,
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))  # fmt: skip
    for process in ranks:
        out, err = process.communicate(timeout=120)
        assert process.returncode == 0, err
        assert "of job rendezvous:node-a:29517" in out + err
    lines = runs(capsys, location, "--parts")
    assert len(lines) == 2 + 1 + 1 + 4
    assert lines[2].split()[1:3] == ["ok", "train"] and "4 ranks, 2 nodes" in lines[2]
    assert lines[3] == "      job rendezvous:node-a:29517 (block 1)"
    assert [line.split()[:4] for line in lines[4:]] == [["rank", str(rank), NODES[rank], "ok"] for rank in range(4)]
    assert all(line.split()[-2:] == ["yes", "-"] for line in lines[4:])  # no GPU here: none charged


def test_ranks_of_several_blocks_in_a_driven_run_say_their_block(capsys):
    """Every block of every rank joins the run of the notebook cell driving the job: each rank's
    line says which of its blocks it is."""
    run = {"id": 3, "uid": "b" * 32, "status": "ok", "name": "launch", "job": "k", "job_block": None,
           "job_world_size": None, "job_parts": 3, "job_nodes": 1}  # fmt: skip
    parts = [{"job": "k", "block": block, "rank": rank, "node": "n", "status": "ok", "energy_j": 1.0, "counted": True,
              "devices": "[]", "started_at": START + (block or 0)}
             for block, rank in ((None, None), (2, 0), (1, 0))]  # fmt: skip
    print_rows([run], frozenset(), {run["uid"]: parts})
    lines = capsys.readouterr().out.split("\n")
    assert "driver + 2 parts, 1 node" in lines[2]
    assert [line[6:22].rstrip() for line in lines[4:7]] == ["driver", "rank 0 #1", "rank 0 #2"]


def test_runs_marks_a_dead_rank_crashed_while_the_job_s_other_ranks_live(tmp_path, capsys):
    """One rank of a running job died on this machine, another still runs: ``runs`` marks the dead
    one crashed (its energy kept) and shows the job still running."""
    from notebook_carbon.meters.detect import host_info
    from notebook_carbon.registry.parts import parts

    location = str(tmp_path / "r.sqlite")
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    here, key = host_info()["hostname"], "slurm:77.0"
    with Registry.open(location) as reg:
        for rank, pid in ((0, os.getpid()), (1, dead.pid)):
            part = {"uid": new_uid(), "job": key, "block": 1, "rank": rank, "node": here, "pid": pid,
                    "started_at": START, "checkpoint_interval_s": 2.0}  # fmt: skip
            run_id = jobs.start_part(reg, {"uid": new_uid(), "project": "thesis", "started_at": START, "job": key,
                                           "job_block": 1, "job_world_size": 2}, part)  # fmt: skip
    lines = runs(capsys, location, "--parts")
    assert "running" in lines[2] and "2 ranks, 1 node" in lines[2]
    with Registry.open(location) as reg:
        found = {p["rank"]: p["status"] for p in parts(reg, reg.get_run(run_id)["uid"])}
    assert found == {0: "running", 1: "crashed"}

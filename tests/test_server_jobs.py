"""The REST endpoints of a registry holding a distributed job (4 ranks on 2 nodes): the job is one
run of the runs page, with its key, world size, parts and nodes; ``parts`` gives its ranks with
their nodes, devices and whether they are counted, a plain run's nested blocks, the newest run's
without ``run``; an unknown run is 404 and a bad id 400, each with a message; hostile names come
back as they were stored (JSON is escaped text); and the endpoint needs the server's authentication.

The fixtures are pytest-jupyter's (``jp_fetch`` against a real server), as in ``test_server.py``.
"""

from __future__ import annotations

import json

import pytest
from pytest_jupyter.jupyter_server import *  # noqa: F403  (jp_fetch, jp_serverapp and what they need)
from traitlets.config import Config

from notebook_carbon.registry import Registry, jobs, new_uid
from notebook_carbon.server.handlers import PREFIX

PROJECT = "thesis"
START = 1.8e9
NODES = ("node-a", "node-a", "node-b", "node-b")
HOSTILE = "<img src=x onerror=alert(1)>\x1b[2J\u202e"


def _devices(rank: int) -> list[dict]:
    """Rank ``rank``'s GPU ``rank % 2`` whole, a quarter of its node's CPU package, none of a GPU it saw."""
    return [
        {"component": "gpu", "device": f"GPU {rank % 2}: NVIDIA H100", "method": "nvml-counter", "energy_j": 1000.0,
         "machine_energy_j": None, "share": None},
        {"component": "cpu", "device": "package-0", "method": "rapl", "energy_j": 100.0, "machine_energy_j": 400.0,
         "share": 0.25},
        {"component": "gpu", "device": f"GPU {2 + rank % 2}: NVIDIA H100", "method": "nvml-counter", "energy_j": 0.0,
         "machine_energy_j": 500.0, "share": 0.0},
    ]  # fmt: skip


def _job(reg, key: str, nodes, name: str, started_at: float) -> int:
    run_row = {"project": PROJECT, "name": name, "started_at": started_at, "job": key, "job_block": 1,
               "job_world_size": len(nodes)}  # fmt: skip
    uids = [new_uid() for _ in nodes]
    for rank, (uid, node) in enumerate(zip(uids, nodes)):
        run_id = jobs.start_part(reg, {**run_row, "uid": new_uid()},
                                 {"uid": uid, "job": key, "block": 1, "rank": rank, "local_rank": rank % 2,
                                  "node": node, "started_at": started_at + rank, "name": name})  # fmt: skip
    for rank, uid in enumerate(uids):
        jobs.update_part(reg, uid, {"status": "ok", "ended_at": started_at + 60, "duration_s": 60.0 - rank,
                                    "energy_j": 1100.0, "gpu_energy_j": 1000.0, "cpu_energy_j": 100.0,
                                    "gpu_method": "nvml-counter", "cpu_method": "rapl", "emissions_g": 0.5,
                                    "devices": _devices(rank)}, final=True)  # fmt: skip
    return run_id


@pytest.fixture
def known(tmp_path):
    """Project thesis: a plain run (1) with a nested block, the job of 4 ranks on 2 nodes (2), and
    a job of 2 ranks on nodes with hostile names (3), the newest."""
    path = str(tmp_path / "registry.sqlite")
    with Registry.open(path) as reg:
        plain = new_uid()
        reg.record_run({"uid": plain, "project": PROJECT, "name": "plain", "started_at": START - 3600},
                       {"status": "ok", "energy_j": 50.0, "cpu_energy_j": 50.0, "cpu_method": "rapl",
                        "duration_s": 60.0, "ended_at": START - 3540})  # fmt: skip
        reg.record_part({"uid": new_uid(), "parent_uid": plain, "name": "inner", "status": "ok",
                         "started_at": START - 3599, "energy_j": 20.0})  # fmt: skip
        assert _job(reg, "slurm:1234.0", NODES, "train", START) == 2
        assert _job(reg, "slurm:99", (HOSTILE, "two\nlines"), HOSTILE, START + 3600) == 3
    return path


@pytest.fixture
def jp_server_config(known):
    return Config({
        "ServerApp": {"jpserver_extensions": {"notebook_carbon.server": True}},
        "NotebookCarbonServer": {"registry": known, "project": PROJECT},
    })  # fmt: skip


@pytest.fixture
def get(jp_fetch, jp_asyncio_loop):
    def fetch(endpoint, headers=None, **params):
        request = jp_fetch(PREFIX, endpoint, params=params, headers=headers, raise_error=False)
        return jp_asyncio_loop.run_until_complete(request)

    return fetch


def _json(response, status=200):
    assert response.code == status, response.body
    assert response.headers["Content-Type"].startswith("application/json")
    return json.loads(response.body)


def test_the_job_is_one_run_of_the_runs_page(get):
    page = _json(get("runs"))
    assert page["total"] == 3 and [run["id"] for run in page["runs"]] == [3, 2, 1]
    job = page["runs"][1]
    assert {k: job[k] for k in ("name", "status", "job", "job_block", "job_world_size", "job_parts", "job_nodes")} \
        == {"name": "train", "status": "ok", "job": "slurm:1234.0", "job_block": 1, "job_world_size": 4,
            "job_parts": 4, "job_nodes": 2}  # fmt: skip
    assert job["host"] == "node-a, node-b" and job["gpu_count"] == 4
    # each device counted once: four whole GPUs, and each node's CPU package charged half of its 400 J
    assert job["energy_j"] == pytest.approx(4 * 1000.0 + 2 * 200.0)
    plain = page["runs"][2]
    assert [plain[k] for k in ("job", "job_block", "job_world_size", "job_parts", "job_nodes")] == [None] * 5
    # and a summary counts the job once, its energy once
    summary = _json(get("summary"))
    assert summary["runs"] == 3 and summary["excluded"] == []
    assert summary["totals"]["energy_j"]["value"] == pytest.approx(50.0 + 4400.0 + 2 * 1000.0 + 200.0)


def test_parts_gives_the_ranks_with_their_nodes(get):
    body = _json(get("parts", run="2"))
    assert body["run"]["id"] == 2 and body["run"]["job_parts"] == 4
    ranks = body["parts"]
    assert [(p["rank"], p["local_rank"], p["node"], p["status"], p["counted"]) for p in ranks] == [
        (rank, rank % 2, NODES[rank], "ok", True) for rank in range(4)
    ]
    assert all(p["job"] == "slurm:1234.0" and p["block"] == 1 and p["energy_j"] == 1100.0 for p in ranks)
    assert all(p["parent_uid"] == body["run"]["uid"] for p in ranks)
    charged = [[d["device"] for d in p["devices"] if d["component"] == "gpu" and d["share"] != 0] for p in ranks]
    assert charged == [["GPU 0: NVIDIA H100"], ["GPU 1: NVIDIA H100"]] * 2
    assert ranks[0]["devices"][1] == {"component": "cpu", "device": "package-0", "method": "rapl", "energy_j": 100.0,
                                      "machine_energy_j": 400.0, "share": 0.25, "reason": None, "degraded": None,
                                      "device_id": None}
    # by uid too
    assert _json(get("parts", run=body["run"]["uid"])) == body


def test_parts_of_a_plain_run_are_its_nested_blocks(get):
    body = _json(get("parts", run="1"))
    assert body["run"]["name"] == "plain" and body["run"]["job"] is None
    ((inner),) = body["parts"]
    assert (inner["name"], inner["energy_j"], inner["job"], inner["rank"], inner["counted"], inner["devices"]) == (
        "inner", 20.0, None, None, False, [])


def test_parts_without_a_run_are_the_newest_runs(get):
    body = _json(get("parts"))
    assert body["run"]["id"] == 3 and len(body["parts"]) == 2
    assert _json(get("parts", project="no such project")) == {"run": None, "parts": []}


def test_hostile_names_come_back_as_stored(get):
    """JSON carries the text as it is, escaped as JSON; showing it safely is the client's part (the
    sidebar sets it as text, never HTML)."""
    response = get("parts", run="3")
    body = _json(response)
    assert body["run"]["name"] == HOSTILE and [p["node"] for p in body["parts"]] == [HOSTILE, "two\nlines"]
    assert b"\x1b" not in response.body and b"\n" not in response.body and b"<img" in response.body
    assert body["run"]["job_nodes"] == 2 and body["run"]["host"] == f"{HOSTILE}, two\nlines"


@pytest.mark.parametrize("run", ["999", "0123456789abcdef0123456789abcdef"])
def test_an_unknown_run_is_404_with_a_message(get, run):
    body = _json(get("parts", run=run), 404)
    assert body["message"] == f"there is no run {int(run) if run.isdigit() else run} in the notebook-carbon " \
                              "registry; see the runs endpoint"


@pytest.mark.parametrize("run", ["0", "-1", "1.5", "x", "\u0661", str(2**63), "9" * 5000, "ABCDEF0123456789ABCDEF0123456789"])
def test_a_bad_run_id_is_400_saying_what_to_send(get, run):
    body = _json(get("parts", run=run), 400)
    assert "is neither a run id (a number from 1 to 9223372036854775807) nor a run uid (32 hex digits)" in body["message"]
    assert len(body["message"]) < 200


def test_parts_needs_authentication(get):
    for headers in ({"Authorization": ""}, {"Authorization": "token not-the-token"}):
        response = get("parts", headers=headers, run="2")
        assert response.code == 403
        assert b"node-a" not in response.body

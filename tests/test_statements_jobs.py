"""Distributed jobs in statements and in a run's report (issue 14): a job of 4 ranks on 2 nodes is
one run, counted once in the totals and its sweep; the statement says how many runs were jobs, their
ranks and nodes, and how each device was counted, and says nothing of jobs where there are none."""

from __future__ import annotations

import json
import shutil

import pytest

from notebook_carbon.registry import Registry, jobs, new_uid
from notebook_carbon.settings import resolve
from notebook_carbon.statements import SCHEMA_PATH, impact_statement, statement_facts
from notebook_carbon.statements.jobs import HOW
from notebook_carbon.statements.render import render

SETTINGS = resolve({"hardware": "workstation", "embodied_kg": 1000.0, "lifetime_years": 4.0}, environ={})
T0 = 1.8e9
WHERE = {"pue": 1.0, "intensity_g_per_kwh": 100.0, "intensity_region": "FR", "intensity_source": "test grid",
         "cpu_model": "Xeon Test", "gpu_model": "Test GPU", "attribution": "share"}  # fmt: skip
SENTENCE = (
    "1 of the runs was a distributed job (4 ranks on 2 nodes), recorded as one run with each device counted once: "
    "the ranks' shares of a device were summed, never above what the device drew, and a node's CPU and memory "
    "were not counted once per rank."
)


def _devices(rank: int) -> list[dict]:
    """A rank's own GPU (all of it) and its quarter of its node's CPU, which drew 20 J."""
    return [
        {"component": "gpu", "device": f"GPU {rank % 2}", "method": "nvml-counter", "energy_j": 10.0,
         "machine_energy_j": 10.0, "share": 1.0},
        {"component": "cpu", "device": "package-0", "method": "rapl", "energy_j": 5.0, "machine_energy_j": 20.0,
         "share": 0.25},
    ]  # fmt: skip


def add_ranks(reg, key: str, ranks, nodes=("node-a", "node-b"), *, project: str = "p", name: str = "train",
              started_at: float = T0) -> int:  # fmt: skip
    """Ranks of job ``key`` (two a node), each started then finished ``ok`` through ``registry.jobs``:
    each charged 15 J, its GPU's 10 J and 5 J of its node's CPU; the run's id."""
    run_row = {"project": project, "name": name, "sweep": "dist", "started_at": started_at, "job": key,
               "job_block": 1, "job_world_size": 4, "gpu_count": 1, **WHERE}  # fmt: skip
    uids = {}
    for rank in ranks:
        uids[rank] = new_uid()
        run_id = jobs.start_part(reg, {**run_row, "uid": new_uid()},
                                 {"uid": uids[rank], "job": key, "block": 1, "rank": rank, "node": nodes[rank // 2],
                                  "started_at": started_at + rank, "name": name})  # fmt: skip
    for rank in ranks:
        jobs.update_part(reg, uids[rank], {
            "status": "ok", "energy_j": 15.0, "gpu_energy_j": 10.0, "cpu_energy_j": 5.0, "gpu_method": "nvml-counter",
            "cpu_method": "rapl", "emissions_g": 15.0 / 3.6e6 * 100.0, "ended_at": started_at + 60.0,
            "duration_s": 60.0 - rank, "devices": _devices(rank),
        }, final=True)  # fmt: skip
    return run_id


def job_registry(location: str, key: str = "slurm:7", nodes=("node-a", "node-b"), project: str = "p") -> int:
    """Two ordinary runs of 100 J on lab-1 (sweep "base") and the job's run; the job run's id."""
    with Registry.open(location) as reg:
        for i in range(2):
            reg.record_run(
                {"uid": new_uid(), "project": project, "sweep": "base", "started_at": T0 - 1000 + i, "host": "lab-1",
                 **WHERE, "gpu_model": None, "gpu_count": 0},
                {"status": "ok", "energy_j": 100.0, "emissions_g": 100.0 / 3.6e6 * 100.0, "duration_s": 10.0,
                 "ended_at": T0 - 990 + i, "cpu_energy_j": 100.0, "cpu_method": "rapl"},
            )  # fmt: skip
        return add_ranks(reg, key, range(4), nodes, project=project)


def test_a_job_is_one_run_in_the_statement_and_its_sweep(registry_url):
    import jsonschema

    run_id = job_registry(registry_url)
    with Registry.open(registry_url) as reg:
        run = reg.get_run(run_id)
        sweeps = {s.key: s for s in reg.sweeps("p")}
    # each GPU once (4 x 10 J), each node's CPU the ranks' shares summed (2 x 10 J of its 20 J)
    assert (run["energy_j"], run["job_parts"], run["job_nodes"]) == (pytest.approx(60.0), 4, 2)
    assert (sweeps["dist"].runs, sweeps["dist"].energy_j) == (1, pytest.approx(60.0))
    document = json.loads(impact_statement(registry_url, project="p", settings=SETTINGS, format="json"))
    jsonschema.Draft202012Validator(json.loads(SCHEMA_PATH.read_text())).validate(document)
    assert document["totals"]["runs"] == 3 and document["totals"]["energy_j"]["value"] == pytest.approx(260.0)
    (dist,) = [s for s in document["sweeps"] if s["key"] == "dist"]
    assert (dist["runs"], dist["energy_j"]) == (1, pytest.approx(run["energy_j"]))
    assert document["methods"]["jobs"] == {
        "runs": 1, "ranks": 4, "nodes": 2, "parts": 4, "driven_by_cells": 0, "inside_ranks": 0,
        "keys": ["slurm:7"], "keys_left_out": 0, "how": HOW,
    }  # fmt: skip
    assert document["hardware"]["hosts"] == 3  # lab-1, node-a and node-b; not "node-a, node-b" as one


def test_the_jobs_sentence_in_markdown_and_latex_only_where_there_are_jobs(tmp_path):
    location = str(tmp_path / "r.sqlite")
    job_registry(location)
    markdown = impact_statement(location, project="p", settings=SETTINGS)
    assert SENTENCE in markdown and "slurm:7" not in markdown
    latex = impact_statement(location, project="p", settings=SETTINGS, format="latex")
    assert SENTENCE.replace("'", "{'}") in latex
    without = statement_facts(location, project="p", sweep="base", settings=SETTINGS)
    assert without["methods"]["jobs"] is None  # a statement of runs that are no jobs says none
    for fmt in ("md", "latex"):
        assert "distributed" not in render(without, fmt)
    # facts of an earlier version (no jobs fact at all) render as they did
    earlier = statement_facts(location, project="p", settings=SETTINGS)
    del earlier["methods"]["jobs"]
    assert render(earlier, "md") == markdown.replace(SENTENCE + " ", "")


def test_several_jobs_and_a_rank_a_notebook_cell_started_inside_its_measurement(tmp_path):
    location = str(tmp_path / "r.sqlite")
    job_registry(location)
    with Registry.open(location) as reg:
        add_ranks(reg, "slurm:8", range(4), ("node-a", "node-c"), started_at=T0 + 3600)
        # a cell driving job nb:1 on node-a: the rank it started there is inside its measurement
        driven = {"project": "p", "name": "cell", "started_at": T0 + 7200, "job": "nb:1", "job_world_size": 2, **WHERE}
        uids = []
        for rank, node, pid, ancestors in ((None, "node-a", 4242, ()), (0, "node-a", 4243, (4242,)),
                                           (1, "node-d", 4243, ())):  # fmt: skip
            uids.append((new_uid(), rank))
            jobs.start_part(reg, {**driven, "uid": new_uid(), "host": "node-a", "pid": 4242},
                            {"uid": uids[-1][0], "job": "nb:1", "block": None if rank is None else 1, "rank": rank,
                             "node": node, "pid": pid, "started_at": T0 + 7200},
                            driver=rank is None, ancestors=ancestors)  # fmt: skip
        for uid, rank in uids:  # the ranks started while the cell ran, which ends with them
            jobs.update_part(reg, uid, {"status": "ok", "energy_j": 15.0, "devices": _devices(rank or 0),
                                        "ended_at": T0 + 7260, "duration_s": 60.0}, final=True)  # fmt: skip
    fact = statement_facts(location, project="p", settings=SETTINGS)["methods"]["jobs"]
    assert {k: fact[k] for k in ("runs", "ranks", "nodes", "parts", "driven_by_cells", "inside_ranks")} == {
        "runs": 3, "ranks": 10, "nodes": 4, "parts": 11, "driven_by_cells": 1, "inside_ranks": 1}
    assert fact["keys"] == ["nb:1", "slurm:7", "slurm:8"]
    markdown = impact_statement(location, project="p", settings=SETTINGS)
    assert ("3 of the runs were distributed jobs (10 ranks on 4 nodes in all), each recorded as one run with each "
            "device counted once: ") in markdown  # fmt: skip
    assert ("not counted once per rank; 1 rank that a notebook cell started on its own machine was inside that "
            "cell's own measurement, so not counted again.") in markdown  # fmt: skip


@pytest.mark.skipif(shutil.which("pdflatex") is None and not __import__("os").environ.get("CI"),
                    reason="no pdflatex here; .ci/run installs it (texlive-latex-base), so CI runs this")
def test_hostile_job_keys_and_node_names_stay_text(tmp_path):
    import mistune
    from test_hostile_renderers import MARKDOWN_TAGS, _Cells, _no_unsafe_characters, compile_latex

    from notebook_carbon.summary import job_lines

    key = "<img src=x onerror=alert(1)> $x$ \\input{/etc/passwd} [2J] 50%_&{bs}#1 \x1b[2J"
    nodes = ("node\x1b]0;owned\x07-a|b", "</script><script>alert(1)</script> \u202eevil")
    project = "[2J] *p $x$"
    location = str(tmp_path / "r.sqlite")
    run_id = job_registry(location, key, nodes, project)
    md = impact_statement(location, project=project, settings=SETTINGS)
    _no_unsafe_characters(md)
    cells = _Cells()
    cells.feed(mistune.create_markdown(escape=False, plugins=["table", "strikethrough"])(md))
    assert cells.tags <= MARKDOWN_TAGS and SENTENCE in md
    compile_latex(impact_statement(location, project=project, settings=SETTINGS, format="latex"), tmp_path / "tex")
    document = json.loads(impact_statement(location, project=project, settings=SETTINGS, format="json"))
    assert document["methods"]["jobs"]["keys"] == [key]
    with Registry.open(location) as reg:
        from notebook_carbon.registry.parts import parts

        run = reg.get_run(run_id)
        report = "\n".join(job_lines(run, parts(reg, run["uid"])))
    assert "\x1b" not in report and "\u202e" not in report and "\\x1b]0;owned\\x07-a|b" in report
    assert all(line.startswith("  ") for line in report.splitlines())


def test_the_run_report_of_a_ranks_block_lists_the_jobs_parts(tmp_path, monkeypatch):
    """Rank 0 meters its block with ``track()`` on this machine; rank 1 on the same node and ranks 2
    and 3 on node-b report theirs: ``%carbon last``'s report (``run_report``) says the run is a job
    of 4 ranks on 2 nodes and lists each part."""
    from notebook_carbon import track
    from notebook_carbon.meters.detect import host_info
    from notebook_carbon.summary import run_report
    from notebook_carbon.units import terminal_text

    location = str(tmp_path / "r.sqlite")
    for name, value in {"NOTEBOOK_CARBON_REGISTRY": location, "NOTEBOOK_CARBON_REGION": "FR", "RANK": "0",
                        "LOCAL_RANK": "0", "WORLD_SIZE": "4"}.items():  # fmt: skip
        monkeypatch.setenv(name, value)
    key = f"report-{new_uid()[:8]}"  # this process numbers its blocks per key: a key of this test alone
    from notebook_carbon.settings import resolve

    with track(job=key, name="train", settings=resolve()) as block:  # a session of this environment's settings
        pass
    assert block.result.job is not None and block.result.job.rank == 0
    run_id = block.result.run_id()
    with Registry.open(location) as reg:
        run = reg.get_run(run_id)
        here = host_info()["hostname"]
        nodes = (here, "node-b")
        assert add_ranks(reg, key, (1, 2, 3), nodes, project=run["project"], started_at=run["started_at"]) == run_id
    report = run_report(block.result, registry=location)
    lines = report.splitlines()
    assert lines[0].startswith(f"run {run_id} [train] status ok")
    assert lines[1].startswith(f"  distributed job {key}: 4 ranks on 2 nodes, recorded as this one run (ok, ")
    assert lines[1].endswith("each device counted once); the figures below are rank 0's own")
    listed = [line.split() for line in lines if line.startswith("    ")]
    shown = terminal_text(here, 24)  # the node's column
    assert [(words[1], words[2], words[3]) for words in listed] == [
        ("0", shown, "ok"), ("1", shown, "ok"), ("2", "node-b", "ok"), ("3", "node-b", "ok")]
    assert all(line.endswith("charged GPU 1") for line in lines if line.startswith(("    rank 1", "    rank 3")))
    assert run_report(block.result).splitlines()[1].endswith("its parts cannot be listed (no registry to read);"
                                                             " the figures below are rank 0's own")  # fmt: skip

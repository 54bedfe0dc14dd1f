"""Totals kept by the database: exact, current after every kind of write, hand edits included."""

from __future__ import annotations

import random

import pytest
from sqlalchemy import text

from notebook_carbon.registry import Registry, new_uid
from totals_oracle import check


def _start(reg, t, **row):
    uid = new_uid()
    reg.start_run({"uid": uid, "project": "p", "started_at": t, **row})
    return uid


def _ok(energy, **more):
    return {"status": "ok", "energy_j": energy, "cpu_energy_j": energy, "cpu_method": "rapl",
            "emissions_g": energy / 100, **more}


def test_totals_by_hand(registry_url):
    """Figures worked out on paper: two sweeps, a failed and a redundant run, one of no sweep."""
    with Registry.open(registry_url) as reg:
        t = 1.7e9
        a1 = _start(reg, t, code_fingerprint="a", notebook="nb.ipynb", pue=1.5)
        reg.finish_run(a1, _ok(100.0, duration_s=10.0, water_l=0.5, embodied_g=2.0))
        a2 = _start(reg, t + 1, code_fingerprint="a", notebook="nb.ipynb", pue=1.5)
        reg.finish_run(a2, {"status": "failed", "energy_j": 50.0, "emissions_g": 0.5, "duration_s": 5.0})
        a3 = _start(reg, t + 2, code_fingerprint="a", notebook="nb.ipynb", redundant_of=1)
        reg.finish_run(a3, _ok(100.0, duration_s=10.0))
        reg.record_run({"uid": new_uid(), "project": "p", "sweep": "lr", "started_at": t + 3, "gpu_count": 2},
                       {"status": "ok", "energy_j": 400.0, "gpu_energy_j": 400.0, "gpu_method": "nvml-counter",
                        "emissions_g": 4.0, "duration_s": 20.0})
        reg.record_run({"uid": new_uid(), "project": "p", "started_at": t + 4},
                       {"status": "interrupted", "energy_j": 10.0, "emissions_g": 0.1, "duration_s": 1.0})
        reg.record_run({"uid": new_uid(), "project": "other", "started_at": t}, _ok(1e6))

        total = reg.totals("p")
        assert total.runs == 5 and dict(total.statuses) == {"ok": 3, "failed": 1, "interrupted": 1}
        assert total.energy_j == 660.0 and total.emissions_g == pytest.approx(6.6)
        assert total.failed_runs == 2 and total.failed_energy_j == 60.0
        assert total.redundant_runs == 1 and total.redundant_energy_j == 100.0
        assert total.water_l == 0.5 and total.water_runs == 1
        assert total.embodied_g == 2.0 and total.embodied_runs == 1
        assert total.facility_energy_j == pytest.approx(100 * 1.5 + 50 * 1.5 + 100 + 400 + 10)
        # rapl and nvml-counter are measured within their ranges; imported totals are unattributed
        assert total.energy_low_j < total.energy_j < total.energy_high_j
        # a3 (latest ok of sweep a, a result: several runs); the lr sweep's one unmarked run is development
        assert total.sweeps == 2 and total.selected_runs == 1 and total.results == (("code:a", "nb.ipynb, code a"),)
        assert total.selected_energy_j == 100.0
        assert total.overhead_ratio == pytest.approx(660.0 / 100.0)  # all the energy, the run of no sweep too
        assert total.unembodied_s_by_gpus == {0: 16.0, 2: 20.0}
        assert (total.first_at, total.last_at) == (t, t + 4)

        notebook = reg.totals("p", notebook="nb.ipynb")
        assert (notebook.runs, notebook.energy_j, notebook.selected_energy_j) == (3, 250.0, 100.0)
        sweep = reg.totals("p", sweep="code:a")
        assert (sweep.runs, sweep.energy_j, sweep.overhead_ratio) == (3, 250.0, 2.5)
        assert reg.totals("nobody").runs == 0 and reg.totals("nobody").overhead_ratio is None
        check(reg, "p")


def test_every_kind_of_write_moves_the_totals(registry_url, registry_engine):
    """Checkpoints, finishes, a final mark, a crashed run, and edits and deletions in SQL by hand
    (another program, a person fixing a row): after each, the totals are those of the rows."""
    with Registry.open(registry_url) as reg:
        t = 1.7e9
        running = _start(reg, t, code_fingerprint="a", notebook="x")
        check(reg, "p")
        reg.checkpoint_run(running, {"energy_j": 5.0, "cpu_energy_j": 5.0, "cpu_method": "estimate-tdp",
                                     "gpu_energy_j": 2.0, "gpu_method": "nvml-counter+nvml-power"})
        check(reg, "p")
        reg.checkpoint_run(running, {"energy_j": 7.0, "cpu_energy_j": 7.0, "cpu_method": "estimate-tdp"})
        check(reg, "p")
        reg.finish_run(running, _ok(9.0))
        other = _start(reg, t + 1, code_fingerprint="a", notebook="y")
        reg.finish_run(other, _ok(3.0))
        check(reg, "p")
        reg.set_final(reg.get_run(running)["id"])
        check(reg, "p")
        assert {s.key: s.selected_run_id for s in reg.sweeps("p")} == {"code:a": reg.get_run(running)["id"]}
        dead = _start(reg, t + 2, sweep="s", pid=2**22 + 12345, host="this-host")
        reg.checkpoint_run(dead, {"energy_j": 4.0})
        reg.reap_crashed(host="this-host", started_at_of=lambda pid: None)
        assert reg.get_run(dead)["status"] == "crashed"
        check(reg, "p")
        edits = [
            "UPDATE runs SET energy_j = 1000.0 WHERE id = 2",  # a figure fixed by hand
            "UPDATE runs SET sweep = 'moved' WHERE id = 1",  # a run moved to another sweep
            "UPDATE runs SET notebook = NULL WHERE id = 2",
            "UPDATE runs SET energy_j = 1e300 WHERE id = 3",  # absurd: left out, counted excluded
            "UPDATE runs SET status = 'ok' WHERE id = 3",
            "UPDATE runs SET energy_j = 2.0 WHERE id = 3",  # back within bounds: counted again
            "UPDATE runs SET project = 'q' WHERE id = 2",
            "UPDATE runs SET params = '{\"lr\": 3}' WHERE id = 3",
            "UPDATE runs SET params = 'not json' WHERE id = 3",
            "UPDATE runs SET cpu_method = 'rapl' WHERE id = 3",
            "UPDATE runs SET cpu_method = 'something-new' WHERE id = 3",
            "DELETE FROM runs WHERE id = 1",
        ]
        for edit in edits:
            with registry_engine.begin() as conn:
                conn.execute(text(edit))
            check(reg, "p")
            check(reg, "q")


def test_random_writes_keep_exact_totals(registry_url, registry_engine):
    """Two hundred writes of every kind in a seeded random order: every sum stays the rows' sum,
    to the microjoule, and deleting every run leaves zeros, not rounding dust."""
    rng = random.Random(12)
    with Registry.open(registry_url) as reg:
        open_runs: list[str] = []
        for step in range(200):
            choice = rng.random()
            if choice < 0.35 or not open_runs:
                open_runs.append(_start(reg, 1.7e9 + step, code_fingerprint=rng.choice("abc"),
                                        sweep=rng.choice([None, None, "s1"]), notebook=rng.choice([None, "n1", "n2"]),
                                        pue=rng.choice([None, 1.2]), redundant_of=rng.choice([None, 1]),
                                        params=rng.choice([{}, {"lr": rng.choice([0.1, 0.2])}, {"lr": 0.1, "bs": 8}])))
            elif choice < 0.55:
                energy = rng.uniform(0, 1e4) * 10 ** rng.randint(-6, 3)
                reg.checkpoint_run(rng.choice(open_runs), {"energy_j": energy, "emissions_g": energy / 300})
            elif choice < 0.85:
                uid = open_runs.pop(rng.randrange(len(open_runs)))
                status = rng.choice(["ok", "ok", "failed", "interrupted"])
                energy = rng.uniform(0, 1e4) * 10 ** rng.randint(-6, 3)
                reg.finish_run(uid, {**_ok(energy), "status": status, "duration_s": rng.uniform(0, 100)})
            else:
                with registry_engine.begin() as conn:
                    conn.execute(text("DELETE FROM runs WHERE id = (SELECT min(id) FROM runs)"))
                open_runs = [u for u in open_runs if reg.get_run(u) is not None]
        check(reg, "p")
        with registry_engine.begin() as conn:
            conn.execute(text("DELETE FROM runs"))
            left = conn.execute(text("SELECT sum(energy_uj), sum(emissions_ng), sum(runs) FROM run_totals")).one()
        assert tuple(int(v) for v in left) == (0, 0, 0)
        assert reg.totals("p").runs == 0 and reg.sweeps("p") == []


def test_sums_are_exact_where_floats_would_drift(tmp_path):
    """Adding 0.1 J ten thousand times in floats gives 999.9999999999062; the totals give 1000."""
    with Registry.open(tmp_path / "r.sqlite") as reg:
        for i in range(10_000):
            reg.record_run({"uid": new_uid(), "project": "p", "started_at": 1.7e9 + i}, {"status": "ok", "energy_j": 0.1})
        assert reg.totals("p").energy_j == 1000.0


def test_huge_figures_stay_counted(tmp_path):
    """A run at the plausible bound (1e15 J, beyond a 64-bit count of microjoules) still counts."""
    with Registry.open(tmp_path / "r.sqlite") as reg:
        reg.record_run({"uid": new_uid(), "project": "p", "started_at": 1.7e9}, {"status": "ok", "energy_j": 1e15})
        reg.record_run({"uid": new_uid(), "project": "p", "started_at": 1.7e9}, {"status": "ok", "energy_j": 1.0})
        assert reg.totals("p").energy_j == pytest.approx(1e15 + 1.0)
        check(reg, "p")


def test_odd_but_recordable_params_never_cost_a_run(registry_url):
    """A NUL in a param (kept: JSON writes it as \\u0000) is a value PostgreSQL's jsonb refuses: the
    run is recorded all the same, its parameter values only left out of the sweep's listing."""
    with Registry.open(registry_url) as reg:
        for i, sep in enumerate(("a\x00b", "c")):
            reg.record_run({"uid": new_uid(), "project": "p", "sweep": "s", "started_at": 1.7e9 + i,
                            "params": {"sep": sep, "n": i}}, _ok(1.0))
        assert reg.totals("p").runs == 2
        (sweep,) = reg.sweeps("p")
        # PostgreSQL: the run with the NUL gives no values (n then set by one run of two: varying)
        assert sweep.runs == 2 and sweep.varying_params["n"] in ((0, 1), (1,))


def test_values_equal_to_python_do_not_vary_and_lists_keep_their_type(registry_url):
    with Registry.open(registry_url) as reg:
        for i, (y, x) in enumerate(((1, [1, 2]), (1.0, {"k": 1}), (1, [1, 2]))):
            reg.record_run({"uid": new_uid(), "project": "p", "sweep": "s", "started_at": 1.7e9 + i,
                            "params": {"y": y, "x": x}}, _ok(1.0))
        (sweep,) = reg.sweeps("p")
        assert sweep.varying_params == {"x": ([1, 2], {"k": 1})}  # y is 1 throughout, as Python compares


def test_sums_past_64_bits_and_absurd_hand_edits_are_read(tmp_path):
    """SQLite's SUM fails past 64-bit integers where the triggers' additions go on in floating
    point: totals of three 5e12 J runs (each within the bounds) are read all the same, by every
    path; and a range factor edited into 1e308 by hand neither poisons the sums nor blocks a fix."""
    with Registry.open(tmp_path / "r.sqlite") as reg:
        for i, notebook in enumerate(("a", "b", "c")):
            reg.record_run({"uid": new_uid(), "project": "p", "notebook": notebook, "started_at": 1.7e9 + i},
                           {"status": "ok", "energy_j": 5e12, "emissions_g": 5e9})
        assert reg.totals("p").energy_j == pytest.approx(1.5e13)
        assert reg.aggregate("p", since=1.7e9).energy_j == pytest.approx(1.5e13)
        assert reg.totals("p").emissions_g == pytest.approx(1.5e10)
        with reg.write("editing by hand") as conn:
            conn.execute(text("UPDATE runs SET energy_low_factor = 1e308 WHERE id = 1"))
        assert reg.totals("p").runs == 3
        with reg.write("fixing by hand") as conn:
            conn.execute(text("UPDATE runs SET energy_low_factor = 0.9 WHERE id = 1"))
            conn.execute(text("DELETE FROM runs WHERE id = 2"))
        assert reg.totals("p").energy_j == pytest.approx(1e13)


def test_replace_into_counts_the_replaced_row_once(tmp_path):
    """REPLACE deletes the row it replaces: with recursive triggers on (every registry connection),
    that delete leaves the totals too."""
    with Registry.open(tmp_path / "r.sqlite") as reg:
        uid = new_uid()
        reg.record_run({"uid": uid, "project": "p", "started_at": 1.7e9}, _ok(10.0))
        with reg.write("replacing by hand") as conn:
            conn.execute(text(
                "INSERT OR REPLACE INTO runs (id, uid, project, status, started_at, energy_j) "
                f"VALUES (1, '{uid}', 'p', 'ok', 1.7e9, 12.0)"
            ))
        assert (reg.totals("p").runs, reg.totals("p").energy_j) == (1, 12.0)
        check(reg, "p")

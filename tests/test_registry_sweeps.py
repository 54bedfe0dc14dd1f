"""Sweeps, selected runs, development overhead and the redundancy lookup, on numbers checked by hand."""

from __future__ import annotations

import time

import pytest

from notebook_carbon.errors import RegistryError
from notebook_carbon.registry import Registry, new_uid


def _put(reg, rows):
    """Record ``rows`` (each: a run's fields, status and energy) and return their ids in order."""
    ids = []
    for r in rows:
        uid = new_uid()
        start = {"uid": uid, "project": "proj", "sweep": r.get("sweep"), "code_fingerprint": r.get("code", "c1"),
                 "cell_source": f"\n  train(lr)  # cell {r.get('code', 'c1')}\n", "params": r.get("params") or {},
                 "started_at": 1.7e9 + r["t"], "redundant_of": r.get("redundant_of"), "is_final": r.get("final", False)}
        energy = r.get("energy", 100.0)
        reg.record_run(start, {"status": r.get("status", "ok"), "energy_j": energy, "emissions_g": energy / 100,
                               "duration_s": 1.0})
        ids.append(reg.get_run(uid)["id"])
    return ids


def test_runs_sharing_code_form_a_sweep_with_overhead_by_hand(registry_url):
    with Registry.open(registry_url) as reg:
        ids = _put(reg, [
            {"t": 1, "params": {"lr": 0.1}, "energy": 100.0},
            {"t": 2, "params": {"lr": 0.5}, "energy": 200.0, "status": "failed"},
            {"t": 3, "params": {"lr": 0.1}, "energy": 100.0, "redundant_of": 1},
            {"t": 4, "params": {"lr": 1.0}, "energy": 300.0},
            {"t": 5, "code": "other", "energy": 50.0},
        ])
        big, small = reg.sweeps("proj")
    assert big.key == "code:c1" and big.label == "code c1" and not big.explicit  # no name, notebook or cell number
    assert big.runs == 4
    assert big.energy_j == 700.0 and big.emissions_g == pytest.approx(7.0)
    assert big.failed_energy_j == 200.0 and big.failed_runs == 1
    assert big.redundant_energy_j == 100.0 and big.redundant_runs == 1
    assert big.varying_params == {"lr": (0.1, 0.5, 1.0)}
    assert big.selected_run_id == ids[3] and not big.selected_is_marked  # the latest ok run
    assert big.overhead_ratio == pytest.approx(700.0 / 300.0)
    assert dict(big.statuses) == {"ok": 3, "failed": 1}
    assert small.runs == 1 and small.overhead_ratio == 1.0


def test_explicit_sweep_name_overrides_code_and_a_marked_run_is_selected(registry_url):
    with Registry.open(registry_url) as reg:
        ids = _put(reg, [
            {"t": 1, "sweep": "lr", "code": "a", "energy": 10.0, "params": {"lr": 1}},
            {"t": 2, "sweep": "lr", "code": "b", "energy": 30.0, "params": {"lr": 2}, "final": True},
            {"t": 3, "sweep": "lr", "code": "a", "energy": 20.0, "params": {"lr": 3}},
            {"t": 4, "code": "a", "energy": 5.0},  # same code but no sweep name: the automatic sweep
        ])
        lr, auto = reg.sweeps("proj")
    assert lr.key == "lr" and lr.label == "lr" and lr.explicit
    assert lr.selected_run_id == ids[1] and lr.selected_is_marked
    assert lr.overhead_ratio == pytest.approx(60.0 / 30.0)
    assert auto.key == "code:a" and auto.runs == 1


def test_no_ok_run_means_no_overhead_and_unsweepable_runs_are_left_out(registry_url):
    with Registry.open(registry_url) as reg:
        _put(reg, [{"t": 1, "status": "failed"}, {"t": 2, "status": "crashed"}, {"t": 3, "code": None}])
        (only,) = reg.sweeps("proj")
    assert only.selected_run_id is None and only.overhead_ratio is None
    assert only.failed_energy_j == 200.0


def test_a_parameter_added_part_way_is_varying(registry_url):
    with Registry.open(registry_url) as reg:
        _put(reg, [{"t": 1, "params": {"lr": 1}}, {"t": 2, "params": {"lr": 1, "bs": 32}}])
        (sweep,) = reg.sweeps("proj")
        assert sweep.varying_params == {"bs": (32,)}
        assert reg.sweeps("proj", params=False)[0].varying_params == {}


def test_the_varying_parameters_of_the_first_sweeps_listed_only(registry_url):
    """``params=n``: the first n sweeps listed (the most energy) with their varying parameters, the
    rest listed without them, in one read."""
    with Registry.open(registry_url) as reg:
        _put(reg, [{"t": 1, "code": "big", "params": {"lr": 1}, "energy": 300.0},
                   {"t": 2, "code": "big", "params": {"lr": 2}, "energy": 300.0},
                   {"t": 3, "code": "small", "params": {"bs": 8}, "energy": 1.0},
                   {"t": 4, "code": "small", "params": {"bs": 16}, "energy": 1.0}])
        first, second = reg.sweeps("proj", params=1)
        assert (first.varying_params, second.varying_params) == ({"lr": (1, 2)}, {})
        assert [s.varying_params for s in reg.sweeps("proj", params=2)] == [{"lr": (1, 2)}, {"bs": (8, 16)}]
        assert [s.varying_params for s in reg.sweeps("proj", params=0)] == [{}, {}]


def _record(reg, *, code="c", inputs="i", params="p", status="ok", energy=1.0, sweep=None, project="proj", t=0.0):
    uid = new_uid()
    reg.record_run(
        {"uid": uid, "project": project, "sweep": sweep, "code_fingerprint": code, "inputs_fingerprint": inputs,
         "params_fingerprint": params, "started_at": 1.7e9 + t},
        {"status": status, "energy_j": energy, "emissions_g": energy / 10, "ended_at": 1.7e9 + t + 1},
    )
    return reg.get_run(uid)["id"]


def test_find_redundant_names_the_first_identical_ok_run(registry_url):
    with Registry.open(registry_url) as reg:
        _record(reg, status="failed", t=1)
        first = _record(reg, t=2)
        _record(reg, t=3)
        _record(reg, inputs="other", t=4)
        _record(reg, project="elsewhere", t=5)
        hit = reg.find_redundant("proj", code_fingerprint="c", inputs_fingerprint="i", params_fingerprint="p")
        assert hit["id"] == first and hit["repeats"] == 2 and hit["energy_j"] == 1.0
        assert reg.find_redundant("proj", code_fingerprint="c", inputs_fingerprint="new", params_fingerprint="p") is None
        # unknown inputs are never called redundant
        assert reg.find_redundant("proj", code_fingerprint="c", inputs_fingerprint=None, params_fingerprint="p") is None


def test_set_final_moves_the_mark_within_the_sweep_only(registry_url):
    with Registry.open(registry_url) as reg:
        a = _record(reg, code="x", energy=1.0, t=1)
        b = _record(reg, code="x", energy=2.0, t=2)
        other = _record(reg, code="y", energy=3.0, t=3)
        failed = _record(reg, code="x", status="failed", t=4)
        reg.set_final(other)
        reg.set_final(a)
        sweeps = {s.key: s for s in reg.sweeps("proj")}
        assert sweeps["code:x"].selected_run_id == a and sweeps["code:x"].selected_is_marked
        reg.set_final(b)
        sweeps = {s.key: s for s in reg.sweeps("proj")}
        assert sweeps["code:x"].selected_run_id == b
        assert sweeps["code:y"].selected_run_id == other and sweeps["code:y"].selected_is_marked
        with pytest.raises(RegistryError, match="only an ok run"):
            reg.set_final(failed)
        with pytest.raises(RegistryError, match="no run 999"):
            reg.set_final(999)


def test_the_fast_sqlite_lookup_agrees_with_the_registry_query(tmp_path):
    from notebook_carbon.registry.lookup import SqliteLookup, sqlite_file

    location = str(tmp_path / "r.sqlite")
    lookup = SqliteLookup(sqlite_file(location))
    keys = {"project": "proj", "code_fingerprint": "c", "inputs_fingerprint": "i", "params_fingerprint": "p"}
    assert lookup.find_redundant(**keys) is None  # no file yet: nothing to repeat
    with Registry.open(location) as reg:
        _record(reg, status="failed", t=1)
        assert lookup.find_redundant(**keys) is None and reg.find_redundant(**keys) is None
        _record(reg, t=2)
        _record(reg, t=3)
        _record(reg, params="q", t=4)
        ours, theirs = lookup.find_redundant(**keys), reg.find_redundant(**keys)
    lookup.close()
    assert ours == theirs and ours["repeats"] == 2
    assert sqlite_file("sqlite:///" + location) == sqlite_file(location)
    assert sqlite_file("postgresql://host/db") is None




def test_params_edited_by_hand_into_nonsense_vary_nothing_and_break_nothing(registry_url, registry_engine):
    from sqlalchemy import text

    with Registry.open(registry_url) as reg:
        _put(reg, [{"t": 1, "params": {"lr": 1}}, {"t": 2, "params": {"lr": 2}}, {"t": 3, "params": {"lr": 3}}])
        with registry_engine.begin() as conn:
            conn.execute(text("UPDATE runs SET params = '{not json' WHERE id = 2"))
            conn.execute(text("UPDATE runs SET params = '[1, 2]' WHERE id = 3"))
        (sweep,) = reg.sweeps("proj")
        assert sweep.runs == 3 and sweep.varying_params == {"lr": (1,)}  # missing from two runs: varies


def test_a_sweep_named_by_hand_shows_its_name_and_an_absurd_result_is_no_result(registry_url, registry_engine):
    from sqlalchemy import text

    with Registry.open(registry_url) as reg:
        ids = _put(reg, [{"t": 1, "energy": 10.0}, {"t": 2, "energy": 20.0}])
        with registry_engine.begin() as conn:
            conn.execute(text(f"UPDATE runs SET sweep = 'manual' WHERE id = {ids[0]}"))
        labels = {s.key: s.label for s in reg.sweeps("proj")}
        assert labels == {"manual": "manual", "code:c1": "code c1"}
        with registry_engine.begin() as conn:  # the selected run of code:c1 edited into nonsense
            conn.execute(text(f"UPDATE runs SET energy_j = 1e300 WHERE id = {ids[1]}"))
        assert reg.sweeps("proj")[0].key == "manual"
        (auto,) = [s for s in reg.sweeps("proj") if s.key == "code:c1"] or [None]
        assert auto is None  # its only run is left out: no sweep to show
        total = reg.totals("proj")
        # and manual's single unmarked run is development, no result either
        assert total.excluded_runs == 1 and total.selected_energy_j == 0.0 and total.last_at == 1.7e9 + 1

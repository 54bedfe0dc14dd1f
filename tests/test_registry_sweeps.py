"""Sweeps, selected runs, development overhead and the redundancy lookup, on numbers checked by hand."""

from __future__ import annotations

import pytest

from notebook_carbon.errors import RegistryError
from notebook_carbon.registry import Registry, new_uid
from notebook_carbon.registry.sweeps import find_redundant, group_sweeps, list_sweeps, set_final


def row(id, *, sweep=None, code="c1", status="ok", energy=100.0, params=None, redundant_of=None, final=False, t=None):
    return {
        "id": id,
        "sweep": sweep,
        "code_fingerprint": code,
        "cell_source": f"\n  train(lr)  # cell {code}\n",
        "name": None,
        "params": params or {},
        "status": status,
        "started_at": float(t if t is not None else id),
        "energy_j": energy,
        "emissions_g": energy / 100,
        "redundant_of": redundant_of,
        "is_final": final,
    }


def test_runs_sharing_code_form_a_sweep_with_overhead_by_hand():
    rows = [
        row(1, params={"lr": 0.1}, energy=100.0),
        row(2, params={"lr": 0.5}, energy=200.0, status="failed"),
        row(3, params={"lr": 0.1}, energy=100.0, redundant_of=1),
        row(4, params={"lr": 1.0}, energy=300.0),
        row(5, code="other", energy=50.0),
    ]
    big, small = group_sweeps(rows)
    assert big.key == "code:c1" and big.label == "train(lr)  # cell c1" and not big.explicit
    assert big.run_ids == (1, 2, 3, 4) and big.runs == 4
    assert big.energy_j == 700.0 and big.emissions_g == pytest.approx(7.0)
    assert big.failed_energy_j == 200.0 and big.failed_emissions_g == pytest.approx(2.0)
    assert big.redundant_energy_j == 100.0 and big.redundant_runs == 1
    assert big.varying_params == {"lr": (0.1, 0.5, 1.0)}
    assert big.selected_run_id == 4 and not big.selected_is_marked  # the latest ok run
    assert big.overhead_ratio == pytest.approx(700.0 / 300.0)
    assert dict(big.statuses) == {"ok": 3, "failed": 1}
    assert small.run_ids == (5,) and small.overhead_ratio == 1.0


def test_explicit_sweep_name_overrides_code_and_a_marked_run_is_selected():
    rows = [
        row(1, sweep="lr", code="a", energy=10.0, params={"lr": 1}),
        row(2, sweep="lr", code="b", energy=30.0, params={"lr": 2}, final=True),
        row(3, sweep="lr", code="a", energy=20.0, params={"lr": 3}),
        row(4, code="a", energy=5.0),  # same code but no sweep name: the automatic sweep
    ]
    lr, auto = group_sweeps(rows)
    assert lr.key == "lr" and lr.label == "lr" and lr.explicit
    assert lr.selected_run_id == 2 and lr.selected_is_marked
    assert lr.overhead_ratio == pytest.approx(60.0 / 30.0)
    assert auto.key == "code:a" and auto.run_ids == (4,)


def test_no_ok_run_means_no_overhead_and_unsweepable_runs_are_left_out():
    (only,) = group_sweeps([row(1, status="failed"), row(2, status="crashed"), row(3, code=None)])
    assert only.selected_run_id is None and only.overhead_ratio is None
    assert only.failed_energy_j == 200.0


def test_a_parameter_added_part_way_is_varying():
    (sweep,) = group_sweeps([row(1, params={"lr": 1}), row(2, params={"lr": 1, "bs": 32})])
    assert sweep.varying_params == {"bs": (32,)}


def _record(reg, *, code="c", inputs="i", params="p", status="ok", energy=1.0, sweep=None, project="proj", t=0.0):
    uid = new_uid()
    reg.record_run(
        {"uid": uid, "project": project, "sweep": sweep, "code_fingerprint": code, "inputs_fingerprint": inputs,
         "params_fingerprint": params, "started_at": t},
        {"status": status, "energy_j": energy, "emissions_g": energy / 10, "ended_at": t + 1},
    )
    return reg.get_run(uid)["id"]


def test_find_redundant_names_the_first_identical_ok_run(registry_url):
    with Registry.open(registry_url) as reg:
        _record(reg, status="failed", t=1)
        first = _record(reg, t=2)
        _record(reg, t=3)
        _record(reg, inputs="other", t=4)
        _record(reg, project="elsewhere", t=5)
        hit = find_redundant(reg, project="proj", code_fingerprint="c", inputs_fingerprint="i", params_fingerprint="p")
        assert hit["id"] == first and hit["repeats"] == 2 and hit["energy_j"] == 1.0
        assert find_redundant(reg, project="proj", code_fingerprint="c", inputs_fingerprint="new", params_fingerprint="p") is None
        # unknown inputs are never called redundant
        assert find_redundant(reg, project="proj", code_fingerprint="c", inputs_fingerprint=None, params_fingerprint="p") is None


def test_set_final_moves_the_mark_within_the_sweep_only(registry_url):
    with Registry.open(registry_url) as reg:
        a = _record(reg, code="x", energy=1.0, t=1)
        b = _record(reg, code="x", energy=2.0, t=2)
        other = _record(reg, code="y", energy=3.0, t=3)
        failed = _record(reg, code="x", status="failed", t=4)
        set_final(reg, other)
        set_final(reg, a)
        sweeps = {s.key: s for s in list_sweeps(reg, "proj")}
        assert sweeps["code:x"].selected_run_id == a and sweeps["code:x"].selected_is_marked
        set_final(reg, b)
        sweeps = {s.key: s for s in list_sweeps(reg, "proj")}
        assert sweeps["code:x"].selected_run_id == b
        assert sweeps["code:y"].selected_run_id == other and sweeps["code:y"].selected_is_marked
        with pytest.raises(RegistryError, match="only an ok run"):
            set_final(reg, failed)
        with pytest.raises(RegistryError, match="no run 999"):
            set_final(reg, 999)


def test_the_fast_sqlite_lookup_agrees_with_the_registry_query(tmp_path):
    from notebook_carbon.registry.lookup import SqliteLookup, sqlite_file

    location = str(tmp_path / "r.sqlite")
    lookup = SqliteLookup(sqlite_file(location))
    keys = {"project": "proj", "code_fingerprint": "c", "inputs_fingerprint": "i", "params_fingerprint": "p"}
    assert lookup.find_redundant(**keys) is None  # no file yet: nothing to repeat
    with Registry.open(location) as reg:
        _record(reg, status="failed", t=1)
        assert lookup.find_redundant(**keys) is None and find_redundant(reg, **keys) is None
        _record(reg, t=2)
        _record(reg, t=3)
        _record(reg, params="q", t=4)
        ours, theirs = lookup.find_redundant(**keys), find_redundant(reg, **keys)
    lookup.close()
    assert ours == theirs and ours["repeats"] == 2
    assert sqlite_file("sqlite:///" + location) == sqlite_file(location)
    assert sqlite_file("postgresql://host/db") is None


def test_project_totals_by_hand(registry_url):
    from notebook_carbon.registry.sweeps import project_totals

    with Registry.open(registry_url) as reg:
        _record(reg, energy=10.0, t=1)
        _record(reg, energy=20.0, status="failed", t=2)
        _record(reg, energy=30.0, status="interrupted", t=3)
        uid = new_uid()
        reg.record_run({"uid": uid, "project": "proj", "redundant_of": 1, "started_at": 4.0},
                       {"status": "ok", "energy_j": 40.0, "emissions_g": 4.0, "water_l": 0.5})
        _record(reg, energy=1000.0, project="elsewhere")
        totals = project_totals(reg, "proj")
    assert totals.runs == 4 and dict(totals.statuses) == {"ok": 2, "failed": 1, "interrupted": 1}
    assert totals.energy_j == 100.0 and totals.emissions_g == pytest.approx(10.0)
    assert totals.failed_energy_j == 50.0
    assert totals.redundant_energy_j == 40.0 and totals.redundant_runs == 1 and totals.water_l == 0.5


def test_list_sweeps_reads_what_group_sweeps_computes_from_whole_rows(registry_url, monkeypatch):
    """``list_sweeps`` reads narrow rows for speed; its result must be exactly the pure grouping of
    the project's runs, labels, ties in start time and awkward params included."""
    from notebook_carbon.registry import sweeps

    monkeypatch.setattr(sweeps, "_IN_LIMIT", 2)  # several batches of label look-ups
    cases = [
        dict(code="a", params={"lr": 1, "tags": ["x"]}, t=1.0),
        dict(code="a", params={"lr": 1.0, "tags": ["x"]}, t=1.0),  # same start: ordered by id; 1 == 1.0
        dict(code="a", params={"lr": 0.5, "tags": ["y"], "opt": {"name": "adam"}}, status="failed", t=2.0),
        dict(code="a", params=None, t=3.0, redundant_of=1),
        dict(code="b", sweep="", params={"lr": 2}, t=4.0, final=True),  # an empty name is no name
        dict(code="b", sweep="", params={"lr": 2}, t=5.0, status="crashed", energy=None),
        dict(code="c", sweep="search", params={"bs": 32}, t=6.0),
        dict(code="d", sweep="search", params={"bs": 64, "seed": 1}, t=0.5),
        dict(code=None, params={"lr": 9}, t=7.0),  # a bare track() block: in no sweep
        dict(code="e", params={}, t=8.0, source="\n\n   # only a comment line\n"),
        dict(code="f", params={"lr": 3}, t=9.0, source=None, name="named run"),
    ]
    with Registry.open(registry_url) as reg:
        for i, case in enumerate(cases):
            energy = case.get("energy", 10.0 * (i + 1))
            reg.record_run(
                {"uid": new_uid(), "project": "proj", "sweep": case.get("sweep"), "params": case["params"],
                 "code_fingerprint": case["code"], "started_at": case["t"], "name": case.get("name"),
                 "cell_source": case.get("source", f"train({case['code']})"),
                 "redundant_of": case.get("redundant_of"), "is_final": case.get("final", False)},
                {"status": case.get("status", "ok"), "energy_j": energy,
                 "emissions_g": None if energy is None else energy / 3, "ended_at": case["t"] + 1},
            )
        _record(reg, project="elsewhere", code="a")
        listed = list_sweeps(reg, "proj")
        assert listed == group_sweeps(reg.runs(project="proj"))
    by_key = {s.key: s for s in listed}
    assert by_key["code:a"].varying_params == {
        "lr": (1, 0.5), "opt": ({"name": "adam"},), "tags": (["x"], ["y"])
    }
    assert by_key["code:a"].run_ids == (1, 2, 3, 4) and by_key["code:b"].selected_is_marked
    assert by_key["code:e"].label == "# only a comment line" and by_key["code:f"].label == "named run"
    assert by_key["search"].run_ids == (8, 7) and "code:None" not in by_key


def test_params_are_decoded_in_one_go_or_else_one_by_one():
    from notebook_carbon.registry.sweeps import _decode_params

    assert _decode_params(['{"a": 1}', None, '{"b": [1, 2]}']) == [{"a": 1}, None, {"b": [1, 2]}]
    with pytest.raises(ValueError):  # two documents in one value: refused, as decode_row refuses it
        _decode_params(['{"a": 1}, {"b": 2}'])

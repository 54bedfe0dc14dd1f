"""Sweeps, selected runs, development overhead and the redundancy lookup, on numbers checked by hand."""

from __future__ import annotations

import time

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


def test_the_sweep_cache_follows_every_kind_of_write(registry_url, monkeypatch, tmp_path):
    """After each way a run can change (start, checkpoint, finish, record, a crash found, a final
    mark, an import, a run moved to another sweep or deleted by hand), ``list_sweeps`` equals the
    pure grouping of the project's runs, recomputing only the sweeps that changed."""
    from sqlalchemy import text

    from notebook_carbon.importers.codecarbon import import_codecarbon_csv
    from notebook_carbon.registry import sweeps
    from notebook_carbon.registry.liveness import reap_crashed

    recomputed: list[set[str]] = []
    compute = sweeps._compute
    monkeypatch.setattr(sweeps, "_compute", lambda conn, p, keys: recomputed.append(set(keys)) or compute(conn, p, keys))

    def check(reg, *expected):
        recomputed.clear()
        assert list_sweeps(reg, "proj") == group_sweeps(reg.runs(project="proj"))
        assert recomputed == ([set(expected)] if expected else [])

    with Registry.open(registry_url) as reg:
        a1 = _record(reg, code="a", t=1, energy=10.0)
        _record(reg, code="b", t=2, energy=20.0)
        _record(reg, code="c", sweep="named", t=3, energy=30.0)
        _record(reg, code="a", project="elsewhere", t=4)
        check(reg, "code:a", "code:b", "named")
        check(reg)  # nothing changed: everything from the cache
        uid = new_uid()
        reg.start_run({"uid": uid, "project": "proj", "code_fingerprint": "a", "started_at": 5.0, "pid": 2**22 + 7,
                       "host": "elsewhere-host", "updated_at": 5.0, "checkpoint_interval_s": 1.0})
        check(reg, "code:a")
        reg.checkpoint_run(uid, {"energy_j": 4.0, "emissions_g": 0.4})
        check(reg, "code:a")
        assert reap_crashed(reg, now=time.time() + 3600)  # an hour later its heartbeat is long stale
        assert reg.get_run(uid)["status"] == "crashed"
        check(reg, "code:a")
        reg.finish_run(uid, {"status": "ok", "energy_j": 5.0, "emissions_g": 0.5})  # came back after all
        check(reg, "code:a")
        set_final(reg, a1)
        check(reg, "code:a")
        _record(reg, code="b", project="elsewhere", t=6)
        check(reg)  # another project's run does not touch this one's sweeps
        csv = tmp_path / "emissions.csv"
        csv.write_text(
            "timestamp,project_name,run_id,duration,emissions,energy_consumed,cpu_energy,gpu_energy,ram_energy\n"
            "2026-11-20T10:00:00,proj,5b0fa12c-3ea2-4a3d-8c1b-8e2b3f7c1a11,60,0.001,0.002,0.001,0,0.001\n"
        )
        assert import_codecarbon_csv(reg, csv, project="proj").imported == 1
        check(reg)  # imported runs have no code, hence no sweep
        with reg._transaction("editing by hand", write=True) as conn:
            conn.execute(text("UPDATE runs SET sweep = 'named' WHERE code_fingerprint = 'b' AND project = 'proj'"))
        check(reg, "code:b", "named")
        assert "code:b" not in {s.key for s in list_sweeps(reg, "proj")}
        with reg._transaction("deleting by hand", write=True) as conn:
            conn.execute(text("DELETE FROM runs WHERE sweep = 'named'"))
        check(reg, "named")
        assert [s.key for s in list_sweeps(reg, "proj")] == ["code:a"]


def test_the_sweep_cache_is_only_a_cache(tmp_path):
    """A damaged or older-format cache entry is recomputed; a read-only registry lists its sweeps
    right without writing the cache."""
    from notebook_carbon.registry import sweeps

    path = str(tmp_path / "registry.sqlite")
    with Registry.open(path) as reg:
        _record(reg, code="a", t=1)
        _record(reg, code="b", t=2)
        expected = group_sweeps(reg.runs(project="proj"))
    with Registry.open(path, read_only=True) as reg:
        assert list_sweeps(reg, "proj") == expected
        assert list_sweeps(reg, "proj") == expected
    with Registry.open(path) as reg:
        with reg._transaction("reading the cache") as conn:
            assert conn.exec_driver_sql("SELECT count(*) FROM sweep_cache").scalar() == 0
        assert list_sweeps(reg, "proj") == expected
        with reg._transaction("damaging the cache", write=True) as conn:
            conn.exec_driver_sql("UPDATE sweep_cache SET summary = '{\"format\": 1, \"summary\": {\"key\": 1}}' "
                                 "WHERE sweep_key = 'code:a'")
            conn.exec_driver_sql("UPDATE sweep_cache SET summary = replace(summary, '\"format\": 1', '\"format\": 0') "
                                 "WHERE sweep_key = 'code:b'")
        assert list_sweeps(reg, "proj") == expected
        with reg._transaction("reading the cache") as conn:
            texts = [t for (t,) in conn.exec_driver_sql("SELECT summary FROM sweep_cache")]
        assert all(sweeps._from_cache(t) in expected for t in texts) and len(texts) == 2


def test_a_read_only_registry_keeps_what_it_computed_in_the_callers_memo(tmp_path, monkeypatch):
    """A read-only registry cannot store its cache (the server's case): with a memo, a listing
    recomputes only the sweeps that changed since the last one, as with the registry's cache."""
    from notebook_carbon.registry import sweeps

    recomputed: list[set[str]] = []
    compute = sweeps._compute
    monkeypatch.setattr(sweeps, "_compute", lambda conn, p, keys: recomputed.append(set(keys)) or compute(conn, p, keys))
    path = str(tmp_path / "r.sqlite")
    with Registry.open(path) as writer:
        _record(writer, code="a", t=1)
        _record(writer, code="b", t=2)
        memo: dict = {}
        with Registry.open(path, read_only=True) as reader:
            first = list_sweeps(reader, "proj", memo=memo)
            assert recomputed == [{"code:a", "code:b"}] and set(memo) == {"code:a", "code:b"}
            recomputed.clear()
            assert list_sweeps(reader, "proj", memo=memo) == first and recomputed == []
            assert list_sweeps(reader, "proj") == first and recomputed == [{"code:a", "code:b"}]  # no memo
            recomputed.clear()
            _record(writer, code="b", t=3)
            assert list_sweeps(reader, "proj", memo=memo) == group_sweeps(writer.runs(project="proj"))
            assert recomputed == [{"code:b"}]

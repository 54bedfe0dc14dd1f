"""The server's summaries, sweeps and redundant totals right after every kind of write, on SQLite and
PostgreSQL: each equal to the same figures added up here from every run of the project, whoever
wrote (the package's writers, an import, a hand edit or a deletion in SQL); and a summary is a few
queries whatever the number of runs.
"""

from __future__ import annotations

import collections
import datetime
import math
import random
import time

import pytest
from sqlalchemy import event, text
from sqlalchemy.engine import Engine

from notebook_carbon.impact.embodied import embodied
from notebook_carbon.record import FAILED_STATUSES, check_figure, implausible
from notebook_carbon.registry import Registry, new_uid
from notebook_carbon.server.reader import RegistryReader
from notebook_carbon.settings import Settings

NOTEBOOKS = ("a.ipynb", "b.ipynb", None)
METHODS = ("rapl", "estimate-tdp", "nvml-counter", "nvml-power", "none", None)
ALL = object()
SETTINGS = (Settings(), Settings(wue_l_per_kwh=1.8, hardware="gpu-server", lifetime_years=5.0))


def _varied_run(rng: random.Random, i: int, earlier: list[int], project: str = "proj") -> tuple[dict, dict]:
    """A run with a bit of everything the figures weigh: sweeps named, automatic, empty-named or
    none; every status; missing energy, water or embodied figures; GPU counts; methods; ties in
    start time; marks and repeats."""
    energy = None if rng.random() < 0.05 else rng.uniform(1.0, 5e6)
    start = {
        "uid": new_uid(), "project": project, "notebook": rng.choice(NOTEBOOKS),
        "sweep": rng.choice((None, None, "lr", "bs", "")), "code_fingerprint": rng.choice((None, "a", "b", "c")),
        "started_at": 1.8e9 + (i // 2) * 60.0, "gpu_count": rng.choice((0, 1, 2, None)),
        "pue": rng.choice((1.0, 1.2, None)), "is_final": rng.random() < 0.05,
        "redundant_of": rng.choice(earlier) if earlier and rng.random() < 0.1 else None,
        "intensity_g_per_kwh": 56.0, "intensity_region": "FR", "intensity_source": "test grid",
    }  # fmt: skip
    final = {
        "status": rng.choice(("ok", "ok", "ok", "failed", "interrupted", "crashed")),
        "energy_j": energy, "emissions_g": None if energy is None else energy / 3.6e6 * 56.0,
        "water_l": None if rng.random() < 0.3 else rng.uniform(0, 2),
        "embodied_g": None if rng.random() < 0.4 else rng.uniform(0, 5),
        "duration_s": None if rng.random() < 0.05 else rng.uniform(1, 3600),
        "gpu_method": rng.choice(METHODS), "cpu_method": rng.choice(METHODS), "ram_method": "estimate-ram",
        "gpu_energy_j": None if energy is None else energy * 0.6, "cpu_energy_j": None if energy is None else energy * 0.3,
        "ram_energy_j": None if energy is None else energy * 0.1, "ended_at": 1.8e9 + i * 60.0 + 30.0,
    }  # fmt: skip
    return start, final


def _fill(reg: Registry, n: int, seed: int = 7) -> None:
    rng = random.Random(seed)
    ids: list[int] = []
    for i in range(n):
        ids.append(reg.record_run(*_varied_run(rng, i, ids)))
    reg.record_run(*_varied_run(rng, n, [], project="elsewhere"))


# -- the figures added up here, run by run ---------------------------------------------------------


def _selected(rows: list[dict]) -> dict[str, dict]:
    """Each sweep's selected run: the last marked final in start order, else the last ``ok``."""
    by_sweep = collections.defaultdict(list)
    for row in sorted(rows, key=lambda r: (r["started_at"], r["id"])):
        if row["sweep_key"]:
            by_sweep[row["sweep_key"]].append(row)
    chosen = {}
    for key, members in by_sweep.items():
        found = [r for r in members if r["is_final"]] or [r for r in members if r["status"] == "ok"]
        if found:
            chosen[key] = found[-1]
    return chosen


def _embodied(kept: list[dict], settings: Settings) -> float:
    """Embodied emissions: as recorded, else from the run time with the settings. (Their range is
    the statement's rule, ``statements.tally``: checked there, and here only to hold the value.)"""
    value = 0.0
    for row in kept:
        if row["embodied_g"] is not None:
            value += row["embodied_g"]
        elif row["duration_s"] is not None:
            value += embodied(row["duration_s"], hardware=settings.hardware, gpu_count=row["gpu_count"] or 0,
                              embodied_kg=settings.embodied_kg, lifetime_years=settings.lifetime_years,
                              reused=settings.reused_hardware).embodied_g  # fmt: skip
    return value


def expected(reg: Registry, settings: Settings, notebook=ALL, project: str = "proj") -> dict:
    """The summary of ``project`` (or one notebook), from every one of its runs."""
    rows = reg.runs(project=project)
    scope = [r for r in rows if notebook is ALL or r["notebook"] == notebook]
    kept = [r for r in scope if implausible(r) is None]
    kept_ids = {r["id"] for r in kept}

    def total(column, factor=lambda r: 1.0, where=lambda r: True):
        return sum(r[column] * factor(r) for r in kept if r[column] is not None and where(r))

    low, high = (lambda r: r["energy_low_factor"] or 1.0), (lambda r: r["energy_high_factor"] or 1.0)
    pue = lambda r: r["pue"] or 1.0
    # only results count (issue 15): a sweep with a run marked final, or several runs
    results = {key for key in {r["sweep_key"] for r in rows if r["sweep_key"]}
               if sum(r["sweep_key"] == key for r in rows) > 1 or any(r["is_final"] for r in rows if r["sweep_key"] == key)}
    chosen = [r for key, r in sorted(_selected(rows).items()) if r["id"] in kept_ids and key in results]
    labels = {s.key: s.label for s in reg.sweeps(project, params=False)}
    energy, selected_j = total("energy_j"), sum(r["energy_j"] or 0.0 for r in chosen)
    failed = lambda r: r["status"] in FAILED_STATUSES
    redundant = lambda r: r["redundant_of"] is not None
    emb = _embodied(kept, settings)
    watered = [r for r in kept if r["water_l"] is not None]
    if watered:
        water = {"value": total("water_l"), "runs": len(watered),
                 "basis": "recorded with each run: IT energy (kWh) x the WUE set when it ran"}  # fmt: skip
    elif settings.wue_l_per_kwh is not None:
        water = {"value": energy / 3.6e6 * settings.wue_l_per_kwh, "runs": len(kept),
                 "basis": f"IT energy (kWh) x WUE {settings.wue_l_per_kwh:g} L/kWh (the current setting)"}  # fmt: skip
    else:
        water = None
    emissions = (total("emissions_g"), total("emissions_g", low), total("emissions_g", high))
    starts = [r["started_at"] for r in kept]
    iso = lambda at: None if at is None else datetime.datetime.fromtimestamp(at, datetime.timezone.utc).isoformat()
    return {
        "runs": len(kept),
        "first_run_at": iso(min(starts, default=None)),
        "last_run_at": iso(max(starts, default=None)),
        "statuses": dict(sorted(collections.Counter(r["status"] for r in kept).items())),
        "totals": {
            "runs": len(kept),
            "energy_j": {"value": energy, "low": total("energy_j", low), "high": total("energy_j", high)},
            "facility_energy_j": {"value": total("energy_j", pue), "low": total("energy_j", lambda r: pue(r) * low(r)),
                                  "high": total("energy_j", lambda r: pue(r) * high(r))},
            "emissions_g": dict(zip(("value", "low", "high"), emissions)),
            "embodied_g": emb,
            "total_g": emissions[0] + emb,
            "water_l": water,
            "duration_s": total("duration_s"),
        },
        "development": {
            "selected_runs": len(chosen), "selected_energy_j": selected_j,
            "selected_emissions_g": sum(r["emissions_g"] or 0.0 for r in chosen),
            "all_energy_j": energy, "all_emissions_g": emissions[0],
            "ratio": energy / selected_j if selected_j else None,
            "sweeps": len({r["sweep_key"] for r in kept if r["sweep_key"]}),
            "results": [{"sweep": r["sweep_key"], "label": labels[r["sweep_key"]]} for r in chosen],
            "failed_runs": sum(map(failed, kept)), "failed_energy_j": total("energy_j", where=failed),
            "failed_share": total("energy_j", where=failed) / energy if energy else None,
            "redundant_runs": sum(map(redundant, kept)), "redundant_energy_j": total("energy_j", where=redundant),
            "redundant_share": total("energy_j", where=redundant) / energy if energy else None,
        },
        "excluded": [
            {"id": r["id"], "name": r["name"], "reason": implausible(r)}
            for r in sorted(scope, key=lambda r: r["id"])
            if r["id"] not in kept_ids
        ],
    }  # fmt: skip


def close(found, wanted, runs: int, where: str = "") -> None:
    """Equal, numbers within what the registry's exact sums in micro-units (µJ, µs, ng, nL) round;
    a range ``{value, low, high}`` found where a number is wanted: its value, within its bounds."""
    if isinstance(found, dict) and found.keys() - {"lower_bound"} == {"value", "low", "high"} and not isinstance(wanted, dict):
        assert found["low"] <= found["value"] * (1 + 1e-12) and found["value"] <= found["high"] * (1 + 1e-12), where
        found = found["value"]  # a lower bound's high is no upper end, but is never below its value
    if isinstance(wanted, dict):
        assert isinstance(found, dict) and found.keys() == wanted.keys(), f"{where}: {found!r} != {wanted!r}"
        for key in wanted:
            close(found[key], wanted[key], runs, f"{where}.{key}")
    elif isinstance(wanted, float) and isinstance(found, (int, float)) and not isinstance(found, bool):
        assert math.isclose(found, wanted, rel_tol=1e-9, abs_tol=1e-6 * (runs + 1)), f"{where}: {found!r} != {wanted!r}"
    else:
        assert found == wanted, f"{where}: {found!r} != {wanted!r}"


def check(reader: RegistryReader, reg: Registry) -> None:
    """The reader's summaries (the project, each notebook), redundant totals and sweeps equal what
    is added up here from every run, just now."""
    n = len(reg.runs(project="proj"))
    for notebook in (ALL, "a.ipynb", "b.ipynb"):
        got = reader.summary("proj") if notebook is ALL else reader.summary("proj", notebook)
        wanted = expected(reg, reader.settings, notebook)
        close({k: got[k] for k in wanted}, wanted, n, str(notebook))
    redundant = reader.redundant("proj", limit=5, offset=0)
    development = expected(reg, reader.settings)["development"]
    assert redundant["total"] == development["redundant_runs"]
    close(redundant["energy_j"], development["redundant_energy_j"], n)
    rows = reg.runs(project="proj")
    repeats = [r for r in rows if r["redundant_of"] is not None]
    assert [r["id"] for r in redundant["runs"]] == [r["id"] for r in repeats[:5]]
    by_id = {r["id"]: r for r in rows}
    for run in redundant["runs"]:
        earlier = by_id.get(run["redundant_of"])
        assert run["repeats"]["name"] == (earlier["name"] if earlier else None)
    sweeps = {s["key"]: s for s in reader.sweeps("proj")["sweeps"]}
    chosen = _selected(rows)
    kept = [r for r in rows if implausible(r) is None and r["sweep_key"]]
    assert set(sweeps) == {r["sweep_key"] for r in kept}
    for key, sweep in sweeps.items():
        members = [r for r in kept if r["sweep_key"] == key]
        assert sweep["runs"] == len(members) and sweep["selected_run_id"] == chosen[key]["id"]
        close(sweep["energy_j"], sum(r["energy_j"] or 0.0 for r in members), n)


def sql(reg: Registry, statement: str) -> None:
    """A hand edit: plain SQL behind the package's writers."""
    with reg.write("editing by hand") as conn:
        conn.execute(text(statement))


def test_the_summary_follows_every_kind_of_write(registry_url, tmp_path):
    from notebook_carbon.importers.codecarbon import import_codecarbon_csv

    with Registry.open(registry_url) as reg:
        _fill(reg, 60)
    reader = RegistryReader(registry_url, settings=Settings(wue_l_per_kwh=1.8))
    try:
        with Registry.open(registry_url) as reg:
            check(reader, reg)
            rng = random.Random(3)
            start, final = _varied_run(rng, 61, [])
            reg.record_run({**start, "sweep": "lr", "notebook": "a.ipynb"}, final)
            check(reader, reg)
            uid, now = new_uid(), time.time()
            reg.start_run({"uid": uid, "project": "proj", "sweep": "bs", "notebook": "b.ipynb", "started_at": now,
                           "pid": 2**22 + 7, "host": "elsewhere-host", "updated_at": now,
                           "checkpoint_interval_s": 1.0})  # fmt: skip
            check(reader, reg)  # a running run: counted, with no figures yet
            reg.checkpoint_run(uid, {"energy_j": 4.0, "emissions_g": 0.4})
            check(reader, reg)
            assert reg.reap_crashed(now=time.time() + 3600)
            check(reader, reg)
            reg.finish_run(uid, {"status": "ok", "energy_j": 5.0, "emissions_g": 0.5})  # it came back after all
            check(reader, reg)
            first_ok = min(r["id"] for r in reg.runs(project="proj") if r["status"] == "ok" and r["sweep"] == "lr")
            reg.set_final(first_ok)  # the selection moves to an old run
            check(reader, reg)
            reg.record_run({"uid": new_uid(), "project": "proj", "started_at": time.time() - 5},
                           {"status": "ok", "energy_j": 7.0, "emissions_g": 0.7})  # a bare track() block
            check(reader, reg)
            reg.record_run({"uid": new_uid(), "project": "elsewhere", "sweep": "lr"}, {"status": "ok", "energy_j": 1.0})
            check(reader, reg)  # another project's run
            csv = tmp_path / "emissions.csv"
            csv.write_text(
                "timestamp,project_name,run_id,duration,emissions,energy_consumed,cpu_energy,gpu_energy,ram_energy\n"
                "2026-11-20T10:00:00,proj,5b0fa12c-3ea2-4a3d-8c1b-8e2b3f7c1a11,60,0.001,0.002,0.001,0,0.001\n"
            )
            assert import_codecarbon_csv(reg, csv, project="proj").imported == 1
            check(reader, reg)
            sql(reg, "UPDATE runs SET sweep = 'bs' WHERE id = 5")  # moved to another sweep
            check(reader, reg)
            sql(reg, "UPDATE runs SET energy_j = 2 * energy_j + 1, status = 'failed' "
                     "WHERE id = (SELECT MIN(id) FROM runs WHERE sweep = 'lr' AND status = 'ok')")  # fmt: skip
            check(reader, reg)  # a figure and a status fixed by hand, updated_at left alone
            sql(reg, "UPDATE runs SET water_l = 100, embodied_g = NULL, duration_s = 7200, notebook = 'b.ipynb' "
                     "WHERE id = (SELECT MIN(id) FROM runs WHERE sweep IS NULL)")  # fmt: skip
            check(reader, reg)  # columns of a run in no sweep that no sweep's figure depends on
            marked = min(r["id"] for r in reg.runs(project="proj") if r["sweep_key"] and r["status"] == "failed")
            sql(reg, f"UPDATE runs SET is_final = (id = {marked}) "
                     f"WHERE sweep_key = (SELECT sweep_key FROM runs WHERE id = {marked})")  # fmt: skip
            check(reader, reg)  # a failed run marked final by hand: its sweep's result now
            assert marked in {s["selected_run_id"] for s in reader.sweeps("proj")["sweeps"]}
            absurd = min(r["id"] for r in reg.runs(project="proj") if r["sweep_key"] is None)
            sql(reg, f"UPDATE runs SET energy_j = 1e300 WHERE id = {absurd}")
            check(reader, reg)  # left out, and named
            assert reader.summary("proj")["excluded"] == [
                {"id": absurd, "name": None, "reason": check_figure("energy_j", 1e300)}
            ]
            sql(reg, "DELETE FROM runs WHERE id IN (2, 40)")
            check(reader, reg)
            selected = next(s["selected_run_id"] for s in reader.sweeps("proj")["sweeps"] if s["key"] == "lr")
            sql(reg, f"DELETE FROM runs WHERE id = {selected}")  # the result of sweep lr
            check(reader, reg)
            sql(reg, "DELETE FROM runs WHERE sweep IS NULL OR sweep = ''")  # every run not named into a sweep
            check(reader, reg)
            sql(reg, "DELETE FROM runs WHERE project = 'proj'")
            check(reader, reg)
            assert reader.summary("proj")["runs"] == 0 and reader.sweeps("proj")["sweeps"] == []
    finally:
        reader.close()


def test_many_sweeps_changed_at_once(tmp_path):
    path = str(tmp_path / "r.sqlite")
    with Registry.open(path) as reg:
        _fill(reg, 40)
        reader = RegistryReader(path, settings=Settings())
        try:
            check(reader, reg)
            with reg.write("one transaction changing every sweep") as conn:
                for sweep in ("lr", "bs", "new"):
                    conn.execute(text(f"UPDATE runs SET status = 'ok', is_final = FALSE WHERE sweep = '{sweep}'"))
                conn.execute(text("UPDATE runs SET sweep = 'new' WHERE code_fingerprint = 'c'"))
            check(reader, reg)
        finally:
            reader.close()


@pytest.mark.parametrize("settings", SETTINGS, ids=["defaults", "wue and gpu server"])
def test_the_notebooks_add_up_to_the_project(tmp_path, settings):
    """Each notebook's summary, and that of the runs of none (``''``), add up to the project's."""
    path = str(tmp_path / "r.sqlite")
    with Registry.open(path) as reg:
        _fill(reg, 160)
        reader = RegistryReader(path, settings=settings)
        try:
            whole = reader.summary("proj")
            parts = [reader.summary("proj", notebook or "") for notebook in NOTEBOOKS]
            assert whole["runs"] == 160 and whole["development"]["sweeps"] >= 4
            assert sum(p["runs"] for p in parts) == whole["runs"] and all(p["runs"] for p in parts)
            for path_ in (("energy_j", "value"), ("energy_j", "low"), ("embodied_g", "value"), ("total_g", "value")):
                close(sum(p["totals"][path_[0]][path_[1]] for p in parts), whole["totals"][path_[0]][path_[1]], 160)
            for figure in ("selected_runs", "failed_runs", "redundant_runs"):
                assert sum(p["development"][figure] for p in parts) == whole["development"][figure]
            close(sum(p["development"]["selected_energy_j"] for p in parts), whole["development"]["selected_energy_j"], 160)
            close(whole, {**whole, **expected(reg, settings)}, 160)
        finally:
            reader.close()


def test_an_empty_or_unknown_project_sums_to_nothing(tmp_path):
    path = str(tmp_path / "r.sqlite")
    with Registry.open(path) as reg:
        _fill(reg, 5)
    reader = RegistryReader(path, settings=Settings())
    try:
        got = reader.summary("nobody")
        assert got["runs"] == 0 and got["totals"]["energy_j"] == {"value": 0.0, "low": 0.0, "high": 0.0}
        assert got["first_run_at"] is None and got["development"]["ratio"] is None and got["excluded"] == []
        assert reader.redundant("nobody", limit=5, offset=0) == {"total": 0, "energy_j": 0.0, "emissions_g": 0.0,
                                                                  "runs": []}  # fmt: skip
        assert reader.sweeps("nobody") == {"project": "nobody", "sweeps": []}
        assert reader.summary("proj", "never.ipynb")["runs"] == 0
    finally:
        reader.close()


def test_a_run_that_ended_before_it_started_is_left_out_and_named(tmp_path):
    """A run whose end is before its start (a clock set back, a hand edit) has no figure that can be
    trusted: it is left out of the totals and named with the reason; the other's embodied
    emissions are computed from its run time."""
    path = str(tmp_path / "r.sqlite")
    with Registry.open(path) as reg:
        reg.record_run({"uid": new_uid(), "project": "proj", "started_at": 1.8e9},
                       {"status": "ok", "energy_j": 10.0, "ended_at": 1.8e9 - 100.0})  # fmt: skip
        reg.record_run({"uid": new_uid(), "project": "proj", "started_at": 1.8e9, "gpu_count": 1},
                       {"status": "ok", "energy_j": 10.0, "ended_at": 1.8e9 + 100.0})  # fmt: skip
    settings = Settings(hardware="gpu-server")
    reader = RegistryReader(path, settings=settings)
    try:
        got = reader.summary("proj")
    finally:
        reader.close()
    one = embodied(100.0, hardware=settings.hardware, gpu_count=1, lifetime_years=None)  # the factor's own lifespan, as the statement takes it
    assert got["totals"]["embodied_g"]["value"] == pytest.approx(one.embodied_g)
    assert got["totals"]["energy_j"]["value"] == pytest.approx(10.0) and got["runs"] == 1
    assert [(e["id"], e["reason"]) for e in got["excluded"]] == [(1, check_figure("duration_s", -100.0))]


def test_a_summary_makes_as_many_queries_whatever_the_number_of_runs(tmp_path):
    """The server adds up no runs itself: its summaries, sweeps and redundant runs make as many
    queries for 400 runs as for 20."""
    counts = []
    for n in (20, 400):
        path = str(tmp_path / f"r{n}.sqlite")
        with Registry.open(path) as reg:
            _fill(reg, n)
        reader = RegistryReader(path, settings=Settings())
        try:
            reader.summary("proj")  # the registry opened
            seen: list[str] = []

            def count(conn, cursor, statement, *args, seen=seen):
                seen.append(statement)

            event.listen(Engine, "before_cursor_execute", count)
            try:
                reader.summary("proj")
                reader.summary("proj", "a.ipynb")
                reader.redundant("proj", limit=20, offset=0)
                reader.sweeps("proj")
            finally:
                event.remove(Engine, "before_cursor_execute", count)
        finally:
            reader.close()
        counts.append(len(seen))
    assert counts[0] == counts[1] and counts[0] <= 30

"""The server's summaries kept in parts (``statements.tally``, ``server.tallies``) equal the statement
computed from every run, after every kind of write, recounting only what changed."""

from __future__ import annotations

import random
import time

import pytest
from close import assert_close
from sqlalchemy import text

from notebook_carbon import analysis
from notebook_carbon.registry import Registry, new_uid
from notebook_carbon.registry.sweeps import set_final
from notebook_carbon.server import queries, tallies
from notebook_carbon.server.reader import RegistryReader
from notebook_carbon.settings import Settings
from notebook_carbon.statements import COLUMNS, statement_facts
from notebook_carbon.statements.tally import figures, merge, tally, tally_groups

NOTEBOOKS = ("a.ipynb", "b.ipynb", None)
METHODS = ("rapl", "estimate-tdp", "nvml-counter", "nvml-power", "none", None)


def _varied_run(rng: random.Random, i: int, earlier: list[int], project: str = "proj") -> tuple[dict, dict]:
    """A run with a bit of everything a statement weighs: sweeps named, automatic, empty-named or
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


SETTINGS = (Settings(), Settings(wue_l_per_kwh=1.8, hardware="gpu-server", lifetime_years=5.0))


@pytest.mark.parametrize("settings", SETTINGS, ids=["defaults", "wue and gpu server"])
def test_tallies_by_sweep_and_notebook_merge_into_the_whole(tmp_path, settings):
    path = str(tmp_path / "r.sqlite")
    with Registry.open(path) as reg:
        _fill(reg, 160)
    df = analysis.runs(path, project="proj", columns=COLUMNS)
    whole = figures(tally(df), settings)
    parts = tally_groups(df, ["sweep_key", "notebook"])
    assert len(parts) > 10  # the runs really are spread over sweeps and notebooks
    assert_close(figures(merge(parts.values()), settings), whole)
    assert whole["totals"]["runs"] == 160 and whole["development"]["sweeps"] >= 4
    for notebook in NOTEBOOKS:
        mine = figures(merge(t for (_, nb), t in parts.items() if nb == notebook), settings)
        wanted = statement_facts(path, project="proj", notebook=notebook, settings=settings) if notebook else None
        if wanted is not None:  # (a statement cannot ask for the runs without a notebook)
            assert_close(mine["totals"], wanted["totals"])
            assert_close(mine["development"], wanted["development"])
    assert figures(merge([]), settings)["totals"]["runs"] == 0


def _check(reader: RegistryReader, location: str, *, blocks: int | None = None, read_all: bool = False) -> None:
    """The reader's summaries (project and each notebook) and redundant totals equal what the
    statement computes from every run; ``blocks``: how many blocks that took recounting."""
    settings = reader.settings
    got = reader.summary("proj")
    wanted = statement_facts(location, project="proj", settings=settings)
    assert_close(got["totals"], wanted["totals"])
    assert_close(got["development"], wanted["development"])
    assert got["statuses"] == wanted["scope"]["statuses"] and got["runs"] == wanted["scope"]["runs"]
    assert got["first_run_at"] == wanted["scope"]["first_run_at"]
    assert got["last_run_at"] == wanted["scope"]["last_run_at"]
    counted = reader._tallies["proj"]
    if blocks is not None:
        assert (counted.recounted_blocks, counted.read_all) == (blocks, read_all)
    for notebook in ("a.ipynb", "b.ipynb"):
        mine = statement_facts(location, project="proj", notebook=notebook, settings=settings)
        assert_close(reader.summary("proj", notebook)["totals"], mine["totals"])
        assert_close(reader.summary("proj", notebook)["development"], mine["development"])
    redundant = reader.redundant("proj", limit=5, offset=0)
    df = analysis.runs(location, project="proj", columns=())
    repeats = df[df["is_redundant"]]
    assert redundant["total"] == len(repeats)
    assert redundant["energy_j"] == pytest.approx(repeats["energy_j"].fillna(0).sum(), rel=1e-12)
    assert redundant["emissions_g"] == pytest.approx(repeats["emissions_g"].fillna(0).sum(), rel=1e-12)


def test_the_summary_follows_every_kind_of_write_recounting_one_block(registry_url, monkeypatch, tmp_path):
    """Sweeps spread over several blocks of ids (a block of 8 here); after each way a run can
    change, the summary equals the statement, and only the block that changed was read again."""
    from notebook_carbon.registry.importer import import_codecarbon_csv
    from notebook_carbon.registry.liveness import reap_crashed

    monkeypatch.setattr(queries, "BLOCK", 8)
    with Registry.open(registry_url) as reg:
        _fill(reg, 60)
    reader = RegistryReader(registry_url, settings=Settings(wue_l_per_kwh=1.8))
    try:
        _check(reader, registry_url, read_all=True, blocks=None)
        _check(reader, registry_url, blocks=0)  # nothing changed
        rng = random.Random(3)
        with Registry.open(registry_url) as reg:
            start, final = _varied_run(rng, 61, [])
            reg.record_run({**start, "sweep": "lr", "notebook": "a.ipynb"}, final)
            _check(reader, registry_url, blocks=1)  # the sweep's newest block
            uid, now = new_uid(), time.time()
            reg.start_run({"uid": uid, "project": "proj", "sweep": "bs", "notebook": "b.ipynb", "started_at": now,
                           "pid": 2**22 + 7, "host": "elsewhere-host", "updated_at": now,
                           "checkpoint_interval_s": 1.0})  # fmt: skip
            _check(reader, registry_url, blocks=1)
            reg.checkpoint_run(uid, {"energy_j": 4.0, "emissions_g": 0.4})
            _check(reader, registry_url, blocks=1)
            assert reap_crashed(reg, now=time.time() + 3600)
            _check(reader, registry_url, blocks=1)
            reg.finish_run(uid, {"status": "ok", "energy_j": 5.0, "emissions_g": 0.5})  # it came back after all
            _check(reader, registry_url, blocks=1)
            first_ok = min(r["id"] for r in reg.runs(project="proj") if r["status"] == "ok" and r["sweep"] == "lr")
            set_final(reg, first_ok)  # the selection moves to an old block: no block changed, the sweep did
            _check(reader, registry_url, blocks=0)
            reg.record_run({"uid": new_uid(), "project": "proj", "started_at": time.time() - 5},
                           {"status": "ok", "energy_j": 7.0, "emissions_g": 0.7})  # a bare track() block
            _check(reader, registry_url, blocks=1)
            reg.record_run({"uid": new_uid(), "project": "elsewhere", "sweep": "lr"}, {"status": "ok", "energy_j": 1.0})
            _check(reader, registry_url, blocks=0)  # another project's run
            csv = tmp_path / "emissions.csv"
            csv.write_text(
                "timestamp,project_name,run_id,duration,emissions,energy_consumed,cpu_energy,gpu_energy,ram_energy\n"
                "2026-11-20T10:00:00,proj,5b0fa12c-3ea2-4a3d-8c1b-8e2b3f7c1a11,60,0.001,0.002,0.001,0,0.001\n"
            )
            assert import_codecarbon_csv(reg, csv, project="proj").imported == 1
            _check(reader, registry_url, blocks=1)
            with reg._transaction("editing by hand", write=True) as conn:
                conn.execute(text("UPDATE runs SET sweep = 'bs' WHERE id = 5"))  # moved to another sweep
            _check(reader, registry_url)
            with reg._transaction("fixing a figure by hand, updated_at left alone", write=True) as conn:
                conn.execute(text("UPDATE runs SET energy_j = 2 * energy_j + 1, status = 'failed' "
                                  "WHERE id = (SELECT MIN(id) FROM runs WHERE sweep = 'lr' AND status = 'ok')"))  # fmt: skip
            _check(reader, registry_url, blocks=1)
            with reg._transaction("deleting by hand", write=True) as conn:
                conn.execute(text("DELETE FROM runs WHERE id IN (2, 40)"))
            _check(reader, registry_url)
            with reg._transaction("deleting by hand", write=True) as conn:
                conn.execute(text("DELETE FROM runs WHERE sweep IS NULL OR sweep = ''"))  # every unswept block gone
            _check(reader, registry_url)
    finally:
        reader.close()


def test_many_changed_sweeps_are_counted_from_one_read(tmp_path, monkeypatch):
    monkeypatch.setattr(tallies, "FULL_READ_ABOVE", 2)
    path = str(tmp_path / "r.sqlite")
    with Registry.open(path) as reg:
        _fill(reg, 40)
    reader = RegistryReader(path, settings=Settings())
    try:
        _check(reader, path, read_all=True, blocks=None)
        with Registry.open(path) as reg:
            for sweep in ("lr", "bs", "new"):
                reg.record_run({"uid": new_uid(), "project": "proj", "sweep": sweep}, {"status": "ok", "energy_j": 2.0})
        _check(reader, path, read_all=True, blocks=None)
        with Registry.open(path) as reg:
            reg.record_run({"uid": new_uid(), "project": "proj", "sweep": "lr"}, {"status": "ok", "energy_j": 2.0})
        _check(reader, path, blocks=1)
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
        assert got["first_run_at"] is None and got["development"]["ratio"] is None
        assert reader.redundant("nobody", limit=5, offset=0) == {"total": 0, "energy_j": 0.0, "emissions_g": 0.0,
                                                                  "runs": []}  # fmt: skip
        assert reader.summary("proj", "never.ipynb")["runs"] == 0
    finally:
        reader.close()


def test_a_run_that_ended_before_it_started_is_left_out_and_named(tmp_path):
    """A run whose end is before its start (a clock set back, a hand edit) has no figure that can be
    trusted: it is left out of the totals, named with the reason, and the statement is still made."""
    path = str(tmp_path / "r.sqlite")
    with Registry.open(path) as reg:
        reg.record_run({"uid": new_uid(), "project": "proj", "started_at": 1.8e9},
                       {"status": "ok", "energy_j": 10.0, "ended_at": 1.8e9 - 100.0})  # fmt: skip
        reg.record_run({"uid": new_uid(), "project": "proj", "started_at": 1.8e9, "gpu_count": 1},
                       {"status": "ok", "energy_j": 10.0, "ended_at": 1.8e9 + 100.0})  # fmt: skip
    facts = statement_facts(path, project="proj", settings=Settings(hardware="gpu-server"))
    alone = Settings(hardware="gpu-server")
    from notebook_carbon.impact.embodied import embodied
    from notebook_carbon.record import check_figure

    one = embodied(100.0, hardware=alone.hardware, gpu_count=1, lifetime_years=alone.lifetime_years)
    assert facts["totals"]["embodied_g"]["value"] == pytest.approx(one.embodied_g)
    assert facts["totals"]["energy_j"]["value"] == pytest.approx(10.0)
    assert facts["methods"]["embodied"]["computed_runs"] == 1
    assert [(e["id"], e["reason"]) for e in facts["scope"]["excluded"]] == [(1, check_figure("duration_s", -100.0))]

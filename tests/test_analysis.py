"""The analysis frame, its filters and its totals, on registries of known runs, numbers checked by hand."""

from __future__ import annotations

import dataclasses
import datetime
import subprocess
import sys

import pandas as pd
import pytest
from close import assert_close

from notebook_carbon import analysis
from notebook_carbon.errors import ConfigError, RegistryError
from notebook_carbon.record import sweep_key
from notebook_carbon.registry import Registry, new_uid
from notebook_carbon.registry.totals import Totals

DAY1 = 1_740_787_200.0  # 2025-03-01 00:00 UTC
DAY2 = DAY1 + 86_400.0
H = 3600.0
T0 = DAY1  # a plausible start (record.BOUNDS: after 2000) for tests that only need an order
SPLIT = ["measured_energy_j", "estimated_energy_j", "unattributed_energy_j"]


def record(
    reg,
    *,
    project="paper",
    t,
    status="ok",
    energy,
    parts=(),
    sweep=None,
    code=None,
    name=None,
    tags=(),
    notebook=None,
    redundant_of=None,
    gpu_model=None,
    host=None,
    embodied=None,
    source=None,
    params=None,
):
    """One finished run through the registry's own API; ``parts`` are ``(component, method, J)``."""
    uid = new_uid()
    final = {
        "status": status,
        "energy_j": energy,
        "emissions_g": energy / 10,
        "water_l": energy / 1000,
        "embodied_g": embodied,
        "ended_at": t + 60,
    }
    for component in ("gpu", "cpu", "ram"):
        final[f"{component}_method"] = "none"
    for component, method, joules in parts:
        final[f"{component}_energy_j"], final[f"{component}_method"] = joules, method
    components = [  # one row per device: a '+'-joined method is several devices, one method each
        {"component": c, "method": part, "energy_j": j / len(m.split("+")), "device": f"{c}:{i}"}
        for c, m, j in parts
        for i, part in enumerate(m.split("+"))
    ]
    return reg.record_run(
        {
            "uid": uid,
            "project": project,
            "started_at": t,
            "sweep": sweep,
            "code_fingerprint": code,
            "name": name,
            "tags": list(tags),
            "notebook": notebook,
            "redundant_of": redundant_of,
            "gpu_model": gpu_model,
            "host": host,
            "cell_source": source if source is not None else f"fit({code})",
            "params": params or {},
        },
        final,
        components,
    )


def a_parts(gpu, cpu, ram, gpu_method="nvml-counter"):
    return [("gpu", gpu_method, gpu), ("cpu", "rapl", cpu), ("ram", "estimate-ram", ram)]


def make_project(reg) -> dict[str, int]:
    """Project "paper": the named sweep lr-search (one failed run, one redundant run, the first run
    marked final), the automatic sweep code:cb (its latest ok run selected) and a run in no sweep
    whose total has no components (as an imported log); plus a sweep of the same name elsewhere."""
    a = dict(
        sweep="lr-search",
        code="ca",
        notebook="train.ipynb",
        gpu_model="NVIDIA H100",
        host="node-1",
        embodied=1.0,
    )
    b = dict(code="cb", notebook="cpu.ipynb", host="laptop", source="\n  model.fit(x)  # B\n")
    ids = {}
    ids["r1"] = record(
        reg,
        t=DAY1 + 1 * H,
        energy=100.0,
        parts=a_parts(80.0, 15.0, 5.0),
        tags=("baseline", "paper"),
        name="<img src=x onerror=alert(1)>",
        params={"lr": 0.1},
        **a,
    )
    ids["r2"] = record(
        reg,
        t=DAY1 + 2 * H,
        energy=50.0,
        parts=a_parts(40.0, 8.0, 2.0),
        status="failed",
        params={"lr": 0.5},
        **a,
    )
    ids["r3"] = record(
        reg,
        t=DAY1 + 3 * H,
        energy=100.0,
        parts=a_parts(80.0, 15.0, 5.0),
        redundant_of=ids["r1"],
        params={"lr": 0.1},
        **a,
    )
    ids["r4"] = record(
        reg,
        t=DAY1 + 4 * H,
        energy=200.0,
        tags=("paper",),
        params={"lr": 1.0},
        parts=a_parts(160.0, 30.0, 10.0, gpu_method="nvml-counter+nvml-power"),
        **a,
    )
    ids["r5"] = record(
        reg,
        t=DAY2 + 1 * H,
        energy=300.0,
        tags=("paper", "cpu"),
        parts=[("cpu", "estimate-tdp", 240.0), ("ram", "estimate-ram", 60.0)],
        **b,
    )
    ids["r6"] = record(
        reg,
        t=DAY2 + 2 * H,
        energy=400.0,
        parts=[("cpu", "estimate-tdp", 320.0), ("ram", "estimate-ram", 80.0)],
        **b,
    )
    ids["r7"] = record(reg, t=DAY2 + 3 * H, energy=50.0, host="laptop")  # a track() block: no code, no sweep
    ids["r8"] = record(reg, project="other", t=DAY1 + 1.5 * H, energy=1000.0, sweep="lr-search", code="ca")
    reg.set_final(ids["r1"])
    return ids


@pytest.fixture
def project(registry_url):
    with Registry.open(registry_url) as reg:
        ids = make_project(reg)
        yield reg, ids


def ids_of(df, ids, *names):
    return list(df.index) == [ids[n] for n in names]


# -- the frame --------------------------------------------------------------------------------


def test_one_row_per_run_with_every_column_decoded_and_derived(project):
    reg, ids = project
    df = analysis.runs(reg, project="paper")
    assert ids_of(df, ids, "r1", "r2", "r3", "r4", "r5", "r6", "r7")  # in start order
    assert df.index.name == "id"
    from notebook_carbon.registry.schema import runs as table

    # the registry's own derivations come as the frame's: each run's sweep key and its sweep's
    # label among DERIVED_COLUMNS, the energy range factors only when asked for
    kept = ("id", "cell_source", "sweep_key", "sweep_label", "energy_low_factor", "energy_high_factor")
    expected = [c.name for c in table.c if c.name not in kept] + list(analysis.DERIVED_COLUMNS)
    assert list(df.columns) == expected
    r1, r4, r5, r7 = (df.loc[ids[n]] for n in ("r1", "r4", "r5", "r7"))
    assert r1["tags"] == ["baseline", "paper"] and r1["params"] == {"lr": 0.1} and r7["tags"] == []
    assert r1["started"] == pd.Timestamp("2025-03-01T01:00:00Z")
    assert r1["ended"] == pd.Timestamp("2025-03-01T01:01Z")
    assert str(df["started"].dt.tz) == "UTC"
    assert r1["sweep_key"] == "lr-search" and r1["sweep_label"] == "lr-search"
    assert r5["sweep_key"] == "code:cb" and r5["sweep_label"] == "cpu.ipynb, code cb"
    assert pd.isna(r7["sweep_key"]) and pd.isna(r7["sweep_label"])
    assert df["is_failed"].tolist() == [False, True, False, False, False, False, False]
    assert df["is_redundant"].tolist() == [False, False, True, False, False, False, False]
    # r1 is marked final (r4 is the later ok run); code:cb has no mark, so its latest ok run
    assert df["is_selected"].tolist() == [True, False, False, False, False, True, False]
    assert r1["is_final"] and not r4["is_final"]
    assert df.loc[ids["r3"], "redundant_of"] == ids["r1"] and pd.isna(r1["redundant_of"])
    # measured: nvml and rapl; estimated: estimate-*; r7's total has no components at all
    assert r4[SPLIT].tolist() == [190.0, 10.0, 0.0]
    assert r5[SPLIT].tolist() == [0.0, 300.0, 0.0]
    assert r7[SPLIT].tolist() == [0.0, 0.0, 50.0]
    assert "cell_source" in analysis.runs(reg, project="paper", with_source=True)


def test_the_selection_and_labels_are_those_of_the_registrys_sweeps(registry_url):
    """Awkward cases too: equal start times (ordered by id), an empty sweep name (no name), a
    marked automatic sweep, a sweep without an ok run, labels from a comment line or a run name."""
    cases = [
        dict(code="a", t=1.0),
        dict(code="a", t=1.0),
        dict(code="a", t=2.0, status="failed"),
        dict(code="b", sweep="", t=4.0, final=True),
        dict(code="b", sweep="", t=5.0),
        dict(code="c", sweep="search", t=6.0),
        dict(code="d", sweep="search", t=0.5),
        dict(code=None, t=7.0),
        dict(code="e", t=8.0, source="\n\n   # only a comment line\n"),
        dict(code="f", t=9.0, source="", name="named run"),
        dict(code="g", t=10.0, status="crashed"),
    ]
    with Registry.open(registry_url) as reg:
        for i, case in enumerate(cases):
            reg.record_run(
                {
                    "uid": new_uid(),
                    "project": "p",
                    "sweep": case.get("sweep"),
                    "code_fingerprint": case["code"],
                    "started_at": T0 + case["t"],
                    "name": case.get("name"),
                    "is_final": case.get("final", False),
                    "cell_source": case.get("source", f"train({case['code']})"),
                },
                {"status": case.get("status", "ok"), "energy_j": float(i + 1)},
            )
        sweeps = reg.sweeps("p")
        for kwargs in ({}, {"with_source": True}, {"since": T0 + 1.5}, {"status": "ok"}):
            df = analysis.runs(reg, project="p", **kwargs)
            assert set(df.index[df["is_selected"]]) == {s.selected_run_id for s in sweeps} & set(df.index)
            labels = {s.key: s.label for s in sweeps}
            assert {k: lab for k, lab in zip(df["sweep_key"], df["sweep_label"]) if isinstance(k, str)} == {
                k: labels[k] for k in df["sweep_key"].dropna()
            }
        df = analysis.runs(reg, project="p", with_source=True)
        rows = reg.runs(project="p")
    assert [sweep_key(r["sweep"], r["code_fingerprint"]) for r in sorted(rows, key=lambda r: (r["started_at"], r["id"]))] == [
        None if pd.isna(k) else k for k in df["sweep_key"]
    ]
    assert {s.selected_run_id for s in sweeps} == {2, 4, 6, 9, 10, None}  # code:g has no ok run


def test_filters_each(project):
    reg, ids = project
    everything = analysis.runs(reg)
    assert len(everything) == 8 and set(everything["project"]) == {"paper", "other"}
    assert ids_of(analysis.runs(reg, project="other"), ids, "r8")
    assert ids_of(analysis.runs(reg, project="paper", notebook="cpu.ipynb"), ids, "r5", "r6")
    assert ids_of(analysis.runs(reg, project="paper", sweep="lr-search"), ids, "r1", "r2", "r3", "r4")
    assert ids_of(analysis.runs(reg, sweep="lr-search"), ids, "r1", "r8", "r2", "r3", "r4")  # two projects
    assert ids_of(analysis.runs(reg, sweep="code:cb"), ids, "r5", "r6")
    assert ids_of(analysis.runs(reg, project="paper", tags="paper"), ids, "r1", "r4", "r5")
    assert ids_of(analysis.runs(reg, project="paper", tags=["paper", "baseline"]), ids, "r1")
    assert len(analysis.runs(reg, project="paper", tags=[])) == 7
    assert ids_of(analysis.runs(reg, status="failed"), ids, "r2")
    assert ids_of(analysis.runs(reg, project="paper", status=("failed", "crashed")), ids, "r2")
    assert len(analysis.runs(reg, status=[])) == 0


@pytest.mark.parametrize(
    "since, until, expected",
    [
        ("2025-03-02", None, ("r5", "r6", "r7")),
        (None, datetime.date(2025, 3, 2), ("r1", "r2", "r3", "r4")),  # until is exclusive
        (datetime.datetime(2025, 3, 1, 2, 30), None, ("r3", "r4", "r5", "r6", "r7")),  # naive is UTC
        # 01:00 at UTC+2 is 23:00 UTC the day before: r5 (01:00 UTC) is after it
        (
            datetime.datetime(2025, 3, 2, 1, 0, tzinfo=datetime.timezone(datetime.timedelta(hours=2))),
            None,
            ("r5", "r6", "r7"),
        ),
        (DAY1 + 2 * H, DAY1 + 4 * H, ("r2", "r3")),  # epoch seconds; since inclusive
        ("2025-03-01T03:00:00Z", "2025-03-02T02:00+00:00", ("r3", "r4", "r5")),
        (pd.Timestamp("2025-03-02T02:00"), None, ("r6", "r7")),
    ],
)
def test_time_filters(project, since, until, expected):
    reg, ids = project
    assert ids_of(analysis.runs(reg, project="paper", since=since, until=until), ids, *expected)


def test_a_filtered_frame_still_knows_each_sweeps_selected_run(project):
    reg, ids = project
    # r4 is the latest ok run of lr-search but r1 is marked; cut by time, by status, by notebook
    early = analysis.runs(reg, project="paper", until=DAY1 + 3.5 * H)
    assert early["is_selected"].tolist() == [True, False, False]
    late = analysis.runs(reg, project="paper", since=DAY1 + 2.5 * H)
    assert dict(zip(late.index, late["is_selected"])) == {
        ids["r3"]: False,
        ids["r4"]: False,
        ids["r5"]: False,
        ids["r6"]: True,
        ids["r7"]: False,
    }
    assert not analysis.runs(reg, status="failed")["is_selected"].any()
    b_only = analysis.runs(reg, notebook="cpu.ipynb", status="ok", until=DAY2 + 1.5 * H)
    assert ids_of(b_only, ids, "r5") and not b_only["is_selected"].any()  # r6 is selected, outside
    assert b_only["sweep_label"].tolist() == ["cpu.ipynb, code cb"]
    other = analysis.runs(reg, sweep="lr-search", since=DAY1 + 1.2 * H)
    assert other.loc[ids["r8"], "is_selected"] and not other.loc[ids["r4"], "is_selected"]


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"status": "done"}, "running, ok, failed, interrupted, crashed"),
        ({"status": ["ok", "finished"]}, "finished"),
        ({"since": "last tuesday"}, "not a date or time"),
        ({"until": float("nan")}, "finite"),
        ({"since": True}, "datetime, a date"),
        ({"sweep": ""}, "sweep name"),
        ({"tags": [1]}, "tags"),
    ],
)
def test_bad_arguments_say_what_is_valid(project, kwargs, message):
    reg, _ = project
    with pytest.raises(ConfigError, match=message) as caught:
        analysis.runs(reg, **kwargs)
    assert isinstance(caught.value, ValueError)


def test_columns_reads_the_core_and_those_asked_for(project):
    reg, ids = project
    core = analysis.runs(reg, project="paper", columns=())
    assert list(core.columns) == [c for c in analysis.CORE_COLUMNS if c != "id"] + list(
        analysis.DERIVED_COLUMNS
    )
    full = analysis.runs(reg, project="paper")
    assert core.equals(full[core.columns])  # the same figures, selection and labels
    assert core["is_selected"].tolist() == [True, False, False, False, False, True, False]
    more = analysis.runs(reg, project="paper", columns=["params", "uid"], with_source=True)
    assert {"params", "uid", "cell_source"} <= set(more.columns) and "pue" not in more
    assert more.loc[ids["r1"], "params"] == {"lr": 0.1}
    with pytest.raises(ConfigError, match="colour not in the runs table"):
        analysis.runs(reg, columns=["colour"])


def test_registry_by_location_or_settings_opened_read_only(tmp_path, monkeypatch):
    location = tmp_path / "reg.sqlite"
    with Registry.open(str(location)) as reg:
        ids = make_project(reg)
    assert ids_of(analysis.runs(str(location), project="other"), ids, "r8")
    assert len(analysis.runs(location)) == 8  # a Path
    monkeypatch.setenv("NOTEBOOK_CARBON_REGISTRY", str(location))
    assert len(analysis.runs(project="paper")) == 7
    missing = tmp_path / "nothing-here.sqlite"
    with pytest.raises(RegistryError, match="no registry"):
        analysis.runs(str(missing))
    assert not missing.exists()  # read-only: never created
    with pytest.raises(ConfigError, match="Registry, a file path"):
        analysis.runs(42)


def test_an_empty_registry_gives_an_empty_frame_with_every_column(registry_url):
    with Registry.open(registry_url) as reg:
        empty = analysis.runs(reg)
        record(reg, t=DAY1, energy=1.0, code="x", tags=("t",), parts=a_parts(0.5, 0.25, 0.25))
        full = analysis.runs(reg)
        nothing = analysis.runs(reg, project="no such project", tags="t")
    assert empty.empty and len(full) == 1 and nothing.empty
    assert list(empty.columns) == list(full.columns) == list(nothing.columns)
    assert dict(empty.dtypes) == dict(full.dtypes) == dict(nothing.dtypes)
    assert empty.index.name == "id" and str(empty.index.dtype) == "int64"
    assert str(empty["started"].dtype).endswith("UTC]") and empty["is_selected"].dtype == bool
    assert analysis.aggregate(empty, "sweep").empty and list(
        analysis.aggregate(empty, "day").columns
    ) == list(analysis.AGGREGATE_COLUMNS)
    with Registry.open(registry_url) as reg:
        for cut in ({}, {"since": DAY1}, {"tags": "t", "status": "ok"}):
            assert analysis.totals(reg, project="no such project", **cut) == Totals()
    assert Totals().overhead_ratio is None and Totals().failed_share is None
    assert analysis.shares(empty) == analysis.Shares(0.0, None, None, None, None, None)
    assert analysis.energy_by_method(empty) == {}


# -- totals -----------------------------------------------------------------------------------


def test_overhead_and_shares_by_hand(project):
    reg, _ = project
    df = analysis.runs(reg, project="paper")
    # all: 100 + 50 + 100 + 200 + 300 + 400 + 50 = 1200 J; selected: r1 (marked) 100 + r6 400 = 500 J
    totals = analysis.totals(reg, project="paper")
    assert totals == reg.totals("paper")  # the registry's own, whatever reads it
    assert (totals.runs, totals.sweeps, totals.energy_j, totals.emissions_g) == (7, 2, 1200.0, 120.0)
    assert (totals.selected_runs, totals.selected_energy_j) == (2, 500.0)
    assert totals.selected_emissions_g == pytest.approx(50.0) and totals.overhead_ratio == pytest.approx(2.4)
    assert (totals.failed_runs, totals.failed_energy_j, totals.failed_share) == (1, 50.0, 50 / 1200)
    assert (totals.redundant_runs, totals.redundant_energy_j) == (1, 100.0)
    # measured: gpu+cpu of lr-search 95 + 48 + 95 + 190 = 428; estimated: its ram 22, code:cb 700
    assert analysis.shares(df) == analysis.Shares(
        energy_j=1200.0,
        failed=pytest.approx(50 / 1200),
        redundant=pytest.approx(100 / 1200),
        measured=pytest.approx(428 / 1200),
        estimated=pytest.approx(722 / 1200),
        unattributed=pytest.approx(50 / 1200),
    )
    assert analysis.energy_by_method(df) == {
        "estimate-tdp": 560.0,  # 240 + 320
        "nvml-counter": 200.0,  # 80 + 40 + 80
        "estimate-ram": 162.0,  # 5 + 2 + 5 + 10 + 60 + 80
        "nvml-counter+nvml-power": 160.0,
        "rapl": 68.0,  # 15 + 8 + 15 + 30
        "unattributed": 50.0,  # r7: a total without components
    }
    assert sum(analysis.energy_by_method(df).values()) == 1200.0


def test_totals_of_a_cut_scope_by_hand(project):
    """A scope cut by time, tags or status is summed by the database: a sweep counts its selected run
    (decided over the whole sweep) only if that run is in the scope."""
    reg, ids = project
    late = analysis.totals(reg, project="paper", since=DAY1 + 2.5 * H)  # r3 to r7
    assert (late.runs, late.energy_j, late.sweeps, late.redundant_runs) == (5, 1050.0, 2, 1)
    # lr-search's selected run, r1 (marked), is outside: only code:cb's r6 is a result here
    assert (late.selected_runs, late.selected_energy_j, late.overhead_ratio) == (1, 400.0, 1050 / 400)
    assert late.first_at == DAY1 + 3 * H and late.last_at == DAY2 + 3 * H
    tagged = analysis.totals(reg, project="paper", tags="paper")  # r1, r4, r5
    assert (tagged.runs, tagged.energy_j, tagged.selected_energy_j) == (3, 600.0, 100.0)
    assert analysis.totals(reg, project="paper", tags=["paper", "cpu"]).energy_j == 300.0
    ok = analysis.totals(reg, project="paper", status="ok", notebook="train.ipynb")  # r1, r3, r4
    assert (ok.runs, ok.statuses, ok.energy_j, ok.selected_energy_j) == (3, {"ok": 3}, 400.0, 100.0)
    assert analysis.totals(reg, project="paper", status="failed").failed_energy_j == 50.0
    # a cut that keeps everything gives the totals the database keeps, to the micro-unit
    assert analysis.totals(reg, project="paper", since=DAY1) == reg.totals("paper")


def test_a_cut_scope_sums_its_own_runs_as_the_database_keeps_them(project):
    """A scope cut by time, tags, notebook or status is summed by the database with the triggers'
    own per-run figures: its totals are those of the very runs ``analysis.runs`` selects."""
    from totals_oracle import totals as reckoned

    reg, _ = project
    rows = {row["id"]: row for row in reg.runs(project="paper")}
    for cut in ({}, {"since": DAY1 + 2.5 * H}, {"tags": "paper"}, {"notebook": "cpu.ipynb", "status": "ok"}):
        chosen = [rows[int(i)] for i in analysis.runs(reg, project="paper", **cut).index]
        found = analysis.totals(reg, project="paper", **cut)
        for name, value in reckoned(chosen).items():
            assert getattr(found, name) == (pytest.approx(value, abs=1e-6) if isinstance(value, float) else value), (
                cut, name)


def test_aggregate_by_sweep_tag_day_and_device(project):
    reg, _ = project
    df = analysis.runs(reg, project="paper")
    sweeps = analysis.aggregate(df, "sweep")
    assert sweeps.index.names == ["project", "sweep_key"]
    assert sweeps.index.get_level_values("sweep_key")[:2].tolist() == [
        "code:cb",
        "lr-search",
    ]  # most energy first
    assert list(sweeps.columns) == ["sweep_label", *analysis.AGGREGATE_COLUMNS]
    lr = sweeps.loc[("paper", "lr-search")]
    assert lr["sweep_label"] == "lr-search"
    assert (lr["runs"], lr["energy_j"], lr["failed_runs"], lr["failed_energy_j"]) == (4, 450.0, 1, 50.0)
    assert (lr["redundant_runs"], lr["redundant_energy_j"], lr["embodied_g"]) == (1, 100.0, 4.0)
    assert lr[SPLIT].tolist() == [428.0, 22.0, 0.0]
    assert lr["emissions_g"] == pytest.approx(45.0) and lr["water_l"] == pytest.approx(0.45)
    cb = sweeps.loc[("paper", "code:cb")]
    assert cb["sweep_label"] == "cpu.ipynb, code cb" and cb["runs"] == 2
    assert cb[SPLIT].tolist() == [0.0, 700.0, 0.0] and cb["energy_j"] == 700.0
    no_sweep = sweeps[sweeps.index.get_level_values("sweep_key").isna()]
    assert no_sweep["runs"].tolist() == [1] and no_sweep["unattributed_energy_j"].tolist() == [50.0]
    assert sweeps["energy_j"].sum() == 1200.0  # every run in exactly one group

    tags = analysis.aggregate(df, "tag")
    by_tag = dict(zip(tags.index, tags["energy_j"]))
    nan_key = next(k for k in by_tag if not isinstance(k, str))
    assert {k: v for k, v in by_tag.items() if isinstance(k, str)} == {
        "paper": 600.0,
        "cpu": 300.0,
        "baseline": 100.0,
    }
    assert by_tag[nan_key] == 600.0  # r2, r3, r6, r7 have no tags
    assert tags["runs"].sum() == 9  # 7 runs, r1 and r5 counted twice
    assert tags.index.name == "tag"

    days = analysis.aggregate(df, "day")
    assert list(days.index) == [pd.Timestamp("2025-03-01", tz="UTC"), pd.Timestamp("2025-03-02", tz="UTC")]
    assert days["energy_j"].tolist() == [450.0, 750.0] and days["runs"].tolist() == [4, 3]

    gpus = analysis.aggregate(df, "gpu_model")
    assert gpus.loc["NVIDIA H100", "energy_j"] == 450.0 and gpus["energy_j"].sum() == 1200.0
    hosts = analysis.aggregate(df, "host")
    assert dict(zip(hosts.index, hosts["energy_j"])) == {"laptop": 750.0, "node-1": 450.0}
    assert analysis.aggregate(df, "notebook").loc["cpu.ipynb", "runs"] == 2
    assert analysis.aggregate(df, "status").loc["failed", "energy_j"] == 50.0
    projects = analysis.aggregate(analysis.runs(reg), "project")
    assert dict(zip(projects.index, projects["energy_j"])) == {"other": 1000.0, "paper": 1200.0}
    with pytest.raises(ConfigError, match="project, notebook, sweep, tag, day"):
        analysis.aggregate(df, "week")


def test_categories_each_run_exactly_once_final_first():
    df = pd.DataFrame(
        {
            "is_selected": [True, True, False, False, False, False],
            "is_failed": [False, False, True, True, False, False],
            "is_redundant": [False, True, True, False, True, False],
        }
    )
    assert analysis.categorise(df).tolist() == ["final", "final", "failed", "failed", "redundant", "other"]
    assert list(analysis.categorise(df).cat.categories) == list(analysis.CATEGORIES)


@pytest.mark.parametrize(
    "method, kind",
    [
        ("rapl", "measured"),
        ("nvml-counter", "measured"),
        ("nvml-power", "measured"),
        ("nvml-counter+nvml-power", "measured"),
        ("estimate-tdp", "estimated"),
        ("estimate-ram", "estimated"),
        ("estimate-tdp+rapl", "estimated"),
        ("none", "none"),
        ("none+rapl", "measured"),
        (None, "unattributed"),
        (float("nan"), "unattributed"),
        ("imported", "unattributed"),
        ("imported+rapl", "unattributed"),
    ],
)
def test_method_kinds(method, kind):
    assert analysis.method_kind(method) == kind


def test_measured_estimated_split_of_totals_and_parts_that_disagree(registry_url):
    with Registry.open(registry_url) as reg:
        # an imported log: parts 90 J, total 100 J; another whose parts exceed its total
        more = record(
            reg,
            t=T0 + 1.0,
            energy=100.0,
            parts=[("gpu", "nvml-power", 50.0), ("cpu", "estimate-tdp", 30.0), ("ram", "estimate-ram", 10.0)],
        )
        less = record(reg, t=T0 + 2.0, energy=80.0, parts=[("cpu", "rapl", 60.0), ("ram", "estimate-ram", 30.0)])
        # parts summed in another order than the total: rounding is not unattributed energy
        exact = record(
            reg,
            t=T0 + 3.0,
            energy=0.1 + 0.2 + 0.3,
            parts=[("gpu", "rapl", 0.3), ("cpu", "rapl", 0.2), ("ram", "rapl", 0.1)],
        )
        df = analysis.runs(reg)
    split = df[SPLIT]
    assert split.loc[more].tolist() == [50.0, 40.0, 10.0]
    assert split.loc[less].tolist() == [60.0, 30.0, -10.0]
    assert split.loc[exact, "unattributed_energy_j"] == 0.0
    assert split.sum(axis=1).tolist() == pytest.approx(df["energy_j"].tolist())
    assert analysis.energy_by_method(df) == pytest.approx(
        {"rapl": 60.6, "nvml-power": 50.0, "estimate-ram": 40.0, "estimate-tdp": 30.0}
    )  # +10 and -10 unattributed cancel out: no key


def test_importing_the_analysis_does_not_import_altair():
    code = "import sys, notebook_carbon.analysis; assert 'altair' not in sys.modules, 'altair imported'"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_the_public_names_exist():
    from notebook_carbon import charts

    for module in (analysis, charts):
        assert all(hasattr(module, name) for name in module.__all__), module.__name__


def test_a_sweep_read_is_in_start_order_ties_by_id(tmp_path):
    """A sweep's runs are sorted in Python (an ORDER BY would send SQLite through the project's
    whole start-time index): the order is still start time, then id."""
    path = str(tmp_path / "r.sqlite")
    with Registry.open(path) as reg:
        for t in (5.0, 1.0, 3.0, 1.0, 2.0):
            for sweep in ("s", None):
                reg.record_run({"uid": new_uid(), "project": "p", "sweep": sweep, "code_fingerprint": "c",
                                "started_at": T0 + t}, {"status": "ok", "energy_j": t})  # fmt: skip
    for sweep in ("s", "code:c"):
        df = analysis.runs(path, project="p", sweep=sweep)
        assert list(zip(df["started_at"], df.index)) == sorted(zip(df["started_at"], df.index))
        assert len(df) == 5 and df["is_selected"].sum() == 1
        assert df.index[df["is_selected"]][0] == df.index[df["started_at"] == T0 + 5.0][0]

"""Charts: each builds from a registry of known runs, renders offline to SVG, PNG and PDF, and shows
hostile run and sweep names as text."""

from __future__ import annotations

import json
import re

import altair as alt
import pytest

from notebook_carbon import analysis, charts
from notebook_carbon.errors import ConfigError, NotebookCarbonError, RegistryError
from notebook_carbon.registry import Registry, new_uid

T0 = 1_740_787_200.0  # 2025-03-01 00:00 UTC
XSS = "<img src=x onerror=alert(1)>"
ODD = "50%_lr&{bs}#1"
MAGIC = {".svg": b"<svg", ".png": b"\x89PNG\r\n\x1a\n", ".pdf": b"%PDF-"}


def record(reg, *, t, energy, sweep=None, code=None, status="ok", name=None, redundant_of=None, samples=()):
    uid = new_uid()
    return reg.record_run(
        {
            "uid": uid,
            "project": "p",
            "started_at": t,
            "sweep": sweep,
            "code_fingerprint": code,
            "name": name,
            "redundant_of": redundant_of,
            "cell_source": f"train({code})",
        },
        {"status": status, "energy_j": energy, "emissions_g": energy / 10, "ended_at": t + 10},
        samples=samples,
    )


@pytest.fixture
def project(registry_url):
    """Sweep XSS: final 100 J (marked), failed 50 J, redundant 30 J, other 200 J; sweep ODD: one
    ok run of 400 J (selected); a run in no sweep, 20 J, with power samples of two devices."""
    with Registry.open(registry_url) as reg:
        ids = {
            "final": record(reg, t=T0 + 100, energy=100.0, sweep=XSS, code="a", name=XSS),
            "failed": record(reg, t=T0 + 200, energy=50.0, sweep=XSS, code="a", status="failed"),
            "other": record(reg, t=T0 + 400, energy=200.0, sweep=XSS, code="a"),
            "odd": record(reg, t=T0 + 500, energy=400.0, sweep=ODD, code="b", name=ODD),
            "loose": record(
                reg,
                t=T0 + 600,
                energy=20.0,
                name=XSS,
                samples=[
                    {"t_s": t, "component": c, "device": d, "power_w": w}
                    for t in (0.0, 1.0, 2.0)
                    for c, d, w in (("gpu", "GPU 0", 200.0 + t), ("cpu", None, 50.0))
                ],
            ),
        }
        ids["redundant"] = record(
            reg, t=T0 + 300, energy=30.0, sweep=XSS, code="a", redundant_of=ids["final"]
        )
        reg.set_final(ids["final"])
        yield reg, ids


def values(chart: alt.TopLevelMixin) -> list[dict]:
    spec = chart.to_dict()
    assert "url" not in json.dumps(spec["data"])  # the data travels inside the spec
    return spec["data"]["values"]


def test_sweep_energy_stacks_each_run_in_one_category(project):
    reg, _ = project
    df = analysis.runs(reg)
    found = {(v["sweep"], v["category"]): (v["energy"], v["runs"]) for v in values(charts.sweep_energy(df))}
    assert found == {  # 800 J at most: shown in J; the run in no sweep is left out
        (XSS, "final"): (100.0, 1),
        (XSS, "failed"): (50.0, 1),
        (XSS, "redundant"): (30.0, 1),
        (XSS, "other"): (200.0, 1),
        (ODD, "final"): (400.0, 1),
    }
    spec = charts.sweep_energy(df).to_dict()
    assert spec["encoding"]["y"]["sort"] == [ODD, XSS]  # most energy first
    assert spec["encoding"]["x"]["title"] == "energy (J)"
    lumped = {(v["sweep"], v["category"]): v["energy"] for v in values(charts.sweep_energy(df, top=1))}
    assert lumped[("1 other sweep", "final")] == 100.0 and (ODD, "final") in lumped


def test_cumulative_emissions_steps_up_by_each_run(project):
    reg, _ = project
    df = analysis.runs(reg)
    steps = values(charts.cumulative_emissions(df))
    # runs in start order: 10, 5, 3, 20, 40, 2 g
    assert [v["emissions"] for v in steps] == pytest.approx([10.0, 15.0, 18.0, 38.0, 78.0, 80.0])
    assert [v["time"] for v in steps] == [(T0 + dt) * 1000 for dt in (100, 200, 300, 400, 500, 600)]
    thinned = values(charts.cumulative_emissions(df, max_points=2))
    assert len(thinned) == 2 and thinned[-1]["emissions"] == pytest.approx(80.0)  # the total stays exact
    by_name = values(charts.cumulative_emissions(df, by="name"))
    assert {v["group"] for v in by_name} == {XSS, ODD, "(none)"}
    with pytest.raises(ConfigError, match="column"):
        charts.cumulative_emissions(df, by="colour")


def test_power_timeline_of_a_run_and_of_a_run_without_samples(project):
    reg, ids = project
    chart = charts.power_timeline(reg, ids["loose"])
    found = sorted((v["series"], v["t_s"], v["power_w"]) for v in values(chart))
    assert found[:3] == [("cpu", 0.0, 50.0), ("cpu", 1.0, 50.0), ("cpu", 2.0, 50.0)]
    assert found[3:] == [("gpu: GPU 0", 0.0, 200.0), ("gpu: GPU 0", 1.0, 201.0), ("gpu: GPU 0", 2.0, 202.0)]
    assert chart.to_dict()["title"]["text"] == f"Power of run {ids['loose']}: {XSS}"
    averaged = values(charts.power_timeline(reg, ids["loose"], max_points=1))
    assert sorted((v["series"], v["power_w"]) for v in averaged) == [("cpu", 50.0), ("gpu: GPU 0", 201.0)]
    empty = charts.power_timeline(reg, ids["final"])
    assert values(empty) == [] and "no power samples" in empty.to_dict()["title"]["subtitle"]
    with pytest.raises(RegistryError, match="no run 999"):
        charts.power_timeline(reg, 999)


@pytest.mark.parametrize("suffix", [".svg", ".png", ".pdf"])
def test_every_chart_saves_offline_in_every_format(project, tmp_path, suffix):
    reg, ids = project
    df = analysis.runs(reg)
    made = {
        "cumulative": charts.cumulative_emissions(df),
        "sweeps": charts.sweep_energy(df),
        "power": charts.power_timeline(reg, ids["loose"]),
    }
    for name, chart in made.items():
        path = charts.save(chart, tmp_path / f"{name}{suffix.upper() if name == 'power' else suffix}")
        data = path.read_bytes()
        assert data.startswith(MAGIC[suffix]) or data.lstrip().startswith(MAGIC[suffix]), name
        assert len(data) > 5000, name


def test_hostile_names_are_text_in_the_svg(project, tmp_path):
    reg, ids = project
    df = analysis.runs(reg)
    for chart in (charts.sweep_energy(df), charts.power_timeline(reg, ids["loose"])):
        svg = charts.save(chart, tmp_path / "chart.svg").read_text(encoding="utf-8")
        assert "&lt;img src=x onerror=alert(1)&gt;" in svg
        assert "<img" not in svg
    svg = charts.to_svg(charts.sweep_energy(df))
    assert "50%_lr&amp;{bs}#1" in svg and ODD not in svg


def test_charts_of_an_empty_frame_still_render(registry_url):
    with Registry.open(registry_url) as reg:
        df = analysis.runs(reg)
    for chart in (charts.cumulative_emissions(df), charts.sweep_energy(df)):
        assert values(chart) == []
        assert charts.to_svg(chart).startswith("<svg")


def test_static_chart_displays_as_svg(project, tmp_path):
    reg, _ = project
    static = charts.StaticChart(charts.sweep_energy(analysis.runs(reg)))
    bundle = static._repr_mimebundle_()
    assert list(bundle) == ["image/svg+xml"] and bundle["image/svg+xml"].startswith("<svg")
    assert static._repr_svg_() is static.svg  # rendered once
    assert static.save(tmp_path / "s.png").read_bytes().startswith(MAGIC[".png"])


def test_save_refuses_an_unknown_suffix_and_external_data(tmp_path):
    chart = alt.Chart(alt.Data(values=[{"a": 1}])).mark_point().encode(x="a:Q")
    for name in ("chart.jpg", "chart", "chart.svg.txt"):
        with pytest.raises(ConfigError, match=r"\.svg, \.png, \.pdf"):
            charts.save(chart, tmp_path / name)
    assert list(tmp_path.iterdir()) == []
    remote = alt.Chart(alt.Data(url="https://example.com/data.csv")).mark_point().encode(x="a:Q")
    with pytest.raises(NotebookCarbonError, match="not allowed"):  # never fetched: no network involved
        charts.to_svg(remote)


def test_the_vega_lite_version_is_altairs():
    assert alt.SCHEMA_VERSION.lstrip("v").startswith(charts.vega_lite_version() + ".")


def test_data_stays_inline_whatever_transformer_is_enabled(project, tmp_path, monkeypatch):
    reg, _ = project
    df = analysis.runs(reg)
    (tmp_path / "cwd").mkdir()
    monkeypatch.chdir(tmp_path / "cwd")  # where the json transformer would write its files
    with alt.data_transformers.enable("json"):
        chart = charts.sweep_energy(df)
        assert len(values(chart)) == 5
    assert list((tmp_path / "cwd").iterdir()) == []


def test_one_run_or_runs_seconds_apart_draw_points_on_a_readable_time_axis(tmp_path):
    """A fresh session's single run was an empty chart whose axis read ".500 .500 .500": the run
    is a point, and the axis spans at least ten minutes in hours and minutes; runs days apart get
    dates."""
    import pandas as pd

    t = 1.8e9
    one = charts.cumulative_emissions(pd.DataFrame({"started_at": [t], "emissions_g": [4.2e-4]}))
    spec = one.to_dict()
    assert spec["mark"] == {"type": "line", "interpolate": "step-after", "point": True}
    x = spec["encoding"]["x"]
    low, high = x["scale"]["domain"]
    assert high - low == charts.MIN_SPAN_MS and low < t * 1000 < high and x["axis"]["format"] == "%H:%M"
    charts.save(one, tmp_path / "one.svg")
    labels = re.findall(r"<text[^>]*>([^<]*)</text>", (tmp_path / "one.svg").read_text())
    assert not any(label.startswith(".") for label in labels)
    assert sum(bool(re.fullmatch(r"\d\d:\d\d", label)) for label in labels) >= 5  # minutes on the axis
    days = charts.cumulative_emissions(pd.DataFrame({"started_at": [t, t + 5 * 86400], "emissions_g": [1.0, 2.0]}))
    assert days.to_dict()["encoding"]["x"]["axis"]["format"] == "%Y-%m-%d"


def test_accuracy_energy_is_a_valid_spec_marking_the_selected_and_the_cheapest_run():
    """(issue 17) The chart of a sweep's metric against energy validates against Vega-Lite's
    schema (the dashboard draws it with validation off, so this is where it is checked); each run is
    a point named by what it is; energy is on a log axis unless a run used none; no points: an error
    saying what to do."""
    tradeoff = {"sweep": "k", "label": "lr", "metric": "acc", "direction": "higher", "tolerance": 0.01, "runs": 4,
                "selected": {"run_id": 4, "energy_j": 4000.0, "value": 0.93},
                "cheapest": {"run_id": 2, "energy_j": 2000.0, "value": 0.925}, "energy_share": 0.5,
                "front": [1, 2, 4], "points": [[1, 1000.0, 0.8], [2, 2000.0, 0.925], [3, 3000.0, 0.9], [4, 4000.0, 0.93]]}  # fmt: skip
    with alt.utils.schemapi.debug_mode(True):
        spec = charts.accuracy_energy(tradeoff).to_dict(validate=True)
    which = {row["run"]: row["which"] for row in spec["datasets"][next(iter(spec["datasets"]))]} if "datasets" in spec \
        else {row["run"]: row["which"] for row in spec["data"]["values"]}  # fmt: skip
    assert which == {1: "on the front", 2: "cheapest within tolerance", 3: "other", 4: "selected"}
    assert spec["title"] == "lr: acc against energy" and '"type": "log"' in json.dumps(spec)
    linear = charts.accuracy_energy({**tradeoff, "points": [[1, 0.0, 0.8], [4, 4000.0, 0.93]]}).to_dict()
    assert '"type": "log"' not in json.dumps(linear)
    with pytest.raises(ConfigError, match="logged no metric to chart"):
        charts.accuracy_energy({**tradeoff, "points": []})

"""What a statement discloses of its embodied and water figures (issue 15, from an outside review):
a per-GPU factor its source calls a lower bound shown as one whatever the machine; the longer-life
comparison from the lifespan the factor was amortised over; the WUE the runs' water was recorded
with, not today's setting, and its source; each run's resource share and how it was found; and a
caveat where the CPU's TDP was a fallback guess. Runs are recorded by ``track()`` with fake meters
into real SQLite files."""

from __future__ import annotations

import json
import re

import pytest

from notebook_carbon import track
from notebook_carbon.meters.detect import Detection
from notebook_carbon.registry import Registry, new_uid
from notebook_carbon.session import Session
from notebook_carbon.settings import Settings, resolve
from notebook_carbon.statements import impact_statement, statement_facts
from notebook_carbon.statements.render import render
from notebook_carbon.testing import FakeMeter


def _record(path: str, *, gpus: int, hours: float = 10.0, **row) -> None:
    with Registry.open(path) as reg:
        energy = 3.6e6 * hours
        reg.record_run({"uid": new_uid(), "project": "p", "started_at": 1.8e9, "gpu_count": gpus, **row},
                       {"status": "ok", "energy_j": energy, "gpu_energy_j": energy, "gpu_method": "nvml-counter",
                        "duration_s": 3600.0 * hours, "emissions_g": energy / 3.6e6 * 50})  # fmt: skip


@pytest.mark.parametrize(("hardware", "lower"), [("server", True), ("workstation", True), ("gpu-server", True),
                                                 ("laptop", False)])  # fmt: skip
def test_a_per_gpu_lower_bound_is_shown_as_one_for_every_factor_that_adds_it(tmp_path, hardware, lower):
    """The 150 kg per GPU is BLOOM's lower bound in the server and workstation factors too: the
    embodied figure and the total then have no upper end ("at least"), in JSON, Markdown, the
    paragraph and LaTeX. A laptop's factor includes its GPU and keeps its published range."""
    path = str(tmp_path / "r.sqlite")
    _record(path, gpus=2)
    settings = resolve({"hardware": hardware}, environ={})
    facts = statement_facts(path, project="p", settings=settings)
    embodied, total = facts["totals"]["embodied_g"], facts["totals"]["total_g"]
    assert embodied["lower_bound"] is total["lower_bound"] is facts["methods"]["embodied"]["lower_bound"] is lower
    md, latex = render(facts, "md"), render(facts, "latex")
    said = "The embodied figure is a lower bound"
    assert (said in md) is lower and (said in latex) is lower
    paragraph = md.split("## Appendix")[0]
    assert ("at least" in paragraph) is lower
    if lower:
        assert embodied["low"] <= embodied["value"]  # the machine's range's low end, its GPUs' bound added
        assert f"| at least {_shown(embodied['low'])} |" in md.replace(" CO2e |", " |")
    else:
        assert embodied["low"] < embodied["value"] < embodied["high"]


def test_gpus_counted_nowhere_make_no_lower_bound(tmp_path):
    path = str(tmp_path / "r.sqlite")
    _record(path, gpus=0)
    facts = statement_facts(path, project="p", settings=resolve({"hardware": "workstation"}, environ={}))
    assert facts["totals"]["embodied_g"]["lower_bound"] is False
    assert "at least" not in render(facts, "md")


def _shown(grams: float) -> str:
    from notebook_carbon.units import emissions_text

    return emissions_text(grams).removesuffix(" CO2e")


@pytest.mark.parametrize(("setting", "years"), [({"hardware": "gpu-server"}, (6, 9)),
                                                ({"hardware": "workstation"}, (4, 6)),
                                                ({"hardware": "gpu-server", "lifetime_years": 5}, (5, 7.5))])  # fmt: skip
def test_longer_hardware_life_starts_from_the_lifespan_the_factor_used(tmp_path, setting, years):
    """A gpu-server's factor is amortised over BLOOM's 6 years: "longer life" is then 9 instead of 6
    years, never 6 instead of the 4 of the setting it did not use; a set lifetime is its own start."""
    path = str(tmp_path / "r.sqlite")
    _record(path, gpus=8)
    facts = statement_facts(path, project="p", settings=resolve(setting, environ={}))
    ext = facts["lifetime_extension"]
    assert (ext["from_years"], ext["to_years"]) == years
    assert ext["after_g"] == pytest.approx(facts["totals"]["embodied_g"]["value"] * years[0] / years[1])
    assert f"At {years[1]:g} instead of {years[0]:g} years of service" in render(facts, "md")


def _tracked(tmp_path, wue: float, source: str | None = None, *, name: str = "a", **extra) -> str:
    """One block recorded by ``track()`` with a fake 200 W GPU, ``wue`` set when it ran."""
    location = str(tmp_path / "r.sqlite")
    detection = Detection(meters=(FakeMeter("gpu", "nvml-counter", "GPU 0: fake", 200.0, model="fake"),), notes=())
    settings = Settings(registry=location, region="FR", project="p", wue_l_per_kwh=wue, wue_source=source, **extra)
    session = Session(settings, detection=detection)
    with track(name, session=session, quiet=True):
        sum(range(10_000))
    assert session.writer().flush(10)
    return location


def test_water_states_the_wue_the_runs_were_recorded_with_not_todays_setting(tmp_path):
    """Runs recorded at 0.5 L/kWh with no source given, the setting 1.8 today: the statement states
    0.5, and that no source was given for it; water recorded without a note (imported, or older)
    says its source was not recorded."""
    location = _tracked(tmp_path, 0.5)
    facts = statement_facts(location, project="p", settings=Settings(wue_l_per_kwh=1.8, wue_source="today's"))
    wue = facts["methods"]["disclosure"]["wue"]
    assert wue == {"l_per_kwh": 0.5, "recorded": [0.5], "source": "its source was not given"}
    assert facts["methods"]["wue_l_per_kwh"] == 0.5
    md = render(facts, "md")
    assert "water usage effectiveness of 0.5 L/kWh (its source was not given)" in md and "1.8 L/kWh" not in md
    path = str(tmp_path / "bare.sqlite")
    _runs(path, [{"energy_j": 3.6e6, "water_l": 0.7}])
    wue = statement_facts(path, project="p", settings=Settings(wue_l_per_kwh=1.8))["methods"]["disclosure"]["wue"]
    assert wue["source"] == "as set when the runs ran; its source was not recorded"


def test_the_wue_source_setting_is_stated_beside_the_figure_it_gave(tmp_path):
    source = "the operator's 2025 environmental report, table 4 & 50% {x}"
    location = _tracked(tmp_path, 0.5, source)
    settings = Settings(wue_l_per_kwh=0.5, wue_source=source)
    facts = statement_facts(location, project="p", settings=settings)
    assert facts["methods"]["disclosure"]["wue"]["source"] == source
    assert f"of 0.5 L/kWh ({source})".replace("&", r"\&") in render(facts, "md")  # a Markdown escape
    assert r"table 4 \& 50\% \{x\}" in render(facts, "latex")
    # two WUEs recorded: both stated, no single figure claimed
    with Registry.open(location) as reg:
        reg.record_run({"uid": new_uid(), "project": "p", "started_at": 1.8e9},
                       {"status": "ok", "energy_j": 3.6e6, "water_l": 1.2, "duration_s": 1.0})
    facts = statement_facts(location, project="p", settings=settings)
    wue = facts["methods"]["disclosure"]["wue"]
    assert wue["l_per_kwh"] is None and wue["recorded"] == [0.5, 1.2]
    assert wue["source"] == f"0.5 L/kWh: {source}; 1.2 L/kWh: as set when the runs ran; its source was not recorded"
    assert "water usage effectiveness of 0.5, 1.2 L/kWh" in render(facts, "md")


def test_each_runs_resource_share_and_how_it_was_found_is_stated(tmp_path):
    """The share of the machine a run was charged for embodied emissions (the SCI's RR / ToR) and
    the rule that found it, as ``track()`` recorded them, are in the statement's methods."""
    location = _tracked(tmp_path, 0.5, hardware="server", resource_share=0.03125)
    facts = statement_facts(location, project="p", settings=Settings())
    (note,) = facts["methods"]["disclosure"]["embodied"]["notes"]
    assert note.startswith("server with 1 GPU, 1365 kg CO2e amortised over 4 years (SCI time-share)")
    assert "resource share 0.03125 (0.03125 of the machine, as the user set it)" in note
    assert "a lower bound: the 150 kg per GPU is one" in note
    md = render(facts, "md")
    assert f"As recorded with the runs: {note}." in md
    assert "resource share 0.03125" in render(facts, "latex")
    json.dumps(facts)  # JSON-ready


def test_a_fallback_tdp_is_said_to_be_outside_the_estimates_range(tmp_path):
    path = str(tmp_path / "r.sqlite")
    note = ("fallback TDP, a guess: CPU model 'AMD EPYC' not found in codecarbon's CPU table; assumed 4 W x 2 "
            "threads = 8 W (set cpu_tdp_w to correct it)")
    for guessed in (True, False):
        with Registry.open(path) as reg:
            reg.record_run({"uid": new_uid(), "project": "fallback" if guessed else "table", "started_at": 1.8e9,
                            "notes": [note if guessed else "TDP 65 W for Intel Core i5-12400 (codecarbon CPU table)"]},
                           {"status": "ok", "energy_j": 3.6e6, "cpu_energy_j": 3.6e6, "cpu_method": "estimate-tdp",
                            "duration_s": 10.0})  # fmt: skip
    caveat = "A fallback TDP is a guess, and an error in it is not within the estimate's range."
    for project, guessed in (("fallback", True), ("table", False)):
        facts = statement_facts(path, project=project, settings=Settings())
        assert facts["methods"]["disclosure"]["tdp"]["fallback"] is guessed
        md = impact_statement(path, project=project, settings=Settings(), format="md")
        assert (caveat in md) is guessed
        assert ("fallback TDP, a guess: CPU model 'AMD EPYC'" in md) is guessed and "set cpu_tdp_w" not in md
        assert (caveat in render(facts, "latex")) is guessed


def test_the_embodied_method_is_the_one_the_runs_recorded_whatever_the_settings_today(tmp_path):
    """Runs recorded on a gpu-server with 2 GPUs (6 years at 85 % use, a lower bound): a statement
    made with other settings today (auto: a workstation here; a laptop) still states the factor,
    lifespan, lower bound and longer life of what was recorded, and the same figure."""
    location = str(tmp_path / "r.sqlite")
    gpus = tuple(FakeMeter("gpu", "nvml-counter", f"GPU {i}: fake", 250.0, model="fake") for i in range(2))
    session = Session(Settings(registry=location, region="DE", project="p", hardware="gpu-server"),
                      detection=Detection(meters=gpus, notes=()))  # fmt: skip
    with track("a", session=session, quiet=True):
        sum(range(10_000))
    assert session.writer().flush(10)
    stated = {}
    for today in ({}, {"hardware": "laptop"}, {"hardware": "workstation", "lifetime_years": 5}):
        facts = statement_facts(location, project="p", settings=Settings(**today))
        method, embodied = facts["methods"]["embodied"], facts["totals"]["embodied_g"]
        assert method["source"].startswith("gpu-server: with 2 GPUs 2.8 t CO2e; 2,500 kg per server"), today
        assert "workstation" not in method["source"] and "laptop" not in method["source"]
        assert "6-year lifetime at 85 % use" in method["basis"] and method["lower_bound"] and embodied["lower_bound"]
        assert (facts["lifetime_extension"]["from_years"], facts["lifetime_extension"]["to_years"]) == (6, 9)
        assert embodied["low"] == embodied["high"] == embodied["value"]  # no range published, a lower bound
        stated[str(today)] = embodied["value"]
    assert len(set(stated.values())) == 1


def test_a_wue_source_set_when_the_runs_ran_is_kept_with_them(tmp_path):
    source = "the operator's 2024 sustainability report"
    location = _tracked(tmp_path, 1.1, source)
    for today in (Settings(), Settings(wue_l_per_kwh=0.3, wue_source="another report")):
        wue = statement_facts(location, project="p", settings=today)["methods"]["disclosure"]["wue"]
        assert wue == {"l_per_kwh": 1.1, "recorded": [1.1], "source": source}


def _runs(path: str, rows: list[dict]) -> None:
    with Registry.open(path) as reg:
        for i, row in enumerate(rows):
            run = {"uid": new_uid(), "project": "p", "started_at": 1.8e9 + i}
            run.update({k: v for k, v in row.items() if k in ("sweep", "is_final", "gpu_count", "code_fingerprint")})
            reg.record_run(run, {"status": "ok", "emissions_g": row["energy_j"] / 3.6e6 * 50, "duration_s": 1.0,
                                 **{k: v for k, v in row.items() if k not in run and k not in ("sweep", "is_final", "gpu_count", "code_fingerprint")}})  # fmt: skip


def test_a_gpu_range_widened_for_a_short_window_is_said(tmp_path):
    """A 0.5 s run read by the GPU's energy counter (updated every 0.1 s) has its GPU range widened:
    the statement counts such runs and says why; a 5 s run is no such run."""
    path = str(tmp_path / "r.sqlite")
    _runs(path, [{"energy_j": 100.0, "gpu_energy_j": 100.0, "gpu_method": "nvml-counter", "duration_s": 0.5},
                 {"energy_j": 900.0, "gpu_energy_j": 900.0, "gpu_method": "nvml-counter", "duration_s": 5.0}])
    facts = statement_facts(path, project="p", settings=Settings())
    short = facts["methods"]["disclosure"]["short_windows"]
    assert short["runs"] == 1 and "ten updates of its reading" in short["basis"]
    assert facts["totals"]["energy_j"]["low"] < 0.95 * 1000  # wider than the counter's own ±5 %
    assert "1 run was too short for the GPU's readings: a GPU figure from a window shorter" in render(facts, "md")
    assert "1 run was too short for the GPU" in render(facts, "latex")


def test_the_paragraph_compares_like_with_like(tmp_path):
    """Results and the whole development in one unit, operational emissions beside operational
    emissions, and the total with embodied emissions said apart; the checklists' counts agree in
    number and give GPU hours."""
    path = str(tmp_path / "r.sqlite")
    _runs(path, [{"sweep": "lr", "energy_j": 2280.0, "is_final": True, "gpu_count": 2, "duration_s": 1800.0},
                 {"sweep": "lr", "energy_j": 6840.0, "gpu_count": 2, "duration_s": 1800.0}])
    facts = statement_facts(path, project="p", settings=Settings(hardware="laptop"))
    paragraph = render(facts, "md").split("## Appendix")[0]
    assert "The runs behind the reported results took 0.633 Wh and emitted 31.7 mg CO2e;" in paragraph
    assert "the whole development took 2.53 Wh" in paragraph and "4× as much energy, and emitted 127 mg CO2e" in paragraph
    assert "With the embodied emissions of the hardware's manufacturing, " in paragraph
    answers = render(facts, "checklist")
    assert "2 metered runs took 1 h 00 min of run time (2 GPU hours)" in answers
    assert "including 0 failed runs and every preliminary run" in answers and "The 1 run behind" in answers
    assert "to be added" not in answers


def test_latex_prose_breaks_only_long_identifiers_and_signs_a_minus(tmp_path):
    from notebook_carbon.statements.escape import latex_prose, latex_typeset

    assert latex_prose("amortised over a gpu-server") == "amortised over a gpu-{}server"  # words left whole
    assert "\\allowbreak{}" in latex_prose("codecarbon/data/private_infra/2024/global_energy_mix.json")
    assert latex_typeset("At 9 instead of 6 years: -{}33\\,\\% (x-{}1)") == "At 9 instead of 6 years: $-$33\\,\\% (x-{}1)"
    location = _tracked(tmp_path, 0.5, hardware="gpu-server")  # its embodied note ends the methods' embodied line
    latex = render(statement_facts(location, project="p", settings=Settings()), "latex")
    assert "$-$33" in latex and "\\penalty300{}" not in latex.split("\\subsection*{Totals}")[0]
    assert "the 150\\,kg per GPU is one. Ranges:" in latex


def test_the_appendix_and_summary_compare_in_one_unit_and_count_in_number(tmp_path, capsys):
    """The overhead sentence gives the results in the development's unit ("one per result"), one
    script's run "was not checked", the GPU count stays with its model, and no two sentences of the
    LaTeX methods run together; the CLI summary agrees."""
    from notebook_carbon.cli import main

    path = str(tmp_path / "r.sqlite")
    _runs(path, [{"sweep": "lr", "is_final": True, "energy_j": 1000.0, "gpu_energy_j": 1000.0,
                  "gpu_method": "nvml-counter", "duration_s": 0.5, "gpu_count": 2},
                 {"sweep": "lr", "energy_j": 2880.0, "duration_s": 10.0}])
    with Registry.open(path) as reg:  # one cell's run among them: the script's runs are the others
        reg.record_run({"uid": new_uid(), "project": "p", "started_at": 1.9e9, "cell_source": "x = 1",
                        "code_fingerprint": "c", "gpu_model": "NVIDIA A100-SXM4-40GB", "gpu_count": 2},
                       {"status": "ok", "energy_j": 10.0, "duration_s": 1.0})  # fmt: skip
    facts = statement_facts(path, project="p", settings=Settings(hardware="laptop"))
    md, latex = render(facts, "md"), render(facts, "latex")
    assert "The final results (1 selected run, one per result) took 0.278 Wh (" in md
    assert "among the 1 run checked for repeats (2 recorded by scripts were not checked)" in md
    assert "one per result) took 0.278\\,Wh" in latex and "2~$\\times$~NVIDIA A100" in latex
    assert re.search(r"[a-z]\.[A-Z]", latex.split("\\subsection*{Totals}")[0].split("\\section")[-1]) is None
    assert main(["summary", "--registry", path, "--project", "p"]) == 0
    out = capsys.readouterr().out
    assert "project p: 3 runs" in out and "vs the 1 selected result 0.278 Wh)" in out

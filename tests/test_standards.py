"""The statement in the formats of standards: SCI for AI (values by hand), a BoAmps report (valid
against Boavizta's published schema) and the Hugging Face model card (significant figures, a
training type only when given, a source that says what is included)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from notebook_carbon.errors import ConfigError
from notebook_carbon.registry import Registry, new_uid
from notebook_carbon.settings import resolve
from notebook_carbon.statements import statement_facts
from notebook_carbon.statements.boamps import boamps_report
from notebook_carbon.statements.render import model_card
from notebook_carbon.statements.sci import sci_for_ai, sci_for_ai_markdown
from notebook_carbon.units import emissions_text

BOAMPS = Path(__file__).parent / "data" / "boamps"
HOUR = 3600.0
KWH = 3.6e6


def _registry(path: str, runs: list[tuple], project: str = "llm") -> str:
    """``runs``: (sweep, status, energy J, embodied g, final); 10 minutes each, PUE 1.2, 50 g/kWh."""
    where = {"pue": 1.2, "intensity_g_per_kwh": 50.0, "intensity_region": "FR", "intensity_source": "test grid 2024",
             "host": "lab-1", "cpu_model": "Xeon Test", "gpu_model": "Test GPU", "gpu_count": 2,
             "attribution": "share"}  # fmt: skip
    with Registry.open(path) as reg:
        for i, (sweep, status, energy, embodied, final) in enumerate(runs):
            reg.record_run(
                {"uid": new_uid(), "project": project, "name": f"run {i}", "sweep": sweep, "code_fingerprint": "c",
                 "cell_source": "train()", "started_at": 1.8e9 + i * HOUR, "is_final": final, **where},
                {"status": status, "energy_j": energy, "emissions_g": energy / KWH * 1.2 * 50.0,
                 "embodied_g": embodied, "duration_s": 600.0, "ended_at": 1.8e9 + i * HOUR + 600.0,
                 "gpu_energy_j": 0.8 * energy, "gpu_method": "nvml-counter",
                 "cpu_energy_j": 0.2 * energy, "cpu_method": "rapl"},
            )  # fmt: skip
    return path


@pytest.fixture
def settings():
    return resolve({"hardware": "workstation", "embodied_kg": 1000.0, "lifetime_years": 4.0}, environ={})


@pytest.fixture
def facts(tmp_path, settings):
    """Three runs of one sweep: two intermediate (one failed) and the final one; 1, 2 and 3 kWh."""
    runs = [
        ("lr", "ok", 1 * KWH, 20.0, False),
        ("lr", "failed", 2 * KWH, 20.0, False),
        ("lr", "ok", 3 * KWH, 20.0, True),
    ]
    return statement_facts(_registry(str(tmp_path / "r.sqlite"), runs), project="llm", settings=settings)


# -- SCI for AI ------------------------------------------------------------------------------------


def test_sci_for_ai_by_hand_includes_every_intermediate_run(facts):
    section = sci_for_ai(facts, functional_unit="token", units=1.2e9)
    # E = 6 kWh x PUE 1.2 = 7.2 kWh; E x I = 7.2 x 50 = 360 g; M = 3 x 20 g = 60 g; C = 420 g
    assert section["e_facility_energy_j"]["value"] == pytest.approx(7.2 * KWH)
    assert section["i_g_per_kwh"] == pytest.approx(50.0)
    assert section["operational_g"]["value"] == pytest.approx(360.0)
    assert section["m_embodied_g"]["value"] == pytest.approx(60.0)
    assert section["c_total_g"]["value"] == pytest.approx(420.0)
    assert section["sci"]["value"] == pytest.approx(420.0 / 1.2e9)
    # the range: the statement's operational range (each method's) plus embodied's, over the same R
    low = facts["totals"]["emissions_g"]["low"] + facts["totals"]["embodied_g"]["low"]
    high = facts["totals"]["emissions_g"]["high"] + facts["totals"]["embodied_g"]["high"]
    assert section["sci"]["low"] == pytest.approx(low / 1.2e9) and section["sci"]["high"] == pytest.approx(
        high / 1.2e9
    )
    assert low < 420.0 < high
    b = section["boundary"]
    assert (b["persona"], b["runs"], b["failed_runs"]) == ("provider", 3, 1)
    assert "intermediate" in b["includes"]
    assert section["results_operational_g"] == pytest.approx(180.0)  # the final run alone: 3 kWh x 1.2 x 50
    assert section["development_ratio"] == pytest.approx(2.0)
    assert (
        section["functional_unit"]["per"] == "training token" and section["functional_unit"]["values"] is None
    )
    json.dumps(section)  # JSON-ready


def test_sci_for_ai_per_billion_parameters_and_without_a_unit(facts):
    per_parameter = sci_for_ai(
        facts, functional_unit="parameter", units=7e9, values="gross", rationale="size"
    )
    assert per_parameter["functional_unit"]["r"] == pytest.approx(7.0)
    assert per_parameter["sci"]["value"] == pytest.approx(60.0)  # 420 g / 7 billion parameters
    text = sci_for_ai_markdown(per_parameter)
    assert "**60 g CO2e per billion parameters**" in text and "| gross |" in text and "because: size" in text
    bare = sci_for_ai(facts)
    assert (
        bare["sci"] is None
        and bare["functional_unit"] is None
        and bare["c_total_g"]["value"] == pytest.approx(420)
    )
    assert "No functional unit was given" in sci_for_ai_markdown(bare)
    tokens = sci_for_ai_markdown(sci_for_ai(facts, functional_unit="token", units=1.2e9))
    assert "**3.5 \u00d7 10^-7 g CO2e per training token**" in tokens
    assert "| C = E \u00d7 I + M | 420 g CO2e |" in tokens


@pytest.mark.parametrize("kwargs", [
    {"functional_unit": "token"}, {"units": 5}, {"functional_unit": "epoch", "units": 5},
    {"functional_unit": "token", "units": 0}, {"functional_unit": "token", "units": float("nan")},
    {"functional_unit": "token", "units": "many"}, {"functional_unit": "token", "units": 5, "values": "net"},
])  # fmt: skip
def test_sci_for_ai_refuses_what_is_not_a_functional_unit(facts, kwargs):
    with pytest.raises(ConfigError):
        sci_for_ai(facts, **kwargs)


# -- BoAmps ----------------------------------------------------------------------------------------


def _boamps_validator():
    import jsonschema
    from referencing import Registry as Schemas
    from referencing import Resource

    schemas = {p.name: json.loads(p.read_text()) for p in BOAMPS.glob("*_schema.json")}
    base = "https://raw.githubusercontent.com/Boavizta/BoAmps/main/model/"
    resources = Schemas().with_resources(
        (base + name, Resource.from_contents(schema, default_specification=_draft4()))
        for name, schema in schemas.items()
    )
    jsonschema.Draft4Validator.check_schema(schemas["report_schema.json"])
    return jsonschema.Draft4Validator(schemas["report_schema.json"], registry=resources)


def _draft4():
    from referencing.jsonschema import DRAFT4

    return DRAFT4


def test_boamps_report_is_valid_against_the_published_schema(facts):
    validator = _boamps_validator()
    report = boamps_report(facts, report_id="00000000-0000-4000-8000-000000000000")
    validator.validate(report)
    measure = report["measures"][0]
    assert measure["powerConsumption"] == pytest.approx(6.0)  # kWh, IT energy of all three runs
    assert measure["measurementDuration"] == pytest.approx(1800.0)
    assert (measure["cpuTrackingMode"], measure["gpuTrackingMode"]) == ("rapl", "nvml")
    assert report["environment"] == {"country": "FR", "powerSourceCarbonIntensity": pytest.approx(50.0)}
    assert report["quality"] == "high"  # +/-6 %
    assert report["task"]["taskStage"] == "unknown" and report["header"]["reportStatus"] == "draft"
    gpu = next(c for c in report["infrastructure"]["components"] if c["componentType"] == "gpu")
    assert (gpu["nbComponent"], gpu["componentName"]) == (2, "2 x Test GPU")
    # what the user knows, in the format's own fields, is kept; the result is still valid
    given = boamps_report(
        facts, task_stage="training", task_family="text generation", infra_type="onPremise", licensing="CC-BY-4.0",
        algorithms=[{"algorithmType": "llm", "parametersNumber": 7}], datasets=[{"dataUsage": "input", "dataType": "token"}],
        publisher={"name": "a lab", "confidentialityLevel": "public"}, report_status="final",
    )  # fmt: skip
    validator.validate(given)
    assert given["task"]["algorithms"] == [{"algorithmType": "llm", "parametersNumber": 7}]
    with pytest.raises(ConfigError):
        boamps_report(facts, infra_type="cloud")
    # the referenced schemas are enforced too: a measure without its energy, a component without its count
    import jsonschema

    broken = json.loads(json.dumps(report))
    del broken["measures"][0]["powerConsumption"]
    with pytest.raises(jsonschema.ValidationError, match="powerConsumption"):
        validator.validate(broken)
    broken = json.loads(json.dumps(report))
    del broken["infrastructure"]["components"][0]["nbComponent"]
    with pytest.raises(jsonschema.ValidationError, match="nbComponent"):
        validator.validate(broken)


def test_boamps_report_of_an_empty_selection_is_still_valid(tmp_path, settings):
    path = _registry(str(tmp_path / "r.sqlite"), [("lr", "ok", KWH, 1.0, True)])
    empty = statement_facts(path, project="nobody", settings=settings)
    report = boamps_report(empty)
    _boamps_validator().validate(report)
    assert report["measures"][0]["powerConsumption"] == 0 and "quality" not in report


def test_the_schema_is_the_published_one_with_its_licence():
    readme = (BOAMPS / "README.md").read_text()
    assert "https://github.com/Boavizta/BoAmps" in readme and "1.1.0" in readme and "CC BY 4.0" in readme
    assert "creativecommons.org/licenses/by/4.0" in (BOAMPS / "LICENSE.md").read_text()


# -- model card ------------------------------------------------------------------------------------


def test_a_project_of_a_fraction_of_a_milligram_prints_a_non_zero_figure(tmp_path, settings):
    from huggingface_hub import ModelCard, ModelCardData

    # 0.4 mg at 1.2 x 50 g/kWh: 0.0004 / 60 kWh
    path = _registry(
        str(tmp_path / "r.sqlite"), [(None, "ok", 0.0004 / 60.0 * KWH, 0.0, True)], project="tiny"
    )
    facts = statement_facts(path, project="tiny", settings=settings)
    assert facts["totals"]["emissions_g"]["value"] == pytest.approx(0.0004)
    text = model_card(facts)
    co2 = ModelCard(text + "\n# A model\n").data.co2_eq_emissions
    assert co2["emissions"] == pytest.approx(0.0004) and co2["emissions"] > 0
    assert ModelCardData(co2_eq_emissions=co2).to_dict()["co2_eq_emissions"]["emissions"] == pytest.approx(
        0.0004
    )
    assert "training_type" not in co2
    assert "operational emissions only" in co2["source"] and "not included" in co2["source"]


def test_training_type_only_when_given_and_the_source_says_what_is_included(facts):
    from huggingface_hub import ModelCard

    assert "training_type" not in model_card(facts)
    co2 = ModelCard(model_card(facts, training_type="fine-tuning") + "\n").data.co2_eq_emissions
    assert co2["training_type"] == "fine-tuning" and co2["emissions"] == pytest.approx(360.0)
    both = ModelCard(model_card(facts, include_embodied=True) + "\n").data.co2_eq_emissions
    assert both["emissions"] == pytest.approx(420.0) and "and embodied emissions" in both["source"]
    assert "3 metered runs of project llm, every sweep" in both["source"]
    with pytest.raises(ConfigError):
        model_card(facts, training_type="pretraining")


def test_model_card_figures_keep_three_significant_figures(facts):
    import yaml

    facts = json.loads(json.dumps(facts))
    for grams, shown in ((1234567.0, 1230000.0), (0.00012345, 0.000123), (2.0e-7, 2.0e-7), (0.0, 0.0)):
        facts["totals"]["emissions_g"]["value"] = grams
        metadata = yaml.safe_load(model_card(facts)[len("---\n") : -len("---\n")])
        assert metadata["co2_eq_emissions"]["emissions"] == pytest.approx(shown, rel=1e-12)


def _one_run(tmp_path) -> str:
    """A registry of one run of project p: 1 kWh measured, 50 g CO2e, 10 g embodied."""
    location = str(tmp_path / "cli.sqlite")
    with Registry.open(location) as reg:
        reg.record_run({"uid": new_uid(), "project": "p", "started_at": 1.75e9},
                       {"status": "ok", "energy_j": 3.6e6, "cpu_energy_j": 3.6e6, "cpu_method": "rapl",
                        "intensity_g_per_kwh": 50.0, "pue": 1.0, "emissions_g": 50.0, "embodied_g": 10.0})  # fmt: skip
    return location


def test_the_command_line_writes_the_standard_forms(tmp_path, capsys):
    """``notebook-carbon statement --format sci-ai|boamps|model-card``: the functions above, from the CLI."""
    import json

    from notebook_carbon.cli import main

    location = _one_run(tmp_path)
    assert main(["statement", "--registry", location, "--project", "p", "--format", "sci-ai",
                 "--functional-unit", "token=1e6"]) == 0  # fmt: skip
    assert "g CO2e per training token" in capsys.readouterr().out
    assert main(["statement", "--registry", location, "--project", "p", "--format", "boamps"]) == 0
    assert json.loads(capsys.readouterr().out)["header"]
    assert main(["statement", "--registry", location, "--project", "p", "--format", "model-card"]) == 0
    assert "training_type" not in capsys.readouterr().out
    with pytest.raises(SystemExit):
        main(["statement", "--registry", location, "--project", "p", "--format", "sci-ai", "--functional-unit", "token"])


def test_the_sci_for_ai_options_and_its_json_form_from_the_command_line(tmp_path, capsys):
    import json

    from notebook_carbon.cli import main

    location = _one_run(tmp_path)
    common = ["statement", "--registry", location, "--project", "p", "--functional-unit", "token=1e6",
              "--sci-values", "effective", "--sci-rationale", "tokens seen in training"]  # fmt: skip
    assert main([*common, "--format", "sci-ai"]) == 0
    text = capsys.readouterr().out
    assert "| effective |" in text and "Functional unit chosen because: tokens seen in training" in text
    assert "gross or effective not stated" not in text
    assert main([*common, "--format", "sci-ai-json"]) == 0
    section = json.loads(capsys.readouterr().out)
    assert section["functional_unit"]["values"] == "effective" and section["sci"]["value"] == pytest.approx(60.0 / 1e6)


def test_a_lower_bound_embodied_figure_leaves_c_and_the_sci_without_an_upper_end(tmp_path):
    """On a server with GPUs the embodied figure is a lower bound: SCI for AI's M, C and SCI say "at
    least" and carry lower_bound, and a model card that includes embodied emissions says so."""
    from notebook_carbon.settings import resolve
    from notebook_carbon.statements import statement_facts
    from notebook_carbon.statements.render import render

    location = str(tmp_path / "gpu.sqlite")
    with Registry.open(location) as reg:
        reg.record_run({"uid": new_uid(), "project": "p", "started_at": 1.75e9, "gpu_count": 2},
                       {"status": "ok", "energy_j": 3.6e6, "gpu_energy_j": 3.6e6, "gpu_method": "nvml-counter",
                        "intensity_g_per_kwh": 50.0, "pue": 1.0, "emissions_g": 50.0, "duration_s": 36000.0})  # fmt: skip
    facts = statement_facts(location, project="p", settings=resolve({"hardware": "server"}, environ={}))
    section = sci_for_ai(facts, functional_unit="token", units=1e6)
    assert section["m_embodied_g"]["lower_bound"] and section["c_total_g"]["lower_bound"]
    assert section["sci"]["lower_bound"]
    text = sci_for_ai_markdown(section)
    assert f"| at least {emissions_text(section['m_embodied_g']['low'])} |" in text
    assert "M is a lower bound" in text and "C and the SCI have no upper end" in text
    rows = text.splitlines()
    c_row = next(i for i, line in enumerate(rows) if line.startswith("| C = E"))
    assert rows[c_row + 1].startswith("| R, ") and rows[c_row + 2].startswith("| **SCI = C / R**")  # one table
    assert "at least" in text.split("**SCI = C / R**")[1].splitlines()[0]
    import yaml

    card = yaml.safe_load(render(facts, "model-card", include_embodied=True).split("---")[1])
    assert "a lower bound as the per-GPU factor it rests on is one" in card["co2_eq_emissions"]["source"]
    assert "1 metered run of project p" in card["co2_eq_emissions"]["source"]
    laptop = statement_facts(location, project="p", settings=resolve({"hardware": "laptop"}, environ={}))
    assert not sci_for_ai(laptop)["c_total_g"]["lower_bound"]
    assert "lower bound" not in render(laptop, "model-card", include_embodied=True)


@pytest.mark.parametrize(("grams", "tokens", "shown"), [(0.5, 1e3, "5 \u00d7 10^-4"), (60.0, 1e6, "6 \u00d7 10^-5"),
                                                      (1.2345, 1e4, "1.23 \u00d7 10^-4"), (5.0, 1e3, "0.005")])  # fmt: skip
def test_an_sci_between_a_ten_thousandth_and_a_thousandth_of_a_gram_is_printed(tmp_path, grams, tokens, shown):
    """0.5 g over 1,000 tokens is 5 x 10^-4 g per token: printing it crashed (a 3-digit format
    writes no exponent down to 10^-4)."""
    location = str(tmp_path / "r.sqlite")
    with Registry.open(location) as reg:
        reg.record_run({"uid": new_uid(), "project": "p", "started_at": 1.75e9},
                       {"status": "ok", "energy_j": 3.6e6, "cpu_energy_j": 3.6e6, "cpu_method": "rapl",
                        "intensity_g_per_kwh": 50.0, "pue": 1.0, "emissions_g": grams, "embodied_g": 0.0})  # fmt: skip
    facts = statement_facts(location, project="p", settings=resolve({"reused_hardware": True}, environ={}))
    text = sci_for_ai_markdown(sci_for_ai(facts, functional_unit="token", units=tokens))
    assert f"**{shown} g CO2e per training token**" in text

"""The main job end to end: the quickstart notebook executed headlessly in a real kernel (nbclient)
records its runs in a temp registry, and the CLI lists them."""

from __future__ import annotations

import json

import nbformat
import pytest

from notebook_carbon.cli import main
from notebook_carbon.registry import new_uid
from notebook_carbon.registry.metrics import latest_metrics
from notebook_carbon.registry.store import Registry


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """The demo run where an earlier demo left a registry with one run: it starts a fresh one."""
    out = tmp_path_factory.mktemp("demo")
    _earlier(out / "registry.sqlite")
    return out, main(["demo", "--out", str(out), "--timeout", "120"])


def _earlier(path) -> None:
    with Registry.open(str(path)) as reg:
        reg.record_run({"uid": new_uid(), "project": "default", "name": "earlier demo", "started_at": 1.7e9},
                       {"status": "ok", "energy_j": 1.0})


def test_a_second_demo_starts_fresh_and_keeps_the_earlier_registry(demo):
    out, _ = demo
    (kept,) = [p for p in out.glob("registry-*.sqlite")]
    with Registry.open(str(kept), read_only=True) as reg:
        assert [r["name"] for r in reg.runs()] == ["earlier demo"]
    with Registry.open(str(out / "registry.sqlite"), read_only=True) as reg:
        assert "earlier demo" not in [r["name"] for r in reg.runs()] and len(reg.runs()) == 5


def test_the_demo_says_what_it_keeps_and_what_it_adds_to(tmp_path, capsys):
    from notebook_carbon.cli_demo import _say_appending, _set_aside

    registry = tmp_path / "registry.sqlite"
    _earlier(registry)
    _say_appending(str(registry), given=False)
    said = capsys.readouterr().out
    assert "adding to" in said and "which has 1 run already" in said and "leave out --append" in said
    _set_aside(registry)
    said = capsys.readouterr().out
    assert "an earlier demo's registry was kept as" in said and "--append records into the earlier one" in said
    assert not registry.exists() and len(list(tmp_path.glob("registry-*.sqlite"))) == 1
    _earlier(registry)
    _set_aside(registry)  # a second one the same second: another name, nothing overwritten
    assert len(list(tmp_path.glob("registry-*.sqlite"))) == 2


def test_demo_executes_the_quickstart_and_records_its_runs(demo, capsys):
    out, code = demo
    assert code == 0
    registry = Registry.open(str(out / "registry.sqlite"))
    try:
        runs = list(reversed(registry.runs()))
    finally:
        registry.close()
    assert [r["status"] for r in runs] == ["ok"] * 5
    assert [r["name"] for r in runs] == ["baseline", None, None, "lr=2.0", "lr=4.0"]
    assert [r["params"].get("lr") for r in runs] == [0.1, 0.5, 1.0, 2.0, 4.0]
    assert [r["sweep"] for r in runs[1:]] == ["lr-sweep"] * 4
    assert all(r["intensity_region"] == "FR" for r in runs)
    assert all(r["energy_j"] > 0 and r["emissions_g"] > 0 for r in runs)
    assert all(r["notebook"] == str(out / "quickstart.ipynb") for r in runs)
    assert all(r["cpu_method"] in ("rapl", "estimate-tdp") for r in runs)
    with Registry.open(str(out / "registry.sqlite")) as registry:
        logged = latest_metrics(registry, [r["uid"] for r in runs])
    assert [sorted(logged.get(r["uid"], {})) for r in runs] == [[], ["acc"], ["acc"], ["acc"], ["acc"]]
    assert all(0.5 < logged[r["uid"]]["acc"] <= 1.0 for r in runs[1:])


def test_demo_ends_with_the_statement_and_a_chart(demo):
    out, _ = demo
    markdown = (out / "statement.md").read_text()
    # the paragraph for a paper's main text comes first, then the appendix
    assert markdown.startswith("## Environmental impact\n") and "5 metered runs" in markdown
    assert "## Appendix: environmental impact statement" in markdown
    assert "| lr-sweep | 4 |" in markdown and "Development overhead" in markdown
    assert "the carbon intensity of France (FR), 56 g CO2e/kWh (" in markdown and ", data year 20" in markdown
    assert (out / "statement.tex").read_text().rstrip().endswith(r"\end{document}")
    facts = json.loads((out / "statement.json").read_text())
    assert facts["totals"]["runs"] == 5 and facts["development"]["sweeps"] == 2
    # (issue 17) the sweep's runs logged their accuracy: its result is weighed against its energy
    (tradeoff,) = facts["tradeoffs"]
    assert (tradeoff["sweep"], tradeoff["metric"], tradeoff["runs"], tradeoff["selected"]["run_id"]) == ("lr-sweep", "acc", 4, 5)
    assert "In “lr-sweep”, the selected run 5 (the latest; none was marked final) reached acc 0.9" in markdown
    assert "In ``lr-{}sweep'', the selected run 5" in (out / "statement.tex").read_text()
    svg = (out / "cumulative-emissions.svg").read_text()
    assert svg.startswith("<svg") and "</svg>" in svg


def test_demo_notebook_outputs_show_summaries_and_no_errors(demo):
    out, _ = demo
    nb = nbformat.read(out / "quickstart.ipynb", as_version=4)
    outputs = [o for cell in nb.cells if cell.cell_type == "code" for o in cell.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    text = "\n".join(o.get("text", "") for o in outputs if o.output_type == "stream")
    assert "carbon [baseline]: " in text and "FR grid" in text
    assert "status ok" in text  # %carbon last
    results = [o for o in outputs if o.output_type == "execute_result"]
    assert results and all(json.dumps(r["data"]) for r in results)


def test_runs_command_lists_the_demo_runs(demo, capsys):
    out, _ = demo
    capsys.readouterr()
    assert main(["runs", "--registry", str(out / "registry.sqlite"), "--limit", "3"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[:3] == ["id", "status", "name"]
    assert [line.split()[0] for line in lines[1:]] == ["3", "4", "5"]


def test_runs_command_rejects_a_bad_limit(capsys):
    with pytest.raises(SystemExit) as exited:
        main(["runs", "--limit", "0"])
    assert exited.value.code == 2 and "argument --limit: must be from 1 to 1,000,000" in capsys.readouterr().err


def test_regions_command_lists_and_filters(capsys):
    assert main(["regions", "france"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("FR ") and "g/kWh" in out
    assert main(["regions", "no-such-place"]) == 1


def test_bad_command_exits_2(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["frobnicate"])
    assert exc.value.code == 2


def test_demo_with_relative_paths_records_where_it_says(tmp_path, monkeypatch, capfd):
    """The kernel runs inside OUT: relative paths must be resolved before it starts."""
    monkeypatch.chdir(tmp_path)
    assert main(["demo", "--out", "rel-demo", "--registry", "rel.sqlite", "--timeout", "120"]) == 0
    out = capfd.readouterr()  # file-descriptor level: the kernel process writes there directly
    assert f"registry: {tmp_path / 'rel.sqlite'}" in out.out
    assert "WARNING" not in out.err  # the kernel's start-up chatter is not the demo's output
    with Registry.open(str(tmp_path / "rel.sqlite")) as registry:
        assert len(registry.runs()) == 5
    assert (tmp_path / "rel-demo" / "quickstart.ipynb").is_file()


def test_sweeps_command_on_the_demo_registry(demo, capsys):
    out, _ = demo
    capsys.readouterr()
    assert main(["sweeps", "--registry", str(out / "registry.sqlite"), "--project", "default"]) == 0
    text = capsys.readouterr().out
    assert "project default: 2 sweeps" in text
    line = next(line for line in text.splitlines() if line.startswith("lr-sweep"))
    assert line.split()[1] == "4" and "lr: 0.5, 1.0, 2.0, 4.0" in line and "(latest ok)" in line

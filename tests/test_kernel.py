"""The magic in a real Jupyter kernel (nbclient): what a researcher sees in the notebook's outputs."""

from __future__ import annotations

import os

import nbformat
import pytest
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

from notebook_carbon.registry.store import Registry


def run_notebook(tmp_path, cells: list[str], *, allow_errors: bool = False):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(source) for source in cells]
    registry = tmp_path / "kernel.sqlite"
    env = {"NOTEBOOK_CARBON_REGISTRY": str(registry), "NOTEBOOK_CARBON_REGION": "FR"}
    client = NotebookClient(nb, timeout=120, kernel_name="python3", allow_errors=allow_errors)
    client.execute(env={**os.environ, **env})
    with Registry.open(str(registry)) as reg:
        runs = list(reversed(reg.runs()))
    return nb, runs


def outputs(cell) -> list[tuple[str, str]]:
    result = []
    for out in cell.outputs:
        if out.output_type == "stream":
            result.append((out.name, out.text))
        elif out.output_type == "execute_result":
            result.append(("result", out.data["text/plain"]))
        elif out.output_type == "display_data":
            result.append(("display", out.data.get("text/plain", "")))
        elif out.output_type == "error":
            result.append(("error", out.ename))
    return result


def test_outputs_in_order_and_one_error_output_per_failing_cell(tmp_path):
    nb, runs = run_notebook(
        tmp_path,
        [
            "%load_ext notebook_carbon",
            "%%carbon --name shown\nfrom IPython.display import display\ndisplay('via display')\nprint('printed')\n21 * 2",
            "%%carbon --name broken\nraise RuntimeError('model diverged')",
            "after = 'not reached in Run All'",
        ],
        allow_errors=True,
    )
    shown, broken = nb.cells[1], nb.cells[2]
    kinds = outputs(shown)
    assert ("display", "'via display'") in kinds and ("result", "42") in kinds
    stdout = "".join(text for kind, text in kinds if kind == "stdout")
    # ipykernel batches stdout on its own schedule, so "printed" may share a stream output with
    # the summary; what must hold is the cell's own output first and the summary last, after Out.
    assert stdout.startswith("printed\n") and stdout.count("carbon [shown]: ") == 1
    assert kinds[-1][0] == "stdout" and kinds[-1][1].splitlines()[-1].startswith("carbon [shown]: ")
    assert kinds.index(("result", "42")) < len(kinds) - 1
    broken_outputs = outputs(broken)
    assert [o for o in broken_outputs if o[0] == "error"] == [("error", "RuntimeError")]  # exactly one
    assert broken_outputs[-1][1].startswith("carbon [broken] (failed): ")
    assert [(r["name"], r["status"]) for r in runs] == [("shown", "ok"), ("broken", "failed")]
    assert runs[1]["error"] == "RuntimeError: model diverged"


def test_a_failing_metered_cell_stops_run_all(tmp_path):
    with pytest.raises(CellExecutionError, match="model diverged"):
        run_notebook(
            tmp_path,
            ["%load_ext notebook_carbon", "%%carbon\nraise RuntimeError('model diverged')", "never = 1"],
        )


def test_bad_arguments_in_a_kernel_are_a_usage_error_without_traceback(tmp_path):
    nb, runs = run_notebook(
        tmp_path, ["%load_ext notebook_carbon", "%%carbon --nmae typo\nran = True", "'ran' in dir()"], allow_errors=True
    )
    # IPython shows every UsageError as a short message on stderr, never a traceback
    (stream,) = nb.cells[1].outputs
    assert stream.name == "stderr" and stream.text.startswith("UsageError: unrecognized arguments: --nmae typo")
    assert "Traceback" not in stream.text
    assert nb.cells[2].outputs[0].data["text/plain"] == "False"  # the body did not run
    assert runs == []


def test_bad_arguments_stop_run_all(tmp_path):
    with pytest.raises(CellExecutionError, match="UsageError"):
        run_notebook(tmp_path, ["%load_ext notebook_carbon", "%%carbon --nmae typo\nran = True", "never = 1"])


def test_the_dashboard_leaves_a_static_snapshot_that_nbconvert_shows(tmp_path):
    """A dashboard is a widget, which a saved notebook without its kernel cannot draw: its output
    also carries the dashboard as HTML with its charts as inline SVG, replaced as the dashboard
    refreshes, and ``nbconvert --to html`` (which has no widget state) shows that."""
    from nbconvert import HTMLExporter

    nb, runs = run_notebook(tmp_path, [
        "%load_ext notebook_carbon",
        "%%carbon --name first --sweep lr\nx = 1",
        "%carbon dashboard",
        "%%carbon --name second --sweep lr\nx = 2",
        "y = 3",  # its pre_run_cell sends the refreshed snapshot
    ])  # fmt: skip
    assert [r["name"] for r in runs] == ["first", "second"]
    (output,) = [o for o in nb.cells[2].outputs if o.output_type == "display_data"]
    assert "application/vnd.jupyter.widget-view+json" in output.data
    static = output.data["text/html"]
    assert 'class="nc-dashboard nc-static"' in static and static.count("<svg") == 2
    assert 'data-nc-value="2"' in static  # the second run is in it: replaced after the refresh
    # as JupyterLab saves a notebook by default, without the widgets' state (nbclient keeps it)
    nb.metadata.pop("widgets", None)
    html, _ = HTMLExporter().from_notebook_node(nb)
    assert 'class="nc-dashboard nc-static"' in html and html.count("<svg") >= 2
    assert "nc-total-project-runs" in html and "Cumulative emissions" in html

"""The REST endpoints through a real Jupyter server (pytest-jupyter's ``jp_fetch``): any query
parameters get 200 or a 400 saying what to send, never a 500; and one absurd row (an infinite
param or figure, a start in the year 1) still gets valid JSON from every endpoint.
"""

from __future__ import annotations

import json
import math
import sqlite3

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st
from pytest_jupyter.jupyter_server import *  # noqa: F403  (jp_fetch, jp_serverapp and what they need)
from traitlets.config import Config

from notebook_carbon.record import check_figure
from notebook_carbon.registry import Registry, new_uid
from notebook_carbon.server.handlers import PREFIX, ROUTES

PROJECT = "proj"
HOUR = 3600.0


@pytest.fixture
def spoiled(tmp_path):
    """Project proj: four runs of sweep lr and one in no sweep; then, by hand, run 2's energy
    infinite, run 3's start in the year 1 and run 4's params holding what ``--param x=1e999`` wrote."""
    path = str(tmp_path / "registry.sqlite")
    with Registry.open(path) as reg:
        for i in range(5):
            reg.record_run(
                {"uid": new_uid(), "project": PROJECT, "name": f"run{i}", "sweep": "lr" if i < 4 else None,
                 "code_fingerprint": "a" if i < 4 else None, "notebook": "a.ipynb", "params": {"x": float(i)},
                 "started_at": 1.8e9 + i * HOUR, "pue": 1.2, "intensity_g_per_kwh": 100.0, "is_final": i == 3},
                {"status": "ok", "energy_j": HOUR, "emissions_g": 0.01, "duration_s": 60.0,
                 "ended_at": 1.8e9 + i * HOUR + 60.0, "cpu_energy_j": HOUR, "cpu_method": "rapl"},
            )  # fmt: skip
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE runs SET energy_j = 9e999 WHERE id = 2")
        conn.execute("UPDATE runs SET started_at = -62135596800.0 WHERE id = 3")
        conn.execute("""UPDATE runs SET params = '{"x": Infinity, "y": NaN}' WHERE id = 4""")
    conn.close()
    return path


@pytest.fixture
def jp_server_config(spoiled):
    return Config({
        "ServerApp": {"jpserver_extensions": {"notebook_carbon.server": True}},
        "NotebookCarbonServer": {"registry": spoiled, "project": PROJECT},
    })  # fmt: skip


@pytest.fixture
def get(jp_fetch, jp_asyncio_loop):
    def fetch(endpoint, **params):
        return jp_asyncio_loop.run_until_complete(jp_fetch(PREFIX, endpoint, params=params, raise_error=False))

    return fetch


def test_every_endpoint_answers_valid_json_despite_absurd_rows(get):
    for endpoint, _ in ROUTES:
        response = get(endpoint, format="json") if endpoint == "statement" else get(endpoint)
        assert response.code == 200, (endpoint, response.body)
        json.loads(response.body)  # strict: no Infinity, no NaN
        assert b"Infinity" not in response.body.replace(b'"Infinity"', b"") and b"NaN" not in response.body.replace(
            b'"NaN"', b"")  # fmt: skip
    # run 4's params are not JSON (Infinity, NaN): read as none, so x is missing from one run
    (lr,) = json.loads(get("sweeps").body)["sweeps"]
    assert sorted(lr["varying_params"]["x"]) == [0.0, 1.0, 2.0] and lr["varying_counts"] == {"x": 3}
    page = json.loads(get("runs").body)
    by_id = {row["id"]: row for row in page["runs"]}
    assert by_id[4]["params"] == {"x": "Infinity", "y": "NaN"} and by_id[4]["excluded"] is None
    assert by_id[2]["energy_j"] is None and by_id[2]["excluded"] == check_figure("energy_j", math.inf)
    summary = json.loads(get("summary").body)
    assert [(e["id"], e["name"]) for e in summary["excluded"]] == [(2, "run1"), (3, "run2")]
    assert summary["runs"] == 3 and summary["totals"]["energy_j"]["value"] == pytest.approx(3 * HOUR)
    md = get("statement").body.decode()
    assert "2 runs left out of these figures: run 2 (run1), energy\\_j = inf is not a finite number; run 3" in md


@pytest.mark.parametrize(
    ("endpoint", "params", "says"),
    [
        ("runs", {"offset": str(10**24)}, "offset must be at most"),
        ("runs", {"limit": str(10**24)}, "limit must be at most 500"),
        ("redundant", {"offset": str(2**63)}, "offset must be at most"),
        ("runs", {"offset": "-1"}, "offset must be a whole number"),
        ("runs", {"offset": "1e3"}, "offset must be a whole number"),
        ("runs", {"offset": "\u00b2"}, "offset must be a whole number"),  # a digit to str.isdigit, not to int
        ("runs", {"limit": "\u0661\u0662"}, "limit must be a whole number"),  # Arabic-Indic 12
        ("runs", {"limit": " "}, "limit must be a whole number"),
    ],
)
def test_each_bad_number_is_a_400_saying_what_to_send(get, endpoint, params, says):
    response = get(endpoint, **params)
    assert response.code == 400, response.body
    assert says in json.loads(response.body)["message"]


NUMBERS = st.one_of(
    st.integers(min_value=-(10**30), max_value=10**30).map(str),
    st.sampled_from(["", " ", "0", "-0", "+1", "1.5", "1e3", "0x10", "nan", "inf", "\u00b2", "\u0661", "٣", "1_000"]),
    st.text(max_size=12),
)
TEXT = st.text(st.characters(blacklist_categories=("Cs",)), max_size=300)
PARAMS = st.fixed_dictionaries({}, optional={
    "project": TEXT | st.just(PROJECT), "notebook": TEXT | st.just("a.ipynb"), "sweep": TEXT | st.just("lr"),
    "status": TEXT | st.sampled_from(["ok", "failed"]), "limit": NUMBERS, "offset": NUMBERS,
    "format": TEXT | st.sampled_from(["md", "latex", "json", "model-card"]),
    "training_type": TEXT | st.just("fine-tuning"),
})  # fmt: skip


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(endpoint=st.sampled_from([path for path, _ in ROUTES]), params=PARAMS)
def test_any_query_parameters_get_200_or_400_never_500(get, endpoint, params):
    response = get(endpoint, **params)
    assert response.code in (200, 400), (response.code, response.body[:2000])
    if response.code == 400 or endpoint != "statement" or params.get("format") == "json":
        body = json.loads(response.body)
        assert response.code == 200 or body["message"]

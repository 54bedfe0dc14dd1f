"""The Jupyter server extension on a registry of known runs: every endpoint's figures by hand and
equal to the statement's, paging, bad parameters, authentication of every route, the registry
never taken from a request, and the config file that enables the extension on install.

The fixtures are pytest-jupyter's (``jp_fetch`` against a real server on a free port), imported
into this module only, so their autouse fixtures touch no other test; the tests are plain
functions that run each request on the fixtures' event loop.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import tornado.web
from pytest_jupyter.jupyter_server import *  # noqa: F403  (jp_fetch, jp_serverapp and what they need)
from traitlets.config import Config

from notebook_carbon.meters.detect import host_info
from notebook_carbon.registry import Registry, new_uid
from notebook_carbon.server.handlers import PREFIX, ROUTES
from notebook_carbon.settings import resolve
from notebook_carbon.statements import impact_statement, statement_facts

ROOT = Path(__file__).resolve().parents[1]
HOUR = 3600.0
PROJECT = "thesis"
WHERE = {"pue": 1.5, "intensity_g_per_kwh": 100.0, "intensity_region": "FR", "intensity_source": "test grid",
         "host": host_info()["hostname"], "cpu_model": "Xeon Test", "attribution": "machine"}  # this machine's runs


def _grams(energy_j: float) -> float:
    return energy_j / 3.6e6 * 1.5 * 100.0


@pytest.fixture
def known(tmp_path):
    """Six runs of project thesis, newest last: sweep "lr" (ok, failed, ok marked final; lr 0.1,
    0.2, 0.3), automatic sweep b (ok, then an identical ok run: redundant), one run in no sweep;
    and one run of another project."""
    path = str(tmp_path / "registry.sqlite")
    runs = [  # name, sweep, code, status, energy J, notebook, params, final, redundant (index)
        ("first", "lr", "a", "ok", HOUR, "a.ipynb", {"lr": 0.1}, False, None),
        ("second", "lr", "a", "failed", 2 * HOUR, "a.ipynb", {"lr": 0.2}, False, None),
        ("third", "lr", "a", "ok", HOUR, "b.ipynb", {"lr": 0.3}, True, None),
        ("orig", None, "b", "ok", HOUR / 2, "b.ipynb", None, False, None),
        ("again", None, "b", "ok", HOUR / 2, "b.ipynb", None, False, 3),
        ("loose", None, None, "ok", HOUR / 4, None, None, False, None),
    ]
    ids = []
    with Registry.open(path) as reg:
        for i, (name, sweep, code, status, energy, notebook, params, final, repeats) in enumerate(runs):
            ids.append(reg.record_run(
                {"uid": new_uid(), "project": PROJECT, "name": name, "sweep": sweep, "code_fingerprint": code,
                 "cell_source": f"train({code})", "notebook": notebook, "params": params, "is_final": final,
                 "redundant_of": ids[repeats] if repeats is not None else None,
                 "started_at": 1.8e9 + i * HOUR, "execution_count": i + 1, "cell_id": f"cell-{i}", **WHERE},
                {"status": status, "energy_j": energy, "emissions_g": _grams(energy), "duration_s": 60.0,
                 "embodied_g": 1.0, "ended_at": 1.8e9 + i * HOUR + 60.0, "cpu_energy_j": energy,
                 "cpu_method": "rapl"},
            ))  # fmt: skip
        reg.record_run(
            {"uid": new_uid(), "project": "other", "name": "elsewhere", "code_fingerprint": "c", **WHERE},
            {"status": "ok", "energy_j": 10 * HOUR, "emissions_g": _grams(10 * HOUR)},
        )
    assert ids == [1, 2, 3, 4, 5, 6]
    return path


@pytest.fixture
def server_registry(request, known, tmp_path):
    """The registry the server is configured with: ``known``, or (indirect parameter) a missing
    file or a file that is not a registry."""
    which = getattr(request, "param", "known")
    if which == "missing":
        return str(tmp_path / "missing.sqlite")
    if which == "not a registry":
        path = tmp_path / "notes.sqlite"
        path.write_text("my notes, not a database\n")
        return str(path)
    return known


@pytest.fixture
def jp_server_config(server_registry):
    return Config({
        "ServerApp": {"jpserver_extensions": {"notebook_carbon.server": True}},
        "NotebookCarbonServer": {"registry": server_registry, "project": PROJECT},
    })  # fmt: skip


@pytest.fixture
def get(jp_fetch, jp_asyncio_loop):
    """``get("summary", project=...)``: the response, whatever its status; ``headers=`` replaces
    the authentication header."""

    def fetch(endpoint, headers=None, **params):
        request = jp_fetch(PREFIX, endpoint, params=params, headers=headers, raise_error=False)
        return jp_asyncio_loop.run_until_complete(request)

    return fetch


def same(found, expected, where=""):
    """Equal, numbers within the registry's micro-units (an int and a float of one value are equal)."""
    if isinstance(expected, dict):
        assert isinstance(found, dict) and found.keys() == expected.keys(), f"{where}: {found!r} != {expected!r}"
        for key in expected:
            same(found[key], expected[key], f"{where}.{key}")
    elif isinstance(expected, (int, float)) and not isinstance(expected, bool):
        assert found == pytest.approx(expected, rel=1e-9, abs=1e-6), f"{where}: {found!r} != {expected!r}"
    else:
        assert found == expected, f"{where}: {found!r} != {expected!r}"


def as_statement(body, facts):
    """The summary's figures equal the statement's. (Here every run has the same GPU count: where
    they differ, the summary gives embodied emissions recorded with the runs the range of the
    smallest GPU count, the statement each GPU count's own.)"""
    same(body["totals"], facts["totals"])
    same(body["development"], facts["development"])
    assert body["statuses"] == facts["scope"]["statuses"] and body["runs"] == facts["scope"]["runs"]
    assert (body["first_run_at"], body["last_run_at"]) == (facts["scope"]["first_run_at"], facts["scope"]["last_run_at"])
    assert body["excluded"] == facts["scope"]["excluded"]


def _json(response, status=200):
    assert response.code == status, response.body
    assert response.headers["Content-Type"].startswith("application/json")
    return json.loads(response.body)


def test_summary_by_hand_and_as_the_statement(get, known):
    body = _json(get("summary"))
    assert body["project"] == PROJECT and body["notebook"] is None
    assert body["runs"] == 6 and body["statuses"] == {"failed": 1, "ok": 5}
    totals = body["totals"]
    assert totals["energy_j"]["value"] == pytest.approx(5.25 * HOUR)
    assert totals["emissions_g"]["value"] == pytest.approx(_grams(5.25 * HOUR))
    # recorded with each run, its range the workstation's published one (187-405 kg, median 249)
    embodied = dict(totals["embodied_g"])
    assert embodied.pop("lower_bound") is False  # a workstation without GPUs: a closed range
    assert embodied == pytest.approx({"value": 6.0, "low": 6.0 * 187 / 249, "high": 6.0 * 405 / 249})
    assert totals["total_g"]["low"] == pytest.approx(totals["emissions_g"]["low"] + 6.0 * 187 / 249)
    # RAPL's +-10 %: the range of every figure measured by it
    assert totals["energy_j"]["low"] == pytest.approx(0.9 * 5.25 * HOUR)
    assert totals["energy_j"]["high"] == pytest.approx(1.1 * 5.25 * HOUR)
    development = body["development"]
    # the one result is "third" (marked final): sweep b is a run and its identical repeat, which makes
    # no result; "loose" is in no sweep
    assert development["all_energy_j"] == pytest.approx(5.25 * HOUR)
    assert development["selected_energy_j"] == pytest.approx(1.0 * HOUR)
    assert development["ratio"] == pytest.approx(5.25 / 1.0) and development["sweeps"] == 2
    assert (development["failed_runs"], development["redundant_runs"]) == (1, 1)
    assert body["first_run_at"] == "2027-01-15T08:00:00+00:00" and body["excluded"] == []
    as_statement(body, statement_facts(known, project=PROJECT, settings=resolve()))


def test_summary_of_one_notebook_and_another_project(get, known):
    body = _json(get("summary", notebook="b.ipynb"))
    assert body["runs"] == 3 and body["totals"]["energy_j"]["value"] == pytest.approx(2 * HOUR)
    as_statement(body, statement_facts(known, project=PROJECT, notebook="b.ipynb", settings=resolve()))
    other = _json(get("summary", project="other"))
    assert other["runs"] == 1 and other["totals"]["energy_j"]["value"] == pytest.approx(10 * HOUR)
    assert _json(get("summary", project="nobody"))["runs"] == 0


def test_a_notebook_path_relative_to_the_server_root_finds_what_its_kernel_recorded(get, known, jp_root_dir):
    """The sidebar asks with the path it knows, relative to the server's root; a kernel this server
    started records its notebook's absolute path. Both name the same notebook."""
    with Registry.open(known) as reg:
        reg.record_run(
            {"uid": new_uid(), "project": PROJECT, "notebook": str(jp_root_dir / "sub" / "c.ipynb"), **WHERE},
            {"status": "ok", "energy_j": HOUR, "emissions_g": _grams(HOUR)},
        )
    body = _json(get("summary", notebook="sub/c.ipynb"))
    assert body["runs"] == 1 and body["totals"]["energy_j"]["value"] == pytest.approx(HOUR)
    assert "1 metered runs" in get("statement", notebook="sub/c.ipynb").body.decode()
    assert _json(get("summary", notebook="b.ipynb"))["runs"] == 3  # recorded relative: taken as given


def test_summary_follows_the_registry(get, known):
    assert _json(get("summary"))["runs"] == 6
    with Registry.open(known) as reg:  # a kernel records a run in no sweep, then one in sweep lr
        reg.record_run({"uid": new_uid(), "project": PROJECT, **WHERE}, {"status": "ok", "energy_j": HOUR})
        assert _json(get("summary"))["runs"] == 7
        reg.record_run({"uid": new_uid(), "project": PROJECT, "sweep": "lr", **WHERE}, {"status": "crashed"})
    body = _json(get("summary"))
    assert body["runs"] == 8 and body["statuses"] == {"crashed": 1, "failed": 1, "ok": 6}
    assert body["totals"]["energy_j"]["value"] == pytest.approx(6.25 * HOUR)


def test_sweeps(get):
    body = _json(get("sweeps"))
    lr, b = body["sweeps"]
    assert (lr["key"], lr["label"], lr["runs"], lr["explicit"]) == ("lr", "lr", 3, True)
    assert lr["energy_j"] == pytest.approx(4 * HOUR) and lr["emissions_g"] == pytest.approx(_grams(4 * HOUR))
    assert lr["overhead_ratio"] == pytest.approx(4.0)
    assert lr["selected_run_id"] == 3 and lr["selected_is_marked"]
    assert (lr["failed_runs"], lr["failed_energy_j"]) == (1, pytest.approx(2 * HOUR))
    assert lr["varying_params"] == {"lr": [0.1, 0.2, 0.3]} and lr["statuses"] == {"ok": 2, "failed": 1}
    assert lr["varying_counts"] == {"lr": 3}
    # labelled by what its runs' names share, here nothing: the first and last name (issue 15)
    assert (b["key"], b["label"], b["runs"], b["selected_run_id"]) == ("code:b", "again ... orig", 2, 5)
    assert b["overhead_ratio"] == pytest.approx(2.0)
    assert (b["redundant_runs"], b["redundant_energy_j"]) == (1, pytest.approx(HOUR / 2))
    assert set(lr) == {
        "key", "label", "explicit", "runs", "statuses", "energy_j", "emissions_g", "overhead_ratio", "failed_runs",
        "failed_energy_j", "redundant_runs", "redundant_energy_j", "redundant_emissions_g", "selected_run_id",
        "selected_is_marked", "selected_energy_j", "varying_params", "varying_counts",
    }  # every sweep's row the same fields: not its run ids (possibly thousands)
    plain = _json(get("sweeps", params="false"))["sweeps"]  # without the reads of the varying parameters
    assert plain == [{k: v for k, v in s.items() if k not in ("varying_params", "varying_counts")} for s in body["sweeps"]]


def test_runs_paging_newest_first(get):
    first = _json(get("runs", limit="4"))
    assert (first["total"], first["limit"], first["offset"]) == (6, 4, 0)
    assert [run["id"] for run in first["runs"]] == [6, 5, 4, 3]
    rest = _json(get("runs", limit="4", offset="4"))
    assert [run["id"] for run in rest["runs"]] == [2, 1] and rest["total"] == 6
    assert _json(get("runs", offset="6"))["runs"] == []
    third = first["runs"][-1]
    assert third["name"] == "third" and third["is_final"] is True and third["params"] == {"lr": 0.3}
    assert third["sweep_key"] == "lr" and third["energy_j"] == HOUR
    assert third["started_at"] == 1.8e9 + 2 * HOUR
    assert first["runs"][0]["sweep_key"] is None  # "loose": in no sweep
    assert _json(get("runs"))["limit"] == 50


def test_runs_filters(get):
    failed = _json(get("runs", status="failed"))
    assert failed["total"] == 1 and [run["name"] for run in failed["runs"]] == ["second"]
    assert _json(get("runs", sweep="lr"))["total"] == 3
    assert [run["id"] for run in _json(get("runs", sweep="code:b"))["runs"]] == [5, 4]
    assert _json(get("runs", project="other"))["total"] == 1


def test_a_random_search_lists_its_first_values_and_how_many_and_follows_new_runs(get, known):
    before = {s["key"]: s for s in _json(get("sweeps"))["sweeps"]}
    with Registry.open(known) as reg:
        for i in range(25):
            reg.record_run({"uid": new_uid(), "project": PROJECT, "sweep": "search", "params": {"lr": i / 100, "bs": 32}},
                           {"status": "ok", "energy_j": 1.0})  # fmt: skip
    after = {s["key"]: s for s in _json(get("sweeps"))["sweeps"]}
    assert set(after) == set(before) | {"search"} and after["search"]["runs"] == 25
    assert after["search"]["varying_params"] == {"lr": [i / 100 for i in range(20)]}  # bs never varies
    assert after["search"]["varying_counts"] == {"lr": 25}


def test_the_summary_follows_a_run_recorded_while_the_server_runs(get, known):
    before = _json(get("summary"))
    with Registry.open(known) as reg:
        reg.record_run(
            {"uid": new_uid(), "project": PROJECT, "sweep": "lr", "code_fingerprint": "a", "notebook": "a.ipynb",
             "started_at": 1.8e9 + 9 * HOUR, **WHERE},
            {"status": "ok", "energy_j": HOUR, "emissions_g": _grams(HOUR), "duration_s": 60.0, "embodied_g": 1.0,
             "cpu_energy_j": HOUR, "cpu_method": "rapl"},
        )  # fmt: skip
    after = _json(get("summary"))
    assert after["runs"] == before["runs"] + 1
    assert after["totals"]["energy_j"]["value"] == pytest.approx(before["totals"]["energy_j"]["value"] + HOUR)
    for notebook in (None, "a.ipynb"):
        facts = statement_facts(known, project=PROJECT, notebook=notebook, settings=resolve())
        as_statement(_json(get("summary", notebook=notebook) if notebook else get("summary")), facts)


def test_redundant_with_the_run_it_repeats(get):
    body = _json(get("redundant"))
    assert body["total"] == 1 and body["energy_j"] == pytest.approx(HOUR / 2)
    (run,) = body["runs"]
    assert (run["id"], run["name"], run["redundant_of"]) == (5, "again", 4)
    assert run["repeats"] == {"id": 4, "name": "orig", "status": "ok", "started_at": 1.8e9 + 3 * HOUR,
                              "notebook": "b.ipynb", "path": "b.ipynb", "cell_id": "cell-3", "execution_count": 4}
    assert (run["path"], run["cell_id"], run["execution_count"]) == ("b.ipynb", "cell-4", 5)


def test_a_run_s_notebook_is_given_as_the_path_under_the_server_root_it_opens_by(get, known, jp_root_dir, tmp_path):
    """A kernel records its notebook's absolute path; the sidebar opens a notebook by its path under
    the server's root. A notebook outside the root has no path (the server cannot open it), and a
    deleted earlier run leaves its repeat with no cell."""
    with Registry.open(known) as reg:
        ids = [reg.record_run(
            {"uid": new_uid(), "project": PROJECT, "name": name, "notebook": notebook, "code_fingerprint": "z",
             "started_at": 1.9e9 + i, "cell_id": "abc", "redundant_of": 7 if i == 2 else None, **WHERE},
            {"status": "ok", "energy_j": 1.0, "emissions_g": 0.0},
        ) for i, (name, notebook) in enumerate([
            ("inside", str(jp_root_dir / "sub dir" / "c.ipynb")),
            ("outside", str(tmp_path.parent / "elsewhere" / "d.ipynb")),
            ("inside again", str(jp_root_dir / "sub dir" / "c.ipynb")),
        ])]  # fmt: skip
    assert ids == [8, 9, 10]  # (7: the other project's run)
    runs = {run["name"]: run for run in _json(get("runs", limit="3"))["runs"]}
    assert runs["inside"]["path"] == "sub dir/c.ipynb" and runs["inside"]["cell_id"] == "abc"
    assert runs["outside"]["path"] is None and runs["outside"]["notebook"].endswith("d.ipynb")
    with Registry.open(known) as reg:  # the same notebook's path, on a colleague's machine: not this file
        reg.record_run({"uid": new_uid(), "project": PROJECT, "name": "elsewhere", "started_at": 1.9e9 + 9,
                        "notebook": str(jp_root_dir / "sub dir" / "c.ipynb"), **{**WHERE, "host": "gpu-node-7"}},
                       {"status": "ok", "energy_j": 1.0, "emissions_g": 0.0})  # fmt: skip
    (elsewhere,) = _json(get("runs", limit="1"))["runs"]
    assert (elsewhere["name"], elsewhere["path"]) == ("elsewhere", None)
    with Registry.open(known) as reg, reg.write("test") as conn:  # the run repeated is deleted
        conn.exec_driver_sql("DELETE FROM runs WHERE id = 7")
    (again, _) = _json(get("redundant"))["runs"]
    assert again["path"] == "sub dir/c.ipynb"
    assert again["repeats"] == {"id": 7, "name": None, "status": None, "started_at": None, "notebook": None,
                                "cell_id": None, "execution_count": None, "path": None}  # fmt: skip


def test_history_sums_the_runs_emissions_over_time_up_to_the_summary_s_total(get, known):
    """The sidebar's chart: six runs an hour apart in five spans of an hour each (the last start in
    the last), cumulative; the last point is the summary's emissions. Another project's run is not
    counted; a project with no runs has no points."""
    body = _json(get("history", spans="5"))
    grams = [_grams(e) for e in (HOUR, 2 * HOUR, HOUR, HOUR / 2, HOUR / 2, HOUR / 4)]
    assert (body["project"], body["first_at"], body["last_at"]) == (PROJECT, 1.8e9, 1.8e9 + 5 * HOUR)
    assert [p["at"] for p in body["points"]] == [1.8e9 + k * HOUR for k in (1, 2, 3, 4, 5)]
    assert [p["runs"] for p in body["points"]] == [1, 2, 3, 4, 6]
    expected = [sum(grams[: n]) for n in (1, 2, 3, 4, 6)]
    assert [p["emissions_g"] for p in body["points"]] == pytest.approx(expected)
    assert body["points"][-1]["emissions_g"] == pytest.approx(_json(get("summary"))["totals"]["emissions_g"]["value"])
    one = _json(get("history", spans="1"))["points"]
    assert one == [{"at": 1.8e9 + 5 * HOUR, "emissions_g": pytest.approx(sum(grams)), "runs": 6}]
    assert _json(get("history", project="other"))["points"][0]["runs"] == 1
    assert _json(get("history", project="nobody")) == {"project": "nobody", "first_at": None, "last_at": None,
                                                         "points": []}  # fmt: skip


def test_history_leaves_out_what_the_totals_leave_out(get, known):
    """A run edited by hand into an implausible start (1970) is left out of the history as of the
    totals: the chart neither starts in 1970 nor counts it."""
    with Registry.open(known) as reg, reg.write("test") as conn:
        conn.exec_driver_sql("UPDATE runs SET started_at = 1.0 WHERE id = 6")
    body = _json(get("history", spans="5"))
    assert body["first_at"] == 1.8e9 and body["points"][-1]["runs"] == 5
    assert body["points"][-1]["emissions_g"] == pytest.approx(_json(get("summary"))["totals"]["emissions_g"]["value"])


def test_tradeoffs_weigh_each_result_against_its_energy_as_the_statement_does(get, known):
    """(issue 17) The sidebar's "Results against energy": sweep lr's two ok runs logged accuracy
    (the failed one's is not counted); its selected run (3, final) reached 0.93 with 1 Wh, run 1
    0.925 with 1 Wh too: both on the front. As the statement's ``tradeoffs`` says, with its runs as
    points and ``%carbon sweeps``'s line; a project with none answers an empty list."""
    from notebook_carbon.analysis.tradeoffs import describe
    from notebook_carbon.registry.metrics import log_metrics

    with Registry.open(known) as reg:
        for run, acc in ((1, 0.925), (2, 0.99), (3, 0.93)):
            log_metrics(reg, run, {"acc": acc})
    body = _json(get("tradeoffs"))
    (found,) = body["tradeoffs"]
    assert (found["sweep"], found["metric"], found["direction"], found["runs"]) == ("lr", "acc", "higher", 2)
    assert sorted(found["points"]) == [[1, HOUR, 0.925], [3, HOUR, 0.93]]
    assert (found["selected"]["run_id"], found["cheapest"]["run_id"]) == (3, 3)  # no cheaper run: the same energy
    facts = json.loads(impact_statement(known, project=PROJECT, format="json", settings=resolve()))
    assert {k: v for k, v in found.items() if k not in ("points", "text")} == facts["tradeoffs"][0]
    assert found["text"] == describe(found, named=False) and found["text"].startswith("selected run 3, acc 0.93 with 1 Wh")
    assert _json(get("tradeoffs", project="other")) == {"project": "other", "tradeoffs": []}


@pytest.mark.parametrize(
    ("fmt", "content_type", "says"),
    [("md", "text/markdown", "thesis"), ("latex", "application/x-latex", "\\documentclass"),
     ("model-card", "text/markdown", "co2_eq_emissions:"),
     ("json", "application/json", '"schema_version": 1')],
)  # fmt: skip
def test_statement_formats(get, known, fmt, content_type, says):
    response = get("statement", format=fmt)
    assert response.code == 200 and response.headers["Content-Type"].startswith(content_type)
    text = response.body.decode()
    assert says in text
    if fmt == "json":
        expected = json.loads(impact_statement(known, project=PROJECT, format="json", settings=resolve()))
        found = json.loads(text)
        assert {**found, "generated_at": None} == {**expected, "generated_at": None}


def test_statement_defaults_to_markdown(get):
    response = get("statement", training_type="fine-tuning")
    assert response.code == 200 and response.headers["Content-Type"].startswith("text/markdown")


@pytest.mark.parametrize(
    ("endpoint", "params", "says"),
    [
        ("statement", {"format": "pdf"}, "choose one of md, latex, latex-fragment, json, model-card, bib, checklist, "
                                         "sci-ai, sci-ai-json, boamps"),
        ("statement", {"training_type": "pretraining"}, "choose one of pre-training, fine-tuning"),
        ("sweeps", {"params": "yes"}, "unknown params 'yes'; choose one of true, false"),
        ("runs", {"limit": "ten"}, "limit must be a whole number"),
        ("runs", {"limit": "-1"}, "limit must be a whole number"),
        ("runs", {"limit": "501"}, "limit must be at most 500"),
        ("runs", {"offset": "1.5"}, "offset must be a whole number"),
        ("runs", {"status": "done"}, "unknown status 'done'; choose one of"),
        ("redundant", {"offset": "-3"}, "offset must be a whole number"),
        ("history", {"spans": "0"}, "spans must be a whole number of 1 or more; got '0'"),
        ("history", {"spans": "abc"}, "spans must be a whole number of 1 or more; got 'abc'"),
        ("history", {"spans": "501"}, "spans must be at most 500"),
        ("tradeoffs", {"limit": "0"}, "limit must be a whole number of 1 or more; got '0'"),
        ("tradeoffs", {"limit": "51"}, "limit must be at most 50"),
    ],
)
def test_bad_parameters_get_400_saying_what_to_do(get, endpoint, params, says):
    body = _json(get(endpoint, **params), 400)
    assert says in body["message"]


def test_the_registry_is_never_taken_from_a_request(get, tmp_path):
    elsewhere = tmp_path / "elsewhere.sqlite"
    for name in ("registry", "location", "path", "url"):
        for value in ("/etc/passwd", str(elsewhere)):
            assert _json(get("summary", **{name: value}))["runs"] == 6
    assert not elsewhere.exists()


def _routes(router):
    """(pattern, handler class) of every rule under ``router``, nested routers included."""
    for rule in router.rules:
        if hasattr(rule.target, "rules"):
            yield from _routes(rule.target)
        elif hasattr(rule.matcher, "regex"):
            yield rule.matcher.regex.pattern, rule.target


def test_every_route_needs_authentication(jp_serverapp, jp_base_url, get):
    ours = [(p, h) for p, h in _routes(jp_serverapp.web_app.default_router) if f"/{PREFIX}/" in p]
    ours += [(p, h) for p, h in _routes(jp_serverapp.web_app.wildcard_router) if f"/{PREFIX}/" in p]
    assert sorted(h.__name__ for _, h in ours) == sorted(h.__name__ for _, h in ROUTES)
    for pattern, handler in ours:
        # each HTTP method the extension defines is wrapped by tornado.web.authenticated
        ours_in_mro = [cls for cls in handler.__mro__ if cls.__module__.startswith("notebook_carbon.")]
        defined = [m for m in ("get", "head", "post", "put", "patch", "delete", "options")
                   if any(m in vars(cls) for cls in ours_in_mro)]  # fmt: skip
        assert defined == ["get"]
        for method in defined:
            wrapped, seen = getattr(handler, method), []
            while wrapped is not None:
                seen.append(wrapped.__code__.co_filename)
                wrapped = getattr(wrapped, "__wrapped__", None)
            assert tornado.web.__file__ in seen, f"{handler.__name__}.{method} is not @web.authenticated"
        # and a request without the token is refused
        path = pattern.rstrip("$")
        assert path.startswith(jp_base_url.replace("@", "%40")) or path.startswith(jp_base_url)
        endpoint = path.rsplit("/", 1)[-1]
        response = get(endpoint, headers={"Authorization": ""})
        assert response.code == 403, (endpoint, response.code)
        wrong = get(endpoint, headers={"Authorization": "token not-the-token"})
        assert wrong.code == 403


@pytest.mark.parametrize("server_registry", ["missing", "not a registry"], indirect=True)
def test_an_unreadable_registry_is_503_with_a_message(get, server_registry):
    for endpoint in ("summary", "sweeps", "runs", "redundant", "statement"):
        body = _json(get(endpoint), 503)
        assert body["message"].startswith("cannot read the notebook-carbon registry")
        assert server_registry in body["message"]
    # nothing was created or overwritten
    assert server_registry.endswith("missing.sqlite") == (not os.path.exists(server_registry))


def test_after_shutdown_a_request_is_503(jp_serverapp, jp_asyncio_loop, get):
    app = jp_serverapp.extension_manager.extension_points["notebook_carbon"].app
    jp_asyncio_loop.run_until_complete(app.stop_extension())
    assert "has shut down" in _json(get("summary"), 503)["message"]


def test_stop_closes_the_registry(jp_serverapp, jp_asyncio_loop, get):
    _json(get("summary"))
    app = jp_serverapp.extension_manager.extension_points["notebook_carbon"].app
    assert app.reader._registry is not None
    jp_asyncio_loop.run_until_complete(app.stop_extension())
    assert app.reader._registry is None


def test_the_config_file_enables_the_extension(tmp_path):
    config = ROOT / "jupyter-config" / "jupyter_server_config.d" / "notebook_carbon.json"
    enabled = {"ServerApp": {"jpserver_extensions": {"notebook_carbon.server": True}}}
    assert json.loads(config.read_text()) == enabled
    # `jupyter server extension list` reads the user's config directory: make it a copy of this one
    # (Jupyter writes a marker file into that directory, which must not land in the checkout)
    shutil.copytree(ROOT / "jupyter-config", tmp_path / "jupyter-config")
    env = {**os.environ, "JUPYTER_CONFIG_DIR": str(tmp_path / "jupyter-config"), "NO_COLOR": "1"}
    listed = subprocess.run(
        [sys.executable, "-m", "jupyter_server.extension.serverextension", "list"],
        env=env, capture_output=True, text=True, timeout=120, check=True,
    )  # fmt: skip
    out = listed.stdout + listed.stderr
    assert "notebook_carbon.server \x1b[32menabled" in out or "notebook_carbon.server enabled" in out
    assert "notebook_carbon.server  \x1b[32mOK" in out or "notebook_carbon.server  OK" in out


def test_every_statement_format_is_served_with_its_content_type(get):
    from notebook_carbon.server.handlers import CONTENT_TYPES
    from notebook_carbon.statements import FORMATS

    for fmt in FORMATS:
        response = get("statement", format=fmt)
        assert response.code == 200, fmt
        assert response.headers["Content-Type"] == CONTENT_TYPES[fmt], fmt
    card = get("statement", format="model-card").body.decode()
    assert "training_type" not in card  # asserted only when the request gives it
    assert "training_type: fine-tuning" in get("statement", format="model-card", training_type="fine-tuning").body.decode()

"""A project's emissions over time (``registry.history``, the sidebar's chart) and the run's cell
(schema v11), on SQLite and PostgreSQL: the spans summed by hand for runs at random times, the
runs the totals leave out left out, and the upgrade from v10 that keeps every run."""

from __future__ import annotations

import random

import pytest
from sqlalchemy import inspect, text
from totals_oracle import check

from notebook_carbon.errors import RegistryError
from notebook_carbon.registry import Registry, new_uid
from notebook_carbon.registry.history import MAX_SPANS, cumulative
from notebook_carbon.registry.schema import SCHEMA_VERSION


def _run(reg, at, grams, project="p", **row):
    return reg.record_run({"uid": new_uid(), "project": project, "started_at": at, **row},
                          {"status": "ok", "energy_j": grams * 100, "emissions_g": grams, "duration_s": 1.0})  # fmt: skip


def by_hand(runs, spans):
    """The points ``cumulative`` should give for ``runs`` (start, grams), summed from the runs."""
    first, last = min(t for t, _ in runs), max(t for t, _ in runs)
    width = (last - first) / spans
    ends = [first + (k + 1) * width for k in range(spans - 1)] + [last] if width else [last]
    points, before = [], 0
    for end in ends:
        upto = [g for t, g in runs if (t < end if end != last else t <= end)]
        if len(upto) > before:
            points.append((end, sum(upto), len(upto)))
        before = len(upto)
    return points


@pytest.mark.parametrize("spans", [1, 3, 60])
def test_the_spans_summed_by_hand(registry_url, spans):
    """Forty runs at random starts (three at the first moment, two at the last, one on a span's
    edge) and another project's runs: each point is the sum of the runs started up to its end."""
    rng = random.Random(spans)
    first, last = 1.7e9, 1.7e9 + 86_400
    starts = [first] * 3 + [last] * 2 + [first + (last - first) / 3] + [rng.uniform(first, last) for _ in range(34)]
    runs = [(t, round(rng.uniform(0.001, 50.0), 6)) for t in starts]
    with Registry.open(registry_url) as reg:
        for t, grams in runs:
            _run(reg, t, grams)
        _run(reg, first - 10, 1e6, project="neighbour")
        found = cumulative(reg, "p", spans=spans)
        assert (found["first_at"], found["last_at"]) == (first, last)
        expected = by_hand(runs, spans)
        assert [p["runs"] for p in found["points"]] == [n for _, _, n in expected]
        assert [p["at"] for p in found["points"]] == pytest.approx([e for e, _, _ in expected])
        assert [p["emissions_g"] for p in found["points"]] == pytest.approx([g for _, g, _ in expected])
        assert found["points"][-1]["emissions_g"] == pytest.approx(float(reg.totals("p").emissions_g))


def test_one_moment_one_run_and_none(registry_url):
    with Registry.open(registry_url) as reg:
        assert cumulative(reg, "p") == {"project": "p", "first_at": None, "last_at": None, "points": []}
        _run(reg, 1.7e9, 2.0)
        assert cumulative(reg, "p")["points"] == [{"at": 1.7e9, "emissions_g": 2.0, "runs": 1}]
        _run(reg, 1.7e9, 3.0)  # the same moment: one span, whatever was asked
        assert cumulative(reg, "p", spans=60)["points"] == [{"at": 1.7e9, "emissions_g": 5.0, "runs": 2}]
        for bad in (0, MAX_SPANS + 1, 2.5, True, "60"):
            with pytest.raises(ValueError, match="spans must be a whole number from 1 to 500"):
                cumulative(reg, "p", spans=bad)


def test_runs_left_out_of_the_totals_are_left_out(registry_url, registry_engine):
    """A run edited by hand to an infinite emission, another to a start in 1970: the totals leave
    both out, and so does the history; a running run without emissions yet counts as a run."""
    with Registry.open(registry_url) as reg:
        for i in range(4):
            _run(reg, 1.7e9 + 60 * i, 1.0)
        reg.start_run({"uid": new_uid(), "project": "p", "started_at": 1.7e9 + 300})
    with registry_engine.begin() as conn:
        conn.execute(text("UPDATE runs SET emissions_g = 1e300 WHERE id = 1"))
        conn.execute(text("UPDATE runs SET started_at = 1.0 WHERE id = 2"))
    with Registry.open(registry_url) as reg:
        assert reg.totals("p").excluded_runs == 2
        found = cumulative(reg, "p", spans=4)
        assert (found["first_at"], found["last_at"]) == (1.7e9 + 120, 1.7e9 + 300)
        assert [(p["runs"], p["emissions_g"]) for p in found["points"]] == [(1, 1.0), (2, 2.0), (3, 2.0)]


def test_v10_to_v11_adds_the_cell_and_the_history_index_keeping_every_run(registry_url, registry_engine):
    """A v10 registry (no ``cell_id``, no ``ix_runs_history``) is upgraded on open: every run is as
    it was, the kept totals too, and new runs record their cell."""
    with Registry.open(registry_url) as reg:
        for i in range(3):
            _run(reg, 1.7e9 + i, 1.0 + i, name=f"r{i}", notebook="nb.ipynb", execution_count=i + 1)
        before = reg.runs(project="p")
    with registry_engine.begin() as conn:
        conn.execute(text("DROP INDEX ix_runs_history"))
        conn.execute(text("ALTER TABLE runs DROP COLUMN cell_id"))
        conn.execute(text("UPDATE meta SET value = '10' WHERE key = 'schema_version'"))
    with Registry.open(registry_url) as reg:
        assert reg.schema_version() == SCHEMA_VERSION == 12
        assert reg.runs(project="p") == [{**run, "cell_id": None} for run in before]
        check(reg, "p")
        _run(reg, 1.7e9 + 9, 4.0, cell_id="2f6d-a_b")
        assert reg.runs(project="p")[0]["cell_id"] == "2f6d-a_b"
        assert cumulative(reg, "p", spans=2)["points"][-1] == {"at": 1.7e9 + 9, "emissions_g": 10.0, "runs": 4}
    assert "ix_runs_history" in {index["name"] for index in inspect(registry_engine).get_indexes("runs")}


def test_a_cell_id_that_is_not_one_is_refused_by_both_databases_alike(registry_url):
    """The registry checks ``cell_id`` itself: SQLite would keep any text and PostgreSQL refuse
    more than 64 characters with its own message; both now say what a cell id is, and keep nothing."""
    with Registry.open(registry_url) as reg:
        for bad in ("x" * 65, "<b>not an id</b>", ""):
            with pytest.raises(RegistryError, match="cell_id must be a notebook cell's id"):
                _run(reg, 1.7e9, 1.0, cell_id=bad)
        assert reg.runs(project="p") == []

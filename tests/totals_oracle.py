"""What the totals the database keeps must equal: the same figures added up in plain Python from
the runs as they are stored, one by one (the tests' independent reckoning, not the library's)."""

from __future__ import annotations

import math
import re
import os
from collections import Counter
from typing import Any

from notebook_carbon.impact.uncertainty import METHOD_RANGES, UNATTRIBUTED_RANGE
from notebook_carbon.record import BOUNDS, FAILED_STATUSES

MICRO = 1_000_000
NANO = 1_000_000_000
SCALE = {"j": MICRO, "s": MICRO, "g": NANO, "l": NANO}
"""Energy and time summed in µJ and µs; mass and water in ng and nL."""


def _micro(value: Any, unit: str = "j") -> int:
    return 0 if value is None else int(round(value * SCALE[unit]))


def _component_factor(method: Any, side: str) -> float:
    """A component's range from its method: the widest of a ``+``-joined method's known parts."""
    parts = [p for p in str(method or "").split("+") if p in METHOD_RANGES and p != "none"]
    if not parts:
        return getattr(UNATTRIBUTED_RANGE, side)
    values = [getattr(METHOD_RANGES[p], side) for p in parts]
    return min(values) if side == "low" else max(values)


def plausible(run: dict[str, Any]) -> bool:
    for column, (low, high, _) in BOUNDS.items():
        value = run.get(column)
        if value is None:
            continue
        if isinstance(value, str) or not (low <= value <= high) or (isinstance(value, float) and math.isnan(value)):
            return False
    return True


def totals(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The figures of ``runs`` (rows of ``Registry.runs``) in the units of ``Totals``."""
    counted = [r for r in runs if plausible(r)]
    sums: Counter[str] = Counter()
    for r in counted:
        energy, emissions = r["energy_j"], r["emissions_g"]
        low, high = r["energy_low_factor"] or 1.0, r["energy_high_factor"] or 1.0
        pue = r["pue"] if r["pue"] is not None else 1.0
        sums["energy_j"] += _micro(energy)
        sums["energy_low_j"] += _micro(None if energy is None else energy * low)
        sums["energy_high_j"] += _micro(None if energy is None else energy * high)
        sums["facility_energy_j"] += _micro(None if energy is None else energy * pue)
        machine = r.get("machine_energy_j")  # charged the whole machine (none recorded): its energy
        sums["machine_energy_j"] += _micro(energy if machine is None else machine)
        sums["emissions_g"] += _micro(emissions, "g")
        sums["emissions_low_g"] += _micro(None if emissions is None else emissions * low, "g")
        sums["water_l"] += _micro(r["water_l"], "l")
        for component in ("gpu", "cpu", "ram"):
            energy_c = r[f"{component}_energy_j"]
            sums[f"{component}_energy_j"] += _micro(energy_c)
            for side in ("low", "high"):
                factor = _component_factor(r[f"{component}_method"], side)
                sums[f"{component}_energy_{side}_j"] += _micro(None if energy_c is None else energy_c * factor)
        sums["embodied_g"] += _micro(r["embodied_g"], "g")
        sums["duration_s"] += _micro(r["duration_s"], "s")
        if r["status"] in FAILED_STATUSES:
            sums["failed_runs"] += 1
            sums["failed_energy_j"] += _micro(energy)
        if r["redundant_of"] is not None:
            sums["redundant_runs"] += 1
            sums["redundant_energy_j"] += _micro(energy)
    found = {name: (value if name.endswith("_runs") else value / SCALE[name[-1]]) for name, value in sums.items()}
    found["runs"] = len(counted)
    found["excluded_runs"] = len(runs) - len(counted)
    found["statuses"] = dict(Counter(r["status"] for r in counted))
    return found


def selected(runs: list[dict[str, Any]]) -> dict[str, int | None]:
    """Each sweep's selected run id: the latest marked final, else the latest ok (by start, then id)."""
    chosen: dict[str, int | None] = {}
    for key in {r["sweep_key"] for r in runs if r["sweep_key"] is not None}:
        members = sorted((r for r in runs if r["sweep_key"] == key), key=lambda r: (r["started_at"], r["id"]))
        marked = [r for r in members if r["is_final"]]
        ok = [r for r in members if r["status"] == "ok"]
        pick = marked[-1] if marked else ok[-1] if ok else None
        chosen[key] = None if pick is None else pick["id"]
    return chosen


def check(reg: Any, project: str) -> None:
    """Assert the registry's totals (project, each notebook and sweep) and selections equal the oracle's."""
    runs = reg.runs(project=project)
    _same(reg.totals(project), totals(runs), "project")
    for notebook in {r["notebook"] for r in runs}:
        _same(reg.totals(project, notebook=notebook or ""), totals([r for r in runs if r["notebook"] == notebook]),
              f"notebook {notebook!r}")
    listed = {s.key: s for s in reg.sweeps(project)}
    expected = selected(runs)
    assert set(listed) == {k for k in expected if any(plausible(r) for r in runs if r["sweep_key"] == k)}
    for key, summary in listed.items():
        assert summary.selected_run_id == expected[key], key
        members_all = [r for r in runs if r["sweep_key"] == key]
        distinct = [r for r in members_all if r["redundant_of"] is None]  # repeats of an earlier run not counted
        assert summary.is_result == (any(r["is_final"] for r in members_all) or len(distinct) > 1), key
        expected_label = label(key, members_all)
        if expected_label is None:  # no names: the cell of the run that made its row (moved or deleted since, maybe)
            assert re.search(r"(code \w{1,8}|cell \d+)$", summary.label), (key, summary.label)
        else:
            assert summary.label == expected_label, (key, summary.label, expected_label)
        members = sorted((r for r in runs if r["sweep_key"] == key), key=lambda r: (r["started_at"], r["id"]))
        params = [r["params"] if isinstance(r["params"], dict) else None for r in members]
        assert summary.varying_params == varying(params), key
        _same(summary.totals, totals([r for r in runs if r["sweep_key"] == key]), f"sweep {key!r}")


def label(key: str, members: list[dict[str, Any]]) -> str | None:
    """A sweep's label from its names, reckoned over all of them (not from the smallest and largest):
    the sweep name; the name they all have; their common prefix of 60 characters, trimmed of digits
    and dots then separators, else "first ... last"; None without names."""
    if not key.startswith("code:"):
        return key
    names = sorted({r["name"] for r in members if isinstance(r["name"], str) and r["name"]})
    if not names:
        return None
    if len(names) == 1:
        return names[0][:60]
    shared = os.path.commonprefix([n[:60] for n in names]).rstrip("0123456789.").rstrip(" =_-:,;/|")
    return shared or f"{names[0][:28]} ... {names[-1][:27]}"


def varying(all_params: list[dict | None]) -> dict[str, tuple]:
    """Each parameter with several values, or missing from some runs, with its values in first-seen order."""
    rows = [p or {} for p in all_params]
    found = {}
    for name in sorted(set().union(*rows)):
        values = []
        for row in rows:
            if name in row and row[name] not in values:
                values.append(row[name])
        if len(values) > 1 or (sum(name in row for row in rows) < len(rows) and len(rows) > 1):
            found[name] = tuple(values)
    return found


def _same(found: Any, expected: dict[str, Any], where: str) -> None:
    for name, value in expected.items():
        got = getattr(found, name)
        if isinstance(value, float):
            assert got == value or math.isclose(got, value, rel_tol=1e-12, abs_tol=1e-6), (where, name, got, value)
        else:
            assert got == value, (where, name, got, value)

"""Writes ``v4-statement.sql`` (the dump of a v4 registry) and the statements notebook-carbon printed of it, with the code of a
checkout of the release before schema version 5 (its totals kept by the database) on PYTHONPATH:

    PYTHONPATH=<that checkout> python tests/data/make_v4_statement_registry.py tests/data

``tests/test_statements.py`` opens a copy of the file with the current code (which upgrades it)
and compares its statements with those saved here: the facts (``.json``) the same to a millionth,
and the Markdown the same as the saved facts laid out by today's templates, to the printed digit
(``.md`` is the text that release printed, laid out as it did).
The runs are varied on purpose: a named sweep with a failed run and a run marked final, an
automatic sweep with a repeated run and runs recorded without embodied emissions, a block in no
sweep whose energy has no components, two grids, PUE, water, tags, two notebooks, a second
project, and a run edited by hand into an absurd figure, which every statement leaves out.
"""

from __future__ import annotations

import datetime
import sqlite3
import sys
import uuid
from pathlib import Path

from notebook_carbon.registry import Registry
from notebook_carbon.settings import resolve
from notebook_carbon.statements import impact_statement

T0 = 1_767_225_600.0  # 2026-01-01 UTC
H = 3600.0
NOW = datetime.datetime(2026, 3, 1, tzinfo=datetime.timezone.utc)
SETTINGS = {"hardware": "workstation", "lifetime_years": 4.0, "wue_l_per_kwh": 1.8}
SCOPES = {
    "project": {},
    "notebook": {"notebook": "train.ipynb"},
    "cut": {"since": "2026-01-01T02:30:00Z", "until": "2026-01-03", "tags": ["paper"]},
}
"""The statements saved, each as ``v4-statement-<name>.md``: the keyword arguments of the scope."""


def parts(energy: float, gpu: bool) -> dict:
    if gpu:
        return {"gpu_energy_j": 0.7 * energy, "gpu_method": "nvml-counter", "cpu_energy_j": 0.2 * energy,
                "cpu_method": "rapl", "ram_energy_j": 0.1 * energy, "ram_method": "estimate-ram"}  # fmt: skip
    return {"gpu_method": "none", "cpu_energy_j": 0.8 * energy, "cpu_method": "estimate-tdp",
            "ram_energy_j": 0.2 * energy, "ram_method": "estimate-ram"}  # fmt: skip


def run(reg: Registry, t: float, energy: float, *, status: str = "ok", gpu: bool = True, grid=("FR", 56.0),
        pue: float = 1.2, embodied: float | None = 0.5, components: bool = True, **start) -> int:  # fmt: skip
    region, intensity = grid
    final = {"status": status, "energy_j": energy, "ended_at": t + 600.0, "duration_s": 600.0,
             "emissions_g": energy / 3.6e6 * pue * intensity, "water_l": energy / 3.6e6 * pue * 1.8,
             "embodied_g": embodied, **(parts(energy, gpu) if components else {})}  # fmt: skip
    row = {"uid": uuid.uuid4().hex, "project": "paper", "started_at": t, "pue": pue, "intensity_region": region,
           "intensity_g_per_kwh": intensity, "intensity_source": "test grid 2025", "host": "node-1",
           "cpu_model": "Xeon Test", "gpu_model": "Test GPU" if gpu else None, "gpu_count": 1 if gpu else 0,
           "attribution": "process", "notebook": "train.ipynb", **start}  # fmt: skip
    return reg.record_run(row, final)


def main(out: Path) -> None:
    from notebook_carbon.registry.sweeps import set_final  # (a Registry method since schema version 5)

    location = out / "v4-statement.db"
    location.unlink(missing_ok=True)
    with Registry.open(str(location)) as reg:
        first = run(reg, T0 + 1 * H, 3.6e6, sweep="lr", code_fingerprint="a", name="lr 0.1", tags=["paper"],
                    params={"lr": 0.1}, inputs_fingerprint="d", params_fingerprint="p1")  # fmt: skip
        run(reg, T0 + 2 * H, 1.8e6, status="failed", sweep="lr", code_fingerprint="a", params={"lr": 0.5})
        final = run(reg, T0 + 3 * H, 5.4e6, sweep="lr", code_fingerprint="a", tags=["paper", "best"],
                    params={"lr": 0.01})  # fmt: skip
        run(reg, T0 + 4 * H, 2.0e6, sweep="lr", code_fingerprint="a2", status="interrupted", embodied=None)
        cell = {"code_fingerprint": "b", "cell_source": "\n  model.fit(x)  # cpu baseline\n", "notebook": "cpu.ipynb"}
        again = run(reg, T0 + 26 * H, 7.2e5, gpu=False, grid=("DE", 381.0), pue=1.0, embodied=None, tags=["paper"],
                    inputs_fingerprint="d", params_fingerprint="p2", **cell)  # fmt: skip
        run(reg, T0 + 27 * H, 7.2e5, gpu=False, grid=("DE", 381.0), pue=1.0, embodied=None, redundant_of=again,
            inputs_fingerprint="d", params_fingerprint="p2", **cell)  # fmt: skip
        run(reg, T0 + 28 * H, 3.0e5, components=False, embodied=None, notebook=None, name="a track() block")
        run(reg, T0 + 29 * H, 9.9e5, code_fingerprint="c", name="absurd")  # its energy is spoiled below
        run(reg, T0 + 1 * H, 1.0e7, project="other", sweep="lr", code_fingerprint="a")
        set_final(reg, final)
        assert first and reg.schema_version() == 4
    with sqlite3.connect(location) as conn:  # a hand edit: no run can have used this much
        conn.execute("UPDATE runs SET energy_j = 1e300 WHERE name = 'absurd'")
    conn.close()
    with sqlite3.connect(location) as conn:  # one small file, no -wal or -shm beside it (then dumped below)
        conn.execute("PRAGMA journal_mode = DELETE")
        conn.execute("VACUUM")
    conn.close()
    settings = resolve(SETTINGS, environ={})
    for name, scope in SCOPES.items():
        for fmt in ("md", "json"):
            text = impact_statement(str(location), project="paper", settings=settings, now=NOW, format=fmt, **scope)
            (out / f"v4-statement-{name}.{fmt}").write_text(text, encoding="utf-8")
    with sqlite3.connect(location) as conn:  # kept in the repository as text, not as a binary file
        (out / "v4-statement.sql").write_text("\n".join(conn.iterdump()) + "\n", encoding="utf-8")
    conn.close()
    location.unlink()


if __name__ == "__main__":
    main(Path(sys.argv[1]))

"""``notebook-carbon runs``: a registry's latest runs as a table, and with ``--parts`` each run's parts.

A distributed job is one run (``registry.jobs``): it is listed once, and a ``job`` column, shown
when a listed run is a job, says how many ranks on how many nodes it is made of (the figures the
registry stored with the run: ``job_parts``, ``job_nodes``, ``job_world_size``). With ``--parts``,
under each run that has parts, one line per part: a rank of the job (or the notebook cell that
drives it, ``driver``), or a block metered inside the run (its name), with its node, status,
energy, the GPUs it was charged some of, and whether its energy is counted in the run's. The parts
of all the listed runs are read in one query per 500 runs, not one per run.

Every name, node and device goes to the terminal through ``units.terminal_text``; figures through
the one display scheme (``units``).
"""

from __future__ import annotations

import argparse
from collections.abc import Iterable, Mapping
from typing import Any

from .cli_read import NO_RUNS, _Reading
from .units import duration_text, energy_text, mass_text, percent_text, terminal_text

BATCH = 500
"""Runs whose parts are read in one query: well inside the bound parameters every database takes."""
INDENT = " " * 6


def runs(args: argparse.Namespace) -> int:
    with _Reading(args) as reading:
        if args.project is not None:
            reading.project(args.project)
        elif not reading.projects:
            print(NO_RUNS)
            return 0
        crashed = reading.settle_crashed()
        rows = reading.registry.runs(project=args.project, limit=args.limit)
        found = parts_of(reading.registry, [row["uid"] for row in rows]) if args.parts else None
        labels = sweep_labels(reading.registry, rows)
    print_rows(rows, crashed, found, labels)
    return 0


def sweep_labels(registry: Any, rows: Iterable[Mapping[str, Any]]) -> dict[str, dict[str, str]]:
    """The labels of the listed runs' sweeps, by project and sweep key: what every other view shows."""
    from .registry import catalog

    return {project: catalog.sweep_labels(registry, project) for project in {row["project"] for row in rows if row.get("sweep_key")}}


def print_runs(location: str) -> None:
    """Every run of the registry at ``location``, oldest first (the end of the demo)."""
    from .registry.store import Registry

    with Registry.open(location, read_only=True) as registry:
        rows = registry.runs()
        print_rows(rows, frozenset(), labels=sweep_labels(registry, rows))


def print_rows(rows: list[dict], crashed: frozenset[int], parts: Mapping[str, list[dict]] | None = None,
               labels: Mapping[str, Mapping[str, str]] | None = None) -> None:  # fmt: skip
    """``rows`` (newest first) printed oldest first; ``crashed``: ids of runs shown crashed that the
    registry still says run; ``parts``: each run's parts by its uid, printed under it; ``labels``:
    each sweep's label by project and sweep key (``sweep_labels``), else the run's own."""
    labels = labels or {}
    if not rows:
        print(NO_RUNS)
        return
    hints = {row["id"]: job_text(row) for row in rows}
    width = max((len(hint) for hint in hints.values()), default=0)
    job = f" {'job':<{max(width, 3)}} " if width else ""
    print(f"{'id':>4}  {'status':<11} {'name':<16} {'sweep':<20} {'energy':>10} {'CO2e':>10} {'time':>11} {job} methods")
    if parts and any(parts.values()):
        print(f"{INDENT}{'part':<16} {'node':<16} {'status':<11} {'energy':>10}  {'counted':<9}  GPUs charged")
    for row in reversed(rows):
        methods = ", ".join(
            f"{c} {row[f'{c}_method']}" for c in ("gpu", "cpu", "ram") if row.get(f"{c}_method") not in (None, "none")
        )
        energy, co2 = energy_text(row.get("energy_j")), mass_text(row.get("emissions_g"))
        duration = duration_text(row.get("duration_s"))
        dead = row["id"] in crashed and row["status"] == "running"
        status = "crashed" if dead else row["status"]
        shown = f" {hints[row['id']]:<{max(width, 3)}} " if width else ""
        print(
            f"{row['id']:>4}  {status:<11} {terminal_text(row.get('name') or None, 16):<16}"
            f" {terminal_text(_sweep(row, labels), 20):<20} {energy:>10} {co2:>10} {duration:>11} {shown}"
            f" {terminal_text(methods)}"
        )
        if parts and parts.get(row["uid"]):
            for line in part_lines(row, parts[row["uid"]], dead=dead):
                print(line)


def _sweep(row: Mapping[str, Any], labels: Mapping[str, Mapping[str, str]]) -> str | None:
    """A run's sweep as every view labels it; None (shown ``-``) for a run in no sweep."""
    from .registry.catalog import run_sweep_label

    return run_sweep_label(row, labels.get(row.get("project"), {}))


def job_text(run: Mapping[str, Any]) -> str:
    """What a job's run is made of, ``4 ranks, 2 nodes`` (``3 of 4 ranks, ...`` while ranks are
    missing; ``driver + 4 parts, ...`` for the run of a notebook cell that drives the job, which
    holds its own part and every part of the ranks that joined it); ``""`` for a run that is no job."""
    if not run.get("job"):
        return ""
    parts, nodes, size = run.get("job_parts") or 0, run.get("job_nodes") or 0, run.get("job_world_size")
    where = f"{nodes} node{'s' if nodes != 1 else ''}"
    if run.get("job_block") is None:  # the notebook cell's run: its own part, then the ranks' parts
        ranks = max(parts - 1, 0)
        return f"driver + {ranks} part{'s' if ranks != 1 else ''}, {where}"
    if size and parts < size:
        return f"{parts} of {size} ranks, {where}"
    return f"{parts} rank{'s' if parts != 1 else ''}, {where}"


def part_lines(run: Mapping[str, Any], parts: list[dict], *, dead: bool = False) -> list[str]:
    """The lines under ``run`` for its ``parts``: the job's key first (for a job), then one line
    per part: ranks in order (the driver first), then the blocks metered inside the run. ``dead``:
    the run is shown crashed, so are its parts still marked running (they are the ones that died)."""
    lines = []
    if run.get("job"):
        block = f" (block {run['job_block']})" if run.get("job_block") is not None else " (driven by a notebook cell)"
        lines.append(f"{INDENT}job {terminal_text(run['job'], 80)}{block}")
    blocks = {part.get("block") for part in parts if part.get("job") and part.get("rank") is not None}
    for part in sorted(parts, key=_order):
        status = "crashed" if dead and part["status"] == "running" else part["status"]
        lines.append(
            f"{INDENT}{_who(part, len(blocks) > 1):<16} {terminal_text(part.get('node'), 16):<16} {status:<11}"
            f" {energy_text(part.get('energy_j')):>10}  {_counted(part):<9}  {_charged(part.get('devices'))}"
        )
    return lines


def parts_of(registry, uids: Iterable[str]) -> dict[str, list[dict]]:
    """The parts of the runs ``uids``, by run uid, each run's in the order they started."""
    from sqlalchemy import select

    from .registry.schema import run_parts

    wanted = list(dict.fromkeys(uids))
    found: dict[str, list[dict]] = {}
    for start in range(0, len(wanted), BATCH):
        query = (
            select(run_parts)
            .where(run_parts.c.parent_uid.in_(wanted[start:start + BATCH]))
            .order_by(run_parts.c.started_at, run_parts.c.id)
        )
        for part in registry.select(query, "reading the parts of the runs listed"):
            found.setdefault(part["parent_uid"], []).append(part)
    return found


def charged_gpus(devices: Any) -> list[dict[str, Any]]:
    """The GPUs of a part's ``devices`` (JSON text or a list) it was charged some of: a share above
    zero, or the whole device (share None). Text that is not such a list (edited by hand) has none."""
    from .registry.parts import decode_devices

    gpus = [d for d in decode_devices(devices) if d.get("component") == "gpu"]
    return [d for d in gpus if d.get("share") is None or (isinstance(d["share"], (int, float)) and d["share"] > 0)]


def _charged(devices: Any) -> str:
    shown = []
    for device in charged_gpus(devices):
        name = str(device.get("device") or "a GPU").split(": ", 1)[0]  # "GPU 0: NVIDIA H100" -> "GPU 0"
        share = device.get("share")
        shown.append(name if share is None or share >= 1 else f"{name} ({percent_text(share)})")
    return terminal_text(", ".join(shown) or None, 50)


def _who(part: Mapping[str, Any], blocks: bool) -> str:
    if not part.get("job"):  # a block metered inside the run
        return terminal_text(part.get("name") or "nested block", 16)
    who = "driver" if part.get("rank") is None else f"rank {part['rank']}"
    return who + (f" #{part['block']}" if blocks and part.get("block") is not None else "")


def _counted(part: Mapping[str, Any]) -> str:
    if not part.get("job"):
        return "nested"  # its energy is inside its run's, counted there
    return "yes" if part.get("counted") else "in cell"  # a rank the driving cell measured itself


def _order(part: Mapping[str, Any]) -> tuple:
    """The driver, then ranks by block and rank, then blocks metered inside the run, by start."""
    if not part.get("job"):
        return (2, 0, 0, part["started_at"])
    if part.get("rank") is None:
        return (0, 0, 0, part["started_at"])
    return (1, part.get("block") or 0, part["rank"], part["started_at"])

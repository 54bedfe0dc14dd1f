"""A distributed job's run as what its parts add up to (``jobs``' module docstring says how), written
in the transaction that writes a part."""

from __future__ import annotations

import json
import math
import time
from collections.abc import Iterable, Mapping
from typing import Any

from sqlalchemy import Connection, delete, insert, select, update

from ..record import job_status
from . import values as run_values
from .schema import components, run_parts, runs

__all__ = ["MAX_HOSTS_SHOWN", "settle"]

MAX_HOSTS_SHOWN = 4
"""A job's run names at most this many nodes as its host, then how many there are."""


def settle(conn: Connection, run_uid: str) -> None:
    """Write the job's run as the sum of its parts (module docstring), with one component row per
    device counted."""
    parts = [dict(row._mapping) for row in conn.execute(
        select(run_parts).where(run_parts.c.parent_uid == run_uid, run_parts.c.job.is_not(None))
        .order_by(run_parts.c.started_at, run_parts.c.id)
    )]  # fmt: skip
    if not parts:
        return
    counted = [part for part in parts if part["counted"]]
    devices = _devices(counted)
    figures = _figures(parts, counted, devices)
    conn.execute(update(runs).where(runs.c.uid == run_uid), run_values.derive(figures))
    conn.execute(delete(components).where(components.c.run_uid == run_uid))
    rows = [{"run_uid": run_uid, **row} for row in devices.values()]
    if rows:
        conn.execute(insert(components), rows)


def _devices(counted: Iterable[dict]) -> dict[tuple[str, str, str], dict[str, Any]]:
    """Per device (node, component, device): what it drew and what the job is charged of it."""
    found: dict[tuple[str, str, str], dict[str, Any]] = {}
    for part in counted:
        for device in _decoded(part["devices"]):
            key = (part["node"] or "", device["component"], device["device"])
            entry = found.setdefault(key, {"charged": [], "machine": 0.0, "whole": False, "ranks": [],
                                           "methods": set(), "reason": None, "degraded": []})  # fmt: skip
            entry["reason"] = entry["reason"] or device.get("reason")
            if device.get("degraded"):
                entry["degraded"].append(f"{_who(part)}: {device['degraded']}")
            charged = float(device.get("energy_j") or 0.0)
            machine = device.get("machine_energy_j")
            entry["whole"] |= machine is None
            entry["machine"] = max(entry["machine"], charged if machine is None else float(machine))
            entry["charged"].append(charged)
            entry["methods"].add(device["method"])
            if charged > 0:
                entry["ranks"].append(part["rank"])
    rows = {}
    for (node, component, device), entry in found.items():
        machine = entry["machine"]
        energy = machine if entry["whole"] else min(math.fsum(entry["charged"]), machine)
        rows[(node, component, device)] = {
            "component": component, "device": f"{node}: {device}" if node else device,
            "method": "+".join(sorted(entry["methods"])), "energy_j": energy,
            "machine_energy_j": None if entry["whole"] else machine,
            "share": None if entry["whole"] else (energy / machine if machine > 0 else 0.0),
            "share_how": "the whole device, counted once" if entry["whole"] else _shares_how(entry["ranks"]),
            "reason": entry["reason"], "degraded": "; ".join(entry["degraded"]) or None,
        }  # fmt: skip
    return rows


def _shares_how(ranks: list[int | None]) -> str:
    named = [str(rank) for rank in sorted(r for r in ranks if r is not None)] + ["the driver"] * ranks.count(None)
    if not named:
        return "no rank was charged any of it"
    if len(named) == 1:
        return f"the share of {'rank ' if named[0] != 'the driver' else ''}{named[0]}"
    return f"the shares of ranks {', '.join(named)}, summed"


def _who(part: Mapping[str, Any]) -> str:
    return "the driver" if part["rank"] is None else f"rank {part['rank']}"


def _figures(parts: list[dict], counted: list[dict], devices: Mapping[tuple, dict]) -> dict[str, Any]:
    statuses = [part["status"] for part in parts]
    status = job_status(statuses)
    by_component: dict[str, list[float]] = {}
    methods: dict[str, set[str]] = {}
    for row in devices.values():
        by_component.setdefault(row["component"], []).append(row["energy_j"])
        methods.setdefault(row["component"], set()).update(row["method"].split("+"))
    figures: dict[str, Any] = {
        f"{c}_energy_j": math.fsum(by_component[c]) if c in by_component else None for c in ("gpu", "cpu", "ram")
    }
    figures.update({f"{c}_method": "+".join(sorted(methods[c])) if c in methods else "none" for c in ("gpu", "cpu", "ram")})
    energy = math.fsum(math.fsum(v) for v in by_component.values())
    figures["energy_j"] = energy
    shared = [row for row in devices.values() if row["machine_energy_j"] is not None]
    figures["machine_energy_j"] = (
        math.fsum(row["machine_energy_j"] if row["machine_energy_j"] is not None else row["energy_j"] for row in devices.values())
        if shared else None
    )  # fmt: skip
    part_energy = math.fsum(part["energy_j"] or 0.0 for part in counted)
    for column in ("emissions_g", "water_l"):
        known = [part[column] for part in counted if part[column] is not None]
        # none known (no water use set on any node): unknown, never zero
        figures[column] = (math.fsum(known) * energy / part_energy if part_energy > 0 else 0.0) if known else None
    nodes = sorted({part["node"] or "" for part in parts})
    embodied = [max(part["embodied_g"] for part in known) for node in nodes
                if (known := [p for p in counted if (p["node"] or "") == node and p["embodied_g"] is not None])]  # fmt: skip
    figures["embodied_g"] = math.fsum(embodied) if embodied else None
    figures["started_at"] = min(part["started_at"] for part in parts)
    figures["duration_s"] = max(_span([part for part in parts if (part["node"] or "") == node]) for node in nodes)
    # the last end seen (on its own node's clock): for a job that waited in a queue after its driving
    # cell ended, later than the start plus the longest node's span
    ends = [part["ended_at"] for part in parts if part["ended_at"] is not None]
    figures["ended_at"] = None if status == "running" else max([figures["started_at"] + figures["duration_s"], *ends])
    figures.update(status=status, job_parts=len(parts), job_nodes=len(nodes), updated_at=time.time())
    figures["host"] = _hosts([n for n in nodes if n])
    gpus = {key for key, row in devices.items() if key[1] == "gpu" and (row["share"] is None or row["energy_j"] > 0)}
    figures["gpu_count"] = len(gpus) or len({key for key in devices if key[1] == "gpu"})
    figures["error"] = next((_said(part) for part in parts if part["status"] in ("crashed", "failed", "interrupted")), None)
    figures["notes"] = json.dumps(_notes(parts, counted, nodes))
    return figures


def _span(parts: list[dict]) -> float:
    """The time from the first start to the last end (or heartbeat) of parts on one node's clock."""
    ends = [part["ended_at"] or part["started_at"] + (part["duration_s"] or 0.0) for part in parts]
    return max(max(ends) - min(part["started_at"] for part in parts), 0.0)


def _hosts(nodes: list[str]) -> str | None:
    if len(nodes) <= MAX_HOSTS_SHOWN:
        return ", ".join(nodes) or None
    return ", ".join(nodes[:MAX_HOSTS_SHOWN]) + f", … ({len(nodes)} nodes)"


def _said(part: dict) -> str:
    who = _who(part)
    where = f" on {part['node']}" if part["node"] else ""
    return f"{who}{where} {part['status']}" + (f": {part['error']}" if part["error"] else "")


def _notes(parts: list[dict], counted: list[dict], nodes: list[str]) -> list[str]:
    ranks = [part for part in parts if part["rank"] is not None]
    said = (
        f"distributed job {parts[0]['job']}: {len(ranks)} rank{'s' if len(ranks) != 1 else ''}"
        f" on {len(nodes)} node{'s' if len(nodes) != 1 else ''}, recorded as one run; each device counted once"
    )
    inside = len(parts) - len(counted)
    if inside:
        said += f"; {inside} part{'s' if inside != 1 else ''} started by the notebook cell on its own machine, inside its measurement"
    notes = [said]
    for part in parts:
        for note in _decoded(part["notes"]):
            if note not in notes:
                notes.append(note)
    return notes


def _decoded(text: Any) -> list:
    if isinstance(text, list):
        return text
    try:
        value = json.loads(text) if isinstance(text, str) else []
    except ValueError:
        return []
    return value if isinstance(value, list) else []

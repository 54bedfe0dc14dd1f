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
    """Per device (node, component, device): what it drew and what the job is charged of it.

    A device is told by its id where it has one (a GPU's UUID: ranks shown only their own GPU all
    call it GPU 0), else by its label. The ranks of one block and attempt ran at the same time:
    among them, a device drew its largest reading and is charged their shares summed (at most
    that). Blocks and attempts that ran one after another (a driving cell's run takes every block
    of its ranks, and each restart's) are added up."""
    groups: dict[tuple, list[dict]] = {}
    for part in counted:
        groups.setdefault((part["block"], part["attempt"] or 0, part["rank"] is None), []).append(part)
    rows: dict[tuple[str, str, str], dict[str, Any]] = {}
    for group in groups.values():
        for key, entry in _group_devices(group).items():
            row = rows.get(key)
            if row is None:
                rows[key] = entry
                continue
            row["energy_j"] += entry["energy_j"]
            row["machine"] += entry["machine"]
            row["whole"] |= entry["whole"]
            row["ranks"] += entry["ranks"]
            row["methods"] |= entry["methods"]
            row["reason"] = row["reason"] or entry["reason"]
            row["degraded"] += entry["degraded"]
    return {key: _component(key, entry) for key, entry in rows.items()}


def _group_devices(parts: list[dict]) -> dict[tuple[str, str, str], dict[str, Any]]:
    found: dict[tuple[str, str, str], dict[str, Any]] = {}
    for part in parts:
        for device in _decoded(part["devices"]):
            key = (part["node"] or "", device["component"], device.get("device_id") or device["device"])
            entry = found.setdefault(key, {"charged": [], "machine": 0.0, "whole": False, "ranks": [], "label": device["device"],
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
    for entry in found.values():
        machine = entry["machine"]
        entry["energy_j"] = machine if entry["whole"] else min(math.fsum(entry["charged"]), machine)
    return found


def _component(key: tuple[str, str, str], entry: dict[str, Any]) -> dict[str, Any]:
    node, component, _ = key
    machine, energy, label = entry["machine"], entry["energy_j"], entry["label"]
    return {
        "component": component, "device": f"{node}: {label}" if node else label,
        "method": "+".join(sorted(entry["methods"])), "energy_j": energy,
        "machine_energy_j": None if entry["whole"] else machine,
        "share": None if entry["whole"] else (energy / machine if machine > 0 else 0.0),
        "share_how": "the whole device, counted once" if entry["whole"] else _shares_how(entry["ranks"]),
        "reason": entry["reason"], "degraded": "; ".join(entry["degraded"]) or None,
    }  # fmt: skip


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
    current = _latest_attempts(parts)
    status = job_status([part["status"] for part in current])
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
    failed = [part for part in current if part["status"] in ("crashed", "failed", "interrupted")]
    first = min(failed, key=lambda part: part["ended_at"] or part["updated_at"] or math.inf, default=None)
    figures["error"] = None if first is None else _said(first)  # the first to fail: likely the cause
    figures["notes"] = json.dumps(_notes(parts, counted, nodes))
    return figures


def _latest_attempts(parts: list[dict]) -> list[dict]:
    """The parts that say how the job ended: of each block, its latest attempt's (a restart that
    succeeded is a job that succeeded; the attempts before it keep their energy and are noted)."""
    latest: dict[Any, int] = {}
    for part in parts:
        latest[part["block"]] = max(latest.get(part["block"], 0), part["attempt"] or 0)
    return [part for part in parts if (part["attempt"] or 0) == latest[part["block"]]]


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
    restarted = sorted({part["attempt"] for part in parts if part["attempt"]})
    if restarted:
        notes.append(f"restarted {len(restarted)} time{'s' if len(restarted) != 1 else ''}: the earlier attempts' "
                     "energy is counted, their statuses are not the job's")  # fmt: skip
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

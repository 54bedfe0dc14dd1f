"""The parts of a run: blocks metered while another run of the same process was open.

A ``track()`` block inside a metered cell, a ``%%carbon`` cell run from inside another one, or
any of these with auto mode on, measure energy that the enclosing run measures too. Recording
both as runs counted the same joules twice in every total, sweep and statement. So such a block
is recorded here, as a part of its enclosing (outermost) run: its own name, params and figures
stay visible (``parts``), and every reader of ``runs`` counts each joule once.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from sqlalchemy import insert, select

from . import values as run_values
from .schema import run_parts


def record_part(registry, row: Mapping[str, Any]) -> int:
    """Store a finished part (``uid``, ``parent_uid``, ``status``, ``started_at``, figures); its id."""
    values = run_values.encode_run(row, run_values.PART_COLUMNS, "record_part")
    for column in ("uid", "parent_uid", "status", "started_at"):
        if values.get(column) is None:
            from ..errors import RegistryError

            raise RegistryError(f"record_part: a part needs {column}")
    with registry.write(f"recording part {values['uid']} of run {values['parent_uid']}") as conn:
        return int(conn.execute(insert(run_parts), values).inserted_primary_key[0])


def parts(registry, parent_uid: str) -> list[dict[str, Any]]:
    """The parts of run ``parent_uid``, in the order they started, then the blocks metered inside a
    job's ranks (whose ``parent_uid`` is the rank's part); a rank's ``devices`` decoded (a list of
    dicts: each device's method, what it drew and the rank's share; [] if none or unreadable)."""
    query = select(run_parts).where(run_parts.c.parent_uid == parent_uid).order_by(run_parts.c.started_at, run_parts.c.id)
    found = registry.select(query, "reading the parts of a run")
    ranks = [part["uid"] for part in found if part.get("job") is not None]
    if ranks:  # blocks metered inside a rank's block hang from the rank's part: parts of this run too
        inner = select(run_parts).where(run_parts.c.parent_uid.in_(ranks)).order_by(run_parts.c.started_at, run_parts.c.id)
        found += registry.select(inner, "reading the parts of a job's ranks")
    for part in found:
        part["devices"] = decode_devices(part.get("devices"))
    return found


def decode_devices(text: Any) -> list[dict[str, Any]]:
    """A part's ``devices`` as stored (JSON text) or decoded: the list of its device dicts; [] for
    anything else (none, or edited by hand into something that is not such a list)."""
    try:
        value = json.loads(text) if isinstance(text, str) else text
    except ValueError:  # edited by hand into something else
        return []
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []

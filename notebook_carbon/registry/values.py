"""A run's values as the registry writes and reads them: checked against the columns and the
vocabularies, JSON encoded and decoded, with what the registry derives from them (pure; the store
does the I/O). The tables themselves are ``schema``'s."""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from typing import Any

from ..cell import is_cell_id
from ..errors import RegistryError
from ..record import FINAL_STATUSES, STATUSES, check_figure, energy_range, sweep_key, sweep_label
from .schema import COMPONENTS, JSON_COLUMNS, METHODS, components, run_parts, runs, samples

__all__ = [
    "COMPONENT_COLUMNS", "DERIVED_COLUMNS", "GENERATED_COLUMNS", "PART_COLUMNS", "RUN_COLUMNS", "SAMPLE_COLUMNS",
    "START_COLUMNS", "UPDATE_COLUMNS", "check_method", "check_status", "child_row", "decode_row", "derive",
    "encode_run", "final_values", "is_uid", "start_values",
]  # fmt: skip

GENERATED_COLUMNS = frozenset(("sweep_key",))
DERIVED_COLUMNS = frozenset(("sweep_label", "energy_low_factor", "energy_high_factor"))
"""Written by the registry from the run's other columns (``derive``), never by a caller."""
RUN_COLUMNS = frozenset(runs.c.keys()) - GENERATED_COLUMNS
START_COLUMNS = RUN_COLUMNS - {"id"} - DERIVED_COLUMNS
"""What ``start_run`` accepts: the database assigns ``id``."""
UPDATE_COLUMNS = RUN_COLUMNS - {"id", "uid"} - DERIVED_COLUMNS
"""What ``finish_run``/``checkpoint_run`` may set: a run's identity never changes."""
PART_COLUMNS = frozenset(run_parts.c.keys()) - {"id"}
"""What ``parts.record_part`` accepts."""
COMPONENT_COLUMNS = frozenset(components.c.keys()) - {"id", "run_uid"}
SAMPLE_COLUMNS = frozenset(samples.c.keys()) - {"id", "run_uid"}
_METHOD_COLUMNS = ("gpu_method", "cpu_method", "ram_method")


def encode_run(row: Mapping[str, Any], allowed: frozenset[str], doing: str) -> dict[str, Any]:
    """A copy of ``row`` checked against ``allowed`` columns and the vocabularies, JSON encoded."""
    unknown = set(row) - allowed
    if unknown:
        raise RegistryError(f"{doing}: unknown run fields {sorted(unknown)}; known fields: {sorted(allowed)}")
    values = dict(row)
    if "status" in values:
        check_status(values["status"])
    if values.get("cell_id") is not None and not is_cell_id(values["cell_id"]):
        raise RegistryError(
            f"{doing}: cell_id must be a notebook cell's id (1 to 64 letters, digits, '-' or '_'); "
            f"got {str(values['cell_id'])[:80]!r}"
        )
    for column in _METHOD_COLUMNS:
        if values.get(column) is not None:
            # a component measured by several methods (two GPUs, one without an energy counter)
            # is recorded as their sorted, '+'-joined names; each part must still be known
            for part in str(values[column]).split("+"):
                check_method(part)
    for column, kind in JSON_COLUMNS.items():
        value = values.get(column)
        if value is None:
            continue
        # A string where a list belongs would come back as a string: refuse it rather than guess.
        if not isinstance(value, (list, tuple) if kind is list else kind):
            raise RegistryError(
                f"{doing}: {column} must be a {kind.__name__}, got {type(value).__name__} {value!r}"
            )
        try:
            values[column] = json.dumps(list(value) if kind is list else value, sort_keys=True)
        except (TypeError, ValueError) as exc:
            raise RegistryError(f"{doing}: {column} cannot be stored as JSON: {exc}") from exc
    return values


def decode_row(row: dict[str, Any]) -> dict[str, Any]:
    """``row`` with its JSON columns decoded to lists and dicts (in place)."""
    for column, kind in JSON_COLUMNS.items():
        if isinstance(row.get(column), str):
            try:
                decoded = json.loads(row[column])
            except ValueError:  # edited by hand into something else: no tags, params or notes
                decoded = None
            row[column] = decoded if isinstance(decoded, kind) else kind()
    return row


def child_row(row: Mapping[str, Any], allowed: frozenset[str], uid: str, what: str) -> dict[str, Any]:
    """A ``components`` or ``samples`` row of run ``uid``, checked, with every column present."""
    unknown = set(row) - allowed
    if unknown:
        raise RegistryError(f"finish_run: unknown {what} fields {sorted(unknown)}; known: {sorted(allowed)}")
    if row.get("component") not in COMPONENTS:
        raise RegistryError(
            f"finish_run: {what} component must be one of {', '.join(COMPONENTS)}, "
            f"got {row.get('component')!r}"
        )
    if what == "component":
        check_method(row.get("method"))
        share = row.get("share")
        if share is not None and (isinstance(share, bool) or not isinstance(share, (int, float)) or not 0 <= share <= 1):
            raise RegistryError(f"finish_run: a component's share must be a number from 0 to 1, got {share!r}")
        reason = check_figure("machine_energy_j", row.get("machine_energy_j"))
        if reason is not None:
            raise RegistryError(f"finish_run: a component's {reason}")
    # Every row gets every column: an executemany takes its columns from the first row, so a key
    # present only in a later row would otherwise be dropped without a word.
    return {**dict.fromkeys(allowed), **row, "run_uid": uid}


def check_status(status: Any) -> None:
    if status not in STATUSES:
        raise RegistryError(f"run status must be one of {', '.join(STATUSES)}; got {status!r}")


def check_method(method: Any) -> None:
    if method not in METHODS:
        raise RegistryError(f"energy method must be one of {', '.join(METHODS)}; got {method!r}")


def is_uid(value: Any) -> bool:
    """Whether ``value`` is a run uid: 32 lowercase hex digits (``uuid.uuid4().hex``)."""
    return isinstance(value, str) and len(value) == 32 and all(c in "0123456789abcdef" for c in value)


def start_values(row: Mapping[str, Any], doing: str) -> dict[str, Any]:
    """A new run's column values, checked, with defaults filled in."""
    values = encode_run(row, START_COLUMNS, doing)
    uid = values.get("uid")
    if not is_uid(uid):
        raise RegistryError(f"{doing} needs a 'uid' of 32 hex digits (uuid.uuid4().hex), got {uid!r}")
    if values.setdefault("status", "running") != "running":
        raise RegistryError(f"{doing} records status 'running', got {values['status']!r}")
    now = time.time()
    values.setdefault("project", "default")
    values.setdefault("started_at", now)
    values["updated_at"] = now
    for column, empty in JSON_COLUMNS.items():
        values.setdefault(column, json.dumps(empty()))
    key = sweep_key(values.get("sweep"), values.get("code_fingerprint"))
    values["sweep_label"] = sweep_label(
        key, values.get("notebook"), values.get("execution_count"), values.get("code_fingerprint")
    )
    return derive(values)


def derive(values: dict[str, Any]) -> dict[str, Any]:
    """``values`` (in place) with the range of their energy, when they hold one (``record.energy_range``)."""
    if "energy_j" in values:
        values["energy_low_factor"], values["energy_high_factor"] = energy_range(values)
    return values


def final_values(row: Mapping[str, Any], doing: str) -> dict[str, Any]:
    """A finished run's column values, checked: a final status, ``ended_at`` defaulting to now."""
    values = encode_run(row, UPDATE_COLUMNS, doing)
    if values.get("status") not in FINAL_STATUSES:
        raise RegistryError(
            f"{doing} needs a final status, one of {', '.join(FINAL_STATUSES)}; "
            f"got {values.get('status')!r}"
        )
    now = time.time()
    values.setdefault("ended_at", now)
    values["updated_at"] = now
    return derive(values)

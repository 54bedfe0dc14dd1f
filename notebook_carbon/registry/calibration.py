"""The machines' idle power, measured by ``notebook-carbon calibrate`` and kept in the registry.

Every measurement is kept (``schema.calibrations``); what is used is the latest of each (host,
component, device): the GPU share rule's idle power (``meters.shares.GpuContextShare``), and a
statement's energy above idle beside its total.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from sqlalchemy import and_, func, insert, select

from ..errors import RegistryError
from ..meters.base import COMPONENTS, METHODS
from .schema import calibrations

if TYPE_CHECKING:
    from .store import Registry

__all__ = ["FIELDS", "MAX_IDLE_W", "latest_calibrations", "latest_rows", "record_calibration"]

FIELDS = ("host", "component", "device", "method", "idle_w", "seconds", "measured_at", "busy")
MAX_IDLE_W = 100_000.0
"""No machine idles at 100 kW: a larger figure is a unit mistake, refused."""


def record_calibration(registry: Registry, rows: Sequence[Mapping[str, Any]]) -> int:
    """Keep one measurement of a machine's idle power per device (``FIELDS``); returns how many."""
    checked = [_checked(row) for row in rows]
    if not checked:
        return 0
    with registry.write("recording the machine's idle power") as conn:
        conn.execute(insert(calibrations), checked)
    return len(checked)


def latest_calibrations(registry: Registry, host: str | None = None) -> list[dict[str, Any]]:
    """The latest idle power of each (host, component, device), of one host or of all."""
    with registry.read("reading the machines' idle power") as conn:
        return latest_rows(conn, None if host is None else [host])


def latest_rows(conn: Any, hosts: Sequence[str] | None) -> list[dict[str, Any]]:
    """``latest_calibrations`` in a transaction already open, of these hosts (None: all)."""
    latest = (
        select(calibrations.c.host, calibrations.c.component, calibrations.c.device,
               func.max(calibrations.c.measured_at).label("measured_at"))
        .group_by(calibrations.c.host, calibrations.c.component, calibrations.c.device)
    )  # fmt: skip
    if hosts is not None:
        latest = latest.where(calibrations.c.host.in_(list(hosts)))
    latest = latest.subquery()
    query = select(*(calibrations.c[name] for name in FIELDS)).join(
        latest,
        and_(*(calibrations.c[name] == latest.c[name] for name in ("host", "component", "device", "measured_at"))),
    ).order_by(calibrations.c.host, calibrations.c.component, calibrations.c.device)
    return [dict(row._mapping) for row in conn.execute(query)]


def _checked(row: Mapping[str, Any]) -> dict[str, Any]:
    unknown = set(row) - set(FIELDS)
    if unknown:
        raise RegistryError(f"a calibration has unknown fields {sorted(unknown)}; known: {', '.join(FIELDS)}")
    values = {name: row.get(name) for name in FIELDS}
    if values["component"] not in COMPONENTS or values["method"] not in METHODS:
        raise RegistryError(f"a calibration's component and method must be known; got {values['component']!r}, "
                            f"{values['method']!r}")  # fmt: skip
    for name in ("host", "device"):
        if not isinstance(values[name], str) or not values[name]:
            raise RegistryError(f"a calibration needs its {name}, as text; got {values[name]!r}")
    for name, high in (("idle_w", MAX_IDLE_W), ("seconds", 86_400.0), ("measured_at", 4102444800.0)):
        value = values[name]
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or not 0 <= value <= high:
            raise RegistryError(f"a calibration's {name} must be a number from 0 to {high:g}; got {value!r}")
    busy = values["busy"]
    if busy is not None and (isinstance(busy, bool) or not isinstance(busy, (int, float)) or not 0 <= busy <= 1):
        raise RegistryError(f"a calibration's busy must be a fraction from 0 to 1; got {busy!r}")
    return values

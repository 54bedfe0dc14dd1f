"""Before a metered cell runs: its fingerprints, its automatic params, and an identical earlier run.

The code fingerprint comes from the cell as IPython will run it; the inputs fingerprint from the
values of the names it reads from the user namespace (scalars among them become the run's params,
so ``lr = 0.1`` set in an earlier cell is recorded); the params fingerprint from the explicit
``--param`` values. When none is unknown, the registry is asked for an earlier ``ok`` run with all
three identical: running the cell again would spend the same energy for the same result. That one
query is the caller's (``RedundancyLookup``, the session), so this package never imports the registry.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Mapping
from typing import Any, Protocol


class RedundancyLookup(Protocol):
    """What ``check_cell`` asks for an identical earlier run: ``Session.find_redundant``."""

    def find_redundant(self, fingerprints: Mapping[str, str | None]) -> Mapping[str, Any] | None: ...


@dataclasses.dataclass(frozen=True)
class CellCheck:
    fingerprints: Mapping[str, str | None]
    """``code_fingerprint``, ``inputs_fingerprint`` (None when an input is unknown), ``params_fingerprint``."""
    auto_params: Mapping[str, Any]
    """Scalar inputs recorded as params; explicit ``--param`` values win over them."""
    unknown: tuple[str, ...]
    """Inputs that could not be fingerprinted: the cell is then never called redundant."""
    earlier: Mapping[str, Any] | None
    """The first identical ``ok`` run (id, name, started_at, energy_j, emissions_g, repeats), if any."""

    def params(self, explicit: Mapping[str, Any]) -> dict[str, Any]:
        return {**self.auto_params, **explicit}


def check_cell(
    lookup: RedundancyLookup, source: str, namespace: Mapping[str, Any], explicit: Mapping[str, Any]
) -> CellCheck:
    """Fingerprint ``source`` (a cell as IPython runs it) against ``namespace`` and look it up."""
    from .digest import inputs_fingerprint, params_fingerprint
    from .freevars import free_variables
    from .source import code_fingerprint

    inputs = free_variables(source)
    digest = inputs_fingerprint(inputs.names_in(namespace), namespace) if inputs.exact else None
    fingerprints = {
        "code_fingerprint": code_fingerprint(source),
        "inputs_fingerprint": digest.fingerprint if digest is not None else None,
        "params_fingerprint": params_fingerprint(explicit),
    }
    unknown = tuple(digest.unknown) if digest is not None else ("*",)
    earlier = lookup.find_redundant(fingerprints) if fingerprints["inputs_fingerprint"] else None
    return CellCheck(fingerprints, dict(digest.params) if digest else {}, unknown, earlier)


def repeat_message(earlier: Mapping[str, Any], *, now: float | None = None) -> str:
    """``run 12 ('baseline', 2 h ago, 4.1 g CO2e)``: which earlier run, when, and what it cost."""
    from ..impact.footprint import format_duration, format_energy, format_mass_g

    now = time.time() if now is None else now
    ago = format_duration(max(now - earlier["started_at"], 0.0)) + " ago"
    from ..units import terminal_text

    parts = [terminal_text(repr(earlier["name"]))] if earlier.get("name") else []
    parts.append(ago)
    if earlier.get("emissions_g") is not None:
        parts.append(f"{format_energy(earlier['energy_j'] or 0.0)}, {format_mass_g(earlier['emissions_g'])} CO2e")
    times = f"; repeated {earlier['repeats']} times so far" if (earlier.get("repeats") or 1) > 1 else ""
    return f"run {earlier['id']} ({', '.join(parts)}){times}"

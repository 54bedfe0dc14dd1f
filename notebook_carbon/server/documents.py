"""The endpoints' JSON documents, made from what the registry answers: pure, no I/O.

``sweep_row``, ``run_row`` and ``part_row`` make one sweep (``registry.sweeps.SweepSummary``), one run
(a row of ``Registry.page``) or one part of a run (a row of ``run_parts``: a rank of a distributed
job, or a block metered inside the run) a JSON object; the summary is a statement's figures
(``statements.tally``).
Energy in J, emissions in g CO2e, water in L, run time in s.

JSON has no infinity or NaN, and one stored row must never make a page fail: a figure that is not
a finite number is sent as null (the row's ``excluded`` says why: ``record.implausible``), and such
a number among the params (``--param x=1e999``) as the text ``"Infinity"``, ``"-Infinity"`` or
``"NaN"``.
"""

from __future__ import annotations

import json
import math
import os
import pathlib
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ..record import implausible
from ..registry.parts import decode_devices

if TYPE_CHECKING:
    from ..registry.sweeps import SweepSummary

__all__ = ["PART_COLUMNS", "RUN_COLUMNS", "json_ready", "part_row", "run_row", "server_path", "sweep_row"]

_paths = os.path
_PurePath = pathlib.PurePath
"""The server's own path rules (a test swaps in Windows's: ``ntpath``, ``PureWindowsPath``)."""

RUN_COLUMNS = (
    "id", "uid", "project", "notebook", "name", "sweep", "sweep_key", "code_fingerprint", "status", "error",
    "started_at", "ended_at", "duration_s", "energy_j", "gpu_energy_j", "cpu_energy_j", "ram_energy_j",
    "emissions_g", "water_l", "embodied_g", "intensity_region", "host", "gpu_model", "tags", "params",
    "redundant_of", "is_final", "pue", "intensity_g_per_kwh", "gpu_count",
    "job", "job_block", "job_world_size", "job_parts", "job_nodes", "execution_count", "cell_id",
)  # fmt: skip
"""What a page of runs says of each run: not the cell's source, most of a row's bytes; every
column of ``record.BOUNDS``, so a row's ``excluded`` gives the reason the totals leave it out; for
a distributed job's one run (``registry.jobs``), its key, block, world size and how many parts
and nodes it is made of (null for a run that is no job); and its cell (``cell_id``, the cell's id
JupyterLab sent, and ``execution_count``, its ``In [n]``)."""

PART_COLUMNS = (
    "id", "uid", "parent_uid", "name", "sweep", "status", "error", "started_at", "ended_at", "duration_s",
    "updated_at", "energy_j", "gpu_energy_j", "cpu_energy_j", "ram_energy_j", "gpu_method", "cpu_method",
    "ram_method", "machine_energy_j", "emissions_g", "water_l", "embodied_g", "pid", "attribution",
    "job", "block", "rank", "local_rank", "node", "counted", "tags", "params", "notes", "devices",
)  # fmt: skip
"""What the parts endpoint says of each part of a run."""

def sweep_row(sweep: SweepSummary, *, params: bool = True) -> dict[str, Any]:
    """One sweep: its key, label, runs and costs, overhead and selected run; with ``params``, each
    varying parameter with its first distinct values (``registry.totals.VALUES_SHOWN``) and, in
    ``varying_counts``, how many it has."""
    row = {
        "key": sweep.key,
        "label": sweep.label,
        "explicit": sweep.explicit,
        "runs": sweep.runs,
        "statuses": dict(sweep.statuses),
        "energy_j": sweep.energy_j,
        "emissions_g": sweep.emissions_g,
        "overhead_ratio": sweep.overhead_ratio,
        "failed_runs": sweep.failed_runs,
        "failed_energy_j": sweep.failed_energy_j,
        "redundant_runs": sweep.redundant_runs,
        "redundant_energy_j": sweep.redundant_energy_j,
        "redundant_emissions_g": sweep.redundant_emissions_g,
        "selected_run_id": sweep.selected_run_id,
        "selected_is_marked": sweep.selected_is_marked,
        "selected_energy_j": sweep.selected_energy_j,
    }
    if params:
        row["varying_params"] = {
            name: json_ready(list(values), as_text=True) for name, values in sweep.varying_params.items()
        }
        row["varying_counts"] = dict(sweep.varying_counts)
    return json_ready(row)


def run_row(run: Mapping[str, Any], root: str | None = None, here: str | None = None) -> dict[str, Any]:
    """One run of a page (``Registry.page``): ``RUN_COLUMNS``, with ``excluded`` (why the totals
    leave it out, or None), ``path`` (its notebook under the server's ``root``, when recorded on
    this host, ``here``: ``server_path``) and, for a redundant run, ``repeats`` (the run it
    repeats, with its ``path`` too)."""
    row = {name: run.get(name) for name in RUN_COLUMNS}
    row["is_final"] = bool(row["is_final"])
    row["excluded"] = implausible(row)
    row["path"] = server_path(row["notebook"], root, host=row["host"], here=here)
    for name in ("tags", "params"):
        row[name] = json_ready(row[name], as_text=True)
    if "repeats" in run:
        earlier = run["repeats"]
        path = server_path(earlier.get("notebook"), root, host=earlier.get("host"), here=here)
        row["repeats"] = {**{k: v for k, v in earlier.items() if k != "host"}, "path": path}
    return json_ready(row)


def server_path(notebook: str | None, root: str | None, *, host: str | None = None,
                here: str | None = None) -> str | None:  # fmt: skip
    """``notebook``, as a run records it, as the path JupyterLab opens it by: relative to the
    server's ``root``, with ``/``. A kernel a Jupyter server started records the absolute path
    under that server's root (``JPY_SESSION_NAME``); a relative path is taken as under the root.
    None without a notebook or a root, for what is not a notebook (``.ipynb``), for a notebook
    outside the root (which the server cannot open; a root or path reached through a symbolic
    link is compared resolved too; another drive is outside), and for a run recorded on a ``host``
    that is not this server's (``here``): a registry shared by a lab holds runs of other machines,
    whose files of the same name are not these."""
    if not notebook or not root or not notebook.endswith(".ipynb") or (host and here and host != here):
        return None
    if _paths.isabs(notebook):
        base = _paths.normpath(_paths.abspath(_paths.expanduser(root)))
        relative = _under(_paths.normpath(notebook), base)
        if relative is None:  # a symbolic link on either side: compare where they lead
            relative = _under(_paths.realpath(notebook), _paths.realpath(base))
        if relative is None:
            return None
        notebook = relative
    path = _PurePath(_paths.normpath(notebook)).as_posix()
    return None if path in (".", "..") or path.startswith("../") else path


def _under(path: str, base: str) -> str | None:
    """``path`` relative to ``base`` when it is inside it, else None (on another drive too)."""
    try:
        if _paths.commonpath([base, path]) != base or path == base:
            return None
        return _paths.relpath(path, base)
    except ValueError:  # different drives, or a mix of absolute and relative paths
        return None


def part_row(part: Mapping[str, Any]) -> dict[str, Any]:
    """One part of a run (a row of ``run_parts``): ``PART_COLUMNS``, ``counted`` as a boolean (whether
    the run's figures count its energy: a nested block's never are, its run measured it), ``devices``
    as the list of what it metered per device (empty when the stored text is not such a list)."""
    row = {name: part.get(name) for name in PART_COLUMNS}
    row["counted"] = bool(row["counted"])
    row["devices"] = decode_devices(row["devices"])
    for name in ("tags", "params", "notes"):
        row[name] = json_ready(row[name], as_text=True)
    return json_ready(row)


def json_ready(value: Any, *, as_text: bool = False) -> Any:
    """``value`` with every float that is not a finite number as None, or with ``as_text`` as the
    text JSON's writers use for it (``Infinity``, ``-Infinity``, ``NaN``)."""
    if isinstance(value, float) and not math.isfinite(value):
        return json.dumps(value) if as_text else None
    if isinstance(value, dict):
        return {k: json_ready(v, as_text=as_text) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_ready(v, as_text=as_text) for v in value]
    return value

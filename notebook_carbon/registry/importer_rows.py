"""One row of codecarbon's ``emissions.csv``: checked against the run bounds and converted, or rejected.

Pure: no file, no registry. ``convert_row`` turns a row (a mapping of header to cell text) into the
records ``Registry.record_run`` takes, or raises ``RowRejected`` with every problem of the row, each
naming its columns. Every figure that would be stored is checked against ``record.BOUNDS`` before
anything is converted further, so no row can bring ``inf``, an overflowing count or a year-1
timestamp into the registry, where one such run would break every reader of its project.

Units: codecarbon writes energy in kWh, emissions in kg CO2e, water in L, durations in s, RAM in GB.
The registry stores joules (1 kWh = 3.6e6 J exactly), grams, litres and seconds. codecarbon
multiplies every energy figure by the PUE before it adds it up, so its energies are facility
energy; the registry's ``energy_j`` is IT energy before PUE, hence ``codecarbon kWh x 3.6e6 / pue``.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import math
import uuid
from collections.abc import Mapping
from datetime import datetime, timedelta, timezone
from typing import Any

from ..errors import ConfigError
from ..impact import tables
from ..impact.footprint import J_PER_KWH
from ..meters.base import METHODS
from ..record import BOUNDS, check_figure, implausible

__all__ = [
    "CODECARBON_COLUMNS",
    "IMPORTED_METHOD",
    "RAM_MAX_GB",
    "ParsedRun",
    "RowRejected",
    "check_project",
    "convert_row",
    "method_for",
    "row_uid",
]

G_PER_KG = 1000.0

# The columns of codecarbon 3.3.2's EmissionsData (output_methods/emissions_data.py) plus the
# task files' task_name. Only these identify a row that has no run_id, so a column a user added
# later does not make the same row look new.
CODECARBON_COLUMNS = frozenset(
    "timestamp project_name run_id experiment_id duration emissions emissions_rate cpu_power gpu_power "
    "ram_power cpu_energy gpu_energy ram_energy energy_consumed water_consumed country_name "
    "country_iso_code region cloud_provider cloud_region os python_version codecarbon_version cpu_count "
    "cpu_model gpu_count gpu_model longitude latitude ram_total_size tracking_mode "
    "cpu_utilization_percent gpu_utilization_percent ram_utilization_percent ram_used_gb on_cloud pue wue "
    "task_name".split()
)

# codecarbon writes this experiment_id when the user gave none (emissions_tracker.py); as a run
# name it would label every unnamed run alike.
CODECARBON_DEFAULT_EXPERIMENT_ID = "5b0fa12a-3dd7-45bb-9766-cc326314d9f1"

PROJECT_MAX_CHARS = 200  # the width of runs.project
_REGION_MAX_CHARS = 64  # the width of runs.intensity_region

RAM_MAX_GB = 1e6
"""A petabyte: twenty times the largest single-system memory sold (48 TB). ``ram_total_size`` only
labels the RAM component, but a larger figure means the row is corrupt."""

IMPORTED_METHOD = "imported"
"""The method that says "measured by another tool, which did not record how" (proposed for METHODS)."""

# codecarbon's CSV does not say how each figure was obtained, and the registry's vocabulary has no
# word for "not recorded". Until METHODS gains IMPORTED_METHOD, each component gets the least
# certain method that could describe codecarbon's figure, so an imported run never claims more
# precision than it has (a measured figure labelled an estimate errs on the safe side):
_LABELS = {
    # RAPL (measured) when readable, else TDP x load or a constant: both estimates
    "cpu": ("estimate-tdp", "codecarbon reads RAPL where it can and otherwise estimates from the TDP"),
    # estimated from memory size on almost every machine (measured only on a Raspberry Pi's PMIC)
    "ram": ("estimate-ram", "codecarbon estimates RAM power on almost every machine"),
    # the vendor's energy counter, falling back to integrating sampled power; never an estimate
    "gpu": ("nvml-power", "codecarbon reads the GPU energy counter and falls back to sampling power"),
}


def method_for(component: str) -> str:
    """The method recorded for a component imported from codecarbon (``cpu``, ``ram`` or ``gpu``)."""
    return IMPORTED_METHOD if IMPORTED_METHOD in METHODS else _LABELS[component][0]


@dataclasses.dataclass(frozen=True)
class ParsedRun:
    """One row converted to registry records: ``Registry.record_run(row, final, components)``."""

    uid: str
    line: int
    run_id: str | None
    row: dict[str, Any]
    final: dict[str, Any]
    components: tuple[dict[str, Any], ...]


class RowRejected(Exception):
    """A row's problems, all of them: ``columns`` at fault (in the order found) and one message."""

    def __init__(self, problems: list[tuple[tuple[str, ...], str]]) -> None:
        super().__init__("; ".join(message for _, message in problems))
        self.columns = tuple(dict.fromkeys(column for columns, _ in problems for column in columns))


Problems = list[tuple[tuple[str, ...], str]]


def convert_row(
    record: Mapping[str, str], uid: str, line: int, source: str, project: str | None
) -> tuple[datetime, float, ParsedRun]:
    """One good row as registry records, with its end time and duration; ``RowRejected`` otherwise."""
    problems: Problems = []
    corrupt = [column for column, value in record.items() if value and "\x00" in value]
    if corrupt:
        verb = "contains" if len(corrupt) == 1 else "contain"
        message = (
            f"{', '.join(corrupt)} {verb} a NUL character, which no database can store "
            "(a crash while writing leaves them)"
        )
        problems.append((tuple(corrupt), message))
    number = functools.partial(_number, record, problems)
    pue = number("pue", bound=_bound("pue", 1.0))
    # the stored energy is IT energy, codecarbon's figure / PUE: the bound in kWh scales with it
    per_kwh = J_PER_KWH / (pue or 1.0)
    duration_s = number("duration", required=True, bound=_bound("duration_s", 1.0))
    emissions_kg = number("emissions", required=True, bound=_bound("emissions_g", G_PER_KG))
    total_kwh = number("energy_consumed", required=True, energy=True, bound=_bound("energy_j", per_kwh))
    parts_kwh = {
        c: number(f"{c}_energy", energy=True, bound=_bound(f"{c}_energy_j", per_kwh))
        for c in ("gpu", "cpu", "ram")
    }
    water_l = number("water_consumed", bound=_bound("water_l", 1.0))
    gpu_count = number("gpu_count", whole=True, bound=_bound("gpu_count", 1.0))
    ram_gb = number("ram_total_size", bound=(0.0, RAM_MAX_GB))
    timestamp = _text(record, "timestamp")
    ended, zoned = _timestamp(timestamp, problems)
    if project is None:
        project = _text(record, "project_name") or "default"
        try:
            check_project(project, "project_name")
        except ConfigError as exc:
            problems.append((("project_name",), f"{exc}; pass --project to import it under another name"))
    if (
        ended is not None
        and duration_s is not None
        and ended.timestamp() - duration_s < BOUNDS["started_at"][0]
    ):
        message = (
            f"timestamp {timestamp!r} minus duration {_text(record, 'duration')} s starts the run before "
            f"{_date(BOUNDS['started_at'][0])}, outside the plausible range"
        )
        problems.append((("timestamp", "duration"), message))
    intensity = None
    if emissions_kg is not None and total_kwh is not None and total_kwh > 0:
        intensity = emissions_kg * G_PER_KG / total_kwh
        if check_figure("intensity_g_per_kwh", intensity) is not None:
            low, high, unit = BOUNDS["intensity_g_per_kwh"]
            message = (
                f"emissions {_text(record, 'emissions')} kg over energy_consumed "
                f"{_text(record, 'energy_consumed')} kWh is {intensity:.3g} {unit}, outside the plausible "
                f"range {_shown(low)} to {_shown(high)} {unit} of any grid: the row's figures disagree"
            )
            problems.append((("emissions", "energy_consumed"), message))
    if problems:
        raise RowRejected(problems)
    assert ended is not None and duration_s is not None and emissions_kg is not None and total_kwh is not None

    version = _text(record, "codecarbon_version")
    tool = f"codecarbon {version}" if version else "codecarbon (version not recorded)"
    run_id = _text(record, "run_id")
    notes = [
        f"imported from {tool} {source} line {line}"
        + (f", run_id {run_id}" if run_id else "; no run_id, so the run is identified by the row's content"),
        _time_note(timestamp, ended, zoned),
        f"{tool}'s CSV does not say whether the tracked code failed; imported as ok",
    ]
    if pue is None:
        notes.append("no pue column (older codecarbon): its energy taken as IT energy, PUE 1")
        pue = 1.0
    elif pue != 1.0:
        notes.append(
            f"{tool} multiplies energy by the PUE ({pue:g}); energy_j is IT energy, its figure / PUE"
        )
    present = [kwh for kwh in parts_kwh.values() if kwh is not None]
    if present and not math.isclose(sum(present), total_kwh, rel_tol=1e-6, abs_tol=1e-12):
        notes.append(
            f"energy_consumed {total_kwh!r} kWh differs from the sum of cpu, gpu and ram energy "
            f"{sum(present)!r} kWh; energy_j is energy_consumed"
        )

    final: dict[str, Any] = {
        "status": "ok",
        "ended_at": ended.timestamp(),
        "duration_s": duration_s,
        "energy_j": total_kwh * J_PER_KWH / pue,
        "emissions_g": emissions_kg * G_PER_KG,
        "water_l": water_l,
    }
    components = []
    for component in ("gpu", "cpu", "ram"):
        kwh = parts_kwh[component]
        # codecarbon writes gpu_energy 0 on a machine without GPU: that is no GPU, not an idle one
        if kwh is None or (component == "gpu" and kwh == 0 and not gpu_count):
            final[f"{component}_energy_j"], final[f"{component}_method"] = None, "none"
            continue
        method = method_for(component)
        reason = f"imported from {tool} {source}; measurement method not recorded by codecarbon"
        if method != IMPORTED_METHOD:
            reason += f"; labelled {method}, the least certain that fits: {_LABELS[component][1]}"
        energy_j = kwh * J_PER_KWH / pue
        final[f"{component}_energy_j"], final[f"{component}_method"] = energy_j, method
        components.append(
            {
                "component": component,
                "device": _device(component, record, gpu_count, ram_gb),
                "method": method,
                "energy_j": energy_j,
                "reason": reason,
            }
        )
    if components and IMPORTED_METHOD not in METHODS:
        labels = ", ".join(f"{c['component']} {c['method']}" for c in components)
        notes.append(f"methods not recorded by codecarbon; labelled {labels}, the least certain that fit")

    tracking_mode = _text(record, "tracking_mode")
    row: dict[str, Any] = {
        "uid": uid,
        "project": project,
        "name": _name(record),
        "started_at": final["ended_at"] - duration_s,
        "cpu_model": _text(record, "cpu_model"),
        "gpu_model": _text(record, "gpu_model"),
        "gpu_count": int(gpu_count) if gpu_count is not None else None,
        "attribution": tracking_mode if tracking_mode in ("machine", "process") else None,
        "pue": pue,
        # codecarbon's energy includes the PUE, so this is emissions / (IT energy x PUE)
        "intensity_g_per_kwh": intensity,
        "intensity_region": _region(record),
        "intensity_source": f"{tool} (imported)",
        "notes": notes,
    }
    # Each figure was checked above in codecarbon's units; this is the same rule on what is stored,
    # so a rounding at a bound's edge can never let through what every reader would leave out.
    reason = implausible({**row, **final})
    if reason is not None:
        raise RowRejected([((), f"{reason} after conversion")])
    return ended, duration_s, ParsedRun(uid, line, run_id, row, final, tuple(components))


# -- fields -----------------------------------------------------------------------------------


def _text(record: Mapping[str, str], column: str) -> str | None:
    """The stripped value of ``column``, None when the column is absent or the value empty."""
    value = (record.get(column) or "").strip()
    return value or None


def _bound(run_column: str, scale: float) -> tuple[float, float]:
    """``record.BOUNDS[run_column]`` in codecarbon's unit, where ``stored = codecarbon figure x scale``."""
    low, high, _ = BOUNDS[run_column]
    return low / scale, high / scale


_UNITS = {"duration": "s", "emissions": "kg", "energy_consumed": "kWh", "cpu_energy": "kWh", "gpu_energy": "kWh",
          "ram_energy": "kWh", "water_consumed": "L", "gpu_count": "GPUs", "ram_total_size": "GB"}  # fmt: skip


def _number(
    record: Mapping[str, str],
    problems: Problems,
    column: str,
    *,
    bound: tuple[float, float],
    required: bool = False,
    energy: bool = False,
    whole: bool = False,
) -> float | None:
    """A finite number within ``bound`` (inclusive); None when absent; a problem appended otherwise."""
    text = _text(record, column)
    if text is None:
        if required:
            problems.append(((column,), f"{column} is empty"))
        return None
    try:
        value = float(text)
    except ValueError:
        problems.append(((column,), f"{column} {text!r} is not a number"))
        return None
    unit = f" {_UNITS[column]}" if column in _UNITS else ""
    if not math.isfinite(value):
        problems.append(((column,), f"{column} {text!r} is not a finite number"))
    elif value < 0 and energy:
        problems.append(((column,), f"negative energy: {column} {text} kWh"))
    elif value < 0 and bound[0] == 0:
        problems.append(((column,), f"{column} {text} must be at least 0"))
    elif whole and not value.is_integer():
        problems.append(((column,), f"{column} {text!r} is not a whole number"))
    elif not bound[0] <= value <= bound[1]:
        message = f"{column} {text}{unit} is outside the plausible range {_shown(bound[0])} to {_shown(bound[1])}{unit}"
        problems.append(((column,), message))
    else:
        return value
    return None


def _shown(x: float) -> str:
    """A bound as printed: whole numbers in full up to a million (``100000``), else 3 digits."""
    return f"{x:.0f}" if x == int(x) and abs(x) < 1e6 else f"{x:.3g}"


def _date(epoch_s: float) -> str:
    return datetime.fromtimestamp(epoch_s, timezone.utc).date().isoformat()


def _year(epoch_s: float) -> int:
    return datetime.fromtimestamp(epoch_s, timezone.utc).year


def _timestamp(text: str | None, problems: Problems) -> tuple[datetime | None, bool]:
    """The end of the run, zone-aware, and whether the text gave its zone (else: local time here)."""
    if text is None:
        problems.append((("timestamp",), "timestamp is empty"))
        return None, False
    try:
        # Python 3.10's fromisoformat does not take a "Z" suffix
        moment = datetime.fromisoformat(text[:-1] + "+00:00" if text.endswith("Z") else text)
    except ValueError:
        message = (
            f"timestamp {text!r} is not an ISO 8601 date and time (codecarbon writes 2024-05-01T13:45:00)"
        )
        problems.append((("timestamp",), message))
        return None, False
    low, high, _ = BOUNDS["ended_at"]
    outside = (
        ("timestamp",),
        f"timestamp {text!r} is outside the plausible range {_date(low)} to {_date(high)}",
    )
    # checked before any zone arithmetic, which a year-1 or year-9999 time overflows
    if not _year(low) <= moment.year <= _year(high):
        problems.append(outside)
        return None, False
    try:
        # codecarbon writes datetime.now(): wall-clock time of the machine it ran on, with no zone
        zoned = moment.tzinfo is not None
        moment = moment if zoned else moment.astimezone()
        reason = check_figure("ended_at", moment.timestamp())
    except (ValueError, OverflowError, OSError):
        reason = "out of range"
    if reason is not None:
        problems.append(outside)
        return None, False
    return moment, zoned


def _time_note(text: str | None, ended: datetime, zoned: bool) -> str:
    offset = ended.utcoffset() or timedelta(0)
    sign, offset = ("-", -offset) if offset < timedelta(0) else ("+", offset)
    hours, minutes = divmod(int(offset.total_seconds()) // 60, 60)
    zone = f"UTC{sign}{hours:02d}:{minutes:02d}"
    if zoned:
        return f"timestamp {text} ({zone}) is the end of the run; started_at = timestamp - duration"
    return (
        f"timestamp {text} is the end of the run, local time without a zone, whole seconds; read as the "
        f"importing machine's local time ({zone}); started_at = timestamp - duration"
    )


def row_uid(run_id: str | None, task_name: str | None, record: Mapping[str, str]) -> str:
    """codecarbon's run_id as 32 hex digits; a hash when it is no UUID, is a task's, or is absent."""
    if run_id is not None and task_name is None:
        try:
            return uuid.UUID(run_id).hex
        except ValueError:
            pass
    if run_id is not None:
        # the tasks of one run share its run_id: each task is a run of its own
        key = json.dumps({"run_id": run_id, "task_name": task_name}, sort_keys=True)
    else:
        key = json.dumps({k: v.strip() for k, v in record.items() if k in CODECARBON_COLUMNS}, sort_keys=True)
    return hashlib.sha256(key.encode()).hexdigest()[:32]


def _name(record: Mapping[str, str]) -> str | None:
    task = _text(record, "task_name")
    if task is not None:
        return task
    experiment = _text(record, "experiment_id")
    # str(None) is what codecarbon writes for a missing experiment_id
    return None if experiment in (None, "None", CODECARBON_DEFAULT_EXPERIMENT_ID) else experiment


def check_project(project: str, what: str) -> None:
    """``ConfigError`` for a project name the registry cannot hold (empty, or too long)."""
    if not project.strip():
        raise ConfigError(f"{what} must not be empty")
    if len(project) > PROJECT_MAX_CHARS:
        raise ConfigError(f"{what} is longer than {PROJECT_MAX_CHARS} characters")


def _region(record: Mapping[str, str]) -> str | None:
    """The registry's region syntax: ``aws:eu-west-3`` in a cloud, else the country's alpha-2 code."""
    provider, cloud_region = _text(record, "cloud_provider"), _text(record, "cloud_region")
    if provider and cloud_region:
        return f"{provider.lower()}:{cloud_region.lower()}"[:_REGION_MAX_CHARS]
    country = (_text(record, "country_iso_code") or "").upper()
    code = _alpha2().get(country, country) if len(country) == 3 else country
    subdivision = _text(record, "region")
    if code and subdivision:  # codecarbon names it (``california``): kept as written
        return f"{code} ({subdivision})"[:_REGION_MAX_CHARS]
    return code[:_REGION_MAX_CHARS] or None


@functools.cache
def _alpha2() -> dict[str, str]:
    return {pair[2:]: pair[:2] for pair in tables.ISO_PAIRS.split()}


def _device(component: str, record: Mapping[str, str], gpu_count: float | None, ram_gb: float | None) -> str:
    if component == "gpu":  # codecarbon writes "2 x NVIDIA A100-SXM4-40GB"
        return _text(record, "gpu_model") or (f"{gpu_count:g} GPU" if gpu_count else "GPU")
    if component == "cpu":
        return _text(record, "cpu_model") or "CPU"
    return f"{ram_gb:.3g} GB" if ram_gb else "RAM"

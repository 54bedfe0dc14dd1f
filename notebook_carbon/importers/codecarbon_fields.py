"""The fields of one row of codecarbon's ``emissions.csv``: each read, checked and named as stored.

Pure helpers of ``codecarbon_rows.convert_row``: a number within its bound (a problem recorded, never
raised, so a row reports all its faults at once), the end time with or without a zone, the run's
name, region and devices, and the uid that makes an import idempotent.
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
import uuid
from collections.abc import Mapping
from datetime import datetime, timedelta, timezone

from ..errors import ConfigError
from ..impact import tables
from ..record import BOUNDS, check_figure

__all__ = [
    "CODECARBON_COLUMNS",
    "Problems",
    "check_project",
    "checked_number",
    "date",
    "device",
    "end_time",
    "field_text",
    "region",
    "row_uid",
    "run_name",
    "scaled_bound",
    "shown",
    "time_note",
]

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

Problems = list[tuple[tuple[str, ...], str]]
"""A row's problems so far: (the columns at fault, one message)."""


def field_text(record: Mapping[str, str], column: str) -> str | None:
    """The stripped value of ``column``, None when the column is absent or the value empty."""
    value = (record.get(column) or "").strip()
    return value or None


def scaled_bound(run_column: str, scale: float) -> tuple[float, float]:
    """``record.BOUNDS[run_column]`` in codecarbon's unit, where ``stored = codecarbon figure x scale``."""
    low, high, _ = BOUNDS[run_column]
    return low / scale, high / scale


_UNITS = {"duration": "s", "emissions": "kg", "energy_consumed": "kWh", "cpu_energy": "kWh", "gpu_energy": "kWh",
          "ram_energy": "kWh", "water_consumed": "L", "gpu_count": "GPUs", "ram_total_size": "GB"}  # fmt: skip


def checked_number(
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
    text = field_text(record, column)
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
        message = f"{column} {text}{unit} is outside the plausible range {shown(bound[0])} to {shown(bound[1])}{unit}"
        problems.append(((column,), message))
    else:
        return value
    return None


def shown(x: float) -> str:
    """A bound as printed: whole numbers in full up to a million (``100000``), else 3 digits."""
    return f"{x:.0f}" if x == int(x) and abs(x) < 1e6 else f"{x:.3g}"


def date(epoch_s: float) -> str:
    return datetime.fromtimestamp(epoch_s, timezone.utc).date().isoformat()


def _year(epoch_s: float) -> int:
    return datetime.fromtimestamp(epoch_s, timezone.utc).year


def end_time(text: str | None, problems: Problems) -> tuple[datetime | None, bool]:
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
        f"timestamp {text!r} is outside the plausible range {date(low)} to {date(high)}",
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


def time_note(text: str | None, ended: datetime, zoned: bool) -> str:
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


def run_name(record: Mapping[str, str]) -> str | None:
    task = field_text(record, "task_name")
    if task is not None:
        return task
    experiment = field_text(record, "experiment_id")
    # str(None) is what codecarbon writes for a missing experiment_id
    return None if experiment in (None, "None", CODECARBON_DEFAULT_EXPERIMENT_ID) else experiment


def check_project(project: str, what: str) -> None:
    """``ConfigError`` for a project name the registry cannot hold (empty, or too long)."""
    if not project.strip():
        raise ConfigError(f"{what} must not be empty")
    if len(project) > PROJECT_MAX_CHARS:
        raise ConfigError(f"{what} is longer than {PROJECT_MAX_CHARS} characters")


def region(record: Mapping[str, str]) -> str | None:
    """The registry's region syntax: ``aws:eu-west-3`` in a cloud, else the country's alpha-2 code."""
    provider, cloud_region = field_text(record, "cloud_provider"), field_text(record, "cloud_region")
    if provider and cloud_region:
        return f"{provider.lower()}:{cloud_region.lower()}"[:_REGION_MAX_CHARS]
    country = (field_text(record, "country_iso_code") or "").upper()
    code = _alpha2().get(country, country) if len(country) == 3 else country
    subdivision = field_text(record, "region")
    if code and subdivision:  # codecarbon names it (``california``): kept as written
        return f"{code} ({subdivision})"[:_REGION_MAX_CHARS]
    return code[:_REGION_MAX_CHARS] or None


@functools.cache
def _alpha2() -> dict[str, str]:
    return {pair[2:]: pair[:2] for pair in tables.ISO_PAIRS.split()}


def device(component: str, record: Mapping[str, str], gpu_count: float | None, ram_gb: float | None) -> str:
    if component == "gpu":  # codecarbon writes "2 x NVIDIA A100-SXM4-40GB"
        return field_text(record, "gpu_model") or (f"{gpu_count:g} GPU" if gpu_count else "GPU")
    if component == "cpu":
        return field_text(record, "cpu_model") or "CPU"
    return f"{ram_gb:.3g} GB" if ram_gb else "RAM"

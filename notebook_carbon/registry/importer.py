"""Import codecarbon's ``emissions.csv`` logs into the registry, so runs tracked before count in totals.

Each row of the CSV becomes one finished run. Reading (``read_codecarbon_csv``: parse, validate,
convert) is apart from writing (``record_codecarbon_log``), so the command line checks every file
before it writes anything; ``import_codecarbon_csv`` does both for one file.

Units: codecarbon writes energy in kWh, emissions in kg CO2e, power in W, water in L, durations in
s. The registry stores joules (1 kWh = 3.6e6 J exactly), grams, litres and seconds. codecarbon
multiplies every energy figure by the PUE before it adds it up, so its energies are facility
energy; the registry's ``energy_j`` is IT energy before PUE, hence ``codecarbon kWh x 3.6e6 / pue``.

Identity: a run's uid is codecarbon's ``run_id`` as 32 hex digits (a hash of the row when there is
none), so importing a file twice records nothing new: a uid already in the registry is skipped. A
file written in codecarbon's ``append`` mode holds one cumulative row per ``flush()`` and one per
``stop()`` of the same ``run_id``; the latest row carries the run's totals and is the one imported.
"""

from __future__ import annotations

import csv
import dataclasses
import functools
import hashlib
import json
import math
import uuid
from collections.abc import Mapping
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import ConfigError, RegistryError
from ..impact import tables
from ..impact.footprint import J_PER_KWH
from ..meters.base import METHODS

if TYPE_CHECKING:
    from .store import Registry

__all__ = [
    "REQUIRED_COLUMNS",
    "CodecarbonLog",
    "ImportReport",
    "ParsedRun",
    "RowError",
    "import_codecarbon_csv",
    "method_for",
    "read_codecarbon_csv",
    "record_codecarbon_log",
]

G_PER_KG = 1000.0

REQUIRED_COLUMNS = ("timestamp", "duration", "emissions", "energy_consumed")
"""What a row cannot do without: when the run ended, how long it ran, its energy and emissions."""

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

_PROJECT_MAX_CHARS = 200  # the width of runs.project
_REGION_MAX_CHARS = 64  # the width of runs.intensity_region

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
class RowError:
    """A row that was not imported: its line in the file (1 is the header), run_id and why."""

    line: int
    run_id: str | None
    message: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.message}"


@dataclasses.dataclass(frozen=True)
class ImportReport:
    """What one import did: runs recorded, rows skipped as already recorded, rows rejected."""

    imported: int
    skipped_duplicates: int
    """Rows whose run was already in the registry, or earlier cumulative rows of an imported run."""
    errors: tuple[RowError, ...] = ()

    def summary(self) -> str:
        """``imported 3 runs, skipped 0 duplicates, 1 row rejected``."""
        return (
            f"imported {_count(self.imported, 'run')}, "
            f"skipped {_count(self.skipped_duplicates, 'duplicate')}, "
            f"{_count(len(self.errors), 'row')} rejected"
        )


@dataclasses.dataclass(frozen=True)
class ParsedRun:
    """One row converted to registry records: ``Registry.record_run(row, final, components)``."""

    uid: str
    line: int
    run_id: str | None
    row: dict[str, Any]
    final: dict[str, Any]
    components: tuple[dict[str, Any], ...]


@dataclasses.dataclass(frozen=True)
class CodecarbonLog:
    """A codecarbon CSV read and checked, nothing written yet."""

    name: str
    """The file's name (not its path): it goes into each run's notes."""
    runs: tuple[ParsedRun, ...]
    errors: tuple[RowError, ...]
    superseded: int
    """Earlier cumulative rows (``flush()``) of a run whose latest row is in ``runs``."""


class _Rejected(Exception):
    """A row's problems, all of them, joined for one RowError."""


# -- the API ----------------------------------------------------------------------------------


def import_codecarbon_csv(
    registry: Registry, path: str | Path, *, project: str | None = None
) -> ImportReport:
    """Record every good row of a codecarbon ``emissions.csv`` as a finished run of ``registry``.

    ``project`` overrides each row's ``project_name`` (default ``default``). A file that cannot be
    read or lacks a required column raises ``ConfigError`` and nothing is imported; a bad row is
    reported in ``ImportReport.errors`` and the good rows are still recorded. Running it again is
    safe: runs already recorded are skipped, never rewritten.
    """
    return record_codecarbon_log(registry, read_codecarbon_csv(path, project=project))


def read_codecarbon_csv(path: str | Path, *, project: str | None = None) -> CodecarbonLog:
    """Read and check a codecarbon CSV and convert its rows; writes nothing.

    Accepts a UTF-8 BOM, Windows line ends, unknown extra columns (ignored) and the fewer columns
    of older codecarbon versions (absent optional figures stay empty). Raises ``ConfigError`` for
    a file that cannot be read or lacks any of ``REQUIRED_COLUMNS``.
    """
    path = Path(path)
    if project is not None:
        _check_project(project, "--project")
    header, rows = _read_table(path)
    missing = [column for column in REQUIRED_COLUMNS if column not in header]
    if missing:
        raise ConfigError(
            f"{path} lacks the column{'s' if len(missing) > 1 else ''} {', '.join(missing)} that every "
            f"codecarbon emissions.csv has (its header: {', '.join(header)[:200]}); import the file "
            "codecarbon wrote, unedited; nothing was imported"
        )
    by_uid: dict[str, list[tuple[datetime, float, ParsedRun]]] = {}
    rejected: dict[str, int] = {}  # uid -> the first rejected line of that run
    errors: list[RowError] = []
    for line, fields in rows:
        record = dict(zip(header, fields))
        run_id = _text(record, "run_id")
        uid = _uid(run_id, _text(record, "task_name"), record)
        try:
            if len(fields) != len(header):
                raise _Rejected(
                    f"{len(fields)} fields where the header has {len(header)}: the row is shifted or "
                    "cut short, so none of its values can be trusted"
                )
            ended, duration_s, run = _convert(record, uid, line, path.name, project)
        except _Rejected as exc:
            errors.append(RowError(line, run_id, str(exc)))
            rejected.setdefault(uid, line)
            continue
        by_uid.setdefault(uid, []).append((ended, duration_s, run))
    runs, superseded = [], 0
    for uid, group in by_uid.items():
        if uid in rejected:
            # One of its rows may be the run's final totals: importing another would record too
            # little and block the corrected file later, since a recorded run is never rewritten.
            held_back = (
                f"not imported: line {rejected[uid]} of the same codecarbon run was rejected; "
                "fix that line and import the file again"
            )
            errors.extend(RowError(run.line, run.run_id, held_back) for _, _, run in group)
            continue
        # rows are cumulative: the latest (then longest) one holds the run's totals
        group.sort(key=lambda item: (item[0], item[1], item[2].line))
        latest = group[-1][2]
        if len(group) > 1:
            earlier = ", ".join(str(item[2].line) for item in group[:-1])
            latest.row["notes"].append(
                f"lines {earlier} of {path.name} were earlier cumulative rows of this run (flush)"
            )
        runs.append(latest)
        superseded += len(group) - 1
    runs.sort(key=lambda run: run.line)
    errors.sort(key=lambda error: error.line)
    return CodecarbonLog(path.name, tuple(runs), tuple(errors), superseded)


def record_codecarbon_log(registry: Registry, log: CodecarbonLog) -> ImportReport:
    """Record the runs of a read log, one transaction each, skipping uids already in ``registry``."""
    imported = skipped = 0
    for run in log.runs:
        if registry.get_run(run.uid) is not None:
            skipped += 1
            continue
        try:
            registry.record_run(run.row, run.final, run.components)
        except RegistryError as exc:
            if registry.get_run(run.uid) is not None:  # another import recorded it meanwhile
                skipped += 1
                continue
            raise RegistryError(
                f"{exc}; {_count(imported, 'run')} of {log.name} had been imported before this failure: "
                "run the import again to add the rest (runs already recorded are skipped)"
            ) from exc
        imported += 1
    return ImportReport(imported, skipped + log.superseded, log.errors)


# -- reading ----------------------------------------------------------------------------------


def _read_table(path: Path) -> tuple[list[str], list[tuple[int, list[str]]]]:
    """The header and the ``(first line number, fields)`` of each non-blank row."""
    header: list[str] | None = None
    rows: list[tuple[int, list[str]]] = []
    reader = None
    try:
        # utf-8-sig drops a BOM (Excel adds one); newline="" lets csv handle \r\n and quoted newlines
        with path.open(encoding="utf-8-sig", newline="") as f:
            reader = csv.reader(f)
            last = 0
            for fields in reader:
                start, last = last + 1, reader.line_num  # a quoted field may span several lines
                if not fields:
                    continue
                if header is None:
                    header = [name.strip() for name in fields]
                else:
                    rows.append((start, fields))
    except OSError as exc:
        raise ConfigError(
            f"cannot read {path}: {exc.strerror or exc}; check the file name and permissions"
        ) from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"{path} is not UTF-8 text (byte {exc.start}); give the emissions.csv codecarbon wrote"
        ) from exc
    except csv.Error as exc:
        where = f" line {reader.line_num}" if reader is not None else ""
        raise ConfigError(f"{path}{where} is not valid CSV: {exc}; nothing was imported") from exc
    if header is None:
        raise ConfigError(f"{path} is empty; give an emissions.csv written by codecarbon")
    return header, rows


def _convert(
    record: Mapping[str, str], uid: str, line: int, source: str, project: str | None
) -> tuple[datetime, float, ParsedRun]:
    """One good row as registry records, with its end time and duration; ``_Rejected`` otherwise."""
    problems: list[str] = []
    number = functools.partial(_number, record, problems)
    duration_s = number("duration", required=True)
    emissions_kg = number("emissions", required=True)
    total_kwh = number("energy_consumed", required=True, energy=True)
    parts_kwh = {c: number(f"{c}_energy", energy=True) for c in ("gpu", "cpu", "ram")}
    water_l = number("water_consumed")
    pue = number("pue", positive=True)
    gpu_count = number("gpu_count", whole=True)
    ram_gb = number("ram_total_size")
    timestamp = _text(record, "timestamp")
    ended, zoned = _timestamp(timestamp, problems)
    if project is None:
        project = _text(record, "project_name") or "default"
        try:
            _check_project(project, "project_name")
        except ConfigError as exc:
            problems.append(f"{exc}; pass --project to import it under another name")
    if problems:
        raise _Rejected("; ".join(problems))
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
        "intensity_g_per_kwh": emissions_kg * G_PER_KG / total_kwh if total_kwh > 0 else None,
        "intensity_region": _region(record),
        "intensity_source": f"{tool} (imported)",
        "notes": notes,
    }
    return ended, duration_s, ParsedRun(uid, line, run_id, row, final, tuple(components))


# -- fields -----------------------------------------------------------------------------------


def _text(record: Mapping[str, str], column: str) -> str | None:
    """The stripped value of ``column``, None when the column is absent or the value empty."""
    value = (record.get(column) or "").strip()
    return value or None


def _number(
    record: Mapping[str, str],
    problems: list[str],
    column: str,
    *,
    required: bool = False,
    energy: bool = False,
    positive: bool = False,
    whole: bool = False,
) -> float | None:
    """A finite number >= 0 (> 0 if ``positive``); None when absent; a problem appended otherwise."""
    text = _text(record, column)
    if text is None:
        if required:
            problems.append(f"{column} is empty")
        return None
    try:
        value = float(text)
    except ValueError:
        problems.append(f"{column} {text!r} is not a number")
        return None
    if not math.isfinite(value):
        problems.append(f"{column} {text!r} is not a finite number")
    elif value < 0 and energy:
        problems.append(f"negative energy: {column} {text} kWh")
    elif value < 0 or (positive and value == 0):
        problems.append(f"{column} {text} must be {'greater than' if positive else 'at least'} 0")
    elif whole and not value.is_integer():
        problems.append(f"{column} {text!r} is not a whole number")
    else:
        return value
    return None


def _timestamp(text: str | None, problems: list[str]) -> tuple[datetime | None, bool]:
    """The end of the run, zone-aware, and whether the text gave its zone (else: local time here)."""
    if text is None:
        problems.append("timestamp is empty")
        return None, False
    try:
        # Python 3.10's fromisoformat does not take a "Z" suffix
        moment = datetime.fromisoformat(text[:-1] + "+00:00" if text.endswith("Z") else text)
    except ValueError:
        problems.append(
            f"timestamp {text!r} is not an ISO 8601 date and time (codecarbon writes 2024-05-01T13:45:00)"
        )
        return None, False
    if moment.tzinfo is not None:
        return moment, True
    # codecarbon writes datetime.now(): wall-clock time of the machine it ran on, with no zone
    return moment.astimezone(), False


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


def _uid(run_id: str | None, task_name: str | None, record: Mapping[str, str]) -> str:
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


def _check_project(project: str, what: str) -> None:
    if not project.strip():
        raise ConfigError(f"{what} must not be empty")
    if len(project) > _PROJECT_MAX_CHARS:
        raise ConfigError(f"{what} is longer than {_PROJECT_MAX_CHARS} characters")


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
    return code or None


@functools.cache
def _alpha2() -> dict[str, str]:
    return {pair[2:]: pair[:2] for pair in tables.ISO_PAIRS.split()}


def _device(component: str, record: Mapping[str, str], gpu_count: float | None, ram_gb: float | None) -> str:
    if component == "gpu":  # codecarbon writes "2 x NVIDIA A100-SXM4-40GB"
        return _text(record, "gpu_model") or (f"{gpu_count:g} GPU" if gpu_count else "GPU")
    if component == "cpu":
        return _text(record, "cpu_model") or "CPU"
    return f"{ram_gb:.3g} GB" if ram_gb else "RAM"


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" + ("" if n == 1 else "s")

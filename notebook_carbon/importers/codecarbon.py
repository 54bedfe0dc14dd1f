"""Import codecarbon's ``emissions.csv`` logs into the registry, so runs tracked before count in totals.

Each row of the CSV becomes one finished run. Reading (``read_codecarbon_csv``: parse, check every
row, convert) is apart from writing (``record_codecarbon_log``), so the command line checks every
file before it writes anything; ``import_codecarbon_csv`` does both for one file. How one row is
checked and converted (units, the bounds of ``record.BOUNDS``) is in ``codecarbon_rows``
(its fields in ``codecarbon_fields``).

A bad row never stops an import half way: every row is checked first, each bad one is reported in
``ImportReport.errors`` (its line, the columns at fault, why) and the good ones are imported. Only a
file that is not a codecarbon CSV at all (unreadable, not UTF-8 text, not CSV, without one of
``REQUIRED_COLUMNS``) raises ``ConfigError``, and then nothing of it is imported.

Identity: a run's uid is codecarbon's ``run_id`` as 32 hex digits (a hash of the row when there is
none), so importing a file twice records nothing new: a uid already in the registry is skipped. A
file written in codecarbon's ``append`` mode holds one cumulative row per ``flush()`` and one per
``stop()`` of the same ``run_id``; the latest row carries the run's totals and is the one imported.
"""

from __future__ import annotations

import csv
import dataclasses
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import ConfigError, RegistryError
from .codecarbon_fields import check_project, row_uid
from .codecarbon_rows import IMPORTED_METHOD, ParsedRun, RowRejected, convert_row, method_for

if TYPE_CHECKING:
    from ..registry import Registry

__all__ = [
    "IMPORTED_METHOD",
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

REQUIRED_COLUMNS = ("timestamp", "duration", "emissions", "energy_consumed")
"""What a row cannot do without: when the run ended, how long it ran, its energy and emissions."""


@dataclasses.dataclass(frozen=True)
class RowError:
    """A row that was not imported: its line in the file (1 is the header), run_id and why.

    ``message`` is one line naming each column at fault, its value and the bound it breaks;
    ``columns`` lists those columns (empty for a row whose fields do not match the header, or one
    held back because another row of the same run was rejected).
    """

    line: int
    run_id: str | None
    message: str
    columns: tuple[str, ...] = ()

    def __str__(self) -> str:
        return f"line {self.line}: {self.message}"


@dataclasses.dataclass(frozen=True)
class ImportReport:
    """What one import did: runs recorded, rows skipped as already recorded, rows rejected."""

    imported: int
    skipped_duplicates: int
    """Rows whose run was already in the registry, or earlier cumulative rows of an imported run."""
    errors: tuple[RowError, ...] = ()
    """Every rejected row, by line; ``imported + skipped_duplicates + len(errors)`` is the file's rows."""

    def summary(self) -> str:
        """``imported 3 runs, skipped 0 duplicates, 1 row rejected``."""
        return (
            f"imported {_count(self.imported, 'run')}, "
            f"skipped {_count(self.skipped_duplicates, 'duplicate')}, "
            f"{_count(len(self.errors), 'row')} rejected"
        )


@dataclasses.dataclass(frozen=True)
class CodecarbonLog:
    """A codecarbon CSV read and checked, nothing written yet."""

    name: str
    """The file's name (not its path): it goes into each run's notes."""
    runs: tuple[ParsedRun, ...]
    errors: tuple[RowError, ...]
    superseded: int
    """Earlier cumulative rows (``flush()``) of a run whose latest row is in ``runs``."""


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
    of older codecarbon versions (absent optional figures stay empty). Every row is checked before
    any is kept (``codecarbon_rows.convert_row``): a bad one becomes a ``RowError`` in ``errors``,
    never an exception. Raises ``ConfigError`` only for a file that is not a codecarbon CSV at all:
    it cannot be read, is not UTF-8 CSV, or lacks any of ``REQUIRED_COLUMNS``.
    """
    path = Path(path)
    if project is not None:
        check_project(project, "--project")
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
        uid = row_uid(run_id, _text(record, "task_name"), record)
        try:
            if len(fields) != len(header):
                message = (
                    f"{len(fields)} fields where the header has {len(header)}: the row is shifted or "
                    "cut short, so none of its values can be trusted"
                )
                raise RowRejected([((), message)])
            ended, duration_s, run = convert_row(record, uid, line, path.name, project)
        except RowRejected as exc:
            errors.append(RowError(line, run_id, str(exc), exc.columns))
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


def _text(record: dict[str, str], column: str) -> str | None:
    value = (record.get(column) or "").strip()
    return value or None


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" + ("" if n == 1 else "s")

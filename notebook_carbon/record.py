"""The run vocabulary: what a recorded run's figures may be.

Every entry that brings a figure into the registry (the magic, ``track()``, the settings, the
codecarbon importer) checks it against ``BOUNDS`` and refuses, with the bound in its message, what
no real run can produce; every reader leaves out (visibly, naming the run) a row that breaks them,
so one row written by an older version or by hand never makes a whole project unreadable.

The bounds are physical plausibility, not precision: generous enough for the largest training
runs published (tens of GWh, thousands of tonnes CO2e, months), tight enough to catch an overflow,
a unit mix-up by a factor of a million, or ``inf``.
"""

from __future__ import annotations

import dataclasses
import math
import sys
from collections.abc import Mapping, Sequence
from typing import Any, TypedDict

from .errors import ConfigError
from .settings import INTENSITY_BOUNDS, PUE_BOUNDS

__all__ = [
    "BOUNDS", "FAILED_STATUSES", "FINAL_STATUSES", "MAX_ENERGY_J", "STATUSES", "RunRow", "check_figure", "check_text",
    "cell_label", "energy_range", "implausible", "is_result", "names_label", "recordable_param", "sweep_key",
    "sweep_label",
    "ESTIMATED", "ESTIMATED_METHODS", "MEASURED", "MEASURED_METHODS", "NONE", "UNATTRIBUTED", "method_kind",
    "Job", "job_status",
]  # fmt: skip

MAX_ENERGY_J = 1e15
"""One run: about 278 GWh, five times the largest training run published (GPT-4, ~50 GWh)."""
MAX_MASS_G = 1e12
"""One run's emissions (or embodied emissions): a million tonnes CO2e."""
MAX_WATER_L = 1e12
MAX_DURATION_S = 10 * 365.25 * 86400
"""Ten years."""
EARLIEST_AT = 946684800.0
"""2000-01-01 UTC: no run metered by this tool, or logged by codecarbon, is older."""
LATEST_AT = 4102444800.0
"""2100-01-01 UTC."""

BOUNDS: Mapping[str, tuple[float, float, str]] = {
    # column: (lowest, highest, unit as printed in messages)
    "energy_j": (0.0, MAX_ENERGY_J, "J"),
    "gpu_energy_j": (0.0, MAX_ENERGY_J, "J"),
    "cpu_energy_j": (0.0, MAX_ENERGY_J, "J"),
    "ram_energy_j": (0.0, MAX_ENERGY_J, "J"),
    "machine_energy_j": (0.0, MAX_ENERGY_J, "J"),
    "emissions_g": (0.0, MAX_MASS_G, "g CO2e"),
    "embodied_g": (0.0, MAX_MASS_G, "g CO2e"),
    "water_l": (0.0, MAX_WATER_L, "L"),
    "duration_s": (0.0, MAX_DURATION_S, "s"),
    "started_at": (EARLIEST_AT, LATEST_AT, "s since 1970 (UTC)"),
    "ended_at": (EARLIEST_AT, LATEST_AT, "s since 1970 (UTC)"),
    "pue": (*PUE_BOUNDS, ""),  # the setting's bounds: what a run records is what the settings allow
    "intensity_g_per_kwh": (*INTENSITY_BOUNDS, "g/kWh"),
    "gpu_count": (0, 100_000, "GPUs"),
}
"""Inclusive bounds of a run's numeric columns. A missing value (None) is always allowed."""


def check_figure(column: str, value: Any) -> str | None:
    """Why ``value`` cannot be a run's ``column`` (a sentence naming the bound), or None if it can."""
    if value is None or column not in BOUNDS:
        return None
    low, high, unit = BOUNDS[column]
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return f"{column} must be a number, got {value!r}"
    try:
        number = float(value)
    except OverflowError:  # an int over ~1e308
        return f"{column} = {str(value)[:20]}... is not a finite number"
    if not math.isfinite(number):
        return f"{column} = {value!r} is not a finite number"
    if not low <= number <= high:
        shown = f"{number:.6g}"
        return f"{column} = {shown} is outside the plausible range {low:g} to {high:g}{' ' + unit if unit else ''}"
    return None


def implausible(row: Mapping[str, Any]) -> str | None:
    """The first reason a run's row cannot be counted (see ``check_figure``), or None if it can."""
    for column in BOUNDS:
        if column in row:
            reason = check_figure(column, row[column])
            if reason is not None:
                return reason
    return None


MAX_PARAM_INT = 10**300
"""Larger integers are no parameter anyone sets, and JSON writers and readers choke on them."""


def recordable_param(value: Any, where: str) -> Any:
    """``value`` as it will read back from the registry's JSON (tuples as lists), or ``ConfigError``.

    A param is recorded as JSON, which every reader (SQL, pandas, the sidebar's JavaScript) reads:
    numbers (finite), strings, booleans, None, and lists and dicts of them. Anything else (``1j``,
    a set, ``...``, ``inf``) would be lost at the write, so it is refused where it is given.
    """
    t = type(value)
    if t is str:
        _check_utf8(value, where)
    if value is None or t in (bool, str) or (t is float and math.isfinite(value)):
        return value  # (a NUL in a string is kept: JSON writes it as \\u0000)
    if t is int:
        if abs(value) < MAX_PARAM_INT:
            return value
        raise ConfigError(f"param {where}: an integer of {value.bit_length()} bits cannot be recorded")
    numpy = sys.modules.get("numpy")
    if numpy is not None and isinstance(value, numpy.generic) and value.ndim == 0:
        return recordable_param(value.item(), where)  # numpy.float64(0.1) -> 0.1
    if t not in (bool, int, float, str):
        for plain in (bool, int, float, str):  # a subclass (IntEnum, StrEnum, a float subclass): its plain value
            if isinstance(value, plain):
                return recordable_param(plain.__str__(value) if plain is str else plain(value), where)
    if t in (list, tuple):
        return [recordable_param(item, f"{where}[{i}]") for i, item in enumerate(value)]
    if t is dict:
        for key in value:
            if type(key) is not str:
                raise ConfigError(f"param {where}: key {key!r} is not a string (JSON keys are strings)")
            _check_utf8(key, f"{where} key")
        return {key: recordable_param(item, f"{where}[{key!r}]") for key, item in value.items()}
    shown = repr(value)
    shown = shown if len(shown) <= 60 else shown[:57] + "..."
    hint = " (not a finite number)" if t is float else ""
    raise ConfigError(
        f"param {where}: {shown} ({t.__name__}){hint} cannot be recorded; use finite numbers, strings, "
        "booleans, None, or lists and dicts of them (quote a value to record it as text)"
    )


def _check_utf8(text: str, where: str) -> None:
    """Refuse text no database can store as text: a lone surrogate (bytes decoded with
    ``errors="surrogateescape"``, such as an undecodable file name) is not Unicode."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        shown = text.encode("utf-8", "backslashreplace").decode("ascii", "backslashreplace")[:60]
        raise ConfigError(
            f"param {where}: {shown!r} holds {exc.object[exc.start:exc.end]!a}, a lone surrogate, which is not "
            "text and cannot be recorded; decode the bytes it came from with errors='replace'"
        ) from None


def check_text(what: str, value: str) -> str:
    """``value`` unless it holds a NUL character, which no database text column can keep."""
    if "\x00" in value:
        raise ConfigError(f"{what} contains a NUL character (\\x00), which cannot be recorded; remove it")
    return value


# -- statuses, sweeps and energy ranges: what a run is, computed once when it is written ----------

STATUSES = ("running", "ok", "failed", "interrupted", "crashed")
"""``running`` from start until finished; ``crashed`` is set later for a run whose process died."""
FINAL_STATUSES = STATUSES[1:]
FAILED_STATUSES = ("failed", "interrupted", "crashed")
"""The runs whose energy bought no result: a statement's "failed" energy."""



@dataclasses.dataclass(frozen=True)
class Job:
    """The distributed job a run belongs to (``distributed.detect_job``): the ranks of one job, on
    one node or many, are one run made of one part per rank (``registry.jobs``).

    ``key`` names the job in the registry (``slurm:12345.0``, ``torchelastic:...``, ``mpi:...``,
    ``rendezvous:host:port``, or a name given); ``how`` says where it was found. ``window_s``:
    how far apart two ranks' blocks may start and still be one job, for a key a later job may reuse
    (a rendezvous address, a torchrun id given by hand); None for a key no other job has.
    ``driver``: the run of a notebook cell that launches the job (``%%carbon --job``), which every
    rank reporting the key joins, whatever its block.
    """

    key: str
    how: str
    rank: int | None = None
    local_rank: int | None = None
    world_size: int | None = None
    local_world_size: int | None = None
    node_rank: int | None = None
    window_s: float | None = None
    driver: bool = False
    attempt: int = 0
    """Which attempt at the job this is (torchrun's restart count): a restart's ranks are a new group."""
    notes: tuple[str, ...] = ()
    """Variables of the launcher that were there but could not be read (and were left out)."""

    def describe(self) -> str:
        """``rank 2 of 4 of job slurm:1234.0`` (or ``the driver of job ...``)."""
        if self.driver:
            return f"the driver of job {self.key}"
        rank = "a rank" if self.rank is None else f"rank {self.rank}"
        size = f" of {self.world_size}" if self.world_size else ""
        return f"{rank}{size} of job {self.key}"


def job_status(statuses: list[str]) -> str:
    """A job's status from its parts': ``running`` while any part runs, else the worst of them
    (``crashed``, ``failed``, ``interrupted``), else ``ok``."""
    for status in ("running", "crashed", "failed", "interrupted"):
        if status in statuses:
            return status
    return "ok"


LABEL_LENGTH = 60
"""The most characters of a sweep's label."""


def sweep_key(sweep: str | None, code_fingerprint: str | None) -> str | None:
    """The sweep a run belongs to: its explicit sweep name, else ``code:<fingerprint>`` of its code,
    else None (a bare ``track()`` block is in no sweep)."""
    if sweep:
        return sweep
    if code_fingerprint:
        return "code:" + code_fingerprint
    return None


def sweep_label(key: str | None, notebook: str | None = None, execution_count: int | None = None,
                code_fingerprint: str | None = None) -> str | None:
    """A run's own label for its sweep, never a line of its code: the sweep name, else its notebook
    and cell (``cell_label``). A sweep without a name shows what its runs' names share
    (``names_label``, kept by the database), else its first run's label. At most ``LABEL_LENGTH``."""
    if key is None:
        return None
    return key[:LABEL_LENGTH] if not key.startswith("code:") else cell_label(notebook, execution_count, code_fingerprint)


def cell_label(notebook: str | None, execution_count: int | None, code_fingerprint: str | None) -> str:
    """``"digits.ipynb, cell 5"``: the notebook's file name and the cell's execution count (``In [5]``),
    else 8 digits of the code fingerprint (``"digits.ipynb, code 1a2b3c4d"``: a run recorded before
    counts were); without a notebook, the cell alone."""
    cell = f"cell {execution_count}" if execution_count is not None else f"code {(code_fingerprint or '')[:8]}".rstrip()
    where = (notebook or "").replace("\\", "/").rstrip("/").rsplit("/", 1)[-1] or notebook
    return f"{where[: LABEL_LENGTH - len(cell) - 2]}, {cell}" if where else cell[:LABEL_LENGTH]


NAME_DIGITS, NAME_SEPARATORS = "0123456789.", " =_-:,;/|"
"""Trimmed from the end of the names' common prefix, in this order (``names_label``)."""


def names_label(names: Sequence[str | None]) -> str | None:
    """What a sweep's run names share; None when no run has a name. The names all alike: that name.
    Else their longest common prefix (of their first ``LABEL_LENGTH`` characters), trimmed at its end
    of digits and dots (a number cut short), then of separators: ``lr=0.1`` and ``lr=0.5`` give
    ``lr``, ``resnet50-a`` and ``resnet50-b`` give ``resnet50``. Nothing left: the first and last
    names in code-point order, ``"adam ... sgd"``. The triggers compute the same from the smallest
    and largest name."""
    named = [name for name in names if name]
    if not named:
        return None
    lo, hi = min(named)[:LABEL_LENGTH], max(named)[:LABEL_LENGTH]
    if min(named) == max(named):
        return lo
    n = next((i for i, (x, y) in enumerate(zip(lo, hi)) if x != y), min(len(lo), len(hi)))
    return lo[:n].rstrip(NAME_DIGITS).rstrip(NAME_SEPARATORS) or f"{lo[:28]} ... {hi[:27]}"


def is_result(marked: bool, runs: int) -> bool:
    """Whether a sweep is a result: a run of it marked final, or several ``runs`` that are not
    repeats (a run with ``redundant_of`` set repeats an identical earlier one, so an ad-hoc cell run
    twice is still one run, and development). Kept per sweep by the database (``sweeps.is_result``)."""
    return bool(marked) or runs >= 2


def energy_range(row: Mapping[str, Any]) -> tuple[float, float]:
    """The low and high factors of a run's energy (``row``: its ``*_energy_j`` and ``*_method``).

    Each measured or estimated component's energy taken with its method's range (a GPU's widened
    for a window too short for its sensor: ``uncertainty.short_window_range``), whatever of
    ``energy_j`` they leave unexplained (an imported run's total) as unattributed; lows summed and
    highs summed (conservative), over the central value. (1, 1) for a run without energy. Emissions
    and facility energy scale with energy, so the same factors bound them.
    """
    from .impact.uncertainty import UNATTRIBUTED_RANGE, method_range, short_window_range  # (pandas-free maths only)

    central = low = high = 0.0
    for component in ("gpu", "cpu", "ram"):
        energy = row.get(f"{component}_energy_j")
        method = row.get(f"{component}_method")
        if not energy or not method or method == "none" or not _finite(energy):
            continue
        try:
            r = method_range(method)
        except ConfigError:  # an unknown method (a row written by hand): not counted, as analysis does
            continue
        if component == "gpu":  # a window too short for the sensor's update period: wider
            r = short_window_range(method, row.get("duration_s")) or r
        central += energy
        low += energy * r.low
        high += energy * r.high
    total = row.get("energy_j")
    if total is not None and _finite(total):
        unattributed = total - central
        if unattributed > 1e-9 * abs(total):  # the parts summed in another order differ in the last bits
            central += unattributed
            low += unattributed * UNATTRIBUTED_RANGE.low
            high += unattributed * UNATTRIBUTED_RANGE.high
    if central <= 0:
        return 1.0, 1.0
    return low / central, high / central


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


class RunRow(TypedDict, total=False):
    """A recorded run as the registry returns it (``Registry.get_run``, ``runs``, ``page``).

    Units in the names: ``*_at`` UTC epoch seconds, ``*_s`` seconds, ``*_j`` joules, ``*_g`` grams
    CO2e, ``water_l`` litres. ``sweep_key`` is generated by the database from ``sweep`` and
    ``code_fingerprint``; ``sweep_label`` and the ``energy_*_factor`` range are computed when the
    run is written. Columns not listed here (host, models, intensity source...) are there too.
    """

    id: int
    uid: str
    project: str
    notebook: str | None
    name: str | None
    sweep: str | None
    sweep_key: str | None
    sweep_label: str | None
    tags: list[str]
    params: dict[str, Any]
    status: str
    error: str | None
    started_at: float
    ended_at: float | None
    duration_s: float | None
    energy_j: float | None
    gpu_energy_j: float | None
    cpu_energy_j: float | None
    ram_energy_j: float | None
    gpu_method: str | None
    cpu_method: str | None
    ram_method: str | None
    energy_low_factor: float | None
    energy_high_factor: float | None
    pue: float | None
    intensity_g_per_kwh: float | None
    emissions_g: float | None
    water_l: float | None
    embodied_g: float | None
    redundant_of: int | None
    is_final: bool


# -- which recorded energy methods are measurements and which are estimates --------------------
# Which recorded energy methods are measurements and which are estimates (pure, no I/O).
#
# Every component's energy is recorded with the method that produced it (``meters.base.METHODS``).
# The analysis splits a run's energy into three buckets by those methods:
#
# - ``measured``: read from a sensor: ``rapl``, ``nvml-counter``, ``nvml-power``.
# - ``estimated``: computed from a model: ``estimate-tdp``, ``estimate-ram``.
# - ``unattributed``: energy in a run's total (``energy_j``) that no component with a known method
#   accounts for: a component recorded without a method, a method this version does not know (say,
#   one a newer notebook-carbon wrote), or the difference between a total and its parts (an
#   imported codecarbon log whose ``energy_consumed`` is not the sum of its cpu, gpu and ram figures).
#
# ``none`` (no meter for the component) contributes nothing. A component read by several methods
# (two GPUs, one without an energy counter) is recorded as their sorted, ``+``-joined names: it is
# measured when every part is measured, estimated when any part is an estimate and the rest are
# known, and unattributed when a part is unknown; a ``none`` part adds nothing either way.

MEASURED = "measured"
ESTIMATED = "estimated"
UNATTRIBUTED = "unattributed"
NONE = "none"

MEASURED_METHODS = frozenset(("rapl", "nvml-counter", "nvml-power"))
ESTIMATED_METHODS = frozenset(("estimate-tdp", "estimate-ram"))

def method_kind(method: str | None) -> str:
    """``measured``, ``estimated``, ``none`` (contributes nothing) or ``unattributed`` (unknown or
    missing method) for a recorded component method, ``+``-joined methods included."""
    if not isinstance(method, str):  # None, or pandas' NaN: energy without a method
        return UNATTRIBUTED
    parts = [part for part in method.split("+") if part != NONE]
    if not parts:
        return NONE
    if all(part in MEASURED_METHODS for part in parts):
        return MEASURED
    if all(part in MEASURED_METHODS or part in ESTIMATED_METHODS for part in parts):
        return ESTIMATED
    return UNATTRIBUTED

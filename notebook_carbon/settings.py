"""One frozen ``Settings``, resolved once: defaults < config file < ``NOTEBOOK_CARBON_*`` env < arguments.

The config file is TOML, by default ``config.toml`` in the user config directory
(``~/.config/notebook-carbon/`` on Linux), or the file named by ``NOTEBOOK_CARBON_CONFIG``. Its keys
are the field names below; the environment variables are the same names upper-cased with the
``NOTEBOOK_CARBON_`` prefix (``NOTEBOOK_CARBON_REGION=FR``). Values from the environment, the file
and ``%carbon config key=value`` are all parsed by the same code, so every source accepts the same
spellings and gives the same error for a bad value.
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, NamedTuple

from .errors import ConfigError

ENV_PREFIX = "NOTEBOOK_CARBON_"
APP_NAME = "notebook-carbon"
ATTRIBUTIONS = ("share", "machine")
_LEGACY_ATTRIBUTIONS = {"process": "share"}
"""Values of ``attribution`` an older version knew, read as today's (``process`` is ``share``)."""
ON_DUPLICATE = ("warn", "skip", "error")
HARDWARE = ("auto", "gpu-server", "server", "workstation", "laptop")
"""``auto`` and the kinds of ``impact.embodied.FACTORS`` (a test keeps the two in step)."""
PROJECT_MAX_CHARS = 200
"""The width of the registry's ``project`` columns: a longer name could not be written."""


class Bound(NamedTuple):
    """Inclusive range of a numeric setting, its unit as printed, and what the setting is."""

    low: float
    high: float
    unit: str
    about: str
    """Completes ``pue=inf is not a finite number; ...``: what the setting is, its range, typical values."""


PUE_BOUNDS = (1.0, 10.0)
INTENSITY_BOUNDS = (0.0, 3000.0)
"""Also the bounds of a run's ``pue`` and ``intensity_g_per_kwh`` (``record.BOUNDS`` takes them from here)."""


def _run_bound(column: str, about: str) -> Bound:
    low, high = PUE_BOUNDS if column == "pue" else INTENSITY_BOUNDS
    return Bound(low, high, "" if column == "pue" else "g/kWh", about)


# docs/settings.md prints this table. The bounds are physical plausibility, generous on purpose:
# they catch an overflow, ``inf``/``nan``, a sign or a unit mix-up, never a real machine.
SETTING_BOUNDS: Mapping[str, Bound] = {
    # a run's own figures: the bounds every recorded run obeys (record.BOUNDS)
    "pue": _run_bound(
        "pue",
        "PUE is facility energy over IT energy, between 1 and 10 "
        "(a workstation: 1.0, a typical data centre: 1.1-1.6)",
    ),
    "intensity_g_per_kwh": _run_bound(
        "intensity_g_per_kwh",
        "grid carbon intensity in g CO2e/kWh, between 0 and 3000 (France ~56, the world ~480, "
        "the most coal-heavy grids ~1000); none uses the region's figure",
    ),
    # The largest server CPUs draw ~500 W per socket (AMD EPYC 9965, Intel Xeon 6980P); the setting
    # is the whole machine's, and 8 sockets x 500 W = 4000 W, so 5000 W leaves room. 0 is allowed:
    # it is how a user says "leave the CPU out of the estimate".
    "cpu_tdp_w": Bound(
        0.0, 5000.0, "W",
        "the whole machine's CPU thermal design power in W, between 0 and 5000 (a laptop ~15-45, "
        "a desktop ~65-250, a 2-socket server ~400-1000); none reads it from the CPU model",
    ),
    # DDR4/DDR5 draw ~0.3-0.4 W per GB (the estimate's default: 3 W per 8 GB); old DDR3 about 1 W/GB.
    "ram_w_per_gb": Bound(
        0.0, 5.0, "W/GB",
        "RAM power per GB installed, between 0 and 5 W/GB (DDR4/DDR5 ~0.375); none uses 0.375",
    ),
    # Data centres report 0-2.5 L/kWh on site (0 for air or closed-loop cooling); evaporative
    # cooling in a hot, dry climate reaches ~10. 20 leaves room and still catches a unit mix-up (m3).
    "wue_l_per_kwh": Bound(
        0.0, 20.0, "L/kWh",
        "on-site water per kWh of IT energy, between 0 and 20 L/kWh (a typical data centre: "
        "0.2-2); none records no water",
    ),
    # impact.embodied.FACTORS: a laptop ~236 kg, an 8-GPU server ~3700 kg; a whole rack-scale
    # system is tens of tonnes. 100 t catches grams or kilotonnes typed as kilograms.
    "embodied_kg": Bound(
        0.0, 100_000.0, "kg",
        "the whole machine's embodied emissions in kg CO2e, between 0 and 100000 (a laptop ~236, "
        "an 8-GPU server ~3700); none uses the figure of the hardware setting",
    ),
    # A few months (hardware rented or replaced quickly) to 30 years (the oldest machines still
    # in service); the usual accounting lifetime is 3-6 years.
    "lifetime_years": Bound(
        0.25, 30.0, "years",
        "the hardware's expected lifespan in years, between 0.25 and 30 (servers and laptops: "
        "usually 3-6)",
    ),
    # A share of a machine: 0 charges none of its embodied emissions, 1 all of it (SCI RR / ToR).
    "resource_share": Bound(
        0.0, 1.0, "",
        "the share of the machine reserved for a run's embodied emissions, between 0 and 1 (a "
        "2-vCPU VM on a 64-vCPU host: 0.03125); none reads the process's CPU affinity",
    ),
    # Below 50 ms the sampler's own CPU time and NVML's power-update period (~20-100 ms) dominate;
    # above 60 s a RAPL counter can wrap twice between reads on a busy multi-socket server (the
    # package counter's range is ~262 kJ) and a cell shorter than the interval gets one sample.
    "sample_interval_s": Bound(
        0.05, 60.0, "s",
        "seconds between power samples, between 0.05 and 60 (default 1)",
    ),
    # Each checkpoint is a registry write: below 0.1 s they would cost more than the run; above an
    # hour a killed kernel loses up to an hour of energy and a dead run reads as live for hours
    # (liveness waits several intervals).
    "checkpoint_interval_s": Bound(
        0.1, 3600.0, "s",
        "seconds between checkpoints of a running run, between 0.1 and 3600 (default 10)",
    ),
}  # fmt: skip
"""The inclusive bounds of every numeric setting, from every source; ``None`` (unset) is always allowed
where the field is optional."""


def default_registry_path() -> Path:
    """The registry file in the user data directory (``~/.local/share/notebook-carbon`` on Linux)."""
    import platformdirs  # a few ms; only needed when no registry is configured

    return platformdirs.user_data_path(APP_NAME) / "registry.sqlite"


def default_config_path() -> Path:
    import platformdirs

    return platformdirs.user_config_path(APP_NAME) / "config.toml"


@dataclasses.dataclass(frozen=True)
class Settings:
    """Everything configurable. Units are in the names; ``None`` means "not set, use the default"."""

    registry: str = ""
    """Registry location: a file path (SQLite) or an SQLAlchemy URL. Empty: the user data directory."""
    project: str = "default"
    """Project the runs belong to; totals and sweeps are per project."""
    region: str | None = None
    """Grid region: ISO country (``FR``/``FRA``), sub-national (``US-CA``) or cloud (``aws:us-east-1``)."""
    intensity_g_per_kwh: float | None = None
    """Explicit grid carbon intensity; overrides ``region``'s bundled figure."""
    pue: float = 1.0
    """Power usage effectiveness of the facility; 1.0 for a workstation (no cooling overhead)."""
    sample_interval_s: float = 1.0
    """Seconds between power samples and counter reads of the sampler thread."""
    powercap_root: str = "/sys/class/powercap"
    """Root of the Linux powercap sysfs tree read for RAPL counters."""
    attribution: str = "share"
    """What a run is charged of each device: ``share``, its share (``meters.shares``: CPU time,
    resident memory, GPU contexts and SM utilisation), or ``machine``, everything the device drew
    in its window (``process``, an older name, is read as ``share``)."""
    cpu_tdp_w: float | None = None
    """Override of the CPU's thermal design power used by the estimate (whole machine, W)."""
    ram_w_per_gb: float | None = None
    """Override of the RAM power estimate per GB of installed memory."""
    gpu: bool = True
    """Meter NVIDIA GPUs through NVML when a driver is present."""
    checkpoint_interval_s: float = 2.0
    """Seconds between checkpoints of a running run's energy (what a killed kernel leaves behind)."""
    on_duplicate: str = "warn"
    """What a cell identical to an earlier ok run does: ``warn`` (and run), ``skip`` or ``error``."""
    wue_l_per_kwh: float | None = None
    """Water usage effectiveness of the facility, litres per kWh of IT energy; unset: water not recorded."""
    wue_source: str | None = None
    """Where the WUE comes from (the operator's published figure, a report), stated beside it in statements."""
    hardware: str = "auto"
    """Hardware for embodied emissions: ``gpu-server``, ``server``, ``workstation``, ``laptop``, or ``auto``
    (4 or more GPUs: gpu-server; else a battery: laptop; else workstation)."""
    embodied_kg: float | None = None
    """Total embodied emissions of the whole machine (kg CO2e), overriding the figure for ``hardware``."""
    lifetime_years: float = 4.0
    """Expected lifespan of the hardware, over which its embodied emissions are amortised."""
    resource_share: float | None = None
    """Share of the machine reserved for the run (SCI ``RR / ToR``), for embodied emissions; unset: the
    process's CPU affinity over the host's logical CPUs (a VM cannot see its host: set it there)."""
    reused_hardware: bool = False
    """Refurbished or second-life hardware: its manufacturing counts as already amortised (embodied 0)."""

    def __post_init__(self) -> None:
        if self.attribution in _LEGACY_ATTRIBUTIONS:  # a configuration written for an older version
            object.__setattr__(self, "attribution", _LEGACY_ATTRIBUTIONS[self.attribution])
        # Settings built directly (``Settings(pue=...)`` in a script) obey the same bounds.
        _validate({name: getattr(self, name) for name in FIELDS}, "")

    def replace(self, **changes: Any) -> Settings:
        """A copy with ``changes`` applied; values may be strings as typed by a user."""
        return _build(dataclasses.asdict(self), changes, source="arguments")

    def registry_location(self) -> str:
        return self.registry or str(default_registry_path())


FIELDS = {f.name: f for f in dataclasses.fields(Settings)}
SOURCE_MAX_CHARS = 300
"""The longest ``wue_source``: a citation, printed in statements."""


def resolve(
    overrides: Mapping[str, Any] | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    config_path: str | os.PathLike[str] | None = None,
) -> Settings:
    """Settings from defaults, then the config file, then the environment, then ``overrides``."""
    environ = os.environ if environ is None else environ
    values = dataclasses.asdict(Settings())
    path = config_path or environ.get(ENV_PREFIX + "CONFIG")
    explicit = path is not None
    path = Path(path) if path else default_config_path()
    if path.is_file():
        values = dataclasses.asdict(_build(values, _read_toml(path), source=f"config file {path}"))
    elif explicit:
        raise ConfigError(f"config file {path} does not exist; create it or unset {ENV_PREFIX}CONFIG")
    env_values = {
        name: environ[ENV_PREFIX + name.upper()] for name in FIELDS if ENV_PREFIX + name.upper() in environ
    }
    settings = _build(values, env_values, source="environment")
    if overrides:
        settings = settings.replace(**overrides)
    return settings


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        import tomli as tomllib
    try:
        with path.open("rb") as f:
            return tomllib.load(f)
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"cannot read config file {path}: {exc}; fix or remove it") from exc


def _build(base: dict[str, Any], changes: Mapping[str, Any], *, source: str) -> Settings:
    values = dict(base)
    shown: dict[str, str] = {}
    for key, raw in changes.items():
        name = key.replace("-", "_").lower() if isinstance(key, str) else str(key)
        if name not in FIELDS:
            known = ", ".join(sorted(FIELDS))
            raise ConfigError(f"unknown setting {key!r} (from {source}); known settings: {known}")
        values[name] = _parse(name, raw, source)
        if isinstance(raw, str):
            shown[name] = raw.strip()
    # A value is shown as it was given ("1e6", not 1000000.0); the base values were checked already,
    # so a bad one came from this source. Arguments are what the user just typed: no need to say so.
    _validate(values, "" if source == "arguments" else f" (from {source})", shown)
    return Settings(**values)


def _parse(name: str, raw: Any, source: str) -> Any:
    kind = FIELDS[name].type
    if raw is None:
        return None
    text = raw.strip() if isinstance(raw, str) else raw
    try:
        if "float" in kind:
            if isinstance(text, str):
                if text.lower() in ("", "none", "default") and "None" in kind:
                    return None
                return float(text)  # "1e400" and 401 digits give inf, refused by _validate
            # from a TOML file: true is no number, and an integer of 400 digits overflows float()
            if isinstance(text, bool) or not isinstance(text, (int, float)):
                raise ValueError(f"expected a number, got {type(text).__name__} {text!r}")
            try:
                return float(text)
            except OverflowError:
                return math.inf if text > 0 else -math.inf
        if kind == "bool":
            if isinstance(text, bool):
                return text
            if str(text).lower() in ("1", "true", "yes", "on"):
                return True
            if str(text).lower() in ("0", "false", "no", "off"):
                return False
            raise ValueError(f"expected on/off, true/false or 1/0, got {raw!r}")
        if "None" in kind and isinstance(text, str) and text.lower() in ("", "none", "default"):
            return None
        if isinstance(text, (list, dict)):
            raise TypeError(f"expected text, got {type(text).__name__}")
        return str(text)
    except (TypeError, ValueError) as exc:
        shown = _shown_text(raw) if isinstance(raw, str) else _shown_value(raw)
        raise ConfigError(f"setting {name}={shown} (from {source}) is not valid: {exc}") from exc


def _shown_text(text: str) -> str:
    """A value as typed, quoted, cut short when it is long (``'1000000000...' (401 characters)``)."""
    return repr(text) if len(text) <= 40 else f"{text[:12]!r}... ({len(text)} characters)"


def _shown_value(value: Any) -> str:
    if isinstance(value, float):
        return repr(value)
    text = str(value)
    return text if len(text) <= 40 else f"{text[:12]}... ({len(text)} characters)"


def _check_number(name: str, value: Any, where: str, shown: str | None) -> None:
    """Raise ``ConfigError`` naming the bound unless ``value`` is a finite number within ``SETTING_BOUNDS``."""
    if value is None and "None" in FIELDS[name].type:
        return
    bound = SETTING_BOUNDS[name]
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(
            f"{name} must be a number, got {type(value).__name__} {value!r}{where}; {bound.about} "
            "(Settings.replace and resolve also take it as text)"
        )
    if shown is None:
        shown = _shown_value(value)
    elif len(shown) > 40:
        shown = f"{shown[:12]}... ({len(shown)} characters)"
    unit = f" {bound.unit}" if bound.unit else ""
    try:
        number = float(value)
    except OverflowError:  # an int of hundreds of digits
        number = math.inf
    if not math.isfinite(number):
        raise ConfigError(f"{name}={shown}{where} is not a finite number; {bound.about}")
    if number < bound.low:
        raise ConfigError(f"{name}={shown}{where} is below {bound.low:g}{unit}; {bound.about}")
    if number > bound.high:
        raise ConfigError(f"{name}={shown}{where} is above {bound.high:g}{unit}; {bound.about}")


def _validate(values: Mapping[str, Any], where: str, shown: Mapping[str, str] | None = None) -> None:
    shown = shown or {}
    for name in SETTING_BOUNDS:
        _check_number(name, values[name], where, shown.get(name))
    if values["hardware"] not in HARDWARE:
        raise ConfigError(
            f"hardware={values['hardware']!r}{where} must be one of {', '.join(HARDWARE)} "
            "(or set embodied_kg to give the machine's embodied emissions yourself)"
        )
    if values["on_duplicate"] not in ON_DUPLICATE:
        raise ConfigError(
            f"on_duplicate={values['on_duplicate']!r}{where} must be one of {', '.join(ON_DUPLICATE)}"
        )
    if values["attribution"] not in ATTRIBUTIONS and values["attribution"] not in _LEGACY_ATTRIBUTIONS:
        raise ConfigError(
            f"attribution={values['attribution']!r}{where} must be one of {', '.join(ATTRIBUTIONS)}"
        )
    source = values["wue_source"]
    if source is not None and (len(source) > SOURCE_MAX_CHARS or "\x00" in source):
        raise ConfigError(
            f"wue_source must be at most {SOURCE_MAX_CHARS} characters without NUL{where}, got "
            f"{len(source)}; name the document the WUE comes from, not its text"
        )
    if not values["project"]:
        raise ConfigError(f"project must not be empty{where}")
    if "\x00" in values["project"]:  # PostgreSQL cannot store it: every run would be refused
        raise ConfigError(f"project contains a NUL character (\\x00){where}; remove it")
    if len(values["project"]) > PROJECT_MAX_CHARS:
        raise ConfigError(
            f"project must be at most {PROJECT_MAX_CHARS} characters{where}, got {len(values['project'])}; "
            "the registry cannot store a longer name"
        )

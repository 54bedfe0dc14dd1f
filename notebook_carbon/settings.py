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
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .errors import ConfigError

ENV_PREFIX = "NOTEBOOK_CARBON_"
APP_NAME = "notebook-carbon"
ATTRIBUTIONS = ("machine", "process")
ON_DUPLICATE = ("warn", "skip", "error")
HARDWARE = ("auto", "gpu-server", "server", "workstation", "laptop")
"""``auto`` and the kinds of ``impact.embodied.FACTORS`` (a test keeps the two in step)."""


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
    attribution: str = "machine"
    """CPU/RAM attribution: ``machine`` (whole machine) or ``process`` (this process tree's share)."""
    cpu_tdp_w: float | None = None
    """Override of the CPU's thermal design power used by the estimate (whole machine, W)."""
    ram_w_per_gb: float | None = None
    """Override of the RAM power estimate per GB of installed memory."""
    gpu: bool = True
    """Meter NVIDIA GPUs through NVML when a driver is present."""
    checkpoint_interval_s: float = 10.0
    """Seconds between checkpoints of a running run's energy (what a killed kernel leaves behind)."""
    on_duplicate: str = "warn"
    """What a cell identical to an earlier ok run does: ``warn`` (and run), ``skip`` or ``error``."""
    wue_l_per_kwh: float | None = None
    """Water usage effectiveness of the facility, litres per kWh of IT energy; unset: water not recorded."""
    hardware: str = "auto"
    """Hardware for embodied emissions: ``gpu-server``, ``server``, ``workstation``, ``laptop``, or ``auto``
    (4 or more GPUs: gpu-server; else a battery: laptop; else workstation)."""
    embodied_kg: float | None = None
    """Total embodied emissions of the whole machine (kg CO2e), overriding the figure for ``hardware``."""
    lifetime_years: float = 4.0
    """Expected lifespan of the hardware, over which its embodied emissions are amortised."""
    reused_hardware: bool = False
    """Refurbished or second-life hardware: its manufacturing counts as already amortised (embodied 0)."""

    def replace(self, **changes: Any) -> Settings:
        """A copy with ``changes`` applied; values may be strings as typed by a user."""
        return _build(dataclasses.asdict(self), changes, source="arguments")

    def registry_location(self) -> str:
        return self.registry or str(default_registry_path())


FIELDS = {f.name: f for f in dataclasses.fields(Settings)}


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
    for key, raw in changes.items():
        name = key.replace("-", "_").lower()
        if name not in FIELDS:
            known = ", ".join(sorted(FIELDS))
            raise ConfigError(f"unknown setting {key!r} (from {source}); known settings: {known}")
        values[name] = _parse(name, raw, source)
    _validate(values)
    return Settings(**values)


def _parse(name: str, raw: Any, source: str) -> Any:
    kind = FIELDS[name].type
    if raw is None:
        return None
    text = raw.strip() if isinstance(raw, str) else raw
    try:
        if "float" in kind:
            if isinstance(text, str) and text.lower() in ("", "none", "default") and "None" in kind:
                return None
            return float(text)
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
        return str(text)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"setting {name}={raw!r} (from {source}) is not valid: {exc}") from exc


def _validate(values: dict[str, Any]) -> None:
    def bad(message: str) -> ConfigError:
        return ConfigError(message)

    if not values["pue"] >= 1.0:
        raise bad(f"pue={values['pue']} is below 1.0; PUE is facility energy over IT energy, so >= 1")
    if not 0.01 <= values["sample_interval_s"] <= 3600:
        raise bad(f"sample_interval_s={values['sample_interval_s']} must be between 0.01 and 3600 seconds")
    for name in ("intensity_g_per_kwh", "cpu_tdp_w", "ram_w_per_gb"):
        if values[name] is not None and not values[name] >= 0:
            raise bad(f"{name}={values[name]} must be zero or positive")
    for name in ("wue_l_per_kwh", "embodied_kg"):
        if values[name] is not None and not 0 <= values[name] < float("inf"):
            raise bad(f"{name}={values[name]} must be a finite number, zero or positive (none unsets it)")
    if not 0 < values["lifetime_years"] <= 100:
        raise bad(f"lifetime_years={values['lifetime_years']} must be a number of years above 0, at most 100")
    if values["hardware"] not in HARDWARE:
        raise bad(
            f"hardware={values['hardware']!r} must be one of {', '.join(HARDWARE)} "
            "(or set embodied_kg to give the machine's embodied emissions yourself)"
        )
    if not 0.1 <= values["checkpoint_interval_s"] <= 86400:
        raise bad(f"checkpoint_interval_s={values['checkpoint_interval_s']} must be between 0.1 and 86400 seconds")
    if values["on_duplicate"] not in ON_DUPLICATE:
        raise bad(f"on_duplicate={values['on_duplicate']!r} must be one of {', '.join(ON_DUPLICATE)}")
    if values["attribution"] not in ATTRIBUTIONS:
        raise bad(f"attribution={values['attribution']!r} must be one of {', '.join(ATTRIBUTIONS)}")
    if not values["project"]:
        raise bad("project must not be empty")

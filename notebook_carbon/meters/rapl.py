"""CPU package and DRAM energy from Intel/AMD RAPL counters, read through Linux powercap sysfs.

Layout read (the root is ``Settings.powercap_root``, ``/sys/class/powercap`` by default)::

    intel-rapl:0/       name = package-0, energy_uj, max_energy_range_uj     -> component cpu
    intel-rapl:0:0/     name = core | uncore | dram                          -> dram: component ram
    intel-rapl:1/       name = psys                                          -> ignored

Only ``package-N`` domains are summed for the CPU: ``core``/``uncore`` are inside the package figure
and ``psys`` (the whole platform) overlaps it, so adding either would count energy twice. AMD Zen
kernels expose the same ``intel-rapl`` names. Subdomains appear both at the root (the class
directory holds one link per domain) and inside their package directory; both are accepted.

``energy_uj`` is a free-running counter in microjoules that wraps at ``max_energy_range_uj``.
Every ``update`` reads every domain, so no wrap is missed while the sampler reads more often than
the counter wraps (minutes at full load on current CPUs). Since Linux 5.10 ``energy_uj`` is
readable by root only (CVE-2020-8694, the "Platypus" power side channel); the probe then reports
why and the CPU falls back to an estimate.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import NamedTuple

from ..errors import MeterError
from .base import EnergyMeter

UJ_PER_J = 1_000_000
"""Microjoules per joule; the one conversion of RAPL units to SI."""

PERMISSION_REASON = (
    "RAPL present but energy_uj not readable without root (Linux >= 5.10 restricts it, "
    "CVE-2020-8694); grant read access to {path} to measure instead of estimate"
)

# Compiled on first use through re's cache: importing this module stays cheap.
_DOMAIN_DIR = r"intel-rapl:(\d+)(?::(\d+))?$"


def counter_delta_uj(previous_uj: int, current_uj: int, max_energy_range_uj: int) -> int:
    """Energy in µJ between two reads of one wrapping counter.

    A current value below the previous one means the counter wrapped once, from
    ``max_energy_range_uj`` back to zero. Two wraps between reads cannot be told apart from one,
    which is why the sampler must read faster than a wrap.
    """
    if max_energy_range_uj <= 0:
        raise ValueError(f"max_energy_range_uj must be positive, got {max_energy_range_uj}")
    if not (0 <= previous_uj <= max_energy_range_uj and 0 <= current_uj <= max_energy_range_uj):
        raise ValueError(
            f"counter values {previous_uj} -> {current_uj} outside the range 0..{max_energy_range_uj}"
        )
    if current_uj >= previous_uj:
        return current_uj - previous_uj
    return max_energy_range_uj - previous_uj + current_uj


def read_energy_uj(path: str) -> int:
    """Read one sysfs counter file as an integer (µJ). One open/read/close, tens of µs."""
    fd = os.open(path, os.O_RDONLY)
    try:
        data = os.read(fd, 64)
    finally:
        os.close(fd)
    return int(data)


class RaplDomain(NamedTuple):
    """One powercap domain: ``name`` as the kernel gives it, ``label`` as we print it."""

    name: str
    label: str
    directory: str
    max_energy_range_uj: int

    @property
    def energy_path(self) -> str:
        return os.path.join(self.directory, "energy_uj")


class RaplProbe(NamedTuple):
    """What the powercap tree offers: a meter per component, or why not."""

    cpu: RaplMeter | None
    ram: RaplMeter | None
    cpu_reason: str | None
    ram_reason: str | None


class _Window:
    __slots__ = ("last_uj", "total_uj", "last_t")

    def __init__(self, last_uj: list[int], now: float) -> None:
        self.last_uj = last_uj
        self.total_uj = 0
        self.last_t = now


class RaplMeter(EnergyMeter):
    """Sum of several RAPL domains (all packages, or all DRAM domains) as one component."""

    method = "rapl"

    def __init__(
        self,
        component: str,
        domains: Sequence[RaplDomain],
        *,
        model: str | None = None,
        read_uj: Callable[[str], int] = read_energy_uj,
    ) -> None:
        if not domains:
            raise ValueError("a RAPL meter needs at least one domain")
        self.component = component
        self.domains = tuple(domains)
        self.device = "+".join(d.label for d in self.domains)
        self.model = model
        self._read_uj = read_uj
        self._paths = [d.energy_path for d in self.domains]

    def _read_all(self) -> list[int]:
        values = []
        for domain, path in zip(self.domains, self._paths):
            try:
                values.append(self._read_uj(path))
            except (OSError, ValueError) as exc:
                raise MeterError(
                    f"RAPL domain {domain.label} could not be read ({path}: {exc}); "
                    f"{self.component} energy after this point is not counted"
                ) from exc
        return values

    def _advance(self, state: _Window, now: float) -> int:
        current = self._read_all()
        step_uj = 0
        for domain, before, after in zip(self.domains, state.last_uj, current):
            try:
                step_uj += counter_delta_uj(before, after, domain.max_energy_range_uj)
            except ValueError as exc:
                raise MeterError(f"RAPL domain {domain.label} gave an impossible value: {exc}") from exc
        state.last_uj = current
        state.total_uj += step_uj
        state.last_t = now
        return step_uj

    def begin(self, now: float) -> _Window:
        return _Window(self._read_all(), now)

    def update(self, state: _Window, now: float) -> float | None:
        """Read every domain; average power in W since the previous read."""
        elapsed_s = now - state.last_t
        step_uj = self._advance(state, now)
        if elapsed_s <= 0:
            return None
        return step_uj / UJ_PER_J / elapsed_s

    def end(self, state: _Window, now: float) -> float:
        """Joules since ``begin``."""
        self._advance(state, now)
        return state.total_uj / UJ_PER_J


def _read_text(path: Path) -> str:
    with open(path, encoding="ascii") as f:
        return f.read().strip()


def _domain_id(entry: str) -> tuple[int, int] | None:
    """``intel-rapl:N`` -> (N, -1), ``intel-rapl:N:M`` -> (N, M), anything else -> None."""
    match = re.match(_DOMAIN_DIR, entry)
    return (int(match.group(1)), int(match.group(2) or -1)) if match else None


def find_domains(root: str | os.PathLike[str]) -> tuple[list[RaplDomain], list[RaplDomain]]:
    """Package and DRAM domains under ``root``, in kernel order: ``(packages, drams)``.

    Raises ``OSError`` or ``ValueError`` when a ``name`` or ``max_energy_range_uj`` file cannot be
    read.
    """
    root = Path(root)
    found: dict[tuple[int, int], Path] = {}
    for entry in os.listdir(root):
        domain_id = _domain_id(entry)
        if domain_id is not None:
            found[domain_id] = root / entry
    # Subdomains may exist only nested in their package directory (devices/ rather than class/).
    for (package, sub), path in list(found.items()):
        if sub == -1:
            for entry in os.listdir(path):
                domain_id = _domain_id(entry)
                if domain_id is not None:
                    found.setdefault(domain_id, path / entry)

    packages: list[RaplDomain] = []
    drams: list[RaplDomain] = []
    for (package, _sub), path in sorted(found.items()):
        name = _read_text(path / "name")
        if name.startswith("package-"):
            target, label = packages, name
        elif name == "dram":
            target, label = drams, f"dram-{package}"
        else:
            continue  # core/uncore are inside the package figure; psys overlaps it
        max_uj = int(_read_text(path / "max_energy_range_uj"))
        target.append(RaplDomain(name=name, label=label, directory=str(path), max_energy_range_uj=max_uj))
    return packages, drams


def _check_readable(domains: Sequence[RaplDomain], read_uj: Callable[[str], int]) -> str | None:
    """``None`` when every counter reads, else the reason it does not."""
    for domain in domains:
        try:
            value_uj = read_uj(domain.energy_path)
        except PermissionError:
            return PERMISSION_REASON.format(path=domain.energy_path)
        except (OSError, ValueError) as exc:
            return f"RAPL present but {domain.energy_path} could not be read ({exc})"
        if not 0 <= value_uj <= domain.max_energy_range_uj:
            # wraps could not be told apart from resets; better an honest estimate
            return (
                f"RAPL present but {domain.label} reads {value_uj} µJ, outside its range "
                f"0..{domain.max_energy_range_uj}"
            )
    return None


def probe_rapl(
    root: str | os.PathLike[str],
    *,
    model: str | None = None,
    read_uj: Callable[[str], int] = read_energy_uj,
) -> RaplProbe:
    """RAPL meters for the CPU packages and DRAM under ``root``, each with the reason it is absent.

    ``model`` labels the CPU meter (the CPU brand string). ``read_uj`` reads one counter file; the
    default does a real read, tests may wrap it to change the file between reads.
    """
    if not os.path.isdir(root):
        reason = f"no powercap interface at {root} (not Linux, or the intel_rapl driver is not loaded)"
        return RaplProbe(None, None, reason, reason)
    try:
        packages, drams = find_domains(root)
    except (OSError, ValueError) as exc:
        reason = f"powercap tree at {root} could not be read ({exc})"
        return RaplProbe(None, None, reason, reason)
    if not packages:
        reason = f"no RAPL package domains under {root} (CPU without RAPL, or a VM that hides it)"
        return RaplProbe(None, None, reason, reason)

    cpu_reason = _check_readable(packages, read_uj)
    cpu = None if cpu_reason else RaplMeter("cpu", packages, model=model, read_uj=read_uj)
    if not drams:
        ram_reason = "RAPL has no dram domain on this machine"
        ram = None
    else:
        ram_reason = _check_readable(drams, read_uj)
        ram = None if ram_reason else RaplMeter("ram", drams, read_uj=read_uj)
    return RaplProbe(cpu, ram, cpu_reason, ram_reason)

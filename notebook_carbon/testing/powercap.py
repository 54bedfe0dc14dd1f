"""``FakePowercap``: a Linux powercap tree (RAPL packages, dram/core/psys subdomains) in a directory,
so the real RAPL code reads real files: ``probe_rapl(fake.root)`` or ``Settings(powercap_root=...)``.
"""

from __future__ import annotations

import collections
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from ..meters.rapl import read_energy_uj

__all__ = ["DEFAULT_MAX_ENERGY_RANGE_UJ", "FakePowercap"]

DEFAULT_MAX_ENERGY_RANGE_UJ = 262_143_328_850
"""The range most Intel packages report (2**32 units of 61 µJ), about 262 kJ."""

# A file that refuses reads even to root: sysctl permission checks ignore CAP_DAC_OVERRIDE, so a
# write-only sysctl gives a genuine EACCES where chmod 000 would not stop root. The fake never
# writes through the link (see _write_counter).
_WRITE_ONLY_SYSCTL = "/proc/sys/vm/drop_caches"


def _write_counter(path: Path, value_uj: int) -> None:
    """Rewrite a counter file in place, never following a link (an unreadable domain's link
    points at a sysctl that must not be written)."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_TRUNC | os.O_NOFOLLOW)
    except OSError as exc:
        if path.is_symlink():
            raise RuntimeError(f"{path} was made unreadable; call make_readable first") from exc
        raise
    try:
        os.write(fd, f"{value_uj}\n".encode())
    finally:
        os.close(fd)


class FakePowercap:
    """A powercap sysfs tree under ``root``, laid out like ``/sys/class/powercap``.

    Domains are named as the kernel names their directories (``intel-rapl:0``,
    ``intel-rapl:0:1``). Subdomains are created inside their package directory with a link at the
    root, as sysfs does.
    """

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self._scripts: dict[str, collections.deque[int]] = {}

    def _dir(self, domain: str) -> Path:
        path = self.root / domain
        if not path.exists() and domain.count(":") == 2:  # a subdomain added with link=False
            path = self.root / domain.rpartition(":")[0] / domain
        return path

    def energy_path(self, domain: str) -> Path:
        return self._dir(domain) / "energy_uj"

    @staticmethod
    def _write_domain(directory: Path, name: str, energy_uj: int, max_energy_range_uj: int) -> None:
        directory.mkdir(parents=True)
        (directory / "name").write_text(name + "\n")
        (directory / "max_energy_range_uj").write_text(f"{max_energy_range_uj}\n")
        (directory / "energy_uj").write_text(f"{energy_uj}\n")

    def add_package(
        self,
        index: int | None = None,
        *,
        energy_uj: int = 0,
        max_energy_range_uj: int = DEFAULT_MAX_ENERGY_RANGE_UJ,
        name: str | None = None,
    ) -> str:
        """Add ``intel-rapl:N`` named ``package-N`` (or ``name``, e.g. ``psys``); return its id."""
        if index is None:
            index = sum(1 for _ in self.root.glob("intel-rapl:*") if _.name.count(":") == 1)
        domain = f"intel-rapl:{index}"
        self._write_domain(self._dir(domain), name or f"package-{index}", energy_uj, max_energy_range_uj)
        return domain

    def add_psys(self, index: int, *, energy_uj: int = 0) -> str:
        """Add a top-level ``psys`` (platform) domain, which RAPL readers must ignore."""
        return self.add_package(index, energy_uj=energy_uj, name="psys")

    def add_subdomain(
        self,
        package: int,
        name: str,
        *,
        energy_uj: int = 0,
        max_energy_range_uj: int = DEFAULT_MAX_ENERGY_RANGE_UJ,
        link: bool = True,
    ) -> str:
        """Add ``intel-rapl:P:M`` named ``name`` (``dram``, ``core``, ``uncore``); return its id.

        ``link=False`` leaves out the link at the root, as trees copied from ``/sys/devices`` do.
        """
        parent = self.root / f"intel-rapl:{package}"
        sub = sum(1 for _ in parent.glob(f"intel-rapl:{package}:*"))
        domain = f"intel-rapl:{package}:{sub}"
        self._write_domain(parent / domain, name, energy_uj, max_energy_range_uj)
        if link:
            os.symlink(parent / domain, self.root / domain, target_is_directory=True)
        return domain

    def add_dram(self, package: int = 0, *, energy_uj: int = 0, **kwargs: Any) -> str:
        """Add the ``dram`` subdomain of package ``package``."""
        return self.add_subdomain(package, "dram", energy_uj=energy_uj, **kwargs)

    def set_energy(self, domain: str, energy_uj: int) -> None:
        """Set a counter now (rewritten in place, as sysfs shows new values in the same file)."""
        _write_counter(self.energy_path(domain), energy_uj)

    def script(self, domain: str, values_uj: Iterable[int]) -> None:
        """Script the values successive reads of ``domain`` return, through ``read_uj``.

        The first value is written now; ``read_uj`` writes the next one after each read. The last
        value stays once the script is spent.
        """
        values = collections.deque(values_uj)
        if not values:
            raise ValueError("a script needs at least one value")
        self.set_energy(domain, values.popleft())
        self._scripts[os.path.realpath(self.energy_path(domain))] = values

    def read_uj(self, path: str) -> int:
        """A RAPL reader for ``probe_rapl(..., read_uj=fake.read_uj)``: a real read of ``path``,
        after which a scripted domain's file moves on to its next value."""
        value = read_energy_uj(path)
        queue = self._scripts.get(os.path.realpath(path))
        if queue:
            _write_counter(Path(path), queue.popleft())
        return value

    def make_unreadable(self, domain: str) -> None:
        """Make ``energy_uj`` raise ``PermissionError`` when read, as on Linux >= 5.10 without root.

        Not root: ``chmod 000``. Root ignores file modes, so the file is replaced by a link to a
        write-only sysctl file, which refuses reads to root too; ``set_energy`` then refuses to
        write until ``make_readable``. Raises ``RuntimeError`` where neither works (not Linux).
        """
        path = self.energy_path(domain)
        if os.geteuid() != 0:
            path.chmod(0)
            if _refuses_read(str(path)):
                return
            raise RuntimeError(f"chmod 000 did not make {path} unreadable")
        if not _refuses_read(_WRITE_ONLY_SYSCTL):
            raise RuntimeError(f"{_WRITE_ONLY_SYSCTL} is readable here; cannot hide energy_uj from root")
        path.unlink()
        path.symlink_to(_WRITE_ONLY_SYSCTL)

    def make_readable(self, domain: str, energy_uj: int = 0) -> None:
        """Undo ``make_unreadable``: a plain readable counter holding ``energy_uj``."""
        path = self.energy_path(domain)
        path.unlink()
        path.write_text(f"{energy_uj}\n")


def _refuses_read(path: str) -> bool:
    try:
        read_energy_uj(path)
    except PermissionError:
        return True
    except (OSError, ValueError):
        return False
    return False

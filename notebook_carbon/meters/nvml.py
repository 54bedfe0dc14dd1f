"""NVIDIA GPU energy through NVML (the ``pynvml`` module of the nvidia-ml-py package).

Two methods, best first:

``nvml-counter``
    ``nvmlDeviceGetTotalEnergyConsumption``: millijoules since the driver was loaded (Volta and
    newer). Exact over any window; read at begin, on each update and at end.
``nvml-power``
    ``nvmlDeviceGetPowerUsage``: milliwatts, the board's recent average power. Sampled by the
    window's sampler thread and integrated with the trapezoid rule; ``end`` takes a last sample.

Every *visible* device is metered, whole-device, following ``CUDA_VISIBLE_DEVICES`` (see
``parse_cuda_visible_devices``). pynvml is imported, and NVML initialised, only by ``probe_nvml``;
its module can be passed in (``notebook_carbon.testing.FakeNVML`` in tests). ``NVMLError`` is
translated here and only here: into ``MeterError`` during a window, into reason strings at probing.
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

from ..errors import MeterError
from .base import EnergyMeter, PowerIntegral

MJ_PER_J = 1000
"""Millijoules per joule (energy counter) and milliwatts per watt (power); NVML's units to SI."""

_INDEX_ENTRY = r"\s*(\d+)"  # strtoul: leading digits; compiled on first use


class Visibility(NamedTuple):
    """NVML indices of the devices a CUDA program in this process would see, and remarks on it."""

    indices: tuple[int, ...]
    notes: tuple[str, ...]


def parse_cuda_visible_devices(
    spec: str | None,
    device_count: int,
    uuids: Sequence[str] = (),
    mig_parents: Mapping[str, int] | None = None,
) -> Visibility:
    """Apply the CUDA runtime's reading of ``CUDA_VISIBLE_DEVICES`` to the NVML devices.

    ``spec`` unset: every device. Empty or ``-1``: none. Otherwise a comma list whose entries are
    indices (read like ``strtoul``: leading digits), ``GPU-`` UUIDs or unique UUID prefixes, or
    ``MIG-`` instance UUIDs (resolved to their parent GPU through ``mig_parents``, or by the parent
    UUID embedded in the older ``MIG-GPU-<uuid>/gi/ci`` form). As in CUDA, the list stops at the
    first invalid entry and a repeated device hides every device. ``uuids[i]`` is device ``i``'s
    UUID (needed only for UUID entries).
    """
    if spec is None:
        return Visibility(tuple(range(device_count)), ())
    if not spec.strip():
        return Visibility((), ("CUDA_VISIBLE_DEVICES is empty: no GPU is visible to this process",))
    indices: list[int] = []
    targets: list[str] = []
    notes: list[str] = []
    for raw in spec.split(","):
        entry = raw.strip()
        index = _resolve_entry(entry, device_count, uuids, mig_parents or {})
        if index is None:
            if entry.startswith("-") and not indices:
                notes.append(f"CUDA_VISIBLE_DEVICES={spec}: no GPU is visible to this process")
            else:
                notes.append(
                    f"CUDA_VISIBLE_DEVICES entry {entry!r} matches no device; as in CUDA, "
                    "it and the entries after it are ignored"
                )
            break
        target = entry if entry.startswith("MIG-") else str(index)
        if target in targets:
            notes.append(
                f"CUDA_VISIBLE_DEVICES names device {entry!r} twice; CUDA then shows no device"
            )
            return Visibility((), tuple(notes))
        targets.append(target)
        if entry.startswith("MIG-"):
            notes.append(
                f"CUDA_VISIBLE_DEVICES names MIG instance {entry}; metering its parent GPU {index} "
                "as a whole (NVML has no per-instance energy; other instances share the figure)"
            )
        if index not in indices:
            indices.append(index)
    return Visibility(tuple(indices), tuple(notes))


def _resolve_entry(
    entry: str, device_count: int, uuids: Sequence[str], mig_parents: Mapping[str, int]
) -> int | None:
    if entry.startswith("MIG-GPU-"):
        return _unique_prefix(entry[len("MIG-") :].split("/")[0], uuids)
    if entry.startswith("MIG-"):
        matches = [parent for uuid, parent in mig_parents.items() if uuid.startswith(entry)]
        return matches[0] if len(matches) == 1 else None
    if entry.startswith("GPU-"):
        return _unique_prefix(entry, uuids)
    match = re.match(_INDEX_ENTRY, entry)
    if match is None:
        return None
    index = int(match.group(1))
    return index if index < device_count else None


def _unique_prefix(prefix: str, uuids: Sequence[str]) -> int | None:
    matches = [i for i, uuid in enumerate(uuids) if uuid.startswith(prefix)]
    return matches[0] if len(matches) == 1 else None


class _Session:
    """One ``nvmlInit``; ``nvmlShutdown`` once, when the last meter using it is closed."""

    def __init__(self, nvml: Any) -> None:
        self.nvml = nvml
        self._users = 0
        self._lock = threading.Lock()

    def acquire(self) -> None:
        with self._lock:
            self._users += 1

    def release(self) -> None:
        with self._lock:
            self._users -= 1
            if self._users:
                return
        try:
            self.nvml.nvmlShutdown()
        except self.nvml.NVMLError as exc:
            raise MeterError(f"NVML shutdown failed: {exc}") from exc


class _Window:
    """Window state of the energy counter: first and last readings (mJ) and the last read's time."""

    __slots__ = ("first", "last", "last_t")

    def __init__(self, value: float, now: float) -> None:
        self.first = value
        self.last = value
        self.last_t = now


class _NvmlMeter(EnergyMeter):
    component = "gpu"

    def __init__(
        self, session: _Session, handle: Any, index: int, name: str, *, reason: str | None = None
    ) -> None:
        self._session = session
        self._nvml = session.nvml
        self._handle = handle
        self.index = index
        self.model = name
        self.device = f"GPU {index}: {name}"
        try:  # CUDA_VISIBLE_DEVICES or a container renumbers devices per process; the UUID is the device's
            self.device_id = _text(self._nvml.nvmlDeviceGetUUID(handle))
        except Exception:  # noqa: BLE001 - a device that cannot say is told by its label
            self.device_id = None
        self.reason = reason
        self._closed = False
        session.acquire()

    @property
    def nvml(self) -> Any:
        """The NVML module this meter reads (pynvml, or a stand-in in tests)."""
        return self._nvml

    @property
    def handle(self) -> Any:
        """The device's NVML handle."""
        return self._handle

    def _call(self, function: Any) -> int:
        try:
            return function(self._handle)
        except self._nvml.NVMLError as exc:
            raise MeterError(
                f"{self.device} could not be read ({exc}); GPU energy after this point is not counted"
            ) from exc

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._session.release()


class NvmlCounterMeter(_NvmlMeter):
    """Whole-device energy from the driver's cumulative counter (mJ, Volta and newer)."""

    method = "nvml-counter"

    def _read_mj(self) -> int:
        return self._call(self._nvml.nvmlDeviceGetTotalEnergyConsumption)

    def begin(self, now: float) -> _Window:
        return _Window(self._read_mj(), now)

    def _advance(self, state: _Window, now: float) -> float:
        current = self._read_mj()
        if current < state.last:
            raise MeterError(
                f"{self.device} energy counter went backwards ({state.last} -> {current} mJ); "
                "the driver was probably reloaded"
            )
        step_j = (current - state.last) / MJ_PER_J
        state.last = current
        state.last_t = now
        return step_j

    def update(self, state: _Window, now: float) -> float | None:
        """Average power in W since the previous read."""
        elapsed_s = now - state.last_t
        step_j = self._advance(state, now)
        return step_j / elapsed_s if elapsed_s > 0 else None

    def end(self, state: _Window, now: float) -> float:
        """Joules since ``begin``."""
        self._advance(state, now)
        return (state.last - state.first) / MJ_PER_J


class NvmlPowerMeter(_NvmlMeter):
    """Whole-device energy from power samples (mW), integrated with the trapezoid rule."""

    method = "nvml-power"

    def _sample_w(self) -> float:
        return self._call(self._nvml.nvmlDeviceGetPowerUsage) / MJ_PER_J

    def begin(self, now: float) -> PowerIntegral:
        return PowerIntegral(self._sample_w(), now)

    def update(self, state: PowerIntegral, now: float) -> float | None:
        """Sample power; the trapezoid average in W since the previous sample."""
        return state.add(self._sample_w(), now)

    def end(self, state: PowerIntegral, now: float) -> float:
        """Joules since ``begin``, closing the integral with one last sample at ``now``."""
        state.add(self._sample_w(), now)
        return state.energy_j


class NvmlProbe(NamedTuple):
    """GPU meters found (possibly none), remarks, and why there are none when that is so."""

    meters: tuple[EnergyMeter, ...]
    notes: tuple[str, ...]
    reason: str | None


def probe_nvml(*, nvml: Any = None, environ: Mapping[str, str] | None = None) -> NvmlProbe:
    """One meter per visible NVIDIA GPU, initialising NVML once.

    ``nvml`` is the pynvml module or a stand-in with the same functions; ``None`` imports pynvml.
    ``environ`` supplies ``CUDA_VISIBLE_DEVICES`` (default: ``os.environ``). Closing every returned
    meter shuts NVML down; when no meter is returned it is already shut down.
    """
    environ = os.environ if environ is None else environ
    if nvml is None:
        try:
            import pynvml as nvml
        except ImportError as exc:
            reason = f"NVML not available (the nvidia-ml-py package is not installed: {exc})"
            return NvmlProbe((), (), reason)
    try:
        nvml.nvmlInit()
    except nvml.NVMLError_LibraryNotFound:
        return NvmlProbe((), (), "NVML not available (libnvidia-ml.so.1 not found: no NVIDIA driver)")
    except nvml.NVMLError_DriverNotLoaded:
        return NvmlProbe((), (), "NVML not available (the NVIDIA kernel driver is not loaded)")
    except nvml.NVMLError as exc:
        return NvmlProbe((), (), f"NVML failed to initialise ({exc})")

    session = _Session(nvml)
    session.acquire()  # held by the probe itself until the meters have taken theirs
    meters: list[EnergyMeter] = []
    notes: list[str] = []
    try:
        reason = _build_meters(nvml, session, environ, meters, notes)
    except nvml.NVMLError as exc:
        for meter in meters:
            meter.close()
        meters.clear()
        reason = f"NVML failed while listing GPUs ({exc})"
    finally:
        session.release()  # shuts NVML down now if no meter holds it
    return NvmlProbe(tuple(meters), tuple(notes), reason)


def _text(value: str | bytes) -> str:
    # pynvml before 11.5 returned bytes from string getters
    return value.decode() if isinstance(value, bytes) else value


def _build_meters(
    nvml: Any, session: _Session, environ: Mapping[str, str], meters: list[EnergyMeter], notes: list[str]
) -> str | None:
    """Fill ``meters`` and ``notes``; return why there is no meter, if so. NVMLError propagates."""
    count = nvml.nvmlDeviceGetCount()
    if count == 0:
        return "NVML found no NVIDIA GPU"
    spec = environ.get("CUDA_VISIBLE_DEVICES")
    handles = [nvml.nvmlDeviceGetHandleByIndex(i) for i in range(count)]
    names = [_text(nvml.nvmlDeviceGetName(h)) for h in handles]
    uses_uuids = spec is not None and ("GPU-" in spec or "MIG-" in spec)
    uuids = [_text(nvml.nvmlDeviceGetUUID(h)) for h in handles] if uses_uuids else []
    mig_parents = _mig_parents(nvml, handles) if spec is not None and "MIG-" in spec else {}
    visible = parse_cuda_visible_devices(spec, count, uuids, mig_parents)
    notes.extend(visible.notes)
    if (
        spec
        and re.match(_INDEX_ENTRY, spec)
        and len(set(names)) > 1
        and environ.get("CUDA_DEVICE_ORDER") != "PCI_BUS_ID"
    ):
        notes.append(
            "CUDA_VISIBLE_DEVICES indices were read in NVML (PCI bus) order; CUDA orders mixed GPU "
            "models fastest first unless CUDA_DEVICE_ORDER=PCI_BUS_ID, so set it to be sure"
        )
    if not visible.indices:
        return "no GPU visible to this process (CUDA_VISIBLE_DEVICES)"
    for index in visible.indices:
        meter = _meter_for(nvml, session, handles[index], index, names[index], notes)
        if meter is not None:
            meters.append(meter)
    return None if meters else "no visible GPU can be read through NVML"


def _meter_for(
    nvml: Any, session: _Session, handle: Any, index: int, name: str, notes: list[str]
) -> EnergyMeter | None:
    """The best meter one device supports: energy counter, else power sampling, else none."""
    try:
        nvml.nvmlDeviceGetTotalEnergyConsumption(handle)
        return NvmlCounterMeter(session, handle, index, name)
    except nvml.NVMLError as exc:
        counter_error = exc  # NOT_SUPPORTED before Volta; FUNCTION_NOT_FOUND on old drivers
    try:
        nvml.nvmlDeviceGetPowerUsage(handle)
    except nvml.NVMLError as exc:
        notes.append(
            f"GPU {index}: {name} has neither an energy counter ({counter_error}) "
            f"nor a power reading ({exc}); not metered"
        )
        return None
    reason = (
        f"GPU energy counter not available ({counter_error}; it needs Volta or newer): "
        "power sampled and integrated"
    )
    return NvmlPowerMeter(session, handle, index, name, reason=reason)


def _mig_parents(nvml: Any, handles: Sequence[Any]) -> dict[str, int]:
    """MIG instance UUID -> index of its parent GPU, for GPUs in MIG mode."""
    parents: dict[str, int] = {}
    for index, handle in enumerate(handles):
        try:
            slots = nvml.nvmlDeviceGetMaxMigDeviceCount(handle)
        except nvml.NVMLError:
            continue  # not MIG-capable
        for slot in range(slots):
            try:
                mig = nvml.nvmlDeviceGetMigDeviceHandleByIndex(handle, slot)
            except nvml.NVMLError:
                continue  # empty slot
            parents[_text(nvml.nvmlDeviceGetUUID(mig))] = index
    return parents

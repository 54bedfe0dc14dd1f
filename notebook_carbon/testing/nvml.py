"""``FakeNVML``: a stand-in for the pynvml module with scripted GPUs (MIG slices included); it raises
pynvml's own exception classes, so the backend's ``except`` clauses run as written.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Union

__all__ = ["FakeGpu", "FakeNVML", "Scripted"]

# A scripted value: a constant, a sequence consumed one per call (the last one repeats), or a
# function of the fake's clock (seconds).
Scripted = Union[float, Sequence[float], Callable[[float], float]]


class _Script:
    def __init__(self, spec: Scripted, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._function: Callable[[float], float] | None = None
        self._values: Iterator[float] | None = None
        if callable(spec):
            self._function = spec
        elif isinstance(spec, (int, float)):
            self._values = itertools.repeat(spec)
        else:
            values = list(spec)
            if not values:
                raise ValueError("a scripted sequence needs at least one value")
            self._values = itertools.chain(values, itertools.repeat(values[-1]))

    def next(self) -> int:
        if self._function is not None:
            return int(self._function(self._clock()))
        assert self._values is not None
        return int(next(self._values))


class FakeGpu:
    """One scripted device of ``FakeNVML``; see ``FakeNVML.add_gpu``."""

    def __init__(
        self, name: str, uuid: str, energy: _Script | None, power: _Script, mig_uuids: Sequence[str]
    ) -> None:
        self.name = name
        self.uuid = uuid
        self.energy = energy
        self.power = power
        self.mig_uuids = tuple(mig_uuids)
        self.error: type[Exception] | None = None
        self.error_on_every_call = False


class _Handle:
    def __init__(self, index: int, mig_slot: int | None = None) -> None:
        self.index = index
        self.mig_slot = mig_slot


class FakeNVML:
    """A module-like stand-in for pynvml: pass it as ``nvml=`` to ``probe_nvml``/``detect_meters``.

    Its errors are pynvml's own classes (``NVMLError``, ``NVMLError_NotSupported``, ...), so the
    backend's ``except`` clauses are exercised as written. ``driver=False`` makes ``nvmlInit`` raise
    ``NVMLError_LibraryNotFound``. ``init_count``/``shutdown_count`` count those calls.
    """

    def __init__(self, *, driver: bool = True, clock: Callable[[], float] = time.monotonic) -> None:
        import pynvml  # the exception classes are the real ones

        for attribute in dir(pynvml):
            if attribute.startswith(("NVMLError", "NVML_ERROR_")):
                setattr(self, attribute, getattr(pynvml, attribute))
        self._pynvml = pynvml
        self.driver = driver
        self.clock = clock
        self.gpus: list[FakeGpu] = []
        self.init_count = 0
        self.shutdown_count = 0

    def add_gpu(
        self,
        name: str = "NVIDIA H100 80GB HBM3",
        *,
        energy_mj: Scripted | None = 0,
        power_mw: Scripted = 0,
        uuid: str | None = None,
        mig_uuids: Sequence[str] = (),
    ) -> int:
        """Add a device; return its index. ``energy_mj=None`` makes it power-only (pre-Volta):
        ``nvmlDeviceGetTotalEnergyConsumption`` then raises ``NVMLError_NotSupported``."""
        index = len(self.gpus)
        uuid = uuid or f"GPU-{index:08x}-1111-2222-3333-444455556666"
        energy = None if energy_mj is None else _Script(energy_mj, self.clock)
        self.gpus.append(FakeGpu(name, uuid, energy, _Script(power_mw, self.clock), mig_uuids))
        return index

    def fail(self, index: int, error: str = "NVMLError_GpuIsLost", *, every_call: bool = False) -> None:
        """Make later energy and power reads of device ``index`` raise pynvml's ``error`` class;
        with ``every_call``, its name and UUID queries too (a device lost before probing)."""
        gpu = self.gpus[index]
        gpu.error = getattr(self._pynvml, error)
        gpu.error_on_every_call = every_call

    # pynvml's API, as far as the backend uses it
    def _live(self) -> None:
        if self.init_count <= self.shutdown_count:
            raise self._pynvml.NVMLError_Uninitialized()

    def _gpu(self, handle: _Handle, *, reading: bool = False) -> FakeGpu:
        self._live()
        gpu = self.gpus[handle.index]
        if gpu.error is not None and (reading or gpu.error_on_every_call):
            raise gpu.error()
        return gpu

    def nvmlInit(self) -> None:
        if not self.driver:
            raise self._pynvml.NVMLError_LibraryNotFound()
        self.init_count += 1

    def nvmlShutdown(self) -> None:
        self._live()
        self.shutdown_count += 1

    def nvmlDeviceGetCount(self) -> int:
        self._live()
        return len(self.gpus)

    def nvmlDeviceGetHandleByIndex(self, index: int) -> _Handle:
        self._live()
        if not 0 <= index < len(self.gpus):
            raise self._pynvml.NVMLError_InvalidArgument()
        return _Handle(index)

    def nvmlDeviceGetName(self, handle: _Handle) -> str:
        return self._gpu(handle).name

    def nvmlDeviceGetUUID(self, handle: _Handle) -> str:
        gpu = self._gpu(handle)
        return gpu.uuid if handle.mig_slot is None else gpu.mig_uuids[handle.mig_slot]

    def nvmlDeviceGetTotalEnergyConsumption(self, handle: _Handle) -> int:
        gpu = self._gpu(handle, reading=True)
        if gpu.energy is None or handle.mig_slot is not None:
            raise self._pynvml.NVMLError_NotSupported()
        return gpu.energy.next()

    def nvmlDeviceGetPowerUsage(self, handle: _Handle) -> int:
        return self._gpu(handle, reading=True).power.next()

    def nvmlDeviceGetMaxMigDeviceCount(self, handle: _Handle) -> int:
        gpu = self._gpu(handle)
        if not gpu.mig_uuids:
            raise self._pynvml.NVMLError_NotSupported()
        return len(gpu.mig_uuids)

    def nvmlDeviceGetMigDeviceHandleByIndex(self, handle: _Handle, slot: int) -> _Handle:
        gpu = self._gpu(handle)
        if not 0 <= slot < len(gpu.mig_uuids):
            raise self._pynvml.NVMLError_NotFound()
        return _Handle(handle.index, slot)

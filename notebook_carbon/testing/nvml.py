"""``FakeNVML``: a stand-in for the pynvml module with scripted GPUs (MIG slices included); it raises
pynvml's own exception classes, so the backend's ``except`` clauses run as written.

Besides energy and power, a device can be given processes holding compute contexts
(``add_process``), each with scripted SM/memory/encoder/decoder utilisation that the fake turns into
NVML's per-process samples (one per process per sample period, only when non-zero), a compute mode
and MIG instances; ``fail_call`` makes any one NVML function of a device raise.
"""

from __future__ import annotations

import ctypes
import itertools
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any, Union

__all__ = ["FakeGpu", "FakeNVML", "FakeProcess", "Scripted"]

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

    def next(self, at: float | None = None) -> int:
        """The next value; a function of the clock is evaluated at ``at`` when given."""
        if self._function is not None:
            return int(self._function(self._clock() if at is None else at))
        assert self._values is not None
        return int(next(self._values))


class FakeProcess:
    """A process holding a compute context on a ``FakeGpu``; see ``FakeNVML.add_process``.

    ``start``/``end`` (fake-clock seconds; ``end=None``: never) bound when NVML lists it and
    samples its utilisation; set ``end`` to make it exit."""

    def __init__(
        self,
        pid: int,
        used_memory_bytes: int,
        utilisation: tuple[_Script, _Script, _Script, _Script],
        mig_slot: int | None,
        start: float,
        end: float | None,
    ) -> None:
        self.pid = pid
        self.used_memory_bytes = used_memory_bytes
        self.utilisation = utilisation  # sm, mem, enc, dec: percent
        self.mig_slot = mig_slot
        self.start = start
        self.end = end

    def alive(self, t: float) -> bool:
        return self.start <= t and (self.end is None or t < self.end)


class FakeGpu:
    """One scripted device of ``FakeNVML``; see ``FakeNVML.add_gpu``. Its attributes may be changed
    by a test between calls (``compute_mode``, say)."""

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
        self.failing: dict[str, type[Exception]] = {}  # NVML function name -> error it raises
        self.compute_mode = 0  # NVML_COMPUTEMODE_DEFAULT
        self.multiprocessors = 132
        self.mig_multiprocessors: tuple[int, ...] = ()
        self.sample_period_s = 1 / 6
        self.origin = 0.0  # the fake clock when the device was added: sample times count from it
        self.processes: list[FakeProcess] = []
        self.samples: list[tuple[int, int, int, int, int, int]] = []  # pid, µs, sm, mem, enc, dec
        self.sampled_periods = 0  # sample periods already turned into samples


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
            if attribute.startswith(("NVMLError", "NVML_", "NVMLLibraryMismatchError")):
                setattr(self, attribute, getattr(pynvml, attribute))  # errors and constants
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
        compute_mode: int = 0,
        multiprocessors: int = 132,
        mig_multiprocessors: Sequence[int] = (),
        sample_period_s: float = 1 / 6,
    ) -> int:
        """Add a device; return its index. ``energy_mj=None`` makes it power-only (pre-Volta):
        ``nvmlDeviceGetTotalEnergyConsumption`` then raises ``NVMLError_NotSupported``.

        ``mig_uuids`` puts it in MIG mode with one instance per UUID; instance ``slot`` has GPU
        instance id ``slot + 1`` and ``mig_multiprocessors[slot]`` SMs (default: an equal part of
        ``multiprocessors``). ``compute_mode`` is pynvml's ``NVML_COMPUTEMODE_*``.
        ``sample_period_s`` is how often the driver samples per-process utilisation (NVML: 1/6 s
        to 1 s depending on the product)."""
        index = len(self.gpus)
        uuid = uuid or f"GPU-{index:08x}-1111-2222-3333-444455556666"
        energy = None if energy_mj is None else _Script(energy_mj, self.clock)
        gpu = FakeGpu(name, uuid, energy, _Script(power_mw, self.clock), mig_uuids)
        gpu.compute_mode = compute_mode
        gpu.multiprocessors = multiprocessors
        share = multiprocessors // max(1, len(mig_uuids))
        gpu.mig_multiprocessors = tuple(mig_multiprocessors) or (share,) * len(mig_uuids)
        gpu.sample_period_s = sample_period_s
        gpu.origin = self.clock()
        self.gpus.append(gpu)
        return index

    def add_process(
        self,
        index: int,
        pid: int,
        *,
        sm_util: Scripted = 0,
        mem_util: Scripted = 0,
        enc_util: Scripted = 0,
        dec_util: Scripted = 0,
        used_memory_bytes: int = 512 * 2**20,
        mig_slot: int | None = None,
        start: float | None = None,
        end: float | None = None,
    ) -> FakeProcess:
        """Give device ``index`` a process ``pid`` holding a compute context (on MIG instance
        ``mig_slot`` of a MIG device) from ``start`` (default: now) until ``end`` (fake-clock
        seconds). Utilisation is in percent, scripted per sample: a constant, a sequence consumed
        one value per sample period, or a function of the sample's time."""
        gpu = self.gpus[index]
        if gpu.mig_uuids and not (mig_slot is not None and 0 <= mig_slot < len(gpu.mig_uuids)):
            raise ValueError("a process on a MIG device needs the mig_slot of its instance")
        scripts = tuple(_Script(spec, self.clock) for spec in (sm_util, mem_util, enc_util, dec_util))
        start = self.clock() if start is None else start
        process = FakeProcess(pid, used_memory_bytes, scripts, mig_slot, start, end)  # type: ignore[arg-type]
        gpu.processes.append(process)
        return process

    def fail_call(self, index: int, function: str, error: str = "NVMLError_NotSupported") -> None:
        """Make every later call of the NVML function named ``function`` on device ``index`` (or
        one of its MIG instances) raise pynvml's ``error`` class; ``error=""`` undoes it."""
        gpu = self.gpus[index]
        if error:
            gpu.failing[function] = getattr(self._pynvml, error)
        else:
            gpu.failing.pop(function, None)

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

    def _gpu(self, handle: _Handle, *, reading: bool = False, call: str = "") -> FakeGpu:
        self._live()
        gpu = self.gpus[handle.index]
        if gpu.error is not None and (reading or gpu.error_on_every_call):
            raise gpu.error()
        if call in gpu.failing:
            raise gpu.failing[call]()
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
        return self._gpu(handle, call="nvmlDeviceGetName").name

    def nvmlDeviceGetUUID(self, handle: _Handle) -> str:
        gpu = self._gpu(handle, call="nvmlDeviceGetUUID")
        return gpu.uuid if handle.mig_slot is None else gpu.mig_uuids[handle.mig_slot]

    def nvmlDeviceGetTotalEnergyConsumption(self, handle: _Handle) -> int:
        gpu = self._gpu(handle, reading=True, call="nvmlDeviceGetTotalEnergyConsumption")
        if gpu.energy is None or handle.mig_slot is not None:
            raise self._pynvml.NVMLError_NotSupported()
        return gpu.energy.next()

    def nvmlDeviceGetPowerUsage(self, handle: _Handle) -> int:
        return self._gpu(handle, reading=True, call="nvmlDeviceGetPowerUsage").power.next()

    def nvmlDeviceGetMaxMigDeviceCount(self, handle: _Handle) -> int:
        gpu = self._gpu(handle, call="nvmlDeviceGetMaxMigDeviceCount")
        if not gpu.mig_uuids:
            raise self._pynvml.NVMLError_NotSupported()
        return len(gpu.mig_uuids)

    def nvmlDeviceGetMigDeviceHandleByIndex(self, handle: _Handle, slot: int) -> _Handle:
        gpu = self._gpu(handle, call="nvmlDeviceGetMigDeviceHandleByIndex")
        if not 0 <= slot < len(gpu.mig_uuids):
            raise self._pynvml.NVMLError_NotFound()
        return _Handle(handle.index, slot)

    # processes holding compute contexts, their utilisation samples, compute mode, MIG instances
    def _processes(self, handle: _Handle, call: str) -> list[Any]:
        gpu = self._gpu(handle, call=call)
        now = self.clock()
        not_available = self._pynvml.NVML_VALUE_NOT_AVAILABLE_uint.value  # outside MIG
        infos = []
        for process in gpu.processes:
            if not process.alive(now) or handle.mig_slot not in (None, process.mig_slot):
                continue
            slot = process.mig_slot
            infos.append(
                self._pynvml.nvmlFriendlyObject(
                    {
                        "pid": process.pid,
                        "usedGpuMemory": process.used_memory_bytes,
                        "gpuInstanceId": not_available if slot is None else slot + 1,
                        "computeInstanceId": not_available if slot is None else 0,
                    }
                )
            )
        return infos

    def nvmlDeviceGetComputeRunningProcesses(self, handle: _Handle) -> list[Any]:
        """In MIG mode the parent's handle lists every instance's processes (NVML: only with
        privileges; ``fail_call(..., "NVMLError_NoPermission")`` to script their absence)."""
        return self._processes(handle, "nvmlDeviceGetComputeRunningProcesses")

    def nvmlDeviceGetComputeRunningProcesses_v2(self, handle: _Handle) -> list[Any]:
        return self._processes(handle, "nvmlDeviceGetComputeRunningProcesses_v2")

    def nvmlDeviceGetComputeRunningProcesses_v3(self, handle: _Handle) -> list[Any]:
        return self._processes(handle, "nvmlDeviceGetComputeRunningProcesses_v3")

    def _sample(self, gpu: FakeGpu) -> None:
        """Turn the sample periods elapsed since the last call into samples, as the driver does."""
        periods = int((self.clock() - gpu.origin) / gpu.sample_period_s + 1e-9)
        for k in range(gpu.sampled_periods + 1, periods + 1):
            t = gpu.origin + k * gpu.sample_period_s
            for process in gpu.processes:
                if process.alive(t):
                    values = [max(0, script.next(at=t)) for script in process.utilisation]
                    if any(values):  # NVML returns only processes with some utilisation
                        gpu.samples.append((process.pid, round(t * 1e6), *values))
        gpu.sampled_periods = max(gpu.sampled_periods, periods)

    def nvmlDeviceGetProcessUtilization(self, handle: _Handle, timeStamp: int) -> list[Any]:
        """Samples newer than ``timeStamp`` (µs of the fake clock), as pynvml's
        ``c_nvmlProcessUtilizationSample_t``; ``NVMLError_NotFound`` when there is none, and
        ``NVMLError_NotSupported`` in MIG mode (NVML does not support it there)."""
        gpu = self._gpu(handle, call="nvmlDeviceGetProcessUtilization")
        if gpu.mig_uuids:
            raise self._pynvml.NVMLError_NotSupported()
        self._sample(gpu)
        sample = self._pynvml.c_nvmlProcessUtilizationSample_t
        found = [sample(*values) for values in gpu.samples if values[1] > timeStamp]
        if not found:
            raise self._pynvml.NVMLError_NotFound()
        return found

    def nvmlDeviceGetComputeMode(self, handle: _Handle) -> int:
        return self._gpu(handle, call="nvmlDeviceGetComputeMode").compute_mode

    def nvmlDeviceGetMigMode(self, handle: _Handle) -> list[int]:
        """[current, pending]: enabled when the device was given ``mig_uuids``."""
        gpu = self._gpu(handle, call="nvmlDeviceGetMigMode")
        if handle.mig_slot is not None:
            raise self._pynvml.NVMLError_NotSupported()
        mode = self._pynvml.NVML_DEVICE_MIG_ENABLE if gpu.mig_uuids else self._pynvml.NVML_DEVICE_MIG_DISABLE
        return [mode, mode]

    def nvmlDeviceIsMigDeviceHandle(self, handle: _Handle) -> ctypes.c_uint:
        self._gpu(handle, call="nvmlDeviceIsMigDeviceHandle")
        return ctypes.c_uint(handle.mig_slot is not None)  # pynvml returns the c_uint itself

    def nvmlDeviceGetGpuInstanceId(self, handle: _Handle) -> int:
        self._gpu(handle, call="nvmlDeviceGetGpuInstanceId")
        if handle.mig_slot is None:
            raise self._pynvml.NVMLError_NotSupported()
        return handle.mig_slot + 1

    def nvmlDeviceGetComputeInstanceId(self, handle: _Handle) -> int:
        self._gpu(handle, call="nvmlDeviceGetComputeInstanceId")
        if handle.mig_slot is None:
            raise self._pynvml.NVMLError_NotSupported()
        return 0

    def nvmlDeviceGetDeviceHandleFromMigDeviceHandle(self, handle: _Handle) -> _Handle:
        self._gpu(handle, call="nvmlDeviceGetDeviceHandleFromMigDeviceHandle")
        if handle.mig_slot is None:
            raise self._pynvml.NVMLError_InvalidArgument()
        return _Handle(handle.index)

    def nvmlDeviceGetAttributes(self, handle: _Handle) -> Any:
        """pynvml's ``c_nvmlDeviceAttributes``: the SM count of a MIG instance. As NVML documents
        ("currently only supports MIG device handles"), a whole device's handle is refused."""
        gpu = self._gpu(handle, call="nvmlDeviceGetAttributes")
        if handle.mig_slot is None:
            raise self._pynvml.NVMLError_NotSupported()
        attributes = self._pynvml.c_nvmlDeviceAttributes()
        attributes.multiprocessorCount = gpu.mig_multiprocessors[handle.mig_slot]
        return attributes

    nvmlDeviceGetAttributes_v2 = nvmlDeviceGetAttributes

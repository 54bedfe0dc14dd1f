"""A run's share of one NVIDIA GPU's energy in a window: which devices are the run's, and how much.

``GpuShareObserver`` reads NVML beside a GPU meter (at the window's begin, at each sampler update,
about once a second, and at its end) into a ``GpuObservation``; ``gpu_share`` turns that, the
device's energy in the window, the window's duration and the device's idle power into the fraction
of the energy charged to the run (``GpuShare``). The rules, in the order they are applied:

1. **MIG.** A device in MIG mode (``nvmlDeviceGetMigMode``) is read per instance: the processes
   on each MIG device handle (``nvmlDeviceGetComputeRunningProcesses`` on it; on the parent's
   handle NVML lists them only to privileged callers) and its SM count (``nvmlDeviceGetAttributes``).
   NVML meters neither energy nor per-process utilisation per instance ("On MIG-enabled GPUs,
   querying process utilization is not currently supported"), so the device's energy is divided
   between instances by their SMs over all instances' (NVML gives SM counts of MIG handles only)
   and an instance's part equally between the processes holding a context on it. An idle instance is thus charged its size's part of a busy
   neighbour's work: what NVML offers does not allow better. Where the instances cannot be read,
   the whole device is charged, with the reason.
2. **Unknown processes.** If NVML never listed the compute processes of the device, or listed a
   PID that does not exist in this PID namespace (a container: NVML shows the host's PIDs), or this
   tree's PIDs could not be read, the run's processes cannot be told from others', and the whole
   device is charged, with the reason.
   Only PIDs holding a context are checked (a sample's process may have exited since).
3. **Not the run's.** Only a device on which a PID of this process tree held a compute context at
   one of the reads (``nvmlDeviceGetComputeRunningProcesses``: "processes with a compute context on
   a device", e.g. CUDA applications) is the run's; any other is charged 0, however busy it was.
4. **Exclusive.** In ``NVML_COMPUTEMODE_EXCLUSIVE_PROCESS`` only one process may hold a context,
   so a device that is the run's is charged whole.
5. **Split.** The energy above idle, ``active = max(0, E - idle_w * duration)``, is divided by SM
   utilisation: this tree's PIDs' ``smUtil`` over all PIDs' ``smUtil``, summed over the samples of
   ``nvmlDeviceGetProcessUtilization`` newer than the window's start (NVML returns "one sample per
   process running, that had some non-zero utilization during the last sample period", with its
   CPU timestamp in µs, only samples newer than ``lastSeenTimeStamp``, and ``NVML_ERROR_NOT_FOUND``
   when there is none; the driver samples every 1/6 s to 1 s, depending on the product). The idle
   energy, ``E - active``, is divided equally between the distinct PIDs that held a context in the
   window, this tree's counting as many as it has. With no sample at all (no process used the SMs)
   the active energy is divided like the idle energy; where the device gives no per-process samples
   (an error other than NOT_FOUND), the same, and that is reported as a fallback. Accounting stats
   (``nvmlDeviceGetAccountingStats``) are not used: their utilisation is a whole-percent average
   over the process's life, which says nothing about a short window of a kernel that has run for
   hours.

Idle power: given by the caller (``notebook-carbon calibrate`` measures it), else the lowest power
the device drew at the observer's reads (``nvmlDeviceGetPowerUsage``, mW). That over-counts idle,
and under-counts the active energy being split, for a device busy the whole window. The power
sensor of A100 and H100 boards samples only about 25 % of the time (Yang et al., "Part-time Power
Measurements: nvidia-smi's Lack of Attention", SC24, arXiv:2312.02741), so one reading can miss
short dips and spikes; the lowest of a window's readings is an estimate, said so.

Conservation: concurrent runs have disjoint process trees, so their SM sums, and their counts of
context holders, add up to at most the device's: the fractions of one device never add up to more
than 1 (each fallback that charges the whole device says so). Sources: NVML API reference,
``nvmlDeviceGetComputeRunningProcesses``, ``nvmlDeviceGetProcessUtilization``, ``nvmlComputeMode_t``,
MIG device queries (https://docs.nvidia.com/deploy/nvml-api/). NVML errors are caught here and
become reasons; nothing here raises them. Importing this module imports neither pynvml nor psutil.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Collection
from typing import Any

__all__ = ["GpuObservation", "GpuShare", "GpuShareObserver", "MigInstance", "gpu_share"]

MW_PER_W = 1000
_PROCESS_FUNCTIONS = (  # newest first; an older driver lacks the newer (NVML_ERROR_FUNCTION_NOT_FOUND)
    "nvmlDeviceGetComputeRunningProcesses_v3",
    "nvmlDeviceGetComputeRunningProcesses_v2",
    "nvmlDeviceGetComputeRunningProcesses",
)


@dataclasses.dataclass(frozen=True)
class GpuShare:
    """The run's part of one device's energy in a window (fields as ``shares.Share``, plus joules)."""

    fraction: float
    """Between 0 and 1."""
    energy_j: float
    """The energy charged to the run: ``fraction`` times the device's energy (J)."""
    how: str
    """How the fraction was obtained, in words, with its figures."""
    fallback: str | None = None
    """Why the rules could not be applied as written (the whole device charged, say), if so."""


@dataclasses.dataclass
class MigInstance:
    """One MIG instance of a device, and the PIDs seen holding a context on it."""

    gpu_instance_id: int
    multiprocessors: int
    handle: Any = dataclasses.field(repr=False, compare=False)
    holders: set[int] = dataclasses.field(default_factory=set)
    ours: set[int] = dataclasses.field(default_factory=set)


@dataclasses.dataclass
class GpuObservation:
    """What ``GpuShareObserver`` saw on one device in one window; read by ``gpu_share``."""

    reads: int = 0
    """Reads made (begin, each update, end)."""
    process_reads: int = 0
    """Reads at which the compute processes (of every MIG instance) could be listed."""
    holders: set[int] = dataclasses.field(default_factory=set)
    """Every PID listed with a compute context at some read."""
    ours: set[int] = dataclasses.field(default_factory=set)
    """Those of them that belonged to this process tree when listed."""
    tree: set[int] = dataclasses.field(default_factory=set)
    """This process tree's PIDs, over all reads (a sample's PID is the run's if it is in here)."""
    foreign: set[int] = dataclasses.field(default_factory=set)
    """Context holders that do not exist in this PID namespace."""
    sm_util: dict[tuple[int, int], int] = dataclasses.field(default_factory=dict)
    """``smUtil`` (%) of the window's samples, by (PID, timestamp in µs)."""
    last_seen_us: int | None = None
    """Newest sample timestamp read; None until a first read of the samples succeeded."""
    sample_reads: int = 0
    """Reads of the samples that succeeded after that first one (NOT_FOUND counts: none)."""
    compute_mode: int | None = None
    exclusive: bool = False
    power_w: list[float] = dataclasses.field(default_factory=list)
    mig: bool = False
    multiprocessors: int = 0
    """The device's SM count (MIG only)."""
    instances: list[MigInstance] = dataclasses.field(default_factory=list)
    problems: dict[str, str] = dataclasses.field(default_factory=dict)
    """What could not be read ("processes", "utilisation", "power", "compute mode", "mig", "pids") ->
    the first reason."""


class GpuShareObserver:
    """Reads NVML for ``gpu_share`` beside one device's meter (the parent's handle for MIG).

    ``nvml`` is the pynvml module or a stand-in (``notebook_carbon.testing.FakeNVML``), already
    initialised; ``pids`` returns this process tree's PIDs at each read; ``pid_exists`` tells whether
    a PID exists in this PID namespace (default: psutil's). ``begin``/``update``/``end`` are called
    as a meter's are, never concurrently for one observation; none of them raises NVMLError.
    """

    def __init__(
        self,
        nvml: Any,
        handle: Any,
        pids: Callable[[], Collection[int]],
        *,
        pid_exists: Callable[[int], bool] | None = None,
    ) -> None:
        self._nvml = nvml
        self._handle = handle
        self._pids = pids
        self._pid_exists = pid_exists or _psutil_pid_exists
        mismatch = getattr(nvml, "NVMLLibraryMismatchError", None)  # not an NVMLError subclass
        self._errors: tuple[type[BaseException], ...] = (nvml.NVMLError,) + ((mismatch,) if mismatch else ())

    def begin(self, now: float) -> GpuObservation:
        """Start a window: read the device's modes and MIG instances, and a first time everything."""
        observed = GpuObservation()
        mode = self._try(observed, "compute mode", "nvmlDeviceGetComputeMode", self._handle)
        if mode is not None:
            observed.compute_mode = mode
            exclusive = (  # pynvml's values, should a stand-in lack the names
                getattr(self._nvml, "NVML_COMPUTEMODE_EXCLUSIVE_PROCESS", 3),
                getattr(self._nvml, "NVML_COMPUTEMODE_EXCLUSIVE_THREAD", 1),  # gone since CUDA 8
            )
            observed.exclusive = mode in exclusive
        self._probe_mig(observed)
        self._read(observed)
        return observed

    def update(self, observed: GpuObservation, now: float) -> None:
        """A sampler read."""
        self._read(observed)

    def end(self, observed: GpuObservation, now: float) -> GpuObservation:
        """The last read; returns ``observed`` for ``gpu_share``."""
        self._read(observed)
        return observed

    def _try(self, observed: GpuObservation, what: str, function: str, *args: Any) -> Any:
        """``nvml.function(*args)``, or None with the reason kept under ``what``."""
        try:
            return getattr(self._nvml, function)(*args)
        except self._errors as exc:
            observed.problems.setdefault(what, f"{function}: {exc}")
        except AttributeError:
            observed.problems.setdefault(what, f"this pynvml has no {function}")
        return None

    def _probe_mig(self, observed: GpuObservation) -> None:
        nvml = self._nvml
        try:
            observed.mig = nvml.nvmlDeviceGetMigMode(self._handle)[0] == nvml.NVML_DEVICE_MIG_ENABLE
        except self._errors + (AttributeError,):
            return  # NOT_SUPPORTED: not MIG-capable; otherwise the process list decides
        if not observed.mig:
            return
        # the device's SMs: NVML gives the attributes of MIG handles only (then the instances' SMs)
        observed.multiprocessors = 0
        count = self._try(observed, "mig", "nvmlDeviceGetMaxMigDeviceCount", self._handle)
        for slot in range(count or 0):
            try:
                handle = nvml.nvmlDeviceGetMigDeviceHandleByIndex(self._handle, slot)
            except nvml.NVMLError_NotFound:
                continue  # an empty slot
            except self._errors as exc:
                observed.problems.setdefault("mig", f"nvmlDeviceGetMigDeviceHandleByIndex: {exc}")
                continue
            instance_id = self._try(observed, "mig", "nvmlDeviceGetGpuInstanceId", handle)
            attributes = self._try(observed, "mig", "nvmlDeviceGetAttributes", handle)
            if instance_id is not None and attributes is not None:
                observed.instances.append(MigInstance(instance_id, attributes.multiprocessorCount, handle))
        if not observed.instances:
            observed.problems.setdefault("mig", "no MIG instance could be read")

    def _read(self, observed: GpuObservation) -> None:
        observed.reads += 1
        try:
            tree = set(self._pids())
        except OSError as exc:
            tree = set()
            observed.problems.setdefault("pids", f"this process tree's PIDs could not be read ({exc})")
        observed.tree |= tree
        if observed.mig:
            listed = [
                (instance, self._processes(observed, instance.handle)) for instance in observed.instances
            ]
            for instance, pids in listed:
                if pids is not None:
                    observed.holders |= pids
                    instance.holders |= pids
                    instance.ours |= pids & tree
            if listed and all(pids is not None for _, pids in listed):
                observed.process_reads += 1
        else:
            pids = self._processes(observed, self._handle)
            if pids is not None:
                observed.process_reads += 1
                observed.holders |= pids
                observed.ours |= pids & tree
            self._read_samples(observed)
        power_mw = self._try(observed, "power", "nvmlDeviceGetPowerUsage", self._handle)
        if power_mw is not None:
            observed.power_w.append(power_mw / MW_PER_W)

    def _processes(self, observed: GpuObservation, handle: Any) -> set[int] | None:
        """The PIDs holding a compute context on ``handle``, or None if NVML could not list them."""
        nvml = self._nvml
        error: BaseException | None = None
        for function in _PROCESS_FUNCTIONS:
            if not hasattr(nvml, function):
                continue
            try:
                pids = {int(info.pid) for info in getattr(nvml, function)(handle)}
            except nvml.NVMLError_FunctionNotFound as exc:
                error = exc
                continue  # the driver predates this version of the call: try the older one
            except self._errors as exc:
                error = exc
                break
            for pid in pids - observed.tree - observed.holders - observed.foreign:
                if not self._pid_exists(pid):
                    observed.foreign.add(pid)
            return pids
        observed.problems.setdefault("processes", f"the compute processes could not be listed ({error})")
        return None

    def _read_samples(self, observed: GpuObservation) -> None:
        nvml = self._nvml
        since = observed.last_seen_us or 0
        try:
            samples = nvml.nvmlDeviceGetProcessUtilization(self._handle, since)
        except nvml.NVMLError_NotFound:
            samples = []  # no process used the device since ``since``
        except self._errors as exc:
            if getattr(exc, "value", None) != 0:  # pynvml raises NVML_SUCCESS (0) for "no sample" too
                observed.problems.setdefault("utilisation", f"nvmlDeviceGetProcessUtilization: {exc}")
                return
            samples = []
        except AttributeError:
            observed.problems.setdefault("utilisation", "this pynvml has no nvmlDeviceGetProcessUtilization")
            return
        newest = max((int(sample.timeStamp) for sample in samples), default=since)
        if observed.last_seen_us is not None:  # the first read only marks where the window starts
            observed.sample_reads += 1
            for sample in samples:
                if sample.timeStamp > since:
                    observed.sm_util[(int(sample.pid), int(sample.timeStamp))] = min(
                        100, max(0, int(sample.smUtil))
                    )
        observed.last_seen_us = max(since, newest)


def _psutil_pid_exists(pid: int) -> bool:
    import psutil

    return psutil.pid_exists(pid)


def gpu_share(observed: GpuObservation, energy_j: float, duration_s: float, idle_w: float | None) -> GpuShare:
    """The run's share of one device's ``energy_j`` (J) over a window of ``duration_s`` (s), by the
    rules of the module's doc; ``idle_w`` is the device's idle power (W), None if unknown."""
    energy_j = max(0.0, float(energy_j))
    whole = _whole_device_reason(observed)
    if whole is not None:
        return GpuShare(1.0, energy_j, f"the whole device: {whole}", fallback=whole)
    if observed.mig:
        return _mig_share(observed, energy_j)
    if not observed.ours:
        others = len(observed.holders)
        return GpuShare(
            0.0, 0.0, f"no process of this tree held a compute context on the device at any of its {observed.reads} "
            f"reads ({others} other process{'' if others == 1 else 'es'} did): not the run's device"
        )  # fmt: skip
    if observed.exclusive:
        return GpuShare(
            1.0, energy_j, "exclusive-process compute mode, the context held by this tree: all of it"
        )
    return _split(observed, energy_j, duration_s, idle_w)


def _whole_device_reason(observed: GpuObservation) -> str | None:
    if observed.mig and "mig" in observed.problems:
        return f"MIG mode, but NVML gave no per-instance information ({observed.problems['mig']})"
    if "pids" in observed.problems and not observed.ours:
        return f"{observed.problems['pids']}, so whether the device is the run's cannot be told"
    if observed.process_reads == 0:
        why = observed.problems.get("processes", "no read was made")
        return f"NVML never listed the processes holding a compute context, so this tree's cannot be told ({why})"
    if observed.foreign:
        pids = ", ".join(str(pid) for pid in sorted(observed.foreign)[:3])
        return (
            f"NVML lists PIDs that do not exist in this PID namespace ({pids}: a container, shown the host's "
            "PIDs), so this tree's processes cannot be told from others'"
        )
    return None


def _split(observed: GpuObservation, energy_j: float, duration_s: float, idle_w: float | None) -> GpuShare:
    holders, ours = len(observed.holders), len(observed.ours)
    equal = ours / holders
    idle_source = ""
    if idle_w is None and observed.power_w:
        idle_w = min(observed.power_w)
        idle_source = (
            " (idle power not known: the lowest power read in the window, which over-counts idle if the device "
            "was busy throughout; `notebook-carbon calibrate` measures it)"
        )
    idle_j = 0.0 if idle_w is None else min(energy_j, max(0.0, idle_w) * max(0.0, duration_s))
    active_j = energy_j - idle_j
    total_sm = sum(observed.sm_util.values())
    ours_sm = sum(sm for (pid, _), sm in observed.sm_util.items() if pid in observed.tree)
    fallback = None
    if observed.sample_reads == 0:
        why = observed.problems.get("utilisation", "no read of them succeeded in the window")
        fallback = f"no per-process SM utilisation from NVML ({why})"
        active, active_how = equal, f"{fallback}: the active energy split like the idle energy"
    elif total_sm == 0:
        active, active_how = (
            equal,
            "no process used the SMs in the window (no NVML sample): active energy split equally",
        )
    else:
        active = ours_sm / total_sm
        samples = len(observed.sm_util)
        active_how = (
            f"SM utilisation: this tree {active:.0%} of all processes' ({ours_sm} of {total_sm}, % summed over "
            f"{samples} sample{'' if samples == 1 else 's'})"
        )
    charged_j = active * active_j + equal * idle_j
    fraction = min(1.0, charged_j / energy_j) if energy_j > 0 else equal
    who = f"{holders} process{'' if holders == 1 else 'es'} holding a context, {ours} of them this tree's"
    if idle_w is None:
        idle_how = f"idle power unknown and no power read, so all of it counted as active; {who}"
    else:
        idle_how = (
            f"idle {idle_w:.0f} W{idle_source} x {duration_s:.1f} s = {idle_j:.0f} J split between {who}"
        )
    how = f"{active_how}, applied to the {active_j:.0f} J above idle; {idle_how}"
    return GpuShare(fraction, fraction * energy_j, how, fallback)


def _mig_share(observed: GpuObservation, energy_j: float) -> GpuShare:
    device_sms = observed.multiprocessors or sum(instance.multiprocessors for instance in observed.instances)
    held = [instance for instance in observed.instances if instance.ours]
    if not held or device_sms <= 0:
        return GpuShare(
            0.0, 0.0, "MIG: no process of this tree held a context on any instance: not the run's device"
        )
    fraction = min(1.0, sum(i.multiprocessors / device_sms * len(i.ours) / len(i.holders) for i in held))
    parts = "; ".join(
        f"instance {i.gpu_instance_id} ({i.multiprocessors} of {device_sms} SMs), {len(i.ours)} of its "
        f"{len(i.holders)} context holders this tree's"
        for i in held
    )
    how = (
        f"MIG: {parts}; the device's energy divided by instance size, then equally between an instance's "
        "context holders (NVML meters neither energy nor per-process utilisation per instance)"
    )
    return GpuShare(fraction, fraction * energy_j, how)

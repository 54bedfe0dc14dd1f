"""The run's share of a GPU (meters/gpu_share.py), observed through FakeNVML."""

from __future__ import annotations

import pynvml
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from notebook_carbon.meters.gpu_share import GpuObservation, GpuShareObserver, gpu_share
from notebook_carbon.testing import FakeNVML

OURS, OTHER, THIRD = 100, 200, 300
E_J, SECONDS, IDLE_W = 1000.0, 10.0, 60.0  # 600 J idle, 400 J active


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def fake_nvml(**gpu) -> tuple[FakeNVML, Clock]:
    clock = Clock()
    nvml = FakeNVML(clock=clock)
    nvml.nvmlInit()
    nvml.add_gpu(**gpu)
    return nvml, clock


def observe(
    nvml: FakeNVML, clock: Clock, *trees: set[int], seconds: float = SECONDS, pid_exists=lambda pid: True
) -> list[GpuObservation]:
    """One observer per process tree, reading device 0 in step: begin, once a second, end."""
    handle = nvml.nvmlDeviceGetHandleByIndex(0)
    observers = [
        GpuShareObserver(nvml, handle, lambda tree=tree: tree, pid_exists=pid_exists) for tree in trees
    ]
    states = [observer.begin(clock.now) for observer in observers]
    for _ in range(int(seconds) - 1):
        clock.now += 1.0
        for observer, state in zip(observers, states):
            observer.update(state, clock.now)
    clock.now += seconds - int(seconds) + 1.0
    return [observer.end(state, clock.now) for observer, state in zip(observers, states)]


def share(observed: GpuObservation, idle_w: float | None = IDLE_W, energy_j: float = E_J):
    return gpu_share(observed, energy_j, SECONDS, idle_w)


# -- the cases ---------------------------------------------------------------------------------


def test_idle_notebook_beside_a_busy_process_is_charged_only_its_idle_share() -> None:
    nvml, clock = fake_nvml()
    nvml.add_process(0, OURS, sm_util=0)  # holds a context, runs nothing
    nvml.add_process(0, OTHER, sm_util=90)
    (observed,) = observe(nvml, clock, {OURS})
    result = share(observed)
    assert result.fraction == pytest.approx(0.3)  # none of the 400 J active, half of the 600 J idle
    assert result.energy_j == pytest.approx(300.0)
    assert result.fallback is None
    assert (
        "this tree 0% of all processes' (0 of " in result.how
        and "2 processes holding a context" in result.how
    )


def test_thirty_and_seventy_percent_sm_get_thirty_and_seventy_percent_of_the_active_energy() -> None:
    nvml, clock = fake_nvml()
    nvml.add_process(0, OURS, sm_util=30)
    nvml.add_process(0, OTHER, sm_util=70)
    ours, other = observe(nvml, clock, {OURS}, {OTHER})
    assert share(ours).energy_j == pytest.approx(0.3 * 400 + 300)
    assert share(other).energy_j == pytest.approx(0.7 * 400 + 300)
    assert share(ours).energy_j + share(other).energy_j == pytest.approx(E_J)
    assert "SM utilisation" in share(ours).how and "60 W x 10.0 s = 600 J" in share(ours).how


def test_exclusive_process_mode_charges_the_whole_device() -> None:
    nvml, clock = fake_nvml(compute_mode=pynvml.NVML_COMPUTEMODE_EXCLUSIVE_PROCESS)
    nvml.add_process(0, OURS, sm_util=20)
    (observed,) = observe(nvml, clock, {OURS})
    result = share(observed)
    assert (result.fraction, result.energy_j, result.fallback) == (1.0, E_J, None)
    assert "exclusive" in result.how


def test_a_device_the_process_never_touched_is_charged_nothing() -> None:
    nvml, clock = fake_nvml()
    nvml.add_process(0, OTHER, sm_util=100)
    (observed,) = observe(nvml, clock, {OURS})
    result = share(observed)
    assert (result.fraction, result.energy_j, result.fallback) == (0.0, 0.0, None)
    assert "not the run's device" in result.how


def test_an_idle_device_nobody_holds_is_charged_nothing() -> None:
    nvml, clock = fake_nvml()
    (observed,) = observe(nvml, clock, {OURS})
    assert share(observed).fraction == 0.0


def test_mig_charges_the_instance_by_its_size_and_its_context_holders() -> None:
    nvml, clock = fake_nvml(
        mig_uuids=("MIG-a", "MIG-b", "MIG-c"), multiprocessors=98, mig_multiprocessors=(14, 28, 56)
    )
    nvml.add_process(0, OURS, mig_slot=1, sm_util=100)  # NVML gives no utilisation in MIG mode anyway
    nvml.add_process(0, OTHER, mig_slot=1)
    nvml.add_process(0, THIRD, mig_slot=2, sm_util=100)
    ours, other, third = observe(nvml, clock, {OURS}, {OTHER}, {THIRD})
    assert share(ours).fraction == pytest.approx(28 / 98 / 2)
    assert share(ours).fallback is None and "instance 2 (28 of 98 SMs)" in share(ours).how
    assert share(third).fraction == pytest.approx(56 / 98)
    assert share(ours).fraction + share(other).fraction + share(third).fraction <= 1.0


def test_mig_instance_the_run_does_not_hold_is_charged_nothing() -> None:
    nvml, clock = fake_nvml(mig_uuids=("MIG-a", "MIG-b"))
    nvml.add_process(0, OTHER, mig_slot=0)
    (observed,) = observe(nvml, clock, {OURS})
    assert share(observed).fraction == 0.0


@pytest.mark.parametrize(
    ("function", "error"),
    [
        ("nvmlDeviceGetGpuInstanceId", "NVMLError_NotSupported"),
        ("nvmlDeviceGetMigDeviceHandleByIndex", "NVMLError_NoPermission"),
        ("nvmlDeviceGetAttributes", "NVMLError_NotSupported"),
    ],
)
def test_mig_without_per_instance_information_charges_the_whole_device(function: str, error: str) -> None:
    nvml, clock = fake_nvml(mig_uuids=("MIG-a", "MIG-b"))
    nvml.add_process(0, OURS, mig_slot=0)
    nvml.fail_call(0, function, error)
    (observed,) = observe(nvml, clock, {OURS})
    result = share(observed)
    assert (result.fraction, result.energy_j) == (1.0, E_J)
    assert result.fallback is not None and result.fallback.startswith(
        "MIG mode, but NVML gave no per-instance"
    )
    assert function in result.fallback


def test_a_device_without_per_process_samples_falls_back_with_the_reason() -> None:
    nvml, clock = fake_nvml()
    nvml.add_process(0, OURS, sm_util=90)
    nvml.add_process(0, OTHER, sm_util=10)
    nvml.fail_call(0, "nvmlDeviceGetProcessUtilization", "NVMLError_NotSupported")
    (observed,) = observe(nvml, clock, {OURS})
    result = share(observed)
    assert result.fraction == pytest.approx(0.5)  # active and idle both split between the 2 holders
    assert result.fallback is not None and "Not Supported" in result.fallback
    assert "split like the idle energy" in result.how


# -- the rules in detail --------------------------------------------------------------------------------


def test_no_sample_because_nothing_ran_splits_equally_without_a_fallback() -> None:
    nvml, clock = fake_nvml()
    nvml.add_process(0, OURS)
    nvml.add_process(0, OTHER)
    (observed,) = observe(nvml, clock, {OURS})
    result = share(observed)
    assert (result.fraction, result.fallback) == (pytest.approx(0.5), None)
    assert "no process used the SMs" in result.how


def test_the_trees_pids_count_as_many_context_holders_as_they_are() -> None:
    nvml, clock = fake_nvml()
    for pid in (OURS, OURS + 1, OTHER):
        nvml.add_process(0, pid)
    (observed,) = observe(nvml, clock, {OURS, OURS + 1})
    assert share(observed, idle_w=100.0).fraction == pytest.approx(2 / 3)


def test_samples_from_before_the_window_are_not_counted() -> None:
    nvml, clock = fake_nvml()
    nvml.add_process(0, OURS, sm_util=lambda t: 0 if t < 150 else 40)
    nvml.add_process(0, OTHER, sm_util=lambda t: 100 if t < 150 else 0)
    clock.now = 150.0  # the other process was busy for 50 s before the window, then stopped
    (observed,) = observe(nvml, clock, {OURS})
    assert share(observed).energy_j == pytest.approx(400 + 300)
    assert all(timestamp > 150e6 for _, timestamp in observed.sm_util)


def test_a_process_that_exits_during_the_window_still_held_a_context() -> None:
    nvml, clock = fake_nvml()
    nvml.add_process(0, OURS, sm_util=50, end=clock.now + 3.5)
    nvml.add_process(0, OTHER, sm_util=50)
    (observed,) = observe(nvml, clock, {OURS})
    assert observed.ours == {OURS}
    assert 0.3 < share(observed).fraction < 0.5  # its samples stop when it exits


def test_unknown_idle_power_is_the_lowest_power_read_and_says_so() -> None:
    powers = [150_000, 90_000, 70_000, 120_000]  # mW, one per read; the last repeats
    nvml, clock = fake_nvml(power_mw=powers)
    nvml.add_process(0, OURS, sm_util=50)
    nvml.add_process(0, OTHER, sm_util=50)
    (observed,) = observe(nvml, clock, {OURS})
    result = share(observed, idle_w=None)
    assert observed.power_w[:4] == [150.0, 90.0, 70.0, 120.0]
    assert result.energy_j == pytest.approx(0.5 * 300 + 0.5 * 700)
    assert "idle 70 W (idle power not known: the lowest power read" in result.how
    assert "notebook-carbon calibrate" in result.how


def test_unknown_idle_power_and_no_power_reading_counts_everything_as_active() -> None:
    nvml, clock = fake_nvml()
    nvml.add_process(0, OURS, sm_util=25)
    nvml.add_process(0, OTHER, sm_util=75)
    nvml.fail_call(0, "nvmlDeviceGetPowerUsage", "NVMLError_NotSupported")
    (observed,) = observe(nvml, clock, {OURS})
    result = share(observed, idle_w=None)
    assert result.energy_j == pytest.approx(250.0)
    assert "idle power unknown and no power read" in result.how


def test_idle_power_above_the_devices_draw_leaves_no_active_energy() -> None:
    nvml, clock = fake_nvml()
    nvml.add_process(0, OURS, sm_util=100)
    nvml.add_process(0, OTHER)
    (observed,) = observe(nvml, clock, {OURS})
    assert share(observed, idle_w=500.0).fraction == pytest.approx(0.5)


def test_pids_of_another_pid_namespace_charge_the_whole_device() -> None:
    nvml, clock = fake_nvml()
    nvml.add_process(0, 48_213, sm_util=60)  # the host's PID of this container's kernel
    nvml.add_process(0, 51_007, sm_util=10)
    (observed,) = observe(nvml, clock, {7, 42}, pid_exists=lambda pid: pid in {1, 7, 42})
    result = share(observed)
    assert (result.fraction, result.energy_j) == (1.0, E_J)
    assert result.fallback is not None and "PID namespace" in result.fallback and "48213" in result.fallback


@pytest.mark.parametrize("error", ["NVMLError_NoPermission", "NVMLError_NotSupported"])
def test_processes_that_cannot_be_listed_charge_the_whole_device(error: str) -> None:
    nvml, clock = fake_nvml()
    nvml.add_process(0, OURS)
    nvml.fail_call(0, "nvmlDeviceGetComputeRunningProcesses_v3", error)
    (observed,) = observe(nvml, clock, {OURS})
    result = share(observed)
    assert result.fraction == 1.0 and result.fallback is not None and "never listed" in result.fallback


def test_an_older_driver_without_the_v3_call_is_read_with_v2() -> None:
    nvml, clock = fake_nvml()
    nvml.add_process(0, OURS, sm_util=30)
    nvml.add_process(0, OTHER, sm_util=70)
    nvml.fail_call(0, "nvmlDeviceGetComputeRunningProcesses_v3", "NVMLError_FunctionNotFound")
    (observed,) = observe(nvml, clock, {OURS})
    assert share(observed).energy_j == pytest.approx(420.0)


def test_pynvml_raising_success_for_no_sample_counts_as_no_sample() -> None:
    nvml, clock = fake_nvml()
    nvml.add_process(0, OURS)
    nvml.add_process(0, OTHER)

    def success(handle, timestamp):  # pynvml raises NVMLError(NVML_SUCCESS) when the count is 0
        raise pynvml.NVMLError(pynvml.NVML_SUCCESS)

    nvml.nvmlDeviceGetProcessUtilization = success
    (observed,) = observe(nvml, clock, {OURS})
    assert share(observed).fallback is None and "no process used the SMs" in share(observed).how


def test_unreadable_tree_pids_charge_the_whole_device() -> None:
    nvml, clock = fake_nvml()
    nvml.add_process(0, OURS)

    def broken() -> set[int]:
        raise PermissionError("no /proc")

    observer = GpuShareObserver(nvml, nvml.nvmlDeviceGetHandleByIndex(0), broken)
    observed = observer.end(observer.begin(clock.now), clock.now + 1)
    assert share(observed).fraction == 1.0 and "PIDs could not be read" in share(observed).fallback


def test_a_lost_device_never_raises_and_charges_the_whole_device() -> None:
    nvml, clock = fake_nvml()
    nvml.add_process(0, OURS, sm_util=50)
    nvml.fail(0, "NVMLError_GpuIsLost", every_call=True)
    (observed,) = observe(nvml, clock, {OURS})
    result = share(observed)
    assert result.fraction == 1.0 and "GPU is lost" in result.fallback
    assert set(observed.problems) >= {"processes", "utilisation", "power", "compute mode"}


def test_no_energy_charges_no_energy() -> None:
    nvml, clock = fake_nvml()
    nvml.add_process(0, OURS, sm_util=50)
    (observed,) = observe(nvml, clock, {OURS})
    assert share(observed, energy_j=0.0).energy_j == 0.0


# -- conservation: the runs on one device never add up to more than it -----------------------------------


@settings(max_examples=60, deadline=None)
@given(
    sm=st.lists(st.integers(0, 100), min_size=3, max_size=3),
    idle_w=st.one_of(st.none(), st.floats(0, 400)),
    energy_j=st.floats(0, 10_000),
    split=st.sampled_from([((100,), (200,), (300,)), ((100, 200), (300,)), ((100,), (200, 300))]),
    no_samples=st.booleans(),
)
def test_shares_of_one_device_never_add_up_to_more_than_one(sm, idle_w, energy_j, split, no_samples) -> None:
    nvml, clock = fake_nvml(power_mw=lambda t: 60_000 + 30_000 * (int(t) % 3))
    for pid, util in zip((100, 200, 300), sm):
        nvml.add_process(0, pid, sm_util=util)
    if no_samples:
        nvml.fail_call(0, "nvmlDeviceGetProcessUtilization", "NVMLError_NotSupported")
    observations = observe(nvml, clock, *(set(tree) for tree in split), seconds=5)
    results = [gpu_share(observed, energy_j, 5.0, idle_w) for observed in observations]
    assert sum(result.fraction for result in results) <= 1.0 + 1e-9
    assert sum(result.energy_j for result in results) <= energy_j * (1 + 1e-9)
    assert all(0.0 <= result.fraction <= 1.0 for result in results)


def test_mig_shares_of_one_device_never_add_up_to_more_than_one() -> None:
    nvml, clock = fake_nvml(mig_uuids=("MIG-a", "MIG-b"), multiprocessors=132, mig_multiprocessors=(66, 66))
    pids = (100, 200, 300, 400)
    for pid, slot in zip(pids, (0, 0, 1, 1)):
        nvml.add_process(0, pid, mig_slot=slot)
    for trees in ([{100}, {200}, {300}, {400}], [{100, 300}, {200, 400}]):
        results = [share(observed) for observed in observe(nvml, clock, *trees)]
        assert sum(result.fraction for result in results) == pytest.approx(1.0)


# -- the fake ------------------------------------------------------------------------------------------


def test_fake_utilisation_samples_are_newer_than_the_timestamp_given_and_not_found_when_none() -> None:
    nvml, clock = fake_nvml(sample_period_s=0.5)
    handle = nvml.nvmlDeviceGetHandleByIndex(0)
    nvml.add_process(0, OURS, sm_util=[10, 20, 30], mem_util=5)
    nvml.add_process(0, OTHER)  # never busy: never sampled
    with pytest.raises(pynvml.NVMLError_NotFound):
        nvml.nvmlDeviceGetProcessUtilization(handle, 0)
    clock.now += 1.5
    samples = nvml.nvmlDeviceGetProcessUtilization(handle, 0)
    assert [(s.pid, s.timeStamp, s.smUtil, s.memUtil) for s in samples] == [
        (OURS, 100_500_000, 10, 5), (OURS, 101_000_000, 20, 5), (OURS, 101_500_000, 30, 5)
    ]  # fmt: skip
    assert [s.smUtil for s in nvml.nvmlDeviceGetProcessUtilization(handle, 101_000_000)] == [30]
    with pytest.raises(pynvml.NVMLError_NotFound):
        nvml.nvmlDeviceGetProcessUtilization(handle, 101_500_000)


def test_fake_lists_compute_processes_per_mig_instance() -> None:
    nvml, _ = fake_nvml(mig_uuids=("MIG-a", "MIG-b"))
    nvml.add_process(0, OURS, mig_slot=1, used_memory_bytes=2**30)
    parent = nvml.nvmlDeviceGetHandleByIndex(0)
    instances = [nvml.nvmlDeviceGetMigDeviceHandleByIndex(parent, slot) for slot in (0, 1)]
    assert nvml.nvmlDeviceGetMigMode(parent) == [pynvml.NVML_DEVICE_MIG_ENABLE] * 2
    assert [bool(nvml.nvmlDeviceIsMigDeviceHandle(h)) for h in (parent, *instances)] == [False, True, True]
    assert [len(nvml.nvmlDeviceGetComputeRunningProcesses(h)) for h in (parent, *instances)] == [1, 0, 1]
    (info,) = nvml.nvmlDeviceGetComputeRunningProcesses_v3(instances[1])
    assert (info.pid, info.usedGpuMemory, info.gpuInstanceId, info.computeInstanceId) == (OURS, 2**30, 2, 0)
    assert nvml.nvmlDeviceGetGpuInstanceId(instances[1]) == 2
    assert nvml.nvmlDeviceGetAttributes(instances[0]).multiprocessorCount == 66
    with pytest.raises(pynvml.NVMLError_NotSupported):
        nvml.nvmlDeviceGetProcessUtilization(parent, 0)


def test_fake_devices_without_processes_keep_their_defaults() -> None:
    nvml, _ = fake_nvml()
    handle = nvml.nvmlDeviceGetHandleByIndex(0)
    assert nvml.nvmlDeviceGetComputeRunningProcesses(handle) == []
    assert nvml.nvmlDeviceGetComputeMode(handle) == pynvml.NVML_COMPUTEMODE_DEFAULT
    assert nvml.nvmlDeviceGetMigMode(handle) == [pynvml.NVML_DEVICE_MIG_DISABLE] * 2
    info = nvml.add_process(0, OURS)
    listed = nvml.nvmlDeviceGetComputeRunningProcesses(handle)[0]
    assert (listed.pid, listed.gpuInstanceId) == (info.pid, pynvml.NVML_VALUE_NOT_AVAILABLE_uint.value)

"""A run's share of each device (``attribution = "share"``): the rules on scripted readings, and a
window that charges the share and records the device's energy beside it."""

from __future__ import annotations

import time

import pytest

from notebook_carbon.measure import Window
from notebook_carbon.meters.shares import CpuTimeShare, MemoryShare
from notebook_carbon.testing import FakeMeter


class Readings:
    """Cumulative readings that a test moves forward: ``reader()`` is what a rule calls."""

    def __init__(self, value: float = 0.0) -> None:
        self.value = value

    def reader(self) -> float:
        return self.value


def cpu_rule(tree: Readings, machine: Readings) -> CpuTimeShare:
    return CpuTimeShare(lambda: tree.reader, machine.reader)


def test_cpu_share_is_the_trees_cpu_time_over_the_machines_busy_time() -> None:
    tree, machine = Readings(100.0), Readings(1000.0)
    rule = cpu_rule(tree, machine)
    state = rule.begin(0.0)
    tree.value, machine.value = 101.5, 1006.0  # 1.5 s of the machine's 6 s
    share = rule.share(state, 2.0)
    assert share.fraction == pytest.approx(0.25)
    assert share.how == "this process tree's CPU time, 1.50 s of the machine's busy 6.00 s"
    assert share.fallback is None


def test_cpu_share_of_a_window_without_machine_work_is_nothing_and_never_above_one() -> None:
    tree, machine = Readings(5.0), Readings(50.0)
    rule = cpu_rule(tree, machine)
    state = rule.begin(0.0)
    assert rule.share(state, 0.001).fraction == 0.0  # under one clock tick: nothing to divide
    assert "under one 10 ms clock tick" in rule.share(state, 0.001).how
    tree.value = 5.02  # the tree's ticks counted before the machine's: never more than the whole
    machine.value = 50.01
    assert rule.share(state, 0.05).fraction == 1.0


def test_memory_share_is_the_trees_resident_memory_over_used_memory_over_the_reads() -> None:
    gb = 2**30
    tree, used = Readings(1 * gb), Readings(8 * gb)
    rule = MemoryShare(lambda: tree.reader, used.reader)
    state = rule.begin(0.0)  # 1 of 8
    tree.value = 3 * gb  # then 3 of 8 at a sampler read, and at the end
    rule.update(state, 1.0)
    share = rule.share(state, 2.0)
    assert share.fraction == pytest.approx((1 + 3 + 3) / 24)
    assert share.how == "this process tree's resident memory, 2.33 GB of the 8.00 GB in use"


def test_a_window_charges_the_share_and_records_the_devices_energy() -> None:
    clock = Readings(0.0)
    tree, machine = Readings(0.0), Readings(0.0)
    cpu = FakeMeter("cpu", "rapl", "package-0", 40.0)
    cpu.share_rule = cpu_rule(tree, machine)
    ram = FakeMeter("ram", "estimate-ram", "RAM 16 GB", 6.0)  # no rule: the whole device
    window = Window([cpu, ram], clock=clock.reader).start()
    clock.value, tree.value, machine.value = 2.0, 0.5, 2.0
    measured = window.stop()
    by_name = {c.component: c for c in measured.components}
    assert by_name["cpu"].machine_energy_j == pytest.approx(80.0)
    assert (by_name["cpu"].energy_j, by_name["cpu"].share) == (pytest.approx(20.0), pytest.approx(0.25))
    assert by_name["cpu"].share_how == "this process tree's CPU time, 0.50 s of the machine's busy 2.00 s"
    assert (by_name["ram"].energy_j, by_name["ram"].machine_energy_j, by_name["ram"].share) == (
        pytest.approx(12.0), None, None)
    assert measured.energy_j == pytest.approx(32.0)
    assert measured.machine_energy_j() == pytest.approx(92.0)
    assert measured.machine_energy_j("cpu") == pytest.approx(80.0)


def test_a_share_that_cannot_be_read_charges_the_whole_device_and_says_why() -> None:
    class Broken(CpuTimeShare):
        def share(self, state, now, energy_j=0.0, duration_s=0.0):
            raise OSError("no /proc")

    clock = Readings(0.0)
    cpu = FakeMeter("cpu", "rapl", "package-0", 10.0)
    cpu.share_rule = Broken(lambda: (lambda: 0.0), lambda: 0.0)
    window = Window([cpu], clock=clock.reader).start()
    clock.value = 1.0
    (component,) = window.stop().components
    assert (component.energy_j, component.machine_energy_j, component.share) == (
        pytest.approx(10.0), pytest.approx(10.0), 1.0)
    assert component.share_how == "its share could not be read (OSError: no /proc)"

    class Unstartable(CpuTimeShare):
        def begin(self, now):
            raise PermissionError("denied")

    cpu.share_rule = Unstartable(lambda: (lambda: 0.0), lambda: 0.0)
    window = Window([cpu], clock=clock.reader).start()
    clock.value = 2.0
    (component,) = window.stop().components
    assert component.share == 1.0 and "PermissionError: denied" in component.share_how


def test_sampler_reads_and_checkpoints_charge_the_share_so_far() -> None:
    clock = Readings(0.0)
    tree, machine = Readings(0.0), Readings(0.0)
    cpu = FakeMeter("cpu", "rapl", "package-0", 40.0)
    cpu.share_rule = cpu_rule(tree, machine)
    window = Window([cpu], clock=clock.reader, interval_s=3600).start()
    clock.value, tree.value, machine.value = 1.0, 0.1, 1.0
    assert window.energy_so_far_j() == {"cpu": 0.0}
    window._tick()  # a sampler read: the device drew 40 J so far, and the share is read with it
    assert window.energy_so_far_j() == {"cpu": pytest.approx(4.0)}
    assert window.latest_power_w() == {"cpu": pytest.approx(4.0)}  # the live view's power: the share's too
    tree.value, machine.value = 0.5, 2.0  # a fresher share, between two sampler reads
    window.read_now(meters=False)
    assert window.energy_so_far_j() == {"cpu": pytest.approx(10.0)}
    window.stop()


def test_a_gpu_meter_is_charged_by_its_compute_contexts() -> None:
    """Detection gives each NVML meter the GPU rule (``gpu_share``): a device another process keeps
    busy and this one never touched is charged nothing, and its energy is kept beside."""
    import os

    from notebook_carbon.meters.detect import detect_meters
    from notebook_carbon.settings import Settings
    from notebook_carbon.testing import FakeNVML

    clock = Readings(0.0)
    nvml = FakeNVML(clock=clock.reader)
    mine = nvml.add_gpu(energy_mj=lambda t: 300_000 * t, power_mw=300_000)
    theirs = nvml.add_gpu(energy_mj=lambda t: 250_000 * t, power_mw=250_000)
    nvml.add_process(mine, os.getpid(), sm_util=50)
    nvml.add_process(theirs, 1, sm_util=90)  # another process: init, never of this tree
    detection = detect_meters(Settings(powercap_root="/nonexistent"), nvml=nvml, environ={})
    gpus = [m for m in detection.meters if m.component == "gpu"]
    window = Window(gpus, clock=clock.reader).start()
    clock.value = 2.0
    first, second = window.stop().components
    assert (first.machine_energy_j, second.machine_energy_j) == (pytest.approx(600.0), pytest.approx(500.0))
    assert first.share == pytest.approx(1.0) and first.energy_j == pytest.approx(600.0)
    assert second.share == 0.0 and second.energy_j == 0.0, second.share_how


def test_threads_that_come_and_go_never_make_a_share_unreadable() -> None:
    """The process tree is walked through each thread's list of children: a thread that exits
    between the listing and the read is skipped, never taken for the process gone (which charged
    the run every device whole)."""
    import threading

    from notebook_carbon.meters import usage

    stop = threading.Event()

    def churn() -> None:
        while not stop.is_set():
            threads = [threading.Thread(target=lambda: None) for _ in range(20)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()

    churning = threading.Thread(target=churn)
    churning.start()
    tree = usage.process_tree_cpu_s()
    pids = usage.process_tree_pids()
    try:
        for _ in range(3000):
            usage.FRESH_S = 0.0  # every read a fresh walk
            tree()
            pids()
    finally:
        usage.FRESH_S = 0.001
        stop.set()
        churning.join()


def test_a_forked_child_never_inherits_a_reading_in_progress() -> None:
    """A fork while the sampler thread reads the machine (a lock held) must leave the child able to
    read: the locks are made again in the child."""
    import os
    import threading

    from notebook_carbon.meters import usage

    reading = usage.machine_used_bytes
    real = reading._read
    entered = threading.Event()

    def slow():
        entered.set()
        time.sleep(0.5)
        return real()

    reading._read, reading._at = slow, -1.0
    sampler = threading.Thread(target=reading)
    sampler.start()
    entered.wait(5)
    try:
        pid = os.fork()
        if pid == 0:  # the child: it must get the lock at once
            reading._read = real
            os._exit(0 if reading._lock.acquire(timeout=3) else 1)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
    finally:
        sampler.join()
        reading._read, reading._at = real, -1.0


def test_a_checkpoint_keeps_what_the_devices_drew_beside_the_share(tmp_path) -> None:
    """A killed run keeps its last checkpoint: with a share charged, it must also keep what the
    devices drew (NULL would read as a run charged the whole machine)."""
    from notebook_carbon.meters.detect import Detection
    from notebook_carbon.registry import Registry
    from notebook_carbon.session import Session
    from notebook_carbon.settings import Settings

    tree, machine = Readings(0.0), Readings(0.0)
    cpu = FakeMeter("cpu", "rapl", "package-0", 40.0)
    cpu.share_rule = cpu_rule(tree, machine)
    settings = Settings(registry=str(tmp_path / "r.sqlite"), region="FR")
    session = Session(settings, detection=Detection(meters=(cpu,), notes=()))
    run = session.begin(name="killed").start()
    time.sleep(0.3)
    tree.value, machine.value = 0.5, 2.0
    run.window._tick()
    session.writer().checkpoint_run(run.uid, run._checkpoint_row(run.window, 0.3))  # as the sampler's hook does
    assert session.writer().flush(timeout=30)
    with Registry.open(settings.registry_location()) as reg:
        stored = reg.get_run(run.uid)
    assert stored["status"] == "running"
    assert stored["machine_energy_j"] == pytest.approx(stored["energy_j"] / 0.25)
    run.finish("ok")

"""``notebook-carbon calibrate``: the machine's idle power per device, measured while it is idle,
kept in the registry; refused when the machine is busy (issue 13)."""

from __future__ import annotations

import time

import pytest

from notebook_carbon import cli
from notebook_carbon.errors import MeterError, RegistryError
from notebook_carbon.meters.idle import measure_idle
from notebook_carbon.registry import Registry
from notebook_carbon.registry.calibration import latest_calibrations, record_calibration
from notebook_carbon.settings import Settings
from notebook_carbon.testing import FakeNVML, FakePowercap


class Busy:
    """The machine's busy CPU seconds, moving ``per_s`` CPU seconds a second."""

    def __init__(self, per_s: float) -> None:
        self.per_s, self.t0 = per_s, time.monotonic()

    def __call__(self) -> float:
        return 1000.0 + self.per_s * (time.monotonic() - self.t0)


@pytest.fixture
def machine(tmp_path):
    fake = FakePowercap(tmp_path / "powercap")
    package = fake.add_package(0, energy_uj=1_000_000)
    dram = fake.add_dram(0, energy_uj=2_000_000)
    nvml = FakeNVML()
    nvml.add_gpu(energy_mj=lambda t: 60_000 * t, power_mw=60_000)  # 60 W, idle

    drawn = {package: 1_000_000, dram: 2_000_000}

    def sleep(seconds: float) -> None:  # the devices draw 25 W and 5 W while time passes
        time.sleep(seconds)
        for domain, watts in ((package, 25), (dram, 5)):
            drawn[domain] += int(watts * 1e6 * seconds)
            fake.set_energy(domain, drawn[domain])

    return Settings(powercap_root=str(fake.root)), nvml, sleep


def test_an_idle_machine_is_measured_per_device_and_kept(machine, tmp_path):
    settings, nvml, sleep = machine
    found = measure_idle(settings, 1.0, host="lab-1", nvml=nvml, sleep=sleep, busy_cpu_s=Busy(0.01))
    by_device = {row["component"]: row for row in found.rows}
    assert by_device["gpu"]["idle_w"] == pytest.approx(60.0, rel=0.05)
    assert by_device["cpu"]["idle_w"] == pytest.approx(25.0, rel=0.15)  # the counter moved once, at the end
    assert by_device["ram"]["idle_w"] == pytest.approx(5.0, rel=0.15)
    assert {row["method"] for row in found.rows} == {"nvml-counter", "rapl"}
    assert found.busy < 0.1
    with Registry.open(str(tmp_path / "r.sqlite")) as reg:
        assert record_calibration(reg, found.rows) == 3
        later = [{**row, "idle_w": 70.0, "measured_at": row["measured_at"] + 60} for row in found.rows if row["component"] == "gpu"]
        record_calibration(reg, later)
        kept = {row["component"]: row for row in latest_calibrations(reg, "lab-1")}
        assert kept["gpu"]["idle_w"] == 70.0 and kept["cpu"]["idle_w"] == by_device["cpu"]["idle_w"]
        assert latest_calibrations(reg, "elsewhere") == []
        with pytest.raises(RegistryError, match="idle_w must be a number from 0 to 100000"):
            record_calibration(reg, [{**found.rows[0], "idle_w": 1e9}])


def test_a_busy_machine_is_refused_and_nothing_is_measured(machine):
    settings, nvml, sleep = machine
    with pytest.raises(MeterError, match=r"the machine is not idle: its CPUs were \d+ % busy before measuring"):
        measure_idle(settings, 1.0, host="lab-1", nvml=nvml, sleep=sleep, busy_cpu_s=Busy(64.0))


def test_a_gpu_someone_uses_is_refused(machine):
    settings, nvml, sleep = machine
    nvml.add_process(0, 4242, sm_util=80)
    with pytest.raises(MeterError, match="GPU 0: .* is in use: process 4242 holds? a compute context"):
        measure_idle(settings, 1.0, host="lab-1", nvml=nvml, sleep=sleep, busy_cpu_s=Busy(0.0))


def test_estimated_components_are_left_out_and_said_so(tmp_path):
    found = measure_idle(Settings(powercap_root=str(tmp_path / "none"), gpu=False), 1.0, host="laptop",
                         busy_cpu_s=Busy(0.0))  # fmt: skip
    assert found.rows == ()
    assert [note.split()[0] for note in found.notes] == ["cpu", "ram"]
    assert all("has no idle power to measure (left out)" in note for note in found.notes)


def test_the_command_refuses_absurd_durations(tmp_path, capsys):
    assert cli.main(["calibrate", "--seconds", "0.1", "--registry", str(tmp_path / "r.sqlite")]) == 1
    assert "calibrate for 1 to 3600 seconds" in capsys.readouterr().err


def test_a_session_gives_its_gpu_rules_the_idle_power_measured_on_this_host(tmp_path):
    from notebook_carbon.meters.detect import detect_meters, host_info
    from notebook_carbon.session import Session

    location = str(tmp_path / "r.sqlite")
    nvml = FakeNVML()
    nvml.add_gpu(energy_mj=0, power_mw=70_000)
    nvml.add_gpu(energy_mj=0, power_mw=70_000)
    detection = detect_meters(Settings(powercap_root=str(tmp_path / "none")), nvml=nvml, environ={})
    first, second = (m for m in detection.meters if m.component == "gpu")
    with Registry.open(location) as reg:
        record_calibration(reg, [
            {"host": host_info()["hostname"], "component": "gpu", "device": first.device, "method": "nvml-counter",
             "idle_w": 55.0, "seconds": 30.0, "measured_at": time.time(), "busy": 0.01},
            {"host": "another-host", "component": "gpu", "device": second.device, "method": "nvml-counter",
             "idle_w": 99.0, "seconds": 30.0, "measured_at": time.time(), "busy": 0.01},
        ])  # fmt: skip
    session = Session(Settings(registry=location, region="FR"), detection=detection)
    assert (first.share_rule.idle_w, second.share_rule.idle_w) == (None, None)
    session.detection()
    assert session.writer().flush(timeout=30)
    assert (first.share_rule.idle_w, second.share_rule.idle_w) == (55.0, None)  # another host's is not this one's


def test_the_command_on_this_machine_keeps_what_it_measured_or_says_why_not(tmp_path, capsys, monkeypatch):
    """On this machine's own meters: stored and printed when the machine is idle; refused with
    nothing stored when it is not (a shared test machine may be either)."""
    from notebook_carbon.meters.detect import host_info

    monkeypatch.setenv("NOTEBOOK_CARBON_GPU", "off")
    location = str(tmp_path / "r.sqlite")
    code = cli.main(["calibrate", "--seconds", "1", "--registry", location])
    shown = capsys.readouterr()
    with Registry.open(location) as reg:
        kept = latest_calibrations(reg, host_info()["hostname"])
    if code == 0:
        assert f"idle power of {len(kept)} device" in shown.out
        for row in kept:
            assert row["device"] in shown.out and row["method"] not in ("estimate-tdp", "estimate-ram")
    else:
        assert code == 1 and "the machine is not idle" in shown.err and "nothing was recorded" in shown.err
        assert kept == []

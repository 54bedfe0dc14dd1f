from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
import time

import pytest

from notebook_carbon.errors import MeterError
from notebook_carbon.meters import detect_meters, host_info
from notebook_carbon.meters.detect import Detection
from notebook_carbon.settings import Settings
from notebook_carbon.testing import FakeMeter, FakeNVML, FakePowercap, fake_detection

XEON = "Intel(R) Xeon(R) Gold 6248 CPU @ 2.50GHz"
NO_DRIVER = "no GPU component: NVML not available (libnvidia-ml.so.1 not found: no NVIDIA driver)"


@pytest.fixture
def cpuinfo(tmp_path):
    path = tmp_path / "cpuinfo"
    path.write_text(f"processor\t: 0\nmodel name\t: {XEON}\nphysical id\t: 0\n")
    return path


def powercap(tmp_path, *, dram: bool = True, readable: bool = True) -> FakePowercap:
    fake = FakePowercap(tmp_path / "powercap")
    fake.add_package(0)
    if dram:
        fake.add_dram(0)
    if not readable:
        fake.make_unreadable("intel-rapl:0")
        if dram:
            fake.make_unreadable("intel-rapl:0:0")
    return fake


def gpus(*, counter: bool = True) -> FakeNVML:
    nvml = FakeNVML()
    nvml.add_gpu(energy_mj=0 if counter else None)
    return nvml


def methods(detection: Detection) -> list[tuple[str, str]]:
    return [(m.component, m.method) for m in detection.meters]


def test_everything_measured(tmp_path, cpuinfo) -> None:
    fake = powercap(tmp_path)
    detection = detect_meters(
        Settings(powercap_root=str(fake.root)), nvml=gpus(), cpuinfo_path=cpuinfo, environ={}
    )
    assert methods(detection) == [("gpu", "nvml-counter"), ("cpu", "rapl"), ("ram", "rapl")]
    assert detection.notes == ()
    assert detection.for_component("cpu")[0].model == XEON


def test_nothing_readable_falls_back_to_estimates_with_reasons(tmp_path, cpuinfo) -> None:
    fake = powercap(tmp_path, readable=False)
    detection = detect_meters(
        Settings(powercap_root=str(fake.root)), nvml=FakeNVML(driver=False), cpuinfo_path=cpuinfo, environ={}
    )
    assert methods(detection) == [("cpu", "estimate-tdp"), ("ram", "estimate-ram")]
    gpu_note, cpu_note, ram_note = detection.notes
    assert gpu_note == NO_DRIVER
    cpu, ram = detection.meters
    assert cpu_note == f"cpu: {cpu.reason}"
    assert cpu.reason.startswith("RAPL present but energy_uj not readable without root (Linux >= 5.10")
    assert cpu.reason.endswith(
        "CPU energy estimated from TDP x machine utilisation; "
        "TDP 150 W for Intel Xeon Gold 6248 (codecarbon CPU table)"
    )
    assert ram_note == f"ram: {ram.reason}"
    assert ram.reason.startswith("RAPL present but energy_uj not readable without root")
    assert ram.reason.endswith(
        "RAM energy estimated as 0.375 W/GB (3 W per 8 GB, Crucial) x installed memory"
    )


def test_no_powercap_and_gpu_disabled(tmp_path, cpuinfo) -> None:
    nvml = gpus()
    settings = Settings(powercap_root=str(tmp_path / "absent"), gpu=False, cpu_tdp_w=95.0, ram_w_per_gb=0.25)
    detection = detect_meters(settings, nvml=nvml, cpuinfo_path=cpuinfo, environ={})
    assert methods(detection) == [("cpu", "estimate-tdp"), ("ram", "estimate-ram")]
    assert detection.notes[0] == "no GPU component: GPU metering disabled by settings"
    assert nvml.init_count == 0
    cpu, ram = detection.meters
    assert cpu.tdp_w == 95.0 and ram.w_per_gb == 0.25
    assert cpu.reason.startswith(f"no powercap interface at {tmp_path / 'absent'}")


def test_rapl_without_dram_estimates_ram_only(tmp_path, cpuinfo) -> None:
    fake = powercap(tmp_path, dram=False)
    detection = detect_meters(
        Settings(powercap_root=str(fake.root)), nvml=gpus(counter=False), cpuinfo_path=cpuinfo, environ={}
    )
    assert methods(detection) == [("gpu", "nvml-power"), ("cpu", "rapl"), ("ram", "estimate-ram")]
    gpu_note, ram_note = detection.notes
    assert gpu_note.startswith(
        "GPU 0: NVIDIA H100 80GB HBM3: GPU energy counter not available (Not Supported"
    )
    assert ram_note.startswith(
        "ram: RAPL has no dram domain on this machine: RAM energy estimated as 0.375 W/GB"
    )


def test_invisible_gpus_are_noted(tmp_path, cpuinfo) -> None:
    fake = powercap(tmp_path)
    detection = detect_meters(
        Settings(powercap_root=str(fake.root)),
        nvml=gpus(),
        cpuinfo_path=cpuinfo,
        environ={"CUDA_VISIBLE_DEVICES": ""},
    )
    assert methods(detection) == [("cpu", "rapl"), ("ram", "rapl")]
    assert detection.notes == (
        "CUDA_VISIBLE_DEVICES is empty: no GPU is visible to this process",
        "no GPU component: no GPU visible to this process (CUDA_VISIBLE_DEVICES)",
    )


def test_share_rules_follow_the_attribution(tmp_path, cpuinfo) -> None:
    """``share`` (the default; ``process``, its older name): RAPL's packages and DRAM, as the
    estimates, carry the rule of a run's share of them; ``machine``: none, and a note says so."""
    from notebook_carbon.meters.shares import CpuTimeShare, MemoryShare

    fake = powercap(tmp_path)
    for attribution in ("share", "process"):
        detection = detect_meters(Settings(powercap_root=str(fake.root), attribution=attribution, gpu=False),
                                  cpuinfo_path=cpuinfo)  # fmt: skip
        cpu, ram = detection.meters
        assert (cpu.method, type(cpu.share_rule), ram.method, type(ram.share_rule)) == (
            "rapl", CpuTimeShare, "rapl", MemoryShare)
    detection = detect_meters(Settings(powercap_root=str(fake.root), attribution="machine", gpu=False),
                              cpuinfo_path=cpuinfo)  # fmt: skip
    assert [m.share_rule for m in detection.meters] == [None, None]
    assert detection.notes[-1].startswith("attribution=machine: each run is charged everything")


def test_detection_is_frozen_and_closes_nvml_once(tmp_path, cpuinfo) -> None:
    nvml = FakeNVML()
    nvml.add_gpu()
    nvml.add_gpu()
    detection = detect_meters(
        Settings(powercap_root=str(tmp_path / "absent")), nvml=nvml, cpuinfo_path=cpuinfo, environ={}
    )
    with pytest.raises(dataclasses.FrozenInstanceError):
        detection.notes = ()  # type: ignore[misc]
    detection.close()
    detection.close()
    assert (nvml.init_count, nvml.shutdown_count) == (1, 1)


def test_begin_end_of_all_estimate_meters_is_cheap(tmp_path, cpuinfo) -> None:
    detection = detect_meters(
        Settings(powercap_root=str(tmp_path / "absent"), gpu=False), cpuinfo_path=cpuinfo
    )
    rounds = 200
    start = time.perf_counter()
    for _ in range(rounds):
        states = [(m, m.begin(0.0)) for m in detection.meters]
        for meter, state in states:
            meter.end(state, 1.0)
    per_window_s = (time.perf_counter() - start) / rounds
    assert per_window_s < 0.005  # about 0.05 ms measured; generous for loaded CI machines


def test_host_info() -> None:
    info = host_info()
    assert set(info) == {"hostname", "cpu_model", "cpu_count", "ram_total_bytes"}
    assert info["cpu_count"] == os.cpu_count() and info["ram_total_bytes"] > 0
    info["hostname"] = "changed"
    assert host_info()["hostname"] != "changed"


def test_import_touches_no_hardware_library() -> None:
    code = (
        "import sys, notebook_carbon.meters as m\n"
        "assert 'pynvml' not in sys.modules and 'psutil' not in sys.modules, sys.modules.keys()\n"
        "assert m.estimate.tdp_table.cache_info().currsize == 0\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=os.path.dirname(os.path.dirname(__file__)))


def test_fake_detection_and_fake_meter() -> None:
    detection = fake_detection(gpu_power_w=(300.0, 200.0), cpu_method="estimate-tdp", notes=("n",))
    assert methods(detection) == [
        ("gpu", "nvml-counter"), ("gpu", "nvml-counter"), ("cpu", "estimate-tdp"), ("ram", "rapl")
    ]
    assert detection.notes == ("n",)
    assert detection.meters[2].reason == "fake: CPU energy estimated"
    assert [m.end(m.begin(1.0), 3.0) for m in detection.meters] == [600.0, 400.0, 130.0, 12.0]

    meter = FakeMeter("cpu", "rapl", "package-0", 10.0)
    state = meter.begin(0.0)
    assert meter.update(state, 1.0) == 10.0
    meter.fail("sensor gone")
    with pytest.raises(MeterError, match="sensor gone"):
        meter.end(state, 2.0)
    with pytest.raises(ValueError):
        FakeMeter("disk", "rapl", "x", 1.0)

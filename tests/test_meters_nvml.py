from __future__ import annotations

import pynvml
import pytest

from notebook_carbon.errors import MeterError
from notebook_carbon.meters.nvml import parse_cuda_visible_devices, probe_nvml
from notebook_carbon.testing import FakeNVML

UUIDS = (
    "GPU-aaaa1111-0000-0000-0000-000000000000",
    "GPU-bbbb2222-0000-0000-0000-000000000000",
    "GPU-bbbb3333-0000-0000-0000-000000000000",
    "GPU-cccc4444-0000-0000-0000-000000000000",
)
MIG_PARENTS = {"MIG-1234abcd-0000-0000-0000-000000000000": 3}


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.mark.parametrize(
    ("spec", "indices"),
    [
        (None, (0, 1, 2, 3)),
        ("", ()),
        ("  ", ()),
        ("-1", ()),
        ("1,3", (1, 3)),
        ("3,1", (3, 1)),
        (" 2 , 0 ", (2, 0)),
        ("1gpu2", (1,)),  # read like strtoul: leading digits
        ("1,7,2", (1,)),  # 7 does not exist: enumeration stops there
        ("0,abc,1", (0,)),
        ("0,-1,1", (0,)),
        ("0,0", ()),  # a repeated device hides every device
        ("GPU-aaaa", (0,)),
        ("GPU-bbbb3,GPU-aaaa1111", (2, 0)),
        ("GPU-bbbb,1", ()),  # ambiguous prefix is invalid, and it is the first entry
        ("1,GPU-bbbb,0", (1,)),
        ("2,GPU-aaaa", (2, 0)),
        ("GPU-dead", ()),
        (f"MIG-{UUIDS[1]}/1/0", (1,)),  # pre-R470 MIG form embeds the parent UUID
        ("MIG-1234abcd", (3,)),
        ("MIG-1234abcd,MIG-9999", (3,)),
    ],
)
def test_parse_cuda_visible_devices(spec: str | None, indices: tuple[int, ...]) -> None:
    assert parse_cuda_visible_devices(spec, 4, UUIDS, MIG_PARENTS).indices == indices


@pytest.mark.parametrize(
    ("spec", "note"),
    [
        ("", "CUDA_VISIBLE_DEVICES is empty: no GPU is visible to this process"),
        ("-1", "CUDA_VISIBLE_DEVICES=-1: no GPU is visible to this process"),
        ("0,abc,1", "CUDA_VISIBLE_DEVICES entry 'abc' matches no device; as in CUDA, it and the entries "
         "after it are ignored"),
        ("0,0", "CUDA_VISIBLE_DEVICES names device '0' twice; CUDA then shows no device"),
    ],
)
def test_parse_cuda_visible_devices_notes(spec: str, note: str) -> None:
    assert parse_cuda_visible_devices(spec, 4, UUIDS).notes == (note,)


def test_mig_entry_notes_whole_parent_gpu() -> None:
    visible = parse_cuda_visible_devices("MIG-1234abcd", 4, UUIDS, MIG_PARENTS)
    assert len(visible.notes) == 1
    assert "metering its parent GPU 3 as a whole" in visible.notes[0]


def test_counter_path_gives_exact_joules() -> None:
    clock = Clock()
    nvml = FakeNVML(clock=clock)
    nvml.add_gpu(energy_mj=lambda t: 5_000_000 + 250_000 * t)  # 250 W since 5 kJ ago
    probe = probe_nvml(nvml=nvml, environ={})
    (meter,) = probe.meters
    assert probe.reason is None and probe.notes == ()
    assert (meter.component, meter.method) == ("gpu", "nvml-counter")
    assert meter.device == "GPU 0: NVIDIA H100 80GB HBM3"
    assert meter.model == "NVIDIA H100 80GB HBM3"
    assert meter.reason is None

    clock.now = 10.0
    state = meter.begin(10.0)
    clock.now = 12.0
    assert meter.update(state, 12.0) == pytest.approx(250.0)
    clock.now = 14.5
    assert meter.end(state, 14.5) == pytest.approx(1125.0)  # 250 W x 4.5 s


def test_power_path_integrates_with_the_trapezoid_rule() -> None:
    clock = Clock()
    samples_mw = {0.0: 100_000, 1.0: 200_000, 3.0: 300_000, 4.0: 100_000}
    nvml = FakeNVML(clock=clock)
    nvml.add_gpu("Tesla P100-PCIE-16GB", energy_mj=None, power_mw=lambda t: samples_mw[t])
    (meter,) = probe_nvml(nvml=nvml, environ={}).meters
    assert meter.method == "nvml-power"
    assert meter.device == "GPU 0: Tesla P100-PCIE-16GB"
    assert "energy counter not available (Not Supported" in meter.reason

    state = meter.begin(0.0)
    clock.now = 1.0
    assert meter.update(state, 1.0) == pytest.approx(150.0)
    clock.now = 3.0
    assert meter.update(state, 3.0) == pytest.approx(250.0)
    clock.now = 4.0
    # by hand: (100+200)/2 x 1 + (200+300)/2 x 2 + (300+100)/2 x 1 = 150 + 500 + 200
    assert meter.end(state, 4.0) == pytest.approx(850.0)


def test_power_path_from_a_sequence_of_samples() -> None:
    nvml = FakeNVML()
    # the probe reads one sample to check the sensor; then begin, update, end
    nvml.add_gpu(energy_mj=None, power_mw=[0, 50_000, 70_000, 30_000])
    (meter,) = probe_nvml(nvml=nvml, environ={}).meters
    state = meter.begin(0.0)
    meter.update(state, 2.0)
    assert meter.end(state, 3.0) == pytest.approx((50 + 70) / 2 * 2 + (70 + 30) / 2 * 1)


def test_one_meter_per_visible_device_with_its_index() -> None:
    nvml = FakeNVML()
    for name in ("NVIDIA A100-SXM4-40GB", "NVIDIA A100-SXM4-40GB", "Tesla V100-SXM2-16GB"):
        nvml.add_gpu(name)
    probe = probe_nvml(nvml=nvml, environ={"CUDA_VISIBLE_DEVICES": "2,0"})
    assert [m.device for m in probe.meters] == ["GPU 2: Tesla V100-SXM2-16GB", "GPU 0: NVIDIA A100-SXM4-40GB"]
    assert any("CUDA_DEVICE_ORDER=PCI_BUS_ID" in note for note in probe.notes)
    environ = {"CUDA_VISIBLE_DEVICES": "2,0", "CUDA_DEVICE_ORDER": "PCI_BUS_ID"}
    ordered = probe_nvml(nvml=nvml, environ=environ)
    assert ordered.notes == ()


def test_uuid_and_mig_entries_through_the_fake() -> None:
    nvml = FakeNVML()
    nvml.add_gpu(uuid=UUIDS[0])
    nvml.add_gpu(uuid=UUIDS[1], mig_uuids=("MIG-aaaa0001-0000", "MIG-aaaa0002-0000"))
    by_uuid = probe_nvml(nvml=nvml, environ={"CUDA_VISIBLE_DEVICES": "GPU-bbbb"})
    assert [m.index for m in by_uuid.meters] == [1]
    by_mig = probe_nvml(nvml=nvml, environ={"CUDA_VISIBLE_DEVICES": "MIG-aaaa0002,MIG-aaaa0001"})
    assert [m.index for m in by_mig.meters] == [1]  # both instances live on GPU 1
    assert len(by_mig.notes) == 2 and all("parent GPU 1" in note for note in by_mig.notes)


@pytest.mark.parametrize("spec", ["", "-1", "5"])
def test_no_visible_device_gives_no_meter_and_shuts_nvml_down(spec: str) -> None:
    nvml = FakeNVML()
    nvml.add_gpu()
    probe = probe_nvml(nvml=nvml, environ={"CUDA_VISIBLE_DEVICES": spec})
    assert probe.meters == ()
    assert probe.reason == "no GPU visible to this process (CUDA_VISIBLE_DEVICES)"
    assert (nvml.init_count, nvml.shutdown_count) == (1, 1)


def test_no_driver_gives_no_meter_and_a_reason() -> None:
    nvml = FakeNVML(driver=False)
    probe = probe_nvml(nvml=nvml, environ={})
    assert probe.meters == ()
    assert probe.reason == "NVML not available (libnvidia-ml.so.1 not found: no NVIDIA driver)"
    assert (nvml.init_count, nvml.shutdown_count) == (0, 0)


def test_driver_without_gpus() -> None:
    nvml = FakeNVML()
    probe = probe_nvml(nvml=nvml, environ={})
    assert probe.meters == () and probe.reason == "NVML found no NVIDIA GPU"
    assert nvml.shutdown_count == 1


def test_nvml_init_once_and_shutdown_once_after_every_meter_closed() -> None:
    nvml = FakeNVML()
    nvml.add_gpu()
    nvml.add_gpu(energy_mj=None)
    meters = probe_nvml(nvml=nvml, environ={}).meters
    assert [m.method for m in meters] == ["nvml-counter", "nvml-power"]
    assert nvml.init_count == 1
    meters[0].close()
    meters[0].close()
    assert nvml.shutdown_count == 0  # the other meter still uses NVML
    meters[1].close()
    meters[1].close()
    assert nvml.shutdown_count == 1


def test_device_without_any_reading_is_skipped_with_a_note() -> None:
    nvml = FakeNVML()
    nvml.add_gpu()
    nvml.add_gpu("NVIDIA GeForce GT 710", energy_mj=None)
    nvml.fail(1, "NVMLError_NotSupported")
    probe = probe_nvml(nvml=nvml, environ={})
    assert [m.index for m in probe.meters] == [0]
    assert probe.notes == (
        "GPU 1: NVIDIA GeForce GT 710 has neither an energy counter (Not Supported) "
        "nor a power reading (Not Supported); not metered",
    )


def test_nvml_failing_while_listing_gives_a_reason() -> None:
    nvml = FakeNVML()
    nvml.add_gpu()
    nvml.fail(0, "NVMLError_GpuIsLost", every_call=True)
    probe = probe_nvml(nvml=nvml, environ={})
    assert probe.meters == ()
    assert probe.reason == "NVML failed while listing GPUs (GPU is lost)"
    assert (nvml.init_count, nvml.shutdown_count) == (1, 1)


def test_gpu_lost_mid_window_raises_meter_error_chained() -> None:
    nvml = FakeNVML()
    nvml.add_gpu()
    (meter,) = probe_nvml(nvml=nvml, environ={}).meters
    state = meter.begin(0.0)
    nvml.fail(0)
    with pytest.raises(MeterError, match="GPU 0: NVIDIA H100 80GB HBM3 could not be read") as caught:
        meter.end(state, 1.0)
    assert isinstance(caught.value.__cause__, pynvml.NVMLError_GpuIsLost)


def test_counter_going_backwards_raises_meter_error() -> None:
    nvml = FakeNVML()
    nvml.add_gpu(energy_mj=[0, 9_000, 1_000])
    (meter,) = probe_nvml(nvml=nvml, environ={}).meters
    state = meter.begin(0.0)
    with pytest.raises(MeterError, match="went backwards"):
        meter.end(state, 1.0)


def test_probe_reads_cuda_visible_devices_from_the_environment(monkeypatch) -> None:
    nvml = FakeNVML()
    nvml.add_gpu()
    nvml.add_gpu()
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "1")
    assert [m.index for m in probe_nvml(nvml=nvml).meters] == [1]

from __future__ import annotations

import pytest

from notebook_carbon.errors import MeterError
from notebook_carbon.meters.rapl import counter_delta_uj, find_domains, probe_rapl, read_energy_uj
from notebook_carbon.testing import FakePowercap

MAX_UJ = 1_000_000


@pytest.mark.parametrize(
    ("previous", "current", "max_range", "delta"),
    [
        (0, 10, 100, 10),
        (40, 40, 100, 0),
        (0, 100, 100, 100),
        (90, 10, 100, 20),  # one wrap: 10 to the top, 10 after
        (100, 0, 100, 0),  # the top and zero are the same point of the circle
        (99, 0, 100, 1),
        (262_143_328_000, 500, 262_143_328_850, 1350),
    ],
)
def test_counter_delta_uj(previous: int, current: int, max_range: int, delta: int) -> None:
    assert counter_delta_uj(previous, current, max_range) == delta


@pytest.mark.parametrize(
    ("previous", "current", "max_range"),
    [(0, 10, 0), (0, 101, 100), (-1, 10, 100), (101, 10, 100)],
)
def test_counter_delta_uj_rejects_impossible_values(previous: int, current: int, max_range: int) -> None:
    with pytest.raises(ValueError):
        counter_delta_uj(previous, current, max_range)


def test_exact_energy_over_scripted_counters_with_two_wraps(tmp_path) -> None:
    fake = FakePowercap(tmp_path)
    fake.add_package(max_energy_range_uj=MAX_UJ)
    # probe read, begin, update, update, end
    fake.script("intel-rapl:0", [0, 900_000, 100_000, 600_000, 50_000])
    meter = probe_rapl(fake.root, read_uj=fake.read_uj).cpu
    assert meter is not None

    state = meter.begin(0.0)
    assert meter.update(state, 1.0) == pytest.approx(0.2)  # wrapped: 100_000 + 100_000 µJ in 1 s
    assert meter.update(state, 2.0) == pytest.approx(0.5)
    assert meter.end(state, 4.0) == pytest.approx(1.15)  # wrapped again: + 450_000 µJ


def test_counters_set_between_plain_reads(tmp_path) -> None:
    fake = FakePowercap(tmp_path)
    fake.add_package(energy_uj=5_000_000)
    meter = probe_rapl(fake.root).cpu
    state = meter.begin(10.0)
    fake.set_energy("intel-rapl:0", 8_000_000)
    assert meter.update(state, 12.0) == pytest.approx(1.5)
    assert meter.update(state, 12.0) is None  # no time elapsed: no average
    fake.set_energy("intel-rapl:0", 9_000_000)
    assert meter.end(state, 13.0) == pytest.approx(4.0)


def test_packages_are_summed_and_core_uncore_psys_ignored(tmp_path) -> None:
    fake = FakePowercap(tmp_path)
    fake.add_package(0, energy_uj=1_000_000)
    fake.add_subdomain(0, "core", energy_uj=7_000_000)
    fake.add_subdomain(0, "uncore", energy_uj=7_000_000)
    fake.add_package(1, energy_uj=2_000_000)
    fake.add_psys(2, energy_uj=9_000_000)

    probe = probe_rapl(fake.root, model="Intel Xeon Gold 6248")
    meter = probe.cpu
    assert (meter.component, meter.method, meter.device) == ("cpu", "rapl", "package-0+package-1")
    assert meter.model == "Intel Xeon Gold 6248"
    assert probe.ram is None and probe.ram_reason == "RAPL has no dram domain on this machine"

    state = meter.begin(0.0)
    fake.set_energy("intel-rapl:0", 31_000_000)
    fake.set_energy("intel-rapl:1", 12_000_000)
    for other in ("intel-rapl:0:0", "intel-rapl:0:1", "intel-rapl:2"):
        fake.set_energy(other, 99_000_000)
    assert meter.end(state, 2.0) == pytest.approx(40.0)  # 30 J + 10 J


def test_dram_domains_make_the_ram_component(tmp_path) -> None:
    fake = FakePowercap(tmp_path)
    fake.add_package(0)
    fake.add_dram(0, energy_uj=1_000)
    fake.add_package(1)
    fake.add_dram(1, energy_uj=2_000, link=False)  # nested only, as under /sys/devices

    probe = probe_rapl(fake.root)
    assert probe.ram_reason is None
    ram = probe.ram
    assert (ram.component, ram.method, ram.device) == ("ram", "rapl", "dram-0+dram-1")
    state = ram.begin(0.0)
    fake.set_energy("intel-rapl:0:0", 3_001_000)
    fake.set_energy("intel-rapl:1:0", 1_002_000)
    assert ram.end(state, 1.0) == pytest.approx(4.0)


def test_find_domains_reads_names_and_ranges(tmp_path) -> None:
    fake = FakePowercap(tmp_path)
    fake.add_package(0, max_energy_range_uj=123)
    fake.add_dram(0, max_energy_range_uj=456)
    packages, drams = find_domains(fake.root)
    assert [(d.name, d.label, d.max_energy_range_uj) for d in packages] == [("package-0", "package-0", 123)]
    assert [(d.name, d.label, d.max_energy_range_uj) for d in drams] == [("dram", "dram-0", 456)]


def test_unreadable_energy_uj_gives_the_reason(tmp_path) -> None:
    fake = FakePowercap(tmp_path)
    fake.add_package(0)
    fake.add_dram(0)
    fake.make_unreadable("intel-rapl:0")
    fake.make_unreadable("intel-rapl:0:0")
    with pytest.raises(PermissionError):  # a real EACCES, even when the tests run as root
        read_energy_uj(str(fake.energy_path("intel-rapl:0")))

    probe = probe_rapl(fake.root)
    assert probe.cpu is None and probe.ram is None
    assert probe.cpu_reason.startswith("RAPL present but energy_uj not readable without root")
    assert "Linux >= 5.10" in probe.cpu_reason and "CVE-2020-8694" in probe.cpu_reason
    assert str(fake.energy_path("intel-rapl:0")) in probe.cpu_reason


@pytest.mark.parametrize(
    ("build", "expected"),
    [
        (lambda root: None, "no powercap interface at"),
        (lambda root: root.mkdir(), "no RAPL package domains under"),
        (lambda root: FakePowercap(root).add_psys(0), "no RAPL package domains under"),
    ],
)
def test_probe_reasons_without_counters(tmp_path, build, expected) -> None:
    root = tmp_path / "powercap"
    build(root)
    probe = probe_rapl(root)
    assert probe.cpu is None and probe.ram is None
    assert probe.cpu_reason.startswith(expected)
    assert str(root) in probe.cpu_reason


def test_unparsable_counter_gives_a_reason(tmp_path) -> None:
    fake = FakePowercap(tmp_path)
    fake.add_package(0)
    fake.energy_path("intel-rapl:0").write_text("garbage\n")
    probe = probe_rapl(fake.root)
    assert probe.cpu is None
    assert probe.cpu_reason.startswith("RAPL present but") and "could not be read" in probe.cpu_reason


def test_domain_failing_mid_window_raises_meter_error(tmp_path) -> None:
    fake = FakePowercap(tmp_path)
    fake.add_package(0)
    meter = probe_rapl(fake.root).cpu
    state = meter.begin(0.0)
    fake.make_unreadable("intel-rapl:0")
    with pytest.raises(MeterError, match="package-0 could not be read") as caught:
        meter.update(state, 1.0)
    assert isinstance(caught.value.__cause__, PermissionError)


def test_counter_above_its_range_raises_meter_error(tmp_path) -> None:
    fake = FakePowercap(tmp_path)
    fake.add_package(0, max_energy_range_uj=MAX_UJ)
    meter = probe_rapl(fake.root).cpu
    state = meter.begin(0.0)
    fake.set_energy("intel-rapl:0", MAX_UJ + 1)
    with pytest.raises(MeterError, match="impossible value"):
        meter.end(state, 1.0)


def test_two_windows_share_one_meter(tmp_path) -> None:
    fake = FakePowercap(tmp_path)
    fake.add_package(0)
    meter = probe_rapl(fake.root).cpu
    outer = meter.begin(0.0)
    fake.set_energy("intel-rapl:0", 1_000_000)
    inner = meter.begin(1.0)
    fake.set_energy("intel-rapl:0", 3_000_000)
    assert meter.end(inner, 2.0) == pytest.approx(2.0)
    assert meter.end(outer, 2.0) == pytest.approx(3.0)


def test_unreadable_domain_refuses_writes_until_readable_again(tmp_path) -> None:
    fake = FakePowercap(tmp_path)
    fake.add_package(0)
    fake.make_unreadable("intel-rapl:0")
    if fake.energy_path("intel-rapl:0").is_symlink():  # as root: never write through the link
        with pytest.raises(RuntimeError, match="make_readable"):
            fake.set_energy("intel-rapl:0", 1)
    fake.make_readable("intel-rapl:0", energy_uj=7_000_000)
    probe = probe_rapl(fake.root)
    assert probe.cpu_reason is None
    state = probe.cpu.begin(0.0)
    fake.set_energy("intel-rapl:0", 9_000_000)
    assert probe.cpu.end(state, 1.0) == pytest.approx(2.0)


def test_counter_outside_its_range_at_probe_gives_a_reason(tmp_path) -> None:
    fake = FakePowercap(tmp_path)
    fake.add_package(0, energy_uj=MAX_UJ + 5, max_energy_range_uj=MAX_UJ)
    probe = probe_rapl(fake.root)
    assert probe.cpu is None
    assert probe.cpu_reason == "RAPL present but package-0 reads 1000005 µJ, outside its range 0..1000000"

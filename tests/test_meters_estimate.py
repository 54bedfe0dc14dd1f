from __future__ import annotations

import os
import subprocess
import sys

import psutil
import pytest

from notebook_carbon.meters.estimate import (
    BYTES_PER_GB,
    CPU_IDLE_FRACTION,
    DEFAULT_TDP_W,
    DEFAULT_W_PER_THREAD,
    RAM_W_PER_GB,
    CpuInfo,
    EstimateCpuMeter,
    EstimateRamMeter,
    build_cpu_estimate,
    build_ram_estimate,
    lookup_tdp,
    normalise_cpu_name,
    read_cpuinfo,
    resolve_tdp_w,
    tdp_table,
)
from notebook_carbon.meters.usage import (
    _ProcTree,
    machine_busy_cpu_s,
    process_tree_cpu_s,
    process_tree_rss_bytes,
)
from notebook_carbon.settings import Settings


def scripted(*values: float):
    """A reader returning ``values`` one per call."""
    iterator = iter(values)
    return lambda: next(iterator)


def write_cpuinfo(tmp_path, model: str | None, sockets: int = 1, cpus_per_socket: int = 2):
    lines = []
    for socket in range(sockets):
        for cpu in range(cpus_per_socket):
            lines.append(f"processor\t: {socket * cpus_per_socket + cpu}")
            if model is not None:
                lines.append(f"model name\t: {model}")
            lines.append(f"physical id\t: {socket}")
            lines.append("")
    path = tmp_path / "cpuinfo"
    path.write_text("\n".join(lines))
    return path


@pytest.mark.parametrize(
    ("raw", "tokens"),
    [
        ("Intel(R) Xeon(R) Gold 6248 CPU @ 2.50GHz", ("intel", "xeon", "gold", "6248")),
        ("AMD EPYC 7763 64-Core Processor", ("amd", "epyc", "7763")),
        ("Intel(R) Xeon(R) CPU E5-2690 v4 @ 2.60GHz", ("intel", "xeon", "e5-2690", "v4")),
        ("13th Gen Intel(R) Core(TM) i9-13900K", ("13th", "gen", "intel", "core", "i9-13900k")),
        ("AMD Ryzen Threadripper PRO 3995WX 64-Cores", ("amd", "ryzen", "threadripper", "pro", "3995wx")),
    ],
)
def test_normalise_cpu_name(raw: str, tokens: tuple[str, ...]) -> None:
    assert normalise_cpu_name(raw) == tokens


# TDPs as in codecarbon 3.3.2's data/hardware/cpu_power.csv
@pytest.mark.parametrize(
    ("model", "row", "tdp_w"),
    [
        ("Intel(R) Xeon(R) Gold 6248 CPU @ 2.50GHz", "Intel Xeon Gold 6248", 150.0),
        ("Intel(R) Xeon(R) Gold 6248R CPU @ 3.00GHz", "Intel Xeon Gold 6248R", 205.0),
        ("AMD EPYC 7763 64-Core Processor", "AMD EPYC 7763", 280.0),
        ("AMD EPYC 9654 96-Core Processor", "AMD EPYC 9654", 360.0),
        ("Intel(R) Core(TM) i7-8700 CPU @ 3.20GHz", "Intel Core i7-8700", 65.0),
        ("Intel(R) Core(TM) i7-8700K CPU @ 3.70GHz", "Intel Core i7-8700K", 95.0),
        ("Intel(R) Xeon(R) CPU E5-2690 v4 @ 2.60GHz", "Intel Xeon E5-2690 v4", 135.0),
        ("Intel(R) Xeon(R) CPU E5-2690 v2 @ 3.00GHz", "Intel Xeon E5-2690 v2", 130.0),
        ("AMD Ryzen 9 5950X 16-Core Processor", "AMD Ryzen 9 5950X", 105.0),
        ("13th Gen Intel(R) Core(TM) i9-13900K", "Intel Core i9-13900K", 125.0),
        ("Intel(R) Xeon(R) Platinum 8480+", "Intel Xeon Platinum 8480+", 350.0),
        ("AMD Ryzen 7 5800H with Radeon Graphics", "AMD Ryzen 7 5800H", 45.0),
        ("Apple M2 Pro", "Apple M2 Pro", 35.0),
        ("AMD Opteron(tm) Processor 6234", "AMD Opteron 6234", 115.0),
    ],
)
def test_tdp_lookup_in_the_bundled_table(model: str, row: str, tdp_w: float) -> None:
    assert lookup_tdp(model) == (row, tdp_w)


@pytest.mark.parametrize("model", ["AMD EPYC", "Intel(R) Xeon(R) CPU @ 2.20GHz", "Neoverse-N1", "x86_64", ""])
def test_tdp_lookup_without_a_model_number_finds_nothing(model: str) -> None:
    assert lookup_tdp(model) is None


def test_bare_number_rows_only_match_amd_models() -> None:
    table = {"6234": ("AMD Opteron 6234", 115.0)}
    assert lookup_tdp("AMD Opteron(tm) Processor 6234", table) == ("AMD Opteron 6234", 115.0)
    assert lookup_tdp("Intel(R) Xeon(R) Gold 6234 CPU @ 3.30GHz", table) is None


def test_tdp_table_is_read_once() -> None:
    assert tdp_table() is tdp_table()
    assert len(tdp_table()) > 4000


def test_read_cpuinfo_counts_sockets(tmp_path) -> None:
    path = write_cpuinfo(tmp_path, "Intel(R) Xeon(R) Gold 6248 CPU @ 2.50GHz", sockets=2)
    assert read_cpuinfo(path) == CpuInfo("Intel(R) Xeon(R) Gold 6248 CPU @ 2.50GHz", 2)
    assert read_cpuinfo(tmp_path / "missing") == CpuInfo(None, 1)


@pytest.mark.parametrize(
    ("model", "sockets", "n_cpus", "override", "tdp_w", "note", "source"),
    [
        ("Intel(R) Xeon(R) Gold 6248 CPU @ 2.50GHz", 1, 40, None, 150.0,
         "TDP 150 W for Intel Xeon Gold 6248 (codecarbon CPU table)", "table"),
        ("Intel(R) Xeon(R) Gold 6248 CPU @ 2.50GHz", 2, 80, None, 300.0,
         "TDP 150 W x 2 sockets for Intel Xeon Gold 6248 (codecarbon CPU table)", "table"),
        ("Mystery CPU 9000", 1, 16, None, 64.0,
         ("fallback TDP, a guess: CPU model 'Mystery CPU 9000' not found in codecarbon's CPU table; "
          "assumed 4 W x 16 threads = 64 W (set cpu_tdp_w to correct it)"), "fallback"),
        ("Mystery CPU 9000", 1, None, None, 85.0,
         ("fallback TDP, a guess: CPU model 'Mystery CPU 9000' not found in codecarbon's CPU table; "
          "assumed 85 W (set cpu_tdp_w to correct it)"), "fallback"),
        ("Intel(R) Xeon(R) Gold 6248 CPU @ 2.50GHz", 2, 80, 220.0, 220.0,
         "TDP 220 W from settings (cpu_tdp_w)", "setting"),
    ],
)  # fmt: skip
def test_resolve_tdp_w(model, sockets, n_cpus, override, tdp_w, note, source) -> None:
    settings = Settings(cpu_tdp_w=override)
    assert resolve_tdp_w(settings, CpuInfo(model, sockets), n_cpus) == (tdp_w, note, source)
    assert (DEFAULT_W_PER_THREAD, DEFAULT_TDP_W) == (4.0, 85.0)


def test_cpu_energy_is_tdp_times_busy_seconds_over_cpus() -> None:
    meter = EstimateCpuMeter(100.0, 4, scripted(10.0, 12.0, 16.0))
    assert (meter.component, meter.method, meter.is_estimate) == ("cpu", "estimate-tdp", True)
    state = meter.begin(0.0)
    assert meter.update(state, 1.0) == pytest.approx(50.0)  # 2 busy s of 4 CPUs in 1 s: 50 % of 100 W
    assert meter.end(state, 3.0) == pytest.approx(150.0)  # 100 W x 6 busy s / 4 CPUs


def test_cpu_energy_does_not_depend_on_sampling_below_saturation() -> None:
    # 8 CPUs, 40 busy s over 10 s; no interval has more than 8 busy s per second
    sparse = EstimateCpuMeter(80.0, 8, scripted(0.0, 40.0))
    dense = EstimateCpuMeter(80.0, 8, scripted(0.0, 3.0, 10.0, 25.0, 40.0))
    sparse_state, dense_state = sparse.begin(0.0), dense.begin(0.0)
    for t in (1.0, 2.0, 7.0):
        dense.update(dense_state, t)
    assert sparse.end(sparse_state, 10.0) == dense.end(dense_state, 10.0) == pytest.approx(400.0)


def test_idle_floor_is_drawn_with_no_work() -> None:
    # 100 W TDP, idle 0.74 / 3.5 = 21.14 % (Cloud Carbon Footprint, AWS, SPECpower):
    # 10 s with no work: 100 x 0.2114 x 10 = 211.4 J; 10 s fully busy: 100 x 10 = 1,000 J
    idle = EstimateCpuMeter(100.0, 4, scripted(0.0, 0.0), idle_fraction=CPU_IDLE_FRACTION)
    assert idle.end(idle.begin(0.0), 10.0) == pytest.approx(100 * 0.74 / 3.5 * 10)
    busy = EstimateCpuMeter(100.0, 4, scripted(0.0, 40.0), idle_fraction=CPU_IDLE_FRACTION)
    assert busy.end(busy.begin(0.0), 10.0) == pytest.approx(1000.0)
    # half busy: 100 x (0.2114 + 0.7886 x 0.5) x 10 = 605.7 J
    half = EstimateCpuMeter(100.0, 4, scripted(0.0, 20.0), idle_fraction=CPU_IDLE_FRACTION)
    assert half.end(half.begin(0.0), 10.0) == pytest.approx(100 * (0.74 / 3.5 + (1 - 0.74 / 3.5) * 0.5) * 10)


def test_one_thread_per_core_on_an_smt_host_is_full_use_not_half() -> None:
    # 8 physical cores, 16 logical CPUs; 8 threads busy for 10 s: 80 busy s
    smt = EstimateCpuMeter(100.0, 16, scripted(0.0, 80.0), n_cores=8)
    assert smt.end(smt.begin(0.0), 10.0) == pytest.approx(1000.0)  # 100 W x 80 / 8 cores, not / 16
    # every thread of every core busy: 160 busy s is still the package's TDP, capped at 100 %
    full = EstimateCpuMeter(100.0, 16, scripted(0.0, 160.0), n_cores=8)
    assert full.end(full.begin(0.0), 10.0) == pytest.approx(1000.0)


def test_bad_core_counts_and_idle_fractions_are_refused() -> None:
    with pytest.raises(ValueError, match="n_cores must be between 1 and n_cpus=4"):
        EstimateCpuMeter(100.0, 4, scripted(0.0), n_cores=8)
    with pytest.raises(ValueError, match="idle_fraction must be between 0 and 1"):
        EstimateCpuMeter(100.0, 4, scripted(0.0), idle_fraction=1.5)


def test_cpu_time_going_backwards_counts_as_no_work() -> None:
    meter = EstimateCpuMeter(100.0, 1, scripted(5.0, 4.0, 6.0))
    state = meter.begin(0.0)
    assert meter.update(state, 1.0) == 0.0
    # then 2 busy s over the next 2 s on 1 CPU count from 4.0: 100 W x 2 s
    assert meter.end(state, 3.0) == pytest.approx(200.0)


def test_ram_machine_energy_is_w_per_gb_times_installed_memory() -> None:
    meter = EstimateRamMeter(RAM_W_PER_GB, 16 * BYTES_PER_GB, reason="why")
    assert (meter.component, meter.method, meter.device) == ("ram", "estimate-ram", "RAM 16 GB")
    state = meter.begin(5.0)
    assert meter.update(state, 7.0) == pytest.approx(6.0)  # 0.375 W/GB x 16 GB
    assert meter.end(state, 15.0) == pytest.approx(60.0)


def test_ram_process_energy_integrates_resident_memory() -> None:
    rss = scripted(2 * BYTES_PER_GB, 4 * BYTES_PER_GB, 4 * BYTES_PER_GB)
    meter = EstimateRamMeter(0.5, 64 * BYTES_PER_GB, rss_bytes=rss)
    state = meter.begin(0.0)
    assert meter.update(state, 2.0) == pytest.approx(1.5)  # (1 W + 2 W) / 2
    assert meter.end(state, 4.0) == pytest.approx(7.0)  # 3 J + 4 J


def test_build_cpu_estimate_unknown_model(tmp_path) -> None:
    path = write_cpuinfo(tmp_path, "Mystery CPU 9000")
    meter = build_cpu_estimate(Settings(), read_cpuinfo(path), why="no RAPL counters")
    n_cpus = os.cpu_count()
    assert meter.method == "estimate-tdp" and meter.model == "Mystery CPU 9000"
    assert meter.tdp_w == 4.0 * n_cpus and meter.n_cpus == n_cpus
    assert meter.tdp_source == "fallback"
    assert meter.reason == (
        "no RAPL counters: CPU energy estimated from TDP x machine utilisation; fallback TDP, a guess: "
        f"CPU model 'Mystery CPU 9000' not found in codecarbon's CPU table; assumed 4 W x {n_cpus} "
        f"threads = {4 * n_cpus} W (set cpu_tdp_w to correct it)"
    )
    # the builder applies the idle floor and counts utilisation over physical cores
    assert meter.idle_fraction == CPU_IDLE_FRACTION == pytest.approx(0.2114, abs=1e-4)
    assert meter.n_cores == (psutil.cpu_count(logical=False) or n_cpus)


def test_build_cpu_estimate_known_model_is_of_the_whole_machine(tmp_path) -> None:
    """Whatever the attribution, the estimate is the machine's (a run's share of it is the share
    rule's, attached by detection)."""
    path = write_cpuinfo(tmp_path, "AMD EPYC 7763 64-Core Processor", sockets=2)
    meter = build_cpu_estimate(Settings(attribution="share"), read_cpuinfo(path), why="RAPL absent")
    assert meter.tdp_w == 560.0 and meter.tdp_source == "table"
    assert meter.reason.startswith("RAPL absent: CPU energy estimated from TDP x machine utilisation;")
    state = meter.begin(0.0)
    assert meter.end(state, 1.0) >= 0.0


def test_build_ram_estimate_defaults_and_override() -> None:
    total = psutil.virtual_memory().total
    meter = build_ram_estimate(Settings(), why="no dram")
    assert meter.w_per_gb == 0.375 and meter.total_bytes == total
    assert meter.reason == (
        "no dram: RAM energy estimated as 0.375 W/GB (3 W per 8 GB, Crucial) x installed memory"
    )
    custom = build_ram_estimate(Settings(ram_w_per_gb=0.5, attribution="share"), why="no dram")
    assert custom.w_per_gb == 0.5
    assert (
        custom.reason
        == "no dram: RAM energy estimated as 0.5 W/GB (settings (ram_w_per_gb)) x installed memory"
    )


def test_real_utilisation_sources_are_monotonic() -> None:
    machine_before, machine_after = machine_busy_cpu_s(), machine_busy_cpu_s()
    assert 0.0 < machine_before <= machine_after
    tree = process_tree_cpu_s()
    tree_before = tree()
    sum(i * i for i in range(200_000))
    assert 0.0 < tree_before <= tree()
    assert process_tree_rss_bytes()() >= psutil.Process().memory_info().rss // 2


def test_proc_tree_counts_live_children_like_psutil(monkeypatch) -> None:
    code = "import sys; b = b'x' * 50_000_000; print('ready', flush=True); sys.stdin.read()"
    child = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    try:
        assert child.stdout.readline() == b"ready\n"
        rss = process_tree_rss_bytes()
        cpu = process_tree_cpu_s()
        assert rss() >= psutil.Process().memory_info().rss + 45_000_000
        monkeypatch.setattr(_ProcTree, "for_this_process", classmethod(lambda cls: None))
        psutil_rss, psutil_cpu = process_tree_rss_bytes(), process_tree_cpu_s()
        assert psutil_rss() == pytest.approx(rss(), rel=0.05)
        assert psutil_cpu() == pytest.approx(cpu(), abs=0.1)
    finally:
        child.communicate(b"")

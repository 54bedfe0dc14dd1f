"""The measurement window: energy per component, samples, prompt stop, degraded meters."""

from __future__ import annotations

import threading
import time

import pytest

from notebook_carbon.errors import MeterError
from notebook_carbon.measure import _SAMPLER, Window
from notebook_carbon.meters.base import EnergyMeter
from notebook_carbon.testing import FakeMeter


def wait_until(condition, timeout_s: float = 10.0) -> None:
    """Poll rather than sleep a fixed time: a loaded CI machine may run the sampler late."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.005)


class ScriptedClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class FailingMeter(EnergyMeter):
    """Constant 10 W until ``fail_after`` updates, then every read raises."""

    component, method, device = "gpu", "nvml-power", "GPU 0: test"

    def __init__(self, fail_after: int) -> None:
        self.fail_after = fail_after

    def begin(self, now):
        return {"reads": 0}

    def update(self, state, now):
        state["reads"] += 1
        if state["reads"] > self.fail_after:
            raise MeterError("GPU lost")
        return 10.0

    def end(self, state, now):
        raise MeterError("GPU lost")


def test_energy_per_component_and_methods():
    clock = ScriptedClock()
    meters = [FakeMeter("cpu", "rapl", "package-0", 20.0), FakeMeter("ram", "estimate-ram", "ram", 3.0)]
    window = Window(meters, interval_s=3600, clock=clock).start()
    clock.now += 10.0
    m = window.stop()
    assert m.duration_s == pytest.approx(10.0)
    assert m.component_energy_j("cpu") == pytest.approx(200.0)
    assert m.component_energy_j("ram") == pytest.approx(30.0)
    assert m.component_energy_j("gpu") is None
    assert m.energy_j == pytest.approx(230.0)
    assert m.by_component() == {"cpu": (pytest.approx(200.0), "rapl"), "ram": (pytest.approx(30.0), "estimate-ram")}
    assert m.ended_at - m.started_at == pytest.approx(10.0)


def test_read_now_brings_the_energy_so_far_up_to_now_and_nothing_after_stop():
    """A Ray report's energy so far (issue 17) is read at the report, not at the sampler's last
    read: with an hour's interval, none had happened, and a short trial reported 0 J."""
    clock = ScriptedClock()
    window = Window([FakeMeter("cpu", "rapl", "package-0", 20.0)], interval_s=3600, clock=clock).start()
    clock.now += 2.0
    assert window.energy_so_far_j() == {"cpu": 0.0}  # no sampler read yet
    assert window.read_now()
    assert window.energy_so_far_j() == {"cpu": pytest.approx(40.0)}
    clock.now += 1.0
    m = window.stop()
    assert m.energy_j == pytest.approx(60.0)  # the extra read changes nothing of the whole
    assert not window.read_now()


def test_two_gpus_are_summed_and_methods_joined():
    clock = ScriptedClock()
    meters = [FakeMeter("gpu", "nvml-counter", "GPU 0", 100.0), FakeMeter("gpu", "nvml-power", "GPU 1", 50.0)]
    window = Window(meters, interval_s=3600, clock=clock).start()
    clock.now += 2.0
    m = window.stop()
    assert m.component_energy_j("gpu") == pytest.approx(300.0)
    assert m.component_method("gpu") == "nvml-counter+nvml-power"


def test_sampler_records_power_samples():
    window = Window([FakeMeter("cpu", "rapl", "package-0", 42.0)], interval_s=0.01).start()
    wait_until(lambda: window.latest_power_w().get("cpu") is not None)
    assert window.latest_power_w() == {"cpu": pytest.approx(42.0)}
    m = window.stop()
    assert m.samples, "no power samples recorded"
    assert all(s.power_w == pytest.approx(42.0) and s.component == "cpu" for s in m.samples)
    assert [s.t_s for s in m.samples] == sorted(s.t_s for s in m.samples)


def test_stop_returns_promptly_and_the_window_is_no_longer_sampled():
    window = Window([FakeMeter("cpu", "rapl", "package-0", 1.0)], interval_s=60).start()
    started = time.perf_counter()
    m = window.stop()
    assert time.perf_counter() - started < 1.0  # an interval is 60 s: it was not waited out
    assert _SAMPLER.open_windows() == 0
    window._tick()  # a read that was already scheduled finds the window stopped
    assert window.stop().samples == m.samples == ()


def test_all_windows_share_one_sampler_thread():
    windows = [Window([FakeMeter("cpu", "rapl", f"p{i}", 1.0)], interval_s=0.01).start() for i in range(5)]
    wait_until(lambda: all(w.latest_power_w() for w in windows))
    samplers = [t for t in threading.enumerate() if t.name == "notebook-carbon-sampler"]
    assert len(samplers) == 1 and samplers[0].daemon
    results = [w.stop() for w in windows]
    assert all(r.samples for r in results)  # every window was read
    assert _SAMPLER.open_windows() == 0


def test_a_backend_bug_degrades_its_meter_and_sampling_goes_on():
    class Buggy(FakeMeter):
        def update(self, state, now):
            raise ZeroDivisionError("oops")

    window = Window([Buggy("gpu", "nvml-power", "GPU 0", 5.0), FakeMeter("cpu", "rapl", "p0", 1.0)], interval_s=0.01)
    window.start()
    wait_until(lambda: window.latest_power_w().get("cpu") is not None)
    m = window.stop()
    gpu = next(c for c in m.components if c.component == "gpu")
    assert "ZeroDivisionError: oops" in gpu.degraded
    assert [s.component for s in m.samples] and {s.component for s in m.samples} == {"cpu"}
    later = Window([FakeMeter("cpu", "rapl", "p1", 1.0)], interval_s=0.01).start()
    wait_until(lambda: later.latest_power_w())
    assert later.stop().samples  # the shared thread survived


def test_a_failing_live_view_stops_being_called_and_is_kept():
    calls = []

    def view(window):
        calls.append(1)
        raise RuntimeError("widget gone")

    window = Window([FakeMeter("cpu", "rapl", "p0", 1.0)], interval_s=0.01, on_sample=view).start()
    wait_until(lambda: window.callback_error is not None)
    time.sleep(0.05)  # later reads happen, but do not call the view again
    window.stop()
    assert calls == [1] and str(window.callback_error) == "widget gone"


def test_stop_is_idempotent_and_start_only_once():
    window = Window([FakeMeter("cpu", "rapl", "package-0", 1.0)], interval_s=60).start()
    first = window.stop()
    assert window.stop() is first
    with pytest.raises(RuntimeError):
        window.start()


def test_meter_failing_mid_window_is_degraded_and_keeps_its_energy():
    clock = ScriptedClock()
    window = Window([FailingMeter(fail_after=2), FakeMeter("cpu", "rapl", "package-0", 5.0)], interval_s=3600, clock=clock)
    window.start()
    for _ in range(3):  # two good reads (1 s each at 10 W), then a failure
        clock.now += 1.0
        window._read_all(clock.now)
    clock.now += 1.0
    m = window.stop()
    gpu = next(c for c in m.components if c.component == "gpu")
    assert gpu.energy_j == pytest.approx(20.0)
    assert gpu.degraded and "GPU lost" in gpu.degraded
    cpu = next(c for c in m.components if c.component == "cpu")
    assert cpu.energy_j == pytest.approx(20.0) and cpu.degraded is None


def test_no_meters_gives_zero_energy():
    m = Window([], interval_s=60, notes=("no sensors",)).start().stop()
    assert m.energy_j == 0.0
    assert m.components == ()
    assert m.notes == ("no sensors",)

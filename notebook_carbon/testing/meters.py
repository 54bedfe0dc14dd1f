"""``FakeMeter``, an ``EnergyMeter`` of constant power for tests of measurement windows and the magic,
and ``fake_detection``, a ``Detection`` made of them.
"""

from __future__ import annotations

from collections.abc import Sequence

from ..errors import MeterError
from ..meters.base import COMPONENTS, METHODS, EnergyMeter
from ..meters.detect import Detection

__all__ = ["FakeMeter", "fake_detection"]


class FakeMeter(EnergyMeter):
    """Constant ``power_w``: energy = power x elapsed seconds. ``fail`` makes later reads raise."""

    def __init__(
        self,
        component: str,
        method: str,
        device: str,
        power_w: float,
        *,
        model: str | None = None,
        reason: str | None = None,
    ) -> None:
        if component not in COMPONENTS:
            raise ValueError(f"component {component!r} is not one of {COMPONENTS}")
        if method not in METHODS:
            raise ValueError(f"method {method!r} is not one of {METHODS}")
        self.component = component
        self.method = method
        self.device = device
        self.power_w = power_w
        self.model = model
        self.reason = reason
        self.failure: str | None = None
        self.closed = False

    def fail(self, message: str) -> None:
        """Make later ``update``/``end`` calls raise ``MeterError(message)``."""
        self.failure = message

    def _check(self) -> None:
        if self.failure is not None:
            raise MeterError(self.failure)

    def begin(self, now: float) -> list[float]:
        return [now, now]  # start, last update

    def update(self, state: list[float], now: float) -> float | None:
        self._check()
        elapsed_s = now - state[1]
        state[1] = now
        return self.power_w if elapsed_s > 0 else None

    def end(self, state: list[float], now: float) -> float:
        self._check()
        return self.power_w * (now - state[0])

    def close(self) -> None:
        self.closed = True


def fake_detection(
    *,
    gpu_power_w: Sequence[float] = (300.0,),
    cpu_power_w: float | None = 65.0,
    ram_power_w: float | None = 6.0,
    gpu_method: str = "nvml-counter",
    cpu_method: str = "rapl",
    ram_method: str = "rapl",
    notes: Sequence[str] = (),
) -> Detection:
    """A ``Detection`` of ``FakeMeter``\\ s: one GPU per entry of ``gpu_power_w``, then CPU and RAM
    (left out when their power is ``None``). Estimates get a reason, as real ones do."""
    meters: list[EnergyMeter] = [
        FakeMeter("gpu", gpu_method, f"GPU {i}: Fake GPU", power_w, model="Fake GPU")
        for i, power_w in enumerate(gpu_power_w)
    ]
    if cpu_power_w is not None:
        reason = "fake: CPU energy estimated" if cpu_method.startswith("estimate") else None
        meters.append(
            FakeMeter("cpu", cpu_method, "package-0", cpu_power_w, model="Fake CPU", reason=reason)
        )
    if ram_power_w is not None:
        reason = "fake: RAM energy estimated" if ram_method.startswith("estimate") else None
        meters.append(FakeMeter("ram", ram_method, "dram-0", ram_power_w, reason=reason))
    return Detection(tuple(meters), tuple(notes))

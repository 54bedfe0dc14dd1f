"""The one interface every energy backend implements.

A meter reads one component (``cpu``, ``ram`` or ``gpu``) of one device or a set of domains summed
(all RAPL packages, say). Meters hold no per-window state: ``begin`` returns a state object that the
caller passes back to ``update`` and ``end``, so two windows (a ``%%carbon`` cell and a ``track()``
block inside it) can use the same meters at once.

Life of a window, all times from ``time.monotonic()`` in seconds::

    state = meter.begin(t0)            # read counters / baseline
    power_w = meter.update(state, t)   # sampler thread, every interval: read counters (so a wrap
                                       # cannot be missed) or sample power; average W since last call
    energy_j = meter.end(state, t1)    # final read; joules over the window

``update`` and ``end`` are called from different threads but never concurrently for one state
(the window serialises them). A sensor failing mid-window raises ``MeterError``; the window then
marks the component degraded and keeps the energy counted so far.
"""

from __future__ import annotations

import abc
from typing import Any

COMPONENTS = ("gpu", "cpu", "ram")

# How each figure was obtained; printed in summaries and statements.
METHODS = ("rapl", "nvml-counter", "nvml-power", "estimate-tdp", "estimate-ram", "none")


class EnergyMeter(abc.ABC):
    """One component of one device (or a sum of domains), measured or estimated."""

    component: str
    """``cpu``, ``ram`` or ``gpu``."""
    method: str
    """One of ``METHODS``."""
    device: str
    """Human-readable device label, e.g. ``package-0+package-1`` or ``GPU 0: NVIDIA H100``."""
    model: str | None = None
    """Hardware model name where known (CPU brand string, GPU name)."""
    reason: str | None = None
    """Why this meter stands in for a better one (``RAPL present but not readable without root``)."""
    device_id: str | None = None
    """What names the device the same in every process that sees it (a GPU's UUID, where the label
    holds a per-process index); None where the label does."""
    share_rule: Any = None
    """The ``shares.ShareRule`` that tells a run's share of this device's energy (``attribution =
    "share"``); None: the run is charged the whole device."""

    @property
    def is_estimate(self) -> bool:
        return self.method.startswith("estimate")

    @abc.abstractmethod
    def begin(self, now: float) -> Any:
        """Start a window at monotonic time ``now``; return its state."""

    @abc.abstractmethod
    def update(self, state: Any, now: float) -> float | None:
        """Advance the window to ``now``; return the average power in W since the last call."""

    @abc.abstractmethod
    def end(self, state: Any, now: float) -> float:
        """Close the window at ``now``; return its energy in joules."""

    def close(self) -> None:
        """Release the underlying library handle, if any. Idempotent."""

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.component} {self.method} {self.device!r}>"


class PowerIntegral:
    """Window state of a power-sampling meter: energy by the trapezoid rule over (time, W) points."""

    __slots__ = ("last_w", "last_t", "energy_j")

    def __init__(self, power_w: float, now: float) -> None:
        self.last_w = power_w
        self.last_t = now
        self.energy_j = 0.0

    def add(self, power_w: float, now: float) -> float | None:
        """Take a sample at ``now``; return the average W since the previous one (None if no time passed)."""
        elapsed_s = now - self.last_t
        average_w = (self.last_w + power_w) / 2
        if elapsed_s > 0:
            self.energy_j += average_w * elapsed_s
        self.last_w = power_w
        self.last_t = now
        return average_w if elapsed_s > 0 else None

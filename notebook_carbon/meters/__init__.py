"""Hardware energy meters: one ``EnergyMeter`` interface, RAPL, NVML and estimate backends behind it.

``detect_meters(settings)`` probes in a fixed order and returns the meters with every fallback
reason. Importing this package reads no hardware and imports neither pynvml nor psutil.
"""

from __future__ import annotations

from .base import COMPONENTS, METHODS, EnergyMeter
from .detect import Detection, detect_meters, host_info
from .estimate import (
    DEFAULT_TDP_W,
    DEFAULT_W_PER_THREAD,
    RAM_W_PER_GB,
    EstimateCpuMeter,
    EstimateRamMeter,
    lookup_tdp,
    normalise_cpu_name,
)
from .nvml import NvmlCounterMeter, NvmlPowerMeter, parse_cuda_visible_devices, probe_nvml
from .rapl import RaplMeter, counter_delta_uj, probe_rapl

__all__ = [
    "COMPONENTS",
    "DEFAULT_TDP_W",
    "DEFAULT_W_PER_THREAD",
    "METHODS",
    "RAM_W_PER_GB",
    "Detection",
    "EnergyMeter",
    "EstimateCpuMeter",
    "EstimateRamMeter",
    "NvmlCounterMeter",
    "NvmlPowerMeter",
    "RaplMeter",
    "counter_delta_uj",
    "detect_meters",
    "host_info",
    "lookup_tdp",
    "normalise_cpu_name",
    "parse_cuda_visible_devices",
    "probe_nvml",
    "probe_rapl",
]

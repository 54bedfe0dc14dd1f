"""One rank of a distributed job, run as a script by tests/test_distributed_jobs.py.

The launcher's environment comes from the test (torchrun's or SLURM's variables, exactly as those
set them); the rank meters the machine's real CPU and RAM meters and a fake GPU node of
``GPUS`` devices on which this process holds a context on device ``LOCAL_RANK`` only. Each fake
device draws a constant power that is a function of the machine's monotonic clock, so every
process of the node reads the same device the same. ``SKEW_S`` shifts this process's wall clock
(``time.time``) by that many seconds, as a node whose clock differs. Prints the result as JSON.

Usage: python distributed_worker.py SECONDS busy|sleep
"""

from __future__ import annotations

import os
import sys
import time

_real_time = time.time
_skew = float(os.environ.get("SKEW_S", "0"))
if _skew:
    time.time = lambda: _real_time() + _skew  # this node's clock, before anything reads it

import json  # noqa: E402

import notebook_carbon  # noqa: E402
from notebook_carbon.meters.detect import detect_meters  # noqa: E402
from notebook_carbon.session import Session  # noqa: E402
from notebook_carbon.settings import resolve  # noqa: E402
from notebook_carbon.testing import FakeNVML  # noqa: E402

GPUS = 4


def watts(index: int) -> float:
    """Device ``index``'s constant power: 100, 150, 200, 250 W."""
    return 100.0 + 50.0 * index


def main() -> None:
    seconds, kind = float(sys.argv[1]), sys.argv[2]
    local = int(os.environ.get("LOCAL_RANK") or os.environ.get("SLURM_LOCALID") or 0)
    nvml = FakeNVML()
    for index in range(GPUS):
        nvml.add_gpu(energy_mj=lambda t, i=index: watts(i) * 1000.0 * t, uuid=f"GPU-{index:08x}-aaaa-bbbb-cccc-dddddddddddd")
    nvml.add_process(local, os.getpid(), sm_util=80)
    settings = resolve()
    session = Session(settings, detection=detect_meters(settings, nvml=nvml))
    with notebook_carbon.track(name="train", sweep="ddp", params={"lr": 0.1}, session=session) as run:
        until = time.monotonic() + seconds
        if kind == "busy":
            while time.monotonic() < until:
                pass
        else:
            time.sleep(seconds)
    print(json.dumps({"uid": run.result.uid, "run_id": run.result.run_id(), "local": local}))


if __name__ == "__main__":
    main()

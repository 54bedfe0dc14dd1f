"""track(): the plain Python API for scripts, on real SQLite files with fake hardware."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest
from IPython.core.interactiveshell import InteractiveShell

from notebook_carbon import NotebookCarbonWarning, track
from notebook_carbon.magic import load_ipython_extension, unload_ipython_extension
from notebook_carbon.meters.detect import Detection
from notebook_carbon.registry.store import Registry
from notebook_carbon.session import Session
from notebook_carbon.settings import Settings
from notebook_carbon.testing import FakeMeter


@pytest.fixture
def session(tmp_path):
    detection = Detection(meters=(FakeMeter("gpu", "nvml-counter", "GPU 0: fake", 200.0, model="fake"),), notes=())
    return Session(Settings(registry=str(tmp_path / "r.sqlite"), region="SE3", project="thesis"), detection=detection)


def runs_of(session) -> list[dict]:
    assert session.writer().flush(10)
    with Registry.open(session.settings.registry_location()) as registry:
        return list(reversed(registry.runs()))


def test_block_is_recorded_with_its_fields(session, capsys):
    with track("lr=0.1", params={"lr": 0.1}, sweep="lr", tags=["a"], session=session) as run:
        total = sum(range(1000))
    assert total == 499500
    assert run.result.status == "ok"
    assert run.result.footprint.intensity.region == "SE3"
    assert "carbon [lr=0.1]: " in capsys.readouterr().err  # scripts keep stdout for their own data
    (row,) = runs_of(session)
    assert (row["name"], row["sweep"], row["params"], row["tags"], row["project"]) == (
        "lr=0.1", "lr", {"lr": 0.1}, ["a"], "thesis"
    )
    assert row["gpu_method"] == "nvml-counter" and row["gpu_count"] == 1 and row["gpu_model"] == "fake"


def test_exception_is_reraised_and_recorded_failed(session):
    with pytest.raises(ValueError, match="bad batch"):
        with track("boom", session=session, quiet=True):
            raise ValueError("bad batch")
    (row,) = runs_of(session)
    assert row["status"] == "failed" and row["error"] == "ValueError: bad batch"


def test_keyboard_interrupt_is_recorded_interrupted(session):
    with pytest.raises(KeyboardInterrupt):
        with track(session=session, quiet=True):
            raise KeyboardInterrupt
    assert [r["status"] for r in runs_of(session)] == ["interrupted"]


def test_decorator_records_one_run_per_call(session):
    @track(sweep="decorated", session=session, quiet=True)
    def step(x):
        return x * 2

    assert [step(1), step(2)] == [2, 4]
    assert [r["sweep"] for r in runs_of(session)] == ["decorated", "decorated"]


def test_metering_failure_warns_and_the_block_still_runs(session, monkeypatch):
    def broken(**_):
        raise RuntimeError("no sensors today")

    monkeypatch.setattr(session, "begin", broken)
    ran = []
    with pytest.warns(NotebookCarbonWarning, match="no sensors today"):
        with track(session=session) as run:
            ran.append(True)
    assert ran == [True] and run.result is None


def test_project_and_session_are_exclusive(session):
    with pytest.raises(TypeError):
        track(session=session, project="other")


def test_inside_ipython_track_uses_the_magics_settings(session):
    shell = InteractiveShell.instance()
    load_ipython_extension(shell, session=session)
    try:
        shell.run_cell("%carbon config region=NO1", store_history=True)
        with track(quiet=True) as run:
            pass
    finally:
        unload_ipython_extension(shell)
    assert run.result.footprint.intensity.region == "NO1"


def test_a_script_that_exits_at_once_loses_no_run(tmp_path):
    registry = tmp_path / "script.sqlite"
    script = textwrap.dedent(
        """
        import notebook_carbon
        with notebook_carbon.track("last-words", params={"seed": 7}, quiet=True):
            pass
        """
    )
    env = {"NOTEBOOK_CARBON_REGISTRY": str(registry), "NOTEBOOK_CARBON_REGION": "FR", "PATH": ""}
    subprocess.run([sys.executable, "-c", script], check=True, env=env, timeout=120)
    with Registry.open(str(registry)) as reg:
        (row,) = reg.runs()
    assert (row["name"], row["status"], row["params"]) == ("last-words", "ok", {"seed": 7})


def test_first_metered_cell_imports_nothing_heavy_on_the_notebook_thread(tmp_path):
    """The laziness contract behind the cold-start figure (timings live in benchmarks/)."""
    script = textwrap.dedent(
        """
        import sys, threading
        from IPython.core.interactiveshell import InteractiveShell
        shell = InteractiveShell.instance()
        main_imports = []
        real_import = __builtins__.__import__
        def spy(name, *args, **kwargs):
            if threading.current_thread() is threading.main_thread():
                main_imports.append(name)
            return real_import(name, *args, **kwargs)
        __builtins__.__import__ = spy
        shell.run_cell("%load_ext notebook_carbon", store_history=True)
        result = shell.run_cell("%%carbon --quiet\\nx = 1", store_history=True)
        __builtins__.__import__ = real_import
        assert result.success
        heavy = {"sqlalchemy", "pandas", "altair", "ipywidgets", "codecarbon"}
        print(sorted(heavy & {name.split(".")[0] for name in main_imports}))
        """
    )
    env = {"NOTEBOOK_CARBON_REGISTRY": str(tmp_path / "r.sqlite"), "PATH": ""}
    out = subprocess.run([sys.executable, "-c", script], check=True, env=env, capture_output=True, text=True)
    assert out.stdout.strip().splitlines()[-1] == "[]", out.stdout + out.stderr


def test_two_gpus_with_different_methods_are_recorded_with_both(tmp_path):
    detection = Detection(
        meters=(
            FakeMeter("gpu", "nvml-counter", "GPU 0: A100", 250.0, model="A100"),
            FakeMeter("gpu", "nvml-power", "GPU 1: T4", 70.0, model="T4"),
        ),
        notes=(),
    )
    session = Session(Settings(registry=str(tmp_path / "r.sqlite")), detection=detection)
    with track(session=session, quiet=True) as run:
        pass
    (row,) = runs_of(session)
    assert row["gpu_method"] == "nvml-counter+nvml-power"
    assert row["gpu_count"] == 2 and row["gpu_model"] == "A100, T4"
    assert row["intensity_region"] == "world" and any("world-average" in n for n in row["notes"])
    with Registry.open(session.settings.registry_location()) as registry:
        parts = registry.components(row["uid"])
    assert sorted(p["method"] for p in parts) == ["nvml-counter", "nvml-power"]
    assert sum(p["energy_j"] for p in parts) == pytest.approx(run.result.measurement.energy_j)


def test_import_and_load_ext_touch_no_hardware_and_start_no_thread():
    script = textwrap.dedent(
        """
        import sys, threading
        import notebook_carbon
        from IPython.core.interactiveshell import InteractiveShell
        shell = InteractiveShell.instance()
        before = threading.active_count()
        shell.run_cell("%load_ext notebook_carbon", store_history=True)
        touched = sorted({"pynvml", "psutil", "sqlalchemy"} & set(sys.modules))
        print(threading.active_count() - before, touched)
        """
    )
    out = subprocess.run([sys.executable, "-c", script], check=True, capture_output=True, text=True, env={"PATH": ""})
    assert out.stdout.strip() == "0 []", out.stderr


def test_review_a_failed_start_does_not_lose_the_run(tmp_path, monkeypatch):
    # The start's write fails (a lock held too long, a server restarting); the end still records it all.
    import notebook_carbon
    from notebook_carbon.meters.detect import Detection as _Detection
    from notebook_carbon.registry.store import Registry as _Registry
    from notebook_carbon.session import Session as _Session
    from notebook_carbon.settings import Settings as _Settings
    from notebook_carbon.testing import FakeMeter as _FakeMeter

    location = str(tmp_path / "r.sqlite")
    session = _Session(_Settings(registry=location, region="FR"),
                       detection=_Detection(meters=(_FakeMeter("cpu", "rapl", "package-0", 10.0),), notes=()))
    with notebook_carbon.track(name="warm", quiet=True, session=session):
        pass
    original = _Registry.start_run
    calls = []

    def fails_once(self, row):
        calls.append(row["uid"])
        from notebook_carbon.errors import RegistryError

        raise RegistryError("database is locked (simulated)", where=location, cause="database is locked")

    monkeypatch.setattr(_Registry, "start_run", fails_once)
    session.writer().merge_window_s = 0.0  # no merge: the start is written on its own, and fails
    with notebook_carbon.track(name="long", quiet=True, session=session):
        import time

        time.sleep(0.05)
    monkeypatch.setattr(_Registry, "start_run", original)
    assert calls
    with _Registry.open(location) as reg:
        assert sorted(r["name"] for r in reg.runs()) == ["long", "warm"]


def test_review_numpy_and_enum_params_are_recorded(tmp_path):
    import enum

    import numpy as np

    import notebook_carbon
    from notebook_carbon.meters.detect import Detection as _Detection
    from notebook_carbon.registry.store import Registry as _Registry
    from notebook_carbon.session import Session as _Session
    from notebook_carbon.settings import Settings as _Settings
    from notebook_carbon.testing import FakeMeter as _FakeMeter

    class Optimiser(str, enum.Enum):
        ADAM = "adam"

    location = str(tmp_path / "r.sqlite")
    session = _Session(_Settings(registry=location, region="FR"),
                       detection=_Detection(meters=(_FakeMeter("cpu", "rapl", "package-0", 1.0),), notes=()))
    for lr in np.logspace(-3, -1, 3):
        with notebook_carbon.track(quiet=True, session=session, params={"lr": lr, "bs": np.int64(32), "opt": Optimiser.ADAM}):
            pass
    with _Registry.open(location) as reg:
        params = sorted((r["params"] for r in reg.runs()), key=lambda p: p["lr"])
    assert params == [{"lr": pytest.approx(v), "bs": 32, "opt": "adam"} for v in (0.001, 0.01, 0.1)]


def _embodied_note_of_a_gpu_run(tmp_path, gpus: int, used: tuple[int, ...]) -> str:
    """The embodied note of a ``track()`` run on a fake node of ``gpus`` GPUs, holding a context on
    those in ``used``."""
    import os

    from notebook_carbon.meters.detect import detect_meters
    from notebook_carbon.registry import Registry
    from notebook_carbon.session import Session
    from notebook_carbon.settings import Settings
    from notebook_carbon.testing import FakeNVML

    nvml = FakeNVML()
    for _ in range(gpus):
        nvml.add_gpu(energy_mj=lambda t: 200_000.0 * t)
    for index in used:
        nvml.add_process(index, os.getpid(), sm_util=90)
    settings = Settings(registry=str(tmp_path / "r.sqlite"), region="FR")
    session = Session(settings, detection=detect_meters(settings, nvml=nvml))
    with track(name="gpu-run", session=session, quiet=True) as block:
        sum(range(10000))
    with Registry.open(settings.registry) as reg:
        (note,) = [n for n in reg.get_run(block.result.uid)["notes"] if n.startswith("embodied:")]
    return note


def test_a_run_on_one_gpu_of_four_is_charged_a_quarter_of_the_server_s_embodied_emissions(tmp_path):
    """The SCI resource share from the GPUs the run used (its process holds a context on one of the
    host's four): a quarter of the machine, said in the run's embodied note."""
    note = _embodied_note_of_a_gpu_run(tmp_path, 4, (2,))
    assert "resource share 0.25 (1 of the host's 4 GPUs)" in note, note


def test_a_run_shown_some_gpus_through_cuda_visible_devices_is_not_charged_the_whole_server(tmp_path, monkeypatch):
    """Two GPUs of eight, through CUDA_VISIBLE_DEVICES: the two it sees are not the host's, so the
    GPU rule is not used (it would say 2 of 2: the whole server); its CPU affinity gives the share."""
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,1")
    note = _embodied_note_of_a_gpu_run(tmp_path, 8, (0, 1))
    assert "GPUs)" not in note and "by the process's CPU affinity" in note, note

"""The edges of a measurement window: it ends when the cell's code ends, not after IPython has
rendered the traceback; and GPU work already queued by torch, JAX or CuPy is waited for at both
edges, when (and only when) the framework is imported and has a device initialised.

A real IPython ``InteractiveShell`` and a real SQLite registry; the hardware and the frameworks are
fakes (a framework is faked by a module put in ``sys.modules``, never imported for real)."""

from __future__ import annotations

import sys
import time
import types

import pytest
from IPython.core.interactiveshell import InteractiveShell

from notebook_carbon import track
from notebook_carbon.magic import load_ipython_extension, unload_ipython_extension
from notebook_carbon.meters.detect import Detection
from notebook_carbon.registry.store import Registry
from notebook_carbon.session import Session
from notebook_carbon.settings import Settings
from notebook_carbon.testing import FakeMeter

RENDER_S = 0.3


@pytest.fixture
def session(tmp_path):
    detection = Detection(meters=(FakeMeter("cpu", "rapl", "package-0", 30.0),), notes=())
    return Session(Settings(registry=str(tmp_path / "registry.sqlite"), region="FR"), detection=detection)


def recorded_runs(session) -> list[dict]:
    assert session.writer().flush(10)
    with Registry.open(session.settings.registry_location()) as registry:
        return list(reversed(registry.runs()))


class SlowToRender(Exception):
    """Fails at once; IPython takes ``RENDER_S`` to render its traceback (as a long one may)."""

    def _render_traceback_(self) -> list[str]:
        time.sleep(RENDER_S)
        return ["SlowToRender: rendered"]


@pytest.fixture
def slow_error(shell):
    shell.user_ns["SlowToRender"] = SlowToRender
    return "raise SlowToRender()"


# -- the window ends when the code ends ---------------------------------------------------------


def test_a_failing_cell_is_not_charged_for_rendering_its_traceback(shell, session, slow_error, capsys):
    result = shell.run_cell(f"%%carbon --name fails\n{slow_error}\n", store_history=True)
    assert isinstance(result.error_in_exec, SlowToRender)
    out = capsys.readouterr().out
    assert out.index("SlowToRender: rendered") < out.index("carbon [fails] (failed): ")
    (run,) = recorded_runs(session)
    assert run["status"] == "failed"
    assert run["duration_s"] < RENDER_S / 2
    assert run["energy_j"] == pytest.approx(30.0 * run["duration_s"], rel=0.05, abs=0.05)


def test_auto_mode_stops_a_failing_cell_before_its_traceback(shell, session, slow_error):
    shell.run_cell("%carbon auto on", store_history=True)
    result = shell.run_cell(slow_error, store_history=True)
    assert isinstance(result.error_in_exec, SlowToRender)
    (run,) = recorded_runs(session)
    assert run["status"] == "failed" and run["duration_s"] < RENDER_S / 2


def test_an_interrupted_cell_is_not_charged_for_rendering_its_traceback(shell, session):
    class SlowInterrupt(KeyboardInterrupt):
        def _render_traceback_(self) -> list[str]:
            time.sleep(RENDER_S)
            return ["SlowInterrupt"]

    shell.user_ns["SlowInterrupt"] = SlowInterrupt
    result = shell.run_cell("%%carbon\nraise SlowInterrupt()\n", store_history=True)
    assert isinstance(result.error_in_exec, SlowInterrupt)
    (run,) = recorded_runs(session)
    assert run["status"] == "interrupted" and run["duration_s"] < RENDER_S / 2


def test_a_cell_failing_in_a_line_magic_ends_there(shell, session):
    def boom(line):
        raise SlowToRender()

    shell.register_magic_function(boom, "line", "slow_boom")
    result = shell.run_cell("%%carbon\n%slow_boom\nafter = 1\n", store_history=True)
    assert isinstance(result.error_in_exec, SlowToRender)
    assert "after" not in shell.user_ns
    (run,) = recorded_runs(session)
    assert run["status"] == "failed" and run["duration_s"] < RENDER_S / 2


def test_a_syntax_error_stops_the_window_before_it_is_shown(shell, session, monkeypatch):
    show = shell.SyntaxTB.structured_traceback

    def slow(*args, **kwargs):
        time.sleep(RENDER_S)
        return show(*args, **kwargs)

    monkeypatch.setattr(shell.SyntaxTB, "structured_traceback", slow)
    result = shell.run_cell("%%carbon\nx = (\n", store_history=True)
    assert isinstance(result.error_before_exec, SyntaxError)
    (run,) = recorded_runs(session)
    assert run["status"] == "failed" and run["duration_s"] < RENDER_S / 2


def test_a_traceback_a_magic_shows_mid_cell_does_not_end_the_cell(shell, session, tmp_path):
    script = tmp_path / "fails.py"
    script.write_text(
        "import time\n"
        "class Slow(Exception):\n"
        f"    def _render_traceback_(self):\n        time.sleep({RENDER_S})\n        return ['Slow']\n"
        "raise Slow()\n"
    )
    result = shell.run_cell(f"%%carbon\n%run {script}\nafter = 1\n", store_history=True)
    assert result.success and shell.user_ns["after"] == 1  # %run showed a traceback; the cell went on
    (run,) = recorded_runs(session)
    assert run["status"] == "ok" and run["duration_s"] >= RENDER_S


def test_a_failing_cell_run_inside_a_metered_cell_stops_only_its_own_window(shell, session):
    body = "get_ipython().run_cell('%%carbon --name inner\\nraise SlowToRender()\\n')\ntime.sleep(0.1)\n"
    shell.user_ns.update(time=time, SlowToRender=SlowToRender)
    result = shell.run_cell(f"%%carbon --name outer\n{body}", store_history=True)
    assert result.success
    (outer,) = recorded_runs(session)
    assert outer["name"] == "outer" and outer["status"] == "ok"
    assert outer["duration_s"] >= RENDER_S + 0.1  # the inner cell's traceback is the outer cell's code
    from notebook_carbon.registry.parts import parts

    with Registry.open(session.settings.registry_location()) as registry:
        (inner,) = parts(registry, outer["uid"])
    assert inner["name"] == "inner" and inner["status"] == "failed" and inner["duration_s"] < RENDER_S / 2


def test_a_track_block_ends_at_its_exit_inside_a_failing_cell(shell, session, slow_error):
    shell.user_ns.update(track=track, time=time)
    cell = f"%%carbon --name cell\nwith track('block', quiet=True):\n    time.sleep(0.05)\n    {slow_error}\n"
    shell.run_cell(cell, store_history=True)
    (run,) = recorded_runs(session)
    assert run["status"] == "failed" and 0.05 <= run["duration_s"] < 0.05 + RENDER_S / 2


def test_the_wrappers_go_with_the_extension(session):
    shell = InteractiveShell.instance()
    assert "showtraceback" not in vars(shell) and "showsyntaxerror" not in vars(shell)
    load_ipython_extension(shell, session=session)
    assert {"showtraceback", "showsyntaxerror"} <= set(vars(shell))
    unload_ipython_extension(shell)
    assert "showtraceback" not in vars(shell) and "showsyntaxerror" not in vars(shell)


# -- GPU work is waited for at both edges -------------------------------------------------------


class FakeCuda:
    """``torch.cuda`` as far as synchronising goes: device 1 of 2 holds a context."""

    def __init__(self, log: list, *, initialised: bool = True, fail: BaseException | None = None, wait_s=0.0):
        self.log, self.initialised, self.fail, self.wait_s = log, initialised, fail, wait_s

    def is_initialized(self) -> bool:
        return self.initialised

    def device_count(self) -> int:
        return 2

    def synchronize(self, device=None) -> None:
        if self.fail is not None:
            raise self.fail
        time.sleep(self.wait_s)
        self.log.append(("synchronize", device))


def fake_torch(log: list, **kwargs) -> types.ModuleType:
    torch = types.ModuleType("torch")
    torch.cuda = FakeCuda(log, **kwargs)
    torch._C = types.SimpleNamespace(_cuda_hasPrimaryContext=lambda index: index == 1)
    return torch


@pytest.fixture
def no_frameworks(monkeypatch):
    for name in ("torch", "jax", "cupy", "jax._src.xla_bridge"):
        monkeypatch.delitem(sys.modules, name, raising=False)


SYNC = ("synchronize", 1)


def test_torch_is_synchronised_at_both_edges_of_a_cell(shell, session, no_frameworks, monkeypatch):
    log: list = []
    monkeypatch.setitem(sys.modules, "torch", fake_torch(log, wait_s=0.2))
    shell.user_ns["log"] = log
    shell.run_cell("%%carbon\nlog.append('cell')\n", store_history=True)
    assert log == [SYNC, "cell", SYNC]  # device 0 holds no context: never asked (it would create one)
    (run,) = recorded_runs(session)
    # the wait at the end is the cell's (its kernels were running), the wait at the start is not
    assert 0.2 <= run["duration_s"] < 0.4


def test_torch_is_synchronised_at_both_edges_of_a_track_block(session, no_frameworks, monkeypatch):
    log: list = []
    monkeypatch.setitem(sys.modules, "torch", fake_torch(log))
    with track(session=session, quiet=True):
        log.append("block")
    assert log == [SYNC, "block", SYNC]


def test_a_failing_cell_waits_once_at_its_end(shell, session, no_frameworks, monkeypatch, slow_error):
    log: list = []
    monkeypatch.setitem(sys.modules, "torch", fake_torch(log))
    shell.user_ns["log"] = log
    shell.run_cell(f"%%carbon\nlog.append('cell')\n{slow_error}\n", store_history=True)
    assert log == [SYNC, "cell", SYNC]
    (run,) = recorded_runs(session)
    assert run["status"] == "failed" and run["duration_s"] < RENDER_S / 2


def test_torch_without_cuda_set_up_is_not_touched(shell, session, no_frameworks, monkeypatch):
    log: list = []
    monkeypatch.setitem(sys.modules, "torch", fake_torch(log, initialised=False))
    shell.run_cell("%%carbon\nx = 1\n", store_history=True)
    with track(session=session, quiet=True):
        pass
    assert log == []


def test_no_framework_is_imported(shell, session, no_frameworks):
    from notebook_carbon.meters.frameworks import synchronize_gpu_work

    before = set(sys.modules)
    shell.run_cell("%%carbon\nx = 1\n", store_history=True)
    with track(session=session, quiet=True):
        pass
    assert synchronize_gpu_work() == ()
    assert not {"torch", "jax", "cupy"} & set(sys.modules)
    assert not {m for m in set(sys.modules) - before if m.split(".")[0] in ("torch", "jax", "jaxlib", "cupy")}


def test_a_failing_synchronisation_is_a_note_and_the_cell_runs_on(shell, session, no_frameworks, monkeypatch):
    failure = RuntimeError("CUDA error: an illegal memory access")
    monkeypatch.setitem(sys.modules, "torch", fake_torch([], fail=failure))
    result = shell.run_cell("%%carbon\nx = 41 + 1\n", store_history=True)
    assert result.success and shell.user_ns["x"] == 42
    with track(session=session, quiet=True) as block:
        pass
    runs = recorded_runs(session)
    assert [r["status"] for r in runs] == ["ok", "ok"]
    for edge in ("start", "end"):
        note = f"GPU work not waited for at the window's {edge}: torch: RuntimeError: {failure}"
        assert all(note in r["notes"] for r in runs)
    assert block.result.status == "ok"


def test_an_interrupt_in_the_final_wait_still_stops_the_window(session, no_frameworks, monkeypatch):
    log: list = []
    torch = fake_torch(log)
    monkeypatch.setitem(sys.modules, "torch", torch)
    with pytest.raises(KeyboardInterrupt), track(session=session, quiet=True) as block:
        torch.cuda.fail = KeyboardInterrupt()  # the user stops a long wait for the GPU
    assert block.result.status == "ok" and not block._run.window.running
    assert log == [SYNC]  # the end's wait was not tried again


# -- each framework's own check -----------------------------------------------------------------


def test_cupy_waits_only_with_a_current_context(no_frameworks, monkeypatch):
    from notebook_carbon.meters.frameworks import synchronize_gpu_work

    class CUDADriverError(Exception):
        def __init__(self, status):
            self.status = status

    log: list = []
    context = {"value": 0}

    def ctx_get_current():
        if context["value"] is None:
            raise CUDADriverError(3)  # CUDA never initialised
        return context["value"]

    cupy = types.ModuleType("cupy")
    cupy.cuda = types.SimpleNamespace(
        driver=types.SimpleNamespace(ctxGetCurrent=ctx_get_current, CUDADriverError=CUDADriverError),
        runtime=types.SimpleNamespace(deviceSynchronize=lambda: log.append("deviceSynchronize")),
    )
    monkeypatch.setitem(sys.modules, "cupy", cupy)
    for value, expected in ((None, []), (0, []), (0x5EED, ["deviceSynchronize"])):
        context["value"] = value
        log.clear()
        assert synchronize_gpu_work() == ()
        assert log == expected


def test_jax_waits_only_once_its_backends_exist(no_frameworks, monkeypatch):
    from notebook_carbon.meters.frameworks import synchronize_gpu_work

    log: list = []
    state = {"initialised": False}
    device = types.SimpleNamespace(synchronize_all_activity=lambda: log.append("synchronize_all_activity"))
    backend = types.SimpleNamespace(local_devices=lambda: [device])
    bridge = types.ModuleType("jax._src.xla_bridge")
    bridge.backends_are_initialized = lambda: state["initialised"]
    bridge.backends = lambda: log.append("backends") or {"cuda": backend}
    jax = types.ModuleType("jax")
    jax.effects_barrier = lambda: log.append("effects_barrier")
    monkeypatch.setitem(sys.modules, "jax", jax)
    monkeypatch.setitem(sys.modules, "jax._src.xla_bridge", bridge)
    assert synchronize_gpu_work() == () and log == []  # jax.devices() now would create the backends
    state["initialised"] = True
    assert synchronize_gpu_work() == ()
    assert log == ["effects_barrier", "backends", "synchronize_all_activity"]

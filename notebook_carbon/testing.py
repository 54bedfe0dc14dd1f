"""Fakes shipped with the library, for our tests and for yours. Importable without pytest.

``FakePowercap``
    Builds a Linux powercap tree (RAPL packages, dram/core/psys subdomains) in a directory, so the
    real RAPL code reads real files: ``probe_rapl(fake.root)`` or ``Settings(powercap_root=...)``.
``FakeNVML``
    A stand-in for the pynvml module with scripted GPUs; raises pynvml's own exception classes.
``FakeMeter``
    An ``EnergyMeter`` of constant power, for tests of measurement windows and the magic.
``fake_detection``
    A ``Detection`` made of ``FakeMeter``\\ s.

``FakeWidgetFrontEnd``
    A Jupyter client that answers widget messages as JupyterLab's widget manager does, to test
    (and benchmark) what a kernel shows in a widget-capable front end without a browser.

Example::

    from notebook_carbon.testing import FakePowercap
    from notebook_carbon.meters.rapl import probe_rapl

    fake = FakePowercap(tmp_path)
    fake.add_package(energy_uj=1_000_000)
    meter = probe_rapl(fake.root).cpu
    state = meter.begin(0.0)
    fake.set_energy("intel-rapl:0", 3_000_000)
    assert meter.end(state, 1.0) == 2.0  # joules
"""

from __future__ import annotations

import collections
import itertools
import os
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, Union

from .errors import MeterError
from .meters.base import COMPONENTS, METHODS, EnergyMeter
from .meters.detect import Detection
from .meters.rapl import read_energy_uj

DEFAULT_MAX_ENERGY_RANGE_UJ = 262_143_328_850
"""The range most Intel packages report (2**32 units of 61 µJ), about 262 kJ."""

# A file that refuses reads even to root: sysctl permission checks ignore CAP_DAC_OVERRIDE, so a
# write-only sysctl gives a genuine EACCES where chmod 000 would not stop root. The fake never
# writes through the link (see _write_counter).
_WRITE_ONLY_SYSCTL = "/proc/sys/vm/drop_caches"


def _write_counter(path: Path, value_uj: int) -> None:
    """Rewrite a counter file in place, never following a link (an unreadable domain's link
    points at a sysctl that must not be written)."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_TRUNC | os.O_NOFOLLOW)
    except OSError as exc:
        if path.is_symlink():
            raise RuntimeError(f"{path} was made unreadable; call make_readable first") from exc
        raise
    try:
        os.write(fd, f"{value_uj}\n".encode())
    finally:
        os.close(fd)


class FakePowercap:
    """A powercap sysfs tree under ``root``, laid out like ``/sys/class/powercap``.

    Domains are named as the kernel names their directories (``intel-rapl:0``,
    ``intel-rapl:0:1``). Subdomains are created inside their package directory with a link at the
    root, as sysfs does.
    """

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self._scripts: dict[str, collections.deque[int]] = {}

    def _dir(self, domain: str) -> Path:
        path = self.root / domain
        if not path.exists() and domain.count(":") == 2:  # a subdomain added with link=False
            path = self.root / domain.rpartition(":")[0] / domain
        return path

    def energy_path(self, domain: str) -> Path:
        return self._dir(domain) / "energy_uj"

    @staticmethod
    def _write_domain(directory: Path, name: str, energy_uj: int, max_energy_range_uj: int) -> None:
        directory.mkdir(parents=True)
        (directory / "name").write_text(name + "\n")
        (directory / "max_energy_range_uj").write_text(f"{max_energy_range_uj}\n")
        (directory / "energy_uj").write_text(f"{energy_uj}\n")

    def add_package(
        self,
        index: int | None = None,
        *,
        energy_uj: int = 0,
        max_energy_range_uj: int = DEFAULT_MAX_ENERGY_RANGE_UJ,
        name: str | None = None,
    ) -> str:
        """Add ``intel-rapl:N`` named ``package-N`` (or ``name``, e.g. ``psys``); return its id."""
        if index is None:
            index = sum(1 for _ in self.root.glob("intel-rapl:*") if _.name.count(":") == 1)
        domain = f"intel-rapl:{index}"
        self._write_domain(self._dir(domain), name or f"package-{index}", energy_uj, max_energy_range_uj)
        return domain

    def add_psys(self, index: int, *, energy_uj: int = 0) -> str:
        """Add a top-level ``psys`` (platform) domain, which RAPL readers must ignore."""
        return self.add_package(index, energy_uj=energy_uj, name="psys")

    def add_subdomain(
        self,
        package: int,
        name: str,
        *,
        energy_uj: int = 0,
        max_energy_range_uj: int = DEFAULT_MAX_ENERGY_RANGE_UJ,
        link: bool = True,
    ) -> str:
        """Add ``intel-rapl:P:M`` named ``name`` (``dram``, ``core``, ``uncore``); return its id.

        ``link=False`` leaves out the link at the root, as trees copied from ``/sys/devices`` do.
        """
        parent = self.root / f"intel-rapl:{package}"
        sub = sum(1 for _ in parent.glob(f"intel-rapl:{package}:*"))
        domain = f"intel-rapl:{package}:{sub}"
        self._write_domain(parent / domain, name, energy_uj, max_energy_range_uj)
        if link:
            os.symlink(parent / domain, self.root / domain, target_is_directory=True)
        return domain

    def add_dram(self, package: int = 0, *, energy_uj: int = 0, **kwargs: Any) -> str:
        """Add the ``dram`` subdomain of package ``package``."""
        return self.add_subdomain(package, "dram", energy_uj=energy_uj, **kwargs)

    def set_energy(self, domain: str, energy_uj: int) -> None:
        """Set a counter now (rewritten in place, as sysfs shows new values in the same file)."""
        _write_counter(self.energy_path(domain), energy_uj)

    def script(self, domain: str, values_uj: Iterable[int]) -> None:
        """Script the values successive reads of ``domain`` return, through ``read_uj``.

        The first value is written now; ``read_uj`` writes the next one after each read. The last
        value stays once the script is spent.
        """
        values = collections.deque(values_uj)
        if not values:
            raise ValueError("a script needs at least one value")
        self.set_energy(domain, values.popleft())
        self._scripts[os.path.realpath(self.energy_path(domain))] = values

    def read_uj(self, path: str) -> int:
        """A RAPL reader for ``probe_rapl(..., read_uj=fake.read_uj)``: a real read of ``path``,
        after which a scripted domain's file moves on to its next value."""
        value = read_energy_uj(path)
        queue = self._scripts.get(os.path.realpath(path))
        if queue:
            _write_counter(Path(path), queue.popleft())
        return value

    def make_unreadable(self, domain: str) -> None:
        """Make ``energy_uj`` raise ``PermissionError`` when read, as on Linux >= 5.10 without root.

        Not root: ``chmod 000``. Root ignores file modes, so the file is replaced by a link to a
        write-only sysctl file, which refuses reads to root too; ``set_energy`` then refuses to
        write until ``make_readable``. Raises ``RuntimeError`` where neither works (not Linux).
        """
        path = self.energy_path(domain)
        if os.geteuid() != 0:
            path.chmod(0)
            if _refuses_read(str(path)):
                return
            raise RuntimeError(f"chmod 000 did not make {path} unreadable")
        if not _refuses_read(_WRITE_ONLY_SYSCTL):
            raise RuntimeError(f"{_WRITE_ONLY_SYSCTL} is readable here; cannot hide energy_uj from root")
        path.unlink()
        path.symlink_to(_WRITE_ONLY_SYSCTL)

    def make_readable(self, domain: str, energy_uj: int = 0) -> None:
        """Undo ``make_unreadable``: a plain readable counter holding ``energy_uj``."""
        path = self.energy_path(domain)
        path.unlink()
        path.write_text(f"{energy_uj}\n")


def _refuses_read(path: str) -> bool:
    try:
        read_energy_uj(path)
    except PermissionError:
        return True
    except (OSError, ValueError):
        return False
    return False


# A scripted value: a constant, a sequence consumed one per call (the last one repeats), or a
# function of the fake's clock (seconds).
Scripted = Union[float, Sequence[float], Callable[[float], float]]


class _Script:
    def __init__(self, spec: Scripted, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._function: Callable[[float], float] | None = None
        self._values: Iterator[float] | None = None
        if callable(spec):
            self._function = spec
        elif isinstance(spec, (int, float)):
            self._values = itertools.repeat(spec)
        else:
            values = list(spec)
            if not values:
                raise ValueError("a scripted sequence needs at least one value")
            self._values = itertools.chain(values, itertools.repeat(values[-1]))

    def next(self) -> int:
        if self._function is not None:
            return int(self._function(self._clock()))
        assert self._values is not None
        return int(next(self._values))


class FakeGpu:
    """One scripted device of ``FakeNVML``; see ``FakeNVML.add_gpu``."""

    def __init__(
        self, name: str, uuid: str, energy: _Script | None, power: _Script, mig_uuids: Sequence[str]
    ) -> None:
        self.name = name
        self.uuid = uuid
        self.energy = energy
        self.power = power
        self.mig_uuids = tuple(mig_uuids)
        self.error: type[Exception] | None = None
        self.error_on_every_call = False


class _Handle:
    def __init__(self, index: int, mig_slot: int | None = None) -> None:
        self.index = index
        self.mig_slot = mig_slot


class FakeNVML:
    """A module-like stand-in for pynvml: pass it as ``nvml=`` to ``probe_nvml``/``detect_meters``.

    Its errors are pynvml's own classes (``NVMLError``, ``NVMLError_NotSupported``, ...), so the
    backend's ``except`` clauses are exercised as written. ``driver=False`` makes ``nvmlInit`` raise
    ``NVMLError_LibraryNotFound``. ``init_count``/``shutdown_count`` count those calls.
    """

    def __init__(self, *, driver: bool = True, clock: Callable[[], float] = time.monotonic) -> None:
        import pynvml  # the exception classes are the real ones

        for attribute in dir(pynvml):
            if attribute.startswith(("NVMLError", "NVML_ERROR_")):
                setattr(self, attribute, getattr(pynvml, attribute))
        self._pynvml = pynvml
        self.driver = driver
        self.clock = clock
        self.gpus: list[FakeGpu] = []
        self.init_count = 0
        self.shutdown_count = 0

    def add_gpu(
        self,
        name: str = "NVIDIA H100 80GB HBM3",
        *,
        energy_mj: Scripted | None = 0,
        power_mw: Scripted = 0,
        uuid: str | None = None,
        mig_uuids: Sequence[str] = (),
    ) -> int:
        """Add a device; return its index. ``energy_mj=None`` makes it power-only (pre-Volta):
        ``nvmlDeviceGetTotalEnergyConsumption`` then raises ``NVMLError_NotSupported``."""
        index = len(self.gpus)
        uuid = uuid or f"GPU-{index:08x}-1111-2222-3333-444455556666"
        energy = None if energy_mj is None else _Script(energy_mj, self.clock)
        self.gpus.append(FakeGpu(name, uuid, energy, _Script(power_mw, self.clock), mig_uuids))
        return index

    def fail(self, index: int, error: str = "NVMLError_GpuIsLost", *, every_call: bool = False) -> None:
        """Make later energy and power reads of device ``index`` raise pynvml's ``error`` class;
        with ``every_call``, its name and UUID queries too (a device lost before probing)."""
        gpu = self.gpus[index]
        gpu.error = getattr(self._pynvml, error)
        gpu.error_on_every_call = every_call

    # pynvml's API, as far as the backend uses it
    def _live(self) -> None:
        if self.init_count <= self.shutdown_count:
            raise self._pynvml.NVMLError_Uninitialized()

    def _gpu(self, handle: _Handle, *, reading: bool = False) -> FakeGpu:
        self._live()
        gpu = self.gpus[handle.index]
        if gpu.error is not None and (reading or gpu.error_on_every_call):
            raise gpu.error()
        return gpu

    def nvmlInit(self) -> None:
        if not self.driver:
            raise self._pynvml.NVMLError_LibraryNotFound()
        self.init_count += 1

    def nvmlShutdown(self) -> None:
        self._live()
        self.shutdown_count += 1

    def nvmlDeviceGetCount(self) -> int:
        self._live()
        return len(self.gpus)

    def nvmlDeviceGetHandleByIndex(self, index: int) -> _Handle:
        self._live()
        if not 0 <= index < len(self.gpus):
            raise self._pynvml.NVMLError_InvalidArgument()
        return _Handle(index)

    def nvmlDeviceGetName(self, handle: _Handle) -> str:
        return self._gpu(handle).name

    def nvmlDeviceGetUUID(self, handle: _Handle) -> str:
        gpu = self._gpu(handle)
        return gpu.uuid if handle.mig_slot is None else gpu.mig_uuids[handle.mig_slot]

    def nvmlDeviceGetTotalEnergyConsumption(self, handle: _Handle) -> int:
        gpu = self._gpu(handle, reading=True)
        if gpu.energy is None or handle.mig_slot is not None:
            raise self._pynvml.NVMLError_NotSupported()
        return gpu.energy.next()

    def nvmlDeviceGetPowerUsage(self, handle: _Handle) -> int:
        return self._gpu(handle, reading=True).power.next()

    def nvmlDeviceGetMaxMigDeviceCount(self, handle: _Handle) -> int:
        gpu = self._gpu(handle)
        if not gpu.mig_uuids:
            raise self._pynvml.NVMLError_NotSupported()
        return len(gpu.mig_uuids)

    def nvmlDeviceGetMigDeviceHandleByIndex(self, handle: _Handle, slot: int) -> _Handle:
        gpu = self._gpu(handle)
        if not 0 <= slot < len(gpu.mig_uuids):
            raise self._pynvml.NVMLError_NotFound()
        return _Handle(handle.index, slot)


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


# -- a notebook front end with a widget manager, at the protocol level ------------------------------


class FakeWidgetFrontEnd:
    """A Jupyter client doing with comm messages what JupyterLab 4 with ipywidgets 8 does.

    ``widgets=True``: the widget manager's part. On connecting it restores widgets: it opens a
    ``jupyter.widget.control`` comm and sends ``request_states`` (the kernel, without ipywidgets
    imported, closes it: a real front end then falls back on ``comm_info_request``). A
    ``comm_open`` on ``jupyter.widget`` creates a model from its state (protocol major version 2, or
    the comm is closed); a ``DirectionalLinkModel`` copies its source attribute to its target at once
    and sends that as an ``update`` of the target model. Updates from the kernel change models;
    ``comm_close`` removes them. Comms of any other target are closed, as JupyterLab closes comms
    whose target it does not know. ``widgets=False``: JupyterLab without the widget manager, which
    knows no comm target at all.

    ``execute`` sends an execute request as JupyterLab does (``cell_id`` in its metadata and
    ``allow_stdin``), or as a plain client does without them. Every iopub message is handled,
    whatever its parent, and kept in ``messages``.
    """

    def __init__(self, client, *, widgets: bool = True) -> None:
        self.client = client
        self.widgets = widgets
        self.models: dict[str, dict] = {}
        self.messages: list[dict] = []
        if widgets:
            self._open_control_comm()

    # what the front end sends
    def send(self, msg_type: str, content: dict, metadata: dict | None = None) -> str:
        msg = self.client.session.msg(msg_type, content, metadata=metadata or {})
        self.client.shell_channel.send(msg)
        return msg["header"]["msg_id"]

    def execute(self, code: str, *, cell_id: str | None = None, allow_stdin: bool = True) -> str:
        content = {"code": code, "silent": False, "store_history": True, "user_expressions": {},
                   "allow_stdin": allow_stdin, "stop_on_error": True}
        return self.send("execute_request", content, {"cellId": cell_id} if cell_id else {})

    def _open_control_comm(self) -> None:
        comm_id = uuid.uuid4().hex
        content = {"comm_id": comm_id, "target_name": "jupyter.widget.control", "data": {}}
        self.send("comm_open", content, {"version": "1.0.0"})
        self.send("comm_msg", {"comm_id": comm_id, "data": {"method": "request_states"}})

    # what it does with the kernel's messages
    def wait(self, msg_id: str, *, on_message=None, timeout_s: float = 120) -> list[dict]:
        """Handle iopub messages until the request ``msg_id`` is done; return that request's messages."""
        deadline = time.monotonic() + timeout_s
        while True:
            msg = self.client.get_iopub_msg(timeout=max(deadline - time.monotonic(), 0.1))
            self.messages.append(msg)
            self._handle(msg)
            if on_message is not None:
                on_message(msg)
            if msg["msg_type"] == "status" and msg["parent_header"].get("msg_id") == msg_id:
                if msg["content"]["execution_state"] == "idle":
                    return self.of_request(msg_id)

    def of_request(self, msg_id: str) -> list[dict]:
        return [m for m in self.messages if m["parent_header"].get("msg_id") == msg_id]

    def run(self, code: str, **kwargs) -> list[dict]:
        return self.wait(self.execute(code, **kwargs))

    def _handle(self, msg: dict) -> None:
        kind, content = msg["msg_type"], msg["content"]
        if kind == "comm_open":
            version = str(msg["metadata"].get("version", ""))
            if not self.widgets or content["target_name"] != "jupyter.widget" or not version.startswith("2."):
                self.send("comm_close", {"comm_id": content["comm_id"], "data": {}})
                return
            state = dict(content["data"]["state"])
            self.models[content["comm_id"]] = state
            if state.get("_model_name") in ("DirectionalLinkModel", "LinkModel"):
                self._link(state)
        elif kind == "comm_msg" and content["comm_id"] in self.models:
            data = content["data"]
            if data.get("method") in ("update", "echo_update"):
                self.models[content["comm_id"]].update(data["state"])
        elif kind == "comm_close":
            self.models.pop(content["comm_id"], None)

    def _link(self, state: dict) -> None:
        (source, source_attr), (target, target_attr) = state["source"], state["target"]
        source, target = source.removeprefix("IPY_MODEL_"), target.removeprefix("IPY_MODEL_")
        value = self.models[source].get(source_attr)
        if self.models[target].get(target_attr) != value:  # set + save_changes: only a change is sent
            self.models[target][target_attr] = value
            update = {"method": "update", "state": {target_attr: value}, "buffer_paths": []}
            self.send("comm_msg", {"comm_id": target, "data": update})

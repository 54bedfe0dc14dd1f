"""Waiting for the GPU work a framework has queued, so that it is charged to the window that queued it.

torch, JAX and CuPy launch GPU work asynchronously: a cell's last line returns while its kernels
still run, and without a wait at the window's end their energy lands in the next window, or in
none. So a window waits for that work just before it starts (the work queued before it is not its
own) and just before it stops (the work it queued is).

Two rules keep the wait from costing what it measures:

- A framework is synchronised only when it is already in ``sys.modules``: it is never imported here
  (torch takes seconds to import), and when none is, the wait is three dictionary look-ups.
- Only a device the framework has already initialised is synchronised. Asking a device that has no
  CUDA context yet would create one, which on a shared GPU costs hundreds of megabytes of memory and
  energy of its own, charged to code that never used the GPU. Each framework's check is said in its
  function below; where no check is safe, the framework is not synchronised.

A framework whose check or wait fails never stops the user's code: ``synchronize_gpu_work`` returns
the problem as a sentence, which the run records in its notes (its edge may then be early or late
by the work still queued; the run says so rather than pass in silence). A ``KeyboardInterrupt``
during a long wait goes through: the user asked to stop.
"""

from __future__ import annotations

import sys
from types import ModuleType

__all__ = ["synchronize_gpu_work"]

_CUDA_ERROR_NOT_INITIALIZED = 3
"""``cuInit`` was never called in this process (HIP's ``hipErrorNotInitialized`` is 3 too)."""


def synchronize_gpu_work() -> tuple[str, ...]:
    """Wait until the GPU work queued by torch, JAX and CuPy (those already imported) has finished.

    Returns the problems met, one sentence each (``"torch: RuntimeError: ..."``), for the run's notes;
    never raises an ``Exception``. A few dictionary look-ups when no framework is imported.
    """
    modules = sys.modules
    if "torch" not in modules and "jax" not in modules and "cupy" not in modules:
        return ()
    problems = []
    for name, synchronize in _FRAMEWORKS:
        module = modules.get(name)
        if module is None:
            continue
        try:
            synchronize(module)
        except Exception as exc:  # noqa: BLE001 - the user's cell must not fail for our wait: a note says it
            problems.append(f"{name}: {type(exc).__name__}: {exc}")
    return tuple(problems)


def _torch(torch: ModuleType) -> None:
    """``torch.cuda.synchronize(i)``: waits until every kernel of every stream on CUDA device ``i``
    has completed.

    Only once ``torch.cuda.is_initialized()`` (false until torch has set CUDA up, and in a forked
    child: before that torch has queued nothing), and only on the devices that already hold a
    primary context, as ``torch._C._cuda_hasPrimaryContext(i)`` tells (it asks the driver,
    ``cuDevicePrimaryCtxGetState``, without creating one; torch's own tests use it). That check is
    private: on a torch without it, only the current device is synchronised. Switching to device
    ``i`` and back does not create a context on the device switched back to (torch restores it
    lazily when it has none).
    """
    cuda = getattr(torch, "cuda", None)
    if cuda is None or not cuda.is_initialized():
        return
    has_context = getattr(getattr(torch, "_C", None), "_cuda_hasPrimaryContext", None)
    if has_context is None:
        cuda.synchronize()
        return
    for index in range(cuda.device_count()):
        if has_context(index):
            cuda.synchronize(index)


def _cupy(cupy: ModuleType) -> None:
    """``cupy.cuda.runtime.deviceSynchronize()``: waits until all work queued on the current device
    (every stream) has completed.

    Only when this thread has a current CUDA context: ``cupy.cuda.driver.ctxGetCurrent()`` reads it
    without creating one (0: none; it raises ``CUDA_ERROR_NOT_INITIALIZED`` when CUDA was never
    initialised in this process). CuPy's wrappers have no call that asks whether another device
    holds a context without creating one, so work that CuPy queued on another device
    (``with cupy.cuda.Device(1): ...``) and left running is not waited for.
    """
    cuda = getattr(cupy, "cuda", None)
    if cuda is None:
        return
    driver = cuda.driver
    try:
        context = driver.ctxGetCurrent()
    except driver.CUDADriverError as exc:
        if getattr(exc, "status", None) == _CUDA_ERROR_NOT_INITIALIZED:
            return  # CUDA never initialised here: nothing queued
        raise
    if context:
        cuda.runtime.deviceSynchronize()


def _jax(jax: ModuleType) -> None:
    """``jax.effects_barrier()`` (waits until the side effects of the computations already
    dispatched, such as host callbacks, are done), then on every device of every backend JAX has
    created ``device.synchronize_all_activity()`` (waits until all work queued on the device has
    finished); a device without that method gets a tiny computation, whose completion
    (``block_until_ready``) comes after the work queued on the device before it.

    Only once ``jax._src.xla_bridge.backends_are_initialized()``: JAX creates its backends on first
    use, and on a GPU that means a CUDA context and, by default, 75 % of the GPU's memory taken at
    once; ``jax.devices()`` asked before that would create them. The check is private; on a JAX
    without it (nor its ``_backends`` dict), JAX is not synchronised and the run says so.
    """
    bridge = sys.modules.get("jax._src.xla_bridge")
    initialised = getattr(bridge, "backends_are_initialized", None)
    if initialised is not None:
        if not initialised():
            return
    elif isinstance(getattr(bridge, "_backends", None), dict):
        if not bridge._backends:  # type: ignore[union-attr]
            return
    else:
        raise RuntimeError("no way to tell whether JAX has created its backends without creating them")
    jax.effects_barrier()
    for backend in bridge.backends().values():  # type: ignore[union-attr]
        for device in backend.local_devices():
            synchronize = getattr(device, "synchronize_all_activity", None)
            if synchronize is not None:
                synchronize()
            else:
                jax.block_until_ready(jax.device_put(0, device) + 0)


_FRAMEWORKS = (("torch", _torch), ("jax", _jax), ("cupy", _cupy))

"""notebook-carbon: meter the energy and emissions of notebook cells and experiments.

In IPython/Jupyter::

    %load_ext notebook_carbon

    %%carbon --name baseline --param lr=0.1
    train()

In scripts: ``with notebook_carbon.track(name=..., params=...):``. Importing this package is cheap:
it touches no hardware and imports nothing heavy; the names below load on first use.
"""

# Every name bound here is either in __all__ or private (tests/test_exported_members.py): hence the
# underscored imports, and no ``from __future__ import annotations``, which would bind ``annotations``.
import typing as _typing
from importlib import import_module as _import_module

from ._version import __version__

__all__ = [
    "ConfigError",
    "MeterError",
    "NotebookCarbonError",
    "NotebookCarbonWarning",
    "RedundantRunError",
    "RegistryError",
    "Session",
    "Settings",
    "UnknownRegionError",
    "__version__",
    "load_ipython_extension",
    "track",
    "unload_ipython_extension",
]

_LAZY = {
    "track": "api",
    "NotebookCarbonWarning": "errors",
    "Session": "session",
    "Settings": "settings",
    "NotebookCarbonError": "errors",
    "ConfigError": "errors",
    "UnknownRegionError": "errors",
    "MeterError": "errors",
    "RegistryError": "errors",
    "RedundantRunError": "errors",
}

if _typing.TYPE_CHECKING:
    from .api import track
    from .errors import (
        ConfigError,
        MeterError,
        NotebookCarbonError,
        NotebookCarbonWarning,
        RedundantRunError,
        RegistryError,
        UnknownRegionError,
    )
    from .session import Session
    from .settings import Settings


def __getattr__(name: str) -> _typing.Any:
    if name in _LAZY:
        value = getattr(_import_module(f".{_LAZY[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


def load_ipython_extension(shell) -> None:
    """``%load_ext notebook_carbon``: register ``%%carbon``/``%carbon`` and the cell events."""
    from .magic import load_ipython_extension as load

    load(shell)


def unload_ipython_extension(shell) -> None:
    from .magic import unload_ipython_extension as unload

    unload(shell)

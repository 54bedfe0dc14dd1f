"""Locate the data files bundled with codecarbon without importing the codecarbon package.

Importing codecarbon costs ~140 ms and pulls in its logger and HTTP clients; we only need its data
files (grid intensity, CPU TDPs, cloud regions), which a path lookup finds in well under 1 ms.
"""

from __future__ import annotations

import functools
import importlib.util
from pathlib import Path

from .errors import ConfigError


@functools.cache
def codecarbon_data_dir() -> Path:
    """The ``data`` directory inside the installed codecarbon package."""
    spec = importlib.util.find_spec("codecarbon")
    locations = list(spec.submodule_search_locations or []) if spec else []
    for location in locations:
        data = Path(location) / "data"
        if data.is_dir():
            return data
    raise ConfigError(
        "codecarbon's bundled data files were not found; reinstall notebook-carbon "
        "(pip install --force-reinstall notebook-carbon) so its codecarbon dependency is present"
    )


def codecarbon_version() -> str | None:
    """The installed codecarbon version, for citing the data's provenance."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("codecarbon")
    except PackageNotFoundError:
        return None

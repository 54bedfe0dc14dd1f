"""Errors raised by notebook-carbon.

Few classes, one root, so a caller can catch everything of ours with one clause::

    NotebookCarbonError
    ├── ConfigError            a setting or argument is wrong; the message says what to change
    │   └── UnknownRegionError     a region code that the bundled intensity data does not know
    ├── MeterError             a sensor could not be read (the run falls back or degrades)
    └── RegistryError          the registry cannot be opened, migrated or written

Every message says what to do next, not only what went wrong. Errors of the libraries we call
(sqlite3, SQLAlchemy, NVML, OSError on sysfs) are translated at one boundary and chained with
``raise ... from exc`` so the original stays visible.
"""

from __future__ import annotations


class NotebookCarbonError(Exception):
    """Root of every error this package raises on purpose."""


class ConfigError(NotebookCarbonError, ValueError):
    """A setting, magic argument or API argument is invalid."""


class UnknownRegionError(ConfigError):
    """The region is not in the bundled grid-intensity data."""


class MeterError(NotebookCarbonError):
    """An energy sensor could not be read."""


class RegistryError(NotebookCarbonError):
    """The experiment registry could not be opened, migrated or written."""

"""Errors raised by notebook-carbon.

Few classes, one root, so a caller can catch everything of ours with one clause::

    NotebookCarbonError
    ├── ConfigError            (also a ValueError) a setting or argument is wrong; the message says
    │   │                      what to change
    │   └── UnknownRegionError     a region code that the bundled intensity data does not know
    ├── MeterError             a sensor could not be read (the run falls back or degrades)
    ├── RegistryError          the registry cannot be opened, migrated or written
    └── RedundantRunError      ``--on-duplicate error``: the cell repeats an earlier run, not run

    NotebookCarbonWarning      (a UserWarning) metering or recording failed; the user's code ran on

Two exceptions of ours are signals inside one module, caught where they are raised and never seen
by a caller: ``cell.values.Unknown`` (a value that has no digest; its name becomes ``unknown``) and
``importers.codecarbon_rows.RowRejected`` (a row's problems; reported as a ``RowError``).

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
    """The experiment registry could not be opened, migrated or written.

    ``where`` is the registry (a path, or a URL without its password) when known; ``cause`` is
    the reason without the run it happened to concern, so a registry that stays unwritable is
    reported once, not once per run.
    """

    def __init__(self, message: str, *, where: str | None = None, cause: str | None = None) -> None:
        super().__init__(message)
        self.where = where
        self.cause = cause if cause is not None else message


class RedundantRunError(NotebookCarbonError):
    """``--on-duplicate error``: the cell repeats an earlier run and was not run.

    Raised inside the user's cell (the magic's input transformer turns the cell into a ``raise`` of
    it), so it is shown as one line, not as a traceback of a cell that never ran.
    """

    def _render_traceback_(self) -> list[str]:  # IPython shows this instead of a traceback
        return [f"RedundantRunError: {self}"]


class NotebookCarbonWarning(UserWarning):
    """Metering or recording failed; the user's code ran on regardless."""

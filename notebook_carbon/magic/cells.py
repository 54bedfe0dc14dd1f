"""A cell between its pre- and post-run events: what it opened, where it sits on the stack, how it ended.

Kept apart from ``extension.py`` (which acts on the events) because this part knows only IPython's
cell machinery: which frame runs the cell, how many cells run around it, what its result says.
"""

from __future__ import annotations

import re
import sys

from IPython.core.interactiveshell import InteractiveShell

from ..cell.args import CellArgs
from ..session import ActiveRun

LINE_MAGIC_CELL = re.compile(r"\s*%carbon(?=\s|$)[^\n]*\s*\Z")
"""A cell that is only a ``%carbon ...`` command: auto mode leaves it unmetered."""


class OpenCell:
    """A cell between its pre- and post-run events: the run it opened, if any, and its arguments."""

    __slots__ = ("info", "run", "args", "depth")

    def __init__(self, info, depth: int) -> None:
        self.info = info
        self.run: ActiveRun | None = None
        self.args = CellArgs()
        self.depth = depth
        """How many cells run around this one (0: a cell the user ran, 1: one it ran with run_cell...)."""


_RUN_CELL_CODE = InteractiveShell.run_cell_async.__code__
"""Every cell runs through this coroutine once, whether started by ``run_cell`` or, as ipykernel
does for a cell with a top-level ``await``, by ``run_cell_async`` itself."""


def cell_frame():
    """The frame running the current cell (its ``run_cell_async``), alive until the cell ends."""
    frame = sys._getframe(1)
    while frame is not None and frame.f_code is not _RUN_CELL_CODE:
        frame = frame.f_back
    return frame


def cell_depth() -> int:
    """How many cells run around the caller's (a few µs): ``run_cell_async`` frames on the stack, less one."""
    depth, frame = -1, sys._getframe(1)
    while frame is not None:
        if frame.f_code is _RUN_CELL_CODE:
            depth += 1
        frame = frame.f_back
    return max(depth, 0)


def status_of(result) -> tuple[str, BaseException | str | None]:
    """The run status a cell's ``ExecutionResult`` means (``None``: the cell never finished), and why."""
    if result is None:
        return "interrupted", "the cell was stopped before it finished"
    error = result.error_in_exec or result.error_before_exec
    if error is None:
        return "ok", None
    if isinstance(error, KeyboardInterrupt):
        return "interrupted", error
    return "failed", error

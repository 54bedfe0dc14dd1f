"""A cell between its pre- and post-run events: what it opened, where it sits on the stack, how it ended.

Kept apart from ``extension.py`` (which acts on the events) because this part knows only IPython's
cell machinery: which frame runs the cell, how many cells run around it, what its result says, and
when IPython is about to show the traceback that ends its code (``CodeEndHook``).
"""

from __future__ import annotations

import functools
import re
import sys
from collections.abc import Callable

from IPython.core.interactiveshell import InteractiveShell

from ..cell.args import CellArgs
from ..session import ActiveRun
from .jobs import JobVariable

LINE_MAGIC_CELL = re.compile(r"\s*%carbon(?=\s|$)[^\n]*\s*\Z")
"""A cell that is only a ``%carbon ...`` command: auto mode leaves it unmetered."""


class OpenCell:
    """A cell between its pre- and post-run events: the run it opened, if any, and its arguments."""

    __slots__ = ("args", "depth", "info", "job_variable", "run")

    def __init__(self, info, depth: int) -> None:
        self.info = info
        self.run: ActiveRun | None = None
        self.args = CellArgs()
        self.job_variable: JobVariable | None = None
        """``--job``: ``NOTEBOOK_CARBON_JOB`` as set for the cell's ranks, restored when it ends."""
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


_SHOWING = ("showtraceback", "showsyntaxerror")
"""The shell's methods that render an exception: the hook wraps them on the shell instance."""
_PASSING = frozenset(_SHOWING + ("showindentationerror",))
"""Frames that only pass an exception on to be shown (``showtraceback`` calls ``showsyntaxerror``)."""
_ENDING = ("run_code", "run_ast_nodes", "run_cell_async")
"""IPython's methods whose call of ``showtraceback`` means the cell's code is over: it raised (or,
for ``run_cell_async`` and ``run_ast_nodes``, could not be run at all)."""


class CodeEndHook:
    """Calls ``on_end()`` when IPython is about to render the traceback that ends a cell's code.

    IPython fires ``post_run_cell`` only after the traceback is formatted and shown (and formatted
    again for the history): a long traceback takes far longer than the code that raised. So
    ``showtraceback`` and ``showsyntaxerror`` are wrapped on the shell instance (``install``;
    ``uninstall`` restores them), and ``on_end`` runs first when they are called by IPython's own
    cell machinery. A traceback that a line magic shows while the cell goes on (``%run`` of a failing
    script) is shown from the magic, not from those methods, and ends nothing. Another extension
    that wraps ``showtraceback`` after this one hides the caller: its cells then end at
    ``post_run_cell``, as before. ``on_end`` must not raise.
    """

    def __init__(self, shell, on_end: Callable[[], None]) -> None:
        self.shell = shell
        self.on_end = on_end
        self.active = False
        self._ending = frozenset(
            vars(cls)[name].__code__
            for cls in type(shell).__mro__
            for name in _ENDING
            if name in vars(cls) and hasattr(vars(cls)[name], "__code__")
        )
        self._saved: dict[str, tuple[bool, object, Callable]] = {}

    def install(self) -> None:
        for name in _SHOWING:
            had, before = name in vars(self.shell), vars(self.shell).get(name)
            wrapper = self._wrap(getattr(self.shell, name))
            setattr(self.shell, name, wrapper)
            self._saved[name] = (had, before, wrapper)
        self.active = True

    def uninstall(self) -> None:
        self.active = False  # a wrapper left in place (another one sits on it) now only passes through
        for name, (had, before, wrapper) in self._saved.items():
            if vars(self.shell).get(name) is not wrapper:
                continue
            if had:
                setattr(self.shell, name, before)
            else:
                delattr(self.shell, name)
        self._saved.clear()

    def _wrap(self, show: Callable) -> Callable:
        @functools.wraps(show)
        def shown(*args, **kwargs):
            try:
                if self.active and self.ends_code(sys._getframe(1)):
                    self.on_end()
            except KeyboardInterrupt:
                pass  # as IPython's showtraceback itself does: the traceback still shows (and the
                # run's window stops at post_run_cell)
            return show(*args, **kwargs)

        return shown

    def ends_code(self, frame) -> bool:
        """Whether an exception shown from ``frame`` (the caller of a wrapped method) ends a cell's code."""
        while frame is not None and frame.f_code.co_name in _PASSING:
            frame = frame.f_back
        return frame is not None and frame.f_code in self._ending

"""IPython integration: ``%%carbon``, ``%carbon`` and auto mode.

How a ``%%carbon`` cell runs, and why. The cell must behave exactly as without the magic: variables,
display of the last expression, ``await`` at top level, and a normal traceback that marks the cell
failed. Executing the body inside a cell-magic function breaks several of these (nested
``run_cell`` fires the cell events twice and cannot ``await``; ``exec`` inside the magic adds frames
to tracebacks). So the cell is not run by us at all:

1. an input transformer (pure text, safe for IPython's completeness checks) turns the
   ``%%carbon ...`` line into a comment, so IPython runs the body as an ordinary cell with its line
   numbers unchanged; bad arguments turn the whole cell into a ``raise UsageError(...)``, so the
   body never runs;
2. the ``pre_run_cell`` event parses the same line and opens the run (window + ``running`` record);
3. the ``post_run_cell`` event, which fires after the cell's output and traceback are shown, closes
   the run with ``ok``, ``failed`` or ``interrupted`` and prints the one-line summary. A failing
   cell's window has stopped before that: the shell's ``showtraceback`` and ``showsyntaxerror`` are
   wrapped on the instance while the extension is loaded, and stop the windows of the runs opened
   for the cell when IPython calls them to show the exception that ended its code (rendering a long
   traceback can take far longer than the code that raised it).

Auto mode (``%carbon auto on``) uses the same two events for every cell. A registered ``%%carbon``
cell magic remains for callers that invoke it directly (``run_cell_magic``), where no transformer
runs. Any failure of ours is caught at this boundary and shown as one warning line; the user's cell
output and exception always come through untouched.

The package, by concern: ``cells.py`` (a cell between its two events: its frame, depth and
status), ``extension.py`` (``CarbonExtension``: the transformer, the events, opening and closing
runs, auto mode), ``jobs.py`` (``--job``: a cell that drives a distributed job owns its run, and
``NOTEBOOK_CARBON_JOB`` names it to the ranks the cell starts), ``commands.py`` (``CarbonMagics``:
the ``%carbon`` commands and the directly called ``%%carbon``); here, loading and unloading the
extension.
"""

from __future__ import annotations

from IPython.core.error import UsageError

from ..cell.args import parse_cell_args, transform_carbon_cell
from ..errors import NotebookCarbonError
from ..integrations import trackers
from ..session import Session, attach, detach
from .commands import SUBCOMMANDS, CarbonMagics
from .extension import CarbonExtension

__all__ = [
    "SUBCOMMANDS",
    "CarbonExtension",
    "CarbonMagics",
    "current_extension",
    "extension_for",
    "load_ipython_extension",
    "parse_cell_args",
    "transform_carbon_cell",
    "unload_ipython_extension",
]

_extensions: dict[int, CarbonExtension] = {}


def load_ipython_extension(shell, session: Session | None = None) -> CarbonExtension:
    try:
        ext = CarbonExtension(shell, session)
    except NotebookCarbonError as exc:  # a bad config file or NOTEBOOK_CARBON_* value: say which
        raise UsageError(f"notebook-carbon could not load: {exc}") from None
    _extensions[id(shell)] = ext
    attach(shell, ext.session)  # track(), the widgets and integrations use it (session.current)
    shell.register_magics(CarbonMagics(shell, ext))
    shell.events.register("pre_run_cell", ext.pre_run_cell)
    shell.events.register("post_run_cell", ext.post_run_cell)
    shell.input_transformers_cleanup.append(ext.transformer)
    ext.code_end.install()
    trackers.install()  # each metered cell's figures go to an active MLflow or W&B run too
    return ext


def unload_ipython_extension(shell) -> None:
    ext = _extensions.pop(id(shell), None)
    if ext is None:
        return
    detach(shell)
    ext.code_end.uninstall()
    ext.frontend.close()
    shell.events.unregister("pre_run_cell", ext.pre_run_cell)
    shell.events.unregister("post_run_cell", ext.post_run_cell)
    if ext.transformer in shell.input_transformers_cleanup:
        shell.input_transformers_cleanup.remove(ext.transformer)


def extension_for(shell) -> CarbonExtension | None:
    """The loaded extension of ``shell`` (for tests; others use ``session.current()``)."""
    return _extensions.get(id(shell))


def current_extension() -> CarbonExtension | None:
    """The extension of the running IPython shell, if there is one and it is loaded."""
    from IPython import get_ipython

    shell = get_ipython()
    return extension_for(shell) if shell is not None else None

"""Notebook widgets: the project's dashboard.

::

    from notebook_carbon.widgets import Dashboard

    Dashboard()                          # the loaded extension's registry and project
    Dashboard("runs.sqlite", "vision")   # any registry and project
    board = Dashboard(); board.refresh() # read the registry again

In a notebook with the extension loaded, ``%carbon dashboard`` shows one that refreshes after each
metered cell, and ``%carbon dashboard --side`` opens it in a JupyterLab side panel. ``figures``
computes what is shown from a frame of runs (pure), ``markup`` lays it out as escaped HTML (pure),
``dashboard`` holds the widgets, ``command`` the magic's subcommand. Nothing on the metering path
imports this package.
"""

from __future__ import annotations

from .command import USAGE, dashboard_magic
from .dashboard import Dashboard

__all__ = ["USAGE", "Dashboard", "dashboard_magic"]

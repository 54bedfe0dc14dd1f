"""``%carbon dashboard [--side]``: the line magic's subcommand, called by ``magic.CarbonMagics``.

Kept here rather than in ``magic`` so that loading the extension never imports ipywidgets,
pandas or altair: they are imported when a dashboard is first asked for.
"""

from __future__ import annotations

from typing import Any

from IPython.core.error import UsageError
from IPython.display import display

from ..errors import NotebookCarbonError
from .dashboard import Dashboard

USAGE = "%carbon dashboard [--side]        totals, sweeps and charts; --side: in a side panel"
"""The line of ``%carbon``'s help for this subcommand."""


def dashboard_magic(extension: Any, args: list[str]) -> None:
    """``%carbon dashboard``: display a ``Dashboard`` of the session's registry and project that
    refreshes after each metered cell; with ``--side``, in a JupyterLab side panel instead."""
    if args not in ([], ["--side"]):
        got = " ".join(args)
        raise UsageError(
            f"%carbon dashboard takes no argument, or --side to open it in a side panel; got {got!r}"
        )
    try:
        # it follows the cells: its charts drawn apart, finished before the next cell starts; in
        # the notebook, the first ones drawn before it is displayed, for its static snapshot
        dashboard = Dashboard(session=extension.session, shell=extension.shell, wait=not args)
    except NotebookCarbonError as exc:
        raise UsageError(f"%carbon dashboard: {exc}") from None
    if args:
        try:
            dashboard.show_side()
        except NotebookCarbonError as exc:  # no sidecar package
            dashboard.close()
            raise UsageError(f"%carbon dashboard --side: {exc}") from None
    dashboard.follow(extension)
    if args:
        print(
            f"notebook-carbon: the dashboard of project {dashboard.project} is in the side panel", flush=True
        )
    else:  # with a display id: each refresh replaces the static snapshot the output carries
        dashboard.display_handle = display(dashboard, display_id=True)

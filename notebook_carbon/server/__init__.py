"""The Jupyter server extension: the registry's figures over read-only REST endpoints, for the
JupyterLab sidebar.

Enabled on ``pip install`` by ``jupyter-config/jupyter_server_config.d/notebook_carbon.json``
(``ServerApp.jpserver_extensions`` names this module, ``notebook_carbon.server``, so the top-level
package, which the magic imports, stays free of server code). Every endpoint is a ``GET`` under
``<base_url>/notebook-carbon/`` and needs the server's authentication:

======================  ==============================================================
``summary``             a project's (or one notebook's) totals with ranges, overhead
``sweeps``              the project's sweeps, most energy first
``runs``                a page of runs, newest first, with the total count (a distributed
                        job is one run, with its ranks and nodes counted)
``parts``               one run (``run=ID``, else the newest) and its parts: a distributed
                        job's ranks, the blocks metered inside it
``redundant``           a page of redundant runs, each with the run it repeats (and its
                        notebook under the server's root and cell, to open it at)
``history``             the project's cumulative emissions over time, in a few spans
``statement``           the impact statement as Markdown, LaTeX, JSON or model-card YAML
======================  ==============================================================

The registry is the server's setting (``NotebookCarbonServer.registry``, by default the package's
settings), opened read-only once and closed on shutdown; no request can name another. Energy in J,
emissions in g CO2e, water in L, times of runs in UTC epoch seconds. See docs/server.md.
"""

from __future__ import annotations

from typing import Any

from .app import NotebookCarbonServer

__all__ = ["NotebookCarbonServer"]


def _jupyter_server_extension_points() -> list[dict[str, Any]]:
    """What ``jupyter server`` loads from this module: one extension, an ``ExtensionApp``."""
    return [{"module": "notebook_carbon.server", "app": NotebookCarbonServer}]


def _load_jupyter_server_extension(serverapp: Any) -> None:
    """Register the handlers with ``serverapp`` (what jupyter_server calls through the app)."""
    NotebookCarbonServer._load_jupyter_server_extension(serverapp)

"""``NotebookCarbonServer``: the extension's settings (traitlets) and the handlers it registers.

An ``ExtensionApp`` rather than a bare load function because jupyter_server stops extension apps
on shutdown (``stop_extension``): that is where the one open registry is closed.
"""

from __future__ import annotations

import threading

from jupyter_server.extension.application import ExtensionApp
from traitlets import Int, Unicode, default

from .handlers import PREFIX, ROUTES
from .reader import RegistryReader


class NotebookCarbonServer(ExtensionApp):
    """The notebook-carbon server extension; configure it as ``c.NotebookCarbonServer.<name>``."""

    name = "notebook_carbon"

    registry = Unicode(
        help="The registry the endpoints read: an SQLite file or a database URL. Opened read-only; "
        "requests cannot name another. Default: the notebook-carbon settings' registry "
        "(NOTEBOOK_CARBON_REGISTRY, the config file, else the user data directory)."
    ).tag(config=True)

    project = Unicode(
        help="The project an endpoint reports when the request names none. Default: the "
        "notebook-carbon settings' project."
    ).tag(config=True)

    max_page_size = Int(
        500, help="The largest `limit` a request for a page of runs may ask for (400 above it)."
    ).tag(config=True)

    @default("registry")
    def _default_registry(self) -> str:
        from ..settings import resolve

        return resolve().registry_location()

    @default("project")
    def _default_project(self) -> str:
        from ..settings import resolve

        return resolve().project

    def initialize_handlers(self) -> None:
        from ..settings import resolve

        root = getattr(self.serverapp, "root_dir", None) if self.serverapp is not None else None
        self.reader = RegistryReader(self.registry, settings=resolve(), log=self.log, root=root)
        options = {"reader": self.reader, "project": self.project, "max_page_size": self.max_page_size}
        # ExtensionApp prepends the server's base_url to each pattern
        self.handlers.extend((f"/{PREFIX}/{path}", handler, options) for path, handler in ROUTES)
        # the registry opened and its reads compiled before the first request (the sidebar opening)
        threading.Thread(
            target=self.reader.warm, args=(self.project,), name="notebook-carbon-warm", daemon=True
        ).start()

    async def stop_extension(self) -> None:
        reader = getattr(self, "reader", None)
        if reader is not None:
            reader.close()

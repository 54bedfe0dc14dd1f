"""The REST handlers: parse and check a request's parameters, ask the reader off the event loop,
answer JSON (or the statement's text).

Every handler is an ``APIHandler`` (errors as JSON, never an HTML traceback page) and every method
is ``@web.authenticated`` (an unauthenticated request gets 403) and ``@authorized`` (the server's
authorizer is asked for ``read`` on the ``notebook_carbon`` resource). Bad parameters get 400 with
a message saying what to send; a registry that cannot be read gets 503 with the registry's own
message. Parameters a handler does not know are ignored: the registry is the server's setting,
never a request's.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Callable
from typing import Any

from jupyter_server.auth.decorator import authorized
from jupyter_server.base.handlers import APIHandler
from tornado import web

from ..errors import ConfigError, RegistryError
from ..record import STATUSES
from ..statements import FORMATS, TRAINING_TYPES
from .reader import RegistryReader

PREFIX = "notebook-carbon"
AUTH_RESOURCE = "notebook_carbon"
DEFAULT_LIMIT = 50
DEFAULT_SPANS = 60
"""The spans of time the history endpoint sums the runs in, unless asked for another number."""
DEFAULT_TRADEOFFS = 3
MAX_TRADEOFFS = 50
"""How many sweeps the tradeoffs endpoint answers unless asked, and at most (each reads its runs)."""
MAX_RUN_ID = 2**63 - 1
"""Run ids are 64-bit signed integers in every registry database."""
MAX_OFFSET = 10**12
"""The largest ``offset`` a request may ask for: more runs than any registry holds, and well inside
the 64-bit integers SQLite and PostgreSQL take for OFFSET (a larger one would fail in the database)."""
CONTENT_TYPES = {
    "md": "text/markdown; charset=UTF-8",
    "latex": "application/x-latex; charset=UTF-8",
    "json": "application/json; charset=UTF-8",
    "model-card": "text/markdown; charset=UTF-8",  # the YAML block a model card's README.md starts with
    "latex-fragment": "application/x-latex; charset=UTF-8",
    "bib": "application/x-bibtex; charset=UTF-8",
    "checklist": "text/markdown; charset=UTF-8",
    "sci-ai": "text/markdown; charset=UTF-8",
    "sci-ai-json": "application/json; charset=UTF-8",
    "boamps": "application/json; charset=UTF-8",
}


class _Handler(APIHandler):
    """What every endpoint shares: the reader, the default project, parameter checks."""

    auth_resource = AUTH_RESOURCE

    def initialize(self, reader: RegistryReader, project: str, max_page_size: int) -> None:
        self.reader = reader
        self.default_project = project
        self.max_page_size = max_page_size

    def _project(self) -> str:
        return self.get_query_argument("project", "") or self.default_project

    def _optional(self, name: str) -> str | None:
        return self.get_query_argument(name, "") or None

    def _count(self, name: str, default: int, *, most: int, hint: str = "", least: int = 0) -> int:
        text = self.get_query_argument(name, str(default)).strip()
        # ASCII digits only: str.isdigit also takes "²", which int() refuses, and other scripts' digits
        if not (text.isascii() and text.isdigit()) or (len(text) <= len(str(most)) and int(text) < least):
            raise web.HTTPError(400, f"{name} must be a whole number of {least} or more; got {text[:40]!r}")
        if len(text) > len(str(most)) or int(text) > most:  # the length first: int() of 5,000 digits fails
            raise web.HTTPError(400, f"{name} must be at most {most}{hint}; got {text[:40]}")
        return int(text)

    def _page(self) -> tuple[int, int]:
        """The ``limit`` and ``offset`` of a page of runs."""
        limit = self._count("limit", DEFAULT_LIMIT, most=self.max_page_size, hint=" (ask for the next page with offset)")
        return limit, self._count("offset", 0, most=MAX_OFFSET)

    async def _notebook(self, project: str) -> str | None:
        """The ``notebook`` asked for, as the runs record it. The front end knows a path relative to
        the server's root; a kernel this server started records its notebook's absolute path (from
        ``__session__``). So a relative path is taken absolute under the root when runs were
        recorded so, and as given otherwise; an absolute path is taken as it is."""
        notebook = self._optional("notebook")
        root = self.settings.get("server_root_dir")
        if notebook is None or os.path.isabs(notebook) or not root:
            return notebook
        absolute = os.path.join(os.path.abspath(os.path.expanduser(root)), notebook)
        return absolute if await self._read(self.reader.count, project, absolute) else notebook

    def _choice(self, name: str, allowed: tuple[str, ...], default: str | None) -> str | None:
        value = self.get_query_argument(name, "") or default
        if value is not None and value not in allowed:
            raise web.HTTPError(400, f"unknown {name} {value[:40]!r}; choose one of {', '.join(allowed)}")
        return value

    async def _read(self, method: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """``method`` on a worker thread, so a slow query never blocks the server."""
        try:
            return await asyncio.to_thread(method, *args, **kwargs)
        except RegistryError as exc:
            raise web.HTTPError(503, f"cannot read the notebook-carbon registry: {exc}") from exc
        except ConfigError as exc:
            raise web.HTTPError(400, str(exc)) from exc

    def _json(self, data: Any) -> None:
        self.finish(json.dumps(data, allow_nan=False), set_content_type="application/json; charset=UTF-8")


class SummaryHandler(_Handler):
    """``GET summary?project=P&notebook=N``: totals with ranges and the development overhead."""

    @web.authenticated
    @authorized
    async def get(self) -> None:
        project = self._project()
        self._json(await self._read(self.reader.summary, project, await self._notebook(project)))


class SweepsHandler(_Handler):
    """``GET sweeps?project=P&params=false``: every sweep, most energy first, with its varying
    parameters unless ``params=false`` (one read more per sweep that has some)."""

    @web.authenticated
    @authorized
    async def get(self) -> None:
        params = self._choice("params", ("true", "false"), "true") == "true"
        self._json(await self._read(self.reader.sweeps, self._project(), params=params))


class RunsHandler(_Handler):
    """``GET runs?project=P&status=S&sweep=K&limit=50&offset=0``: a page of runs, newest first."""

    @web.authenticated
    @authorized
    async def get(self) -> None:
        project, status = self._project(), self._choice("status", STATUSES, None)
        limit, offset = self._page()
        sweep = self._optional("sweep")
        page = await self._read(
            self.reader.runs, project, status=status, sweep=sweep, limit=limit, offset=offset
        )
        self._json(
            {"project": project, "status": status, "sweep": sweep, "limit": limit, "offset": offset, **page}
        )


class PartsHandler(_Handler):
    """``GET parts?run=ID``: one run (its id or uid) and its parts, a distributed job's ranks and
    the blocks metered inside it; 404 when the registry has no such run. Without ``run``: the
    newest run of the project (``project=P``), or ``"run": null`` when it has none."""

    @web.authenticated
    @authorized
    async def get(self) -> None:
        text = self.get_query_argument("run", "").strip()
        run = _run_id(text) if text else None
        found = await self._read(self.reader.parts, run, self._project())
        if found is None:
            raise web.HTTPError(404, f"there is no run {run} in the notebook-carbon registry; see the runs endpoint")
        self._json(found)


def _run_id(text: str) -> int | str:
    """A run id (ASCII digits, 1 to 2**63 - 1) or uid (32 hex digits), else 400."""
    from ..registry.values import is_uid

    if is_uid(text):
        return text
    if text.isascii() and text.isdigit() and len(text) <= len(str(MAX_RUN_ID)) and 1 <= int(text) <= MAX_RUN_ID:
        return int(text)
    raise web.HTTPError(
        400, f"{text[:40]!r} is neither a run id (a number from 1 to {MAX_RUN_ID}) nor a run uid (32 hex digits)"
    )


class RedundantHandler(_Handler):
    """``GET redundant?project=P&limit=50&offset=0``: redundant runs, each with the run it repeats."""

    @web.authenticated
    @authorized
    async def get(self) -> None:
        project = self._project()
        limit, offset = self._page()
        page = await self._read(self.reader.redundant, project, limit=limit, offset=offset)
        self._json({"project": project, "limit": limit, "offset": offset, **page})


class HistoryHandler(_Handler):
    """``GET history?project=P&spans=60``: the project's cumulative emissions and runs over time, in
    at most ``spans`` equal spans of time (``registry.history``): what the sidebar's chart draws."""

    @web.authenticated
    @authorized
    async def get(self) -> None:
        from ..registry.history import MAX_SPANS

        project = self._project()
        spans = self._count("spans", DEFAULT_SPANS, most=MAX_SPANS, least=1)
        self._json(await self._read(self.reader.history, project, spans))


class TradeoffsHandler(_Handler):
    """``GET tradeoffs?project=P&limit=5``: the costliest result sweeps whose runs logged a metric,
    each with its selected run, the cheapest run within the tolerance of it, its front and its runs
    as points of metric against energy (``analysis.tradeoffs``): what the sidebar draws."""

    @web.authenticated
    @authorized
    async def get(self) -> None:
        limit = self._count("limit", DEFAULT_TRADEOFFS, most=MAX_TRADEOFFS, least=1)
        self._json(await self._read(self.reader.tradeoffs, self._project(), limit))


class StatementHandler(_Handler):
    """``GET statement?project=P&format=FORMAT&training_type=...&notebook=N`` (``statements.FORMATS``)."""

    @web.authenticated
    @authorized
    async def get(self) -> None:
        fmt = self._choice("format", FORMATS, "md")
        training_type = self._choice("training_type", TRAINING_TYPES, None)  # the model card's: only when given
        project = self._project()
        text = await self._read(
            self.reader.statement, project, fmt, notebook=await self._notebook(project), training_type=training_type,
        )  # fmt: skip
        self.finish(text, set_content_type=CONTENT_TYPES[fmt])


ROUTES = (
    ("summary", SummaryHandler),
    ("sweeps", SweepsHandler),
    ("runs", RunsHandler),
    ("parts", PartsHandler),
    ("redundant", RedundantHandler),
    ("history", HistoryHandler),
    ("tradeoffs", TradeoffsHandler),
    ("statement", StatementHandler),
)
"""Each endpoint's path under ``<base_url>/notebook-carbon/`` and its handler."""

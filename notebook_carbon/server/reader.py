"""``RegistryReader``: the one read-only registry of a server, and what its endpoints compute.

The registry is opened on first use (a server started before the first metered cell still comes
up, and finds the registry once a kernel has created it) and then kept open until shutdown. Every
method is synchronous and is called off the event loop by the handlers.

A summary or statement of a large project takes seconds to compute (every run is read to give
ranges, embodied emissions and the development overhead, the same figures the statement prints),
so the facts are kept in memory with the project's change token (``queries.change_token``) and
recomputed only when it moves; the sweep listing likewise with the sweeps' generations (a
read-only registry cannot store ``list_sweeps``'s own cache). The token is read on every request:
a summary is never older than the registry. It does not see an edit of a column no summary of a
sweep depends on (``schema.SWEEP_SUMMARY_COLUMNS``) made without ``updated_at`` (a hand-made fix
in SQL), which a restart of the server shows.
"""

from __future__ import annotations

import collections
import datetime
import logging
import threading
from typing import Any

from ..errors import RegistryError
from ..settings import Settings
from . import queries

CACHED = 16
"""Computed facts kept, one per (project, notebook) asked for, least recently used dropped."""


class RegistryReader:
    """Reads the registry at ``location`` for the endpoints; ``settings`` give what a statement
    computes for runs recorded without it (embodied emissions, water)."""

    def __init__(self, location: str, *, settings: Settings, log: logging.Logger | None = None) -> None:
        self.location = location
        self.settings = settings
        self._log = log or logging.getLogger(__name__)
        self._registry: Any = None
        self._opening = threading.Lock()
        self._computing = threading.Lock()  # one cold computation at a time, the others wait for it
        self._guard = threading.Lock()  # the caches' dicts, shared by the executor's threads
        self._facts: collections.OrderedDict[tuple, tuple[tuple, dict[str, Any]]] = collections.OrderedDict()
        self._sweeps: dict[str, tuple[tuple, list[Any]]] = {}
        self._closed = False

    # -- the registry ------------------------------------------------------------------------

    def registry(self) -> Any:
        """The open registry, opened read-only on first use; ``RegistryError`` if it cannot be."""
        with self._opening:
            if self._closed:
                raise RegistryError("the notebook-carbon server extension has shut down")
            if self._registry is None:
                from ..registry import Registry

                self._registry = Registry.open(self.location, read_only=True)
                self._log.info("notebook-carbon: reading registry %s", self._registry.where)
            return self._registry

    def close(self) -> None:
        with self._opening:
            self._closed = True
            if self._registry is not None:
                self._registry.close()
                self._registry = None

    # -- the endpoints -----------------------------------------------------------------------

    def summary(self, project: str, notebook: str | None = None) -> dict[str, Any]:
        """The totals of ``project`` (or of one notebook's runs in it), as the statement gives them:
        runs and statuses, energy, facility energy, emissions, embodied, their sum and water with
        ranges, the development overhead."""
        facts, registry = self._cached_facts(project, notebook)
        return {
            "project": project,
            "notebook": notebook,
            "registry": registry.where,
            "computed_at": facts["generated_at"],
            "runs": facts["scope"]["runs"],
            "statuses": facts["scope"]["statuses"],
            "first_run_at": facts["scope"]["first_run_at"],
            "last_run_at": facts["scope"]["last_run_at"],
            "totals": facts["totals"],
            "development": facts["development"],
        }

    def statement(self, project: str, fmt: str, *, notebook: str | None = None,
                  training_type: str = "pre-training") -> str:  # fmt: skip
        """The impact statement in ``fmt`` (``statements.FORMATS``), from the cached facts."""
        from ..statements.render import render

        facts, _ = self._cached_facts(project, notebook)
        return render(facts, fmt, training_type=training_type)

    def sweeps(self, project: str) -> list[Any]:
        """``list_sweeps`` of ``project`` (``SweepSummary`` objects), kept until a sweep changes."""
        from ..registry.sweeps import list_sweeps

        registry = self.registry()
        with registry._transaction(f"reading the sweeps' generations of project {project!r}") as conn:
            generations = queries.sweep_generations(conn, project)
        found = self._sweeps.get(project)
        if found is not None and found[0] == generations:
            return found[1]
        with self._computing:
            found = self._sweeps.get(project)
            if found is not None and found[0] == generations:
                return found[1]
            # generations read before the runs: a run recorded meanwhile at worst costs a recomputation
            listed = list_sweeps(registry, project)
            with self._guard:
                self._sweeps[project] = (generations, listed)
                while len(self._sweeps) > CACHED:
                    self._sweeps.pop(next(iter(self._sweeps)))
            return listed

    def runs(self, project: str, *, status: str | None, sweep: str | None, limit: int, offset: int) -> dict:
        registry = self.registry()
        with registry._transaction(f"listing the runs of project {project!r}") as conn:
            return queries.runs_page(conn, project, status=status, sweep=sweep, limit=limit, offset=offset)

    def redundant(self, project: str, *, limit: int, offset: int) -> dict:
        registry = self.registry()
        with registry._transaction(f"listing the redundant runs of project {project!r}") as conn:
            return queries.redundant_page(conn, project, limit=limit, offset=offset)

    # -- the cache ---------------------------------------------------------------------------

    def _cached_facts(self, project: str, notebook: str | None) -> tuple[dict[str, Any], Any]:
        from ..statements import statement_facts

        registry = self.registry()
        key = (project, notebook)
        with registry._transaction(f"checking project {project!r} for changes") as conn:
            token = queries.change_token(conn, project)
        found = self._remembered(key, token)
        if found is None:
            with self._computing:
                found = self._remembered(key, token)
                if found is None:
                    now = datetime.datetime.now(datetime.timezone.utc)
                    found = statement_facts(
                        registry, project=project, notebook=notebook, settings=self.settings, now=now
                    )
                    with self._guard:
                        self._facts[key] = (token, found)
                        while len(self._facts) > CACHED:
                            self._facts.popitem(last=False)
        return found, registry

    def _remembered(self, key: tuple, token: tuple) -> dict[str, Any] | None:
        with self._guard:
            found = self._facts.get(key)
            if found is None or found[0] != token:
                return None
            self._facts.move_to_end(key)
            return found[1]

"""``RegistryReader``: the one read-only registry of a server, and what its endpoints compute.

The registry is opened on first use (a server started before the first metered cell still comes
up, and finds the registry once a kernel has created it) and then kept open until shutdown. Every
method is synchronous and is called off the event loop by the handlers.

Every request reads the project's change token (``queries.change_token``, under a millisecond), so
nothing answered is older than the registry. A summary is kept with the token it was computed at;
when the token moves, the project's tallies (``tallies.ProjectTallies``) recount the sweeps that
changed, not the project. The sweep listing is kept with the sweeps' generations and computed
through ``list_sweeps`` with a memo of this server's (a read-only registry cannot store
``list_sweeps``'s own cache). A statement, asked for by a download, is computed from the runs and
kept with the token. What the summaries do not see is some hand-made edits in SQL that leave
``updated_at`` as it was (see ``tallies``), which a restart of the server shows.
"""

from __future__ import annotations

import collections
import datetime
import json
import logging
import threading
from typing import Any

from ..errors import RegistryError
from ..settings import Settings
from . import queries
from .tallies import ALL, ProjectTallies

CACHED = 16
"""Statements and summaries kept, one per (project, notebook) asked for, least recently used
dropped; likewise the tallies and sweep listings of at most this many projects."""


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
        self._summaries: collections.OrderedDict[tuple, tuple[tuple, dict[str, Any]]] = collections.OrderedDict()
        self._tallies: collections.OrderedDict[str, ProjectTallies] = collections.OrderedDict()
        self._sweeps: dict[str, tuple[tuple, str]] = {}
        self._sweep_memo: collections.OrderedDict[str, dict[str, Any]] = collections.OrderedDict()
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
        ranges, the development overhead; and ``excluded``, the runs left out of them for
        implausible figures (id, name, reason), as the statement's ``scope.excluded``."""
        registry = self.registry()
        with registry._transaction(f"checking project {project!r} for changes") as conn:
            token = queries.change_token(conn, project)
        key = (project, notebook)
        found = _remembered(self._summaries, key, token, self._guard)
        if found is None:
            with self._computing:
                found = _remembered(self._summaries, key, token, self._guard)
                if found is None:
                    found = self._summarise(registry, project, notebook, token)
                    _remember(self._summaries, key, token, found, self._guard)
        return found

    def _summarise(self, registry: Any, project: str, notebook: str | None, token: tuple) -> dict[str, Any]:
        from ..statements.build import plain
        from ..statements.tally import figures

        counted = figures(self._tally(registry, project, token, notebook), self.settings)
        left_out = self._tallies[project].excluded(ALL if notebook is None else notebook)
        now = datetime.datetime.now(datetime.timezone.utc)
        return plain({
            "project": project,
            "notebook": notebook,
            "registry": registry.where,
            "computed_at": now.isoformat(timespec="seconds"),
            **counted["scope"],
            "excluded": [e.as_dict() for e in left_out],
            "totals": counted["totals"],
            "development": counted["development"],
        })  # fmt: skip

    def _tally(self, registry: Any, project: str, token: tuple, notebook: str | None = None) -> Any:
        """The tally of ``project`` (or one notebook's runs) brought up to ``token``; the runs left out
        of it are ``self._tallies[project].excluded()``. Called with ``_computing`` held."""
        tallies = self._tallies.get(project)
        if tallies is None:
            tallies = self._tallies[project] = ProjectTallies(project)
            while len(self._tallies) > CACHED:
                self._tallies.popitem(last=False)
        self._tallies.move_to_end(project)
        tallies.update(registry, token)
        return tallies.tally(ALL if notebook is None else notebook)

    def statement(self, project: str, fmt: str, *, notebook: str | None = None,
                  training_type: str = "pre-training") -> str:  # fmt: skip
        """The impact statement in ``fmt`` (``statements.FORMATS``), from the cached facts."""
        from ..statements.render import render

        facts, _ = self._cached_facts(project, notebook)
        return render(facts, fmt, training_type=training_type)

    def sweeps(self, project: str) -> str:
        """The ``sweeps`` document of ``project`` as JSON text: ``list_sweeps``, each sweep as
        ``queries.sweep_row``; kept, serialised, until a sweep changes (a project of 100,000 runs
        has 200 sweeps, whose JSON takes tens of milliseconds to write)."""
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
            memo = self._sweep_memo.setdefault(project, {})
            self._sweep_memo.move_to_end(project)
            while len(self._sweep_memo) > CACHED:
                self._sweep_memo.popitem(last=False)
            listed = list_sweeps(registry, project, memo=memo)
            document = json.dumps({"project": project, "sweeps": [queries.sweep_row(s) for s in listed]},
                                  allow_nan=False)  # fmt: skip
            with self._guard:
                self._sweeps[project] = (generations, document)
                while len(self._sweeps) > CACHED:
                    self._sweeps.pop(next(iter(self._sweeps)))
            return document

    def runs(self, project: str, *, status: str | None, sweep: str | None, limit: int, offset: int) -> dict:
        registry = self.registry()
        with registry._transaction(f"listing the runs of project {project!r}") as conn:
            return queries.runs_page(conn, project, status=status, sweep=sweep, limit=limit, offset=offset)

    def redundant(self, project: str, *, limit: int, offset: int) -> dict:
        """A page of the redundant runs of ``project``, and how many there are with their energy
        and emissions (from the tallies: counting them in SQL reads every run of the project)."""
        registry = self.registry()
        with registry._transaction(f"listing the redundant runs of project {project!r}") as conn:
            token = queries.change_token(conn, project)
            page = queries.redundant_page(conn, project, limit=limit, offset=offset)
        with self._computing:
            t = self._tally(registry, project, token)
        return {"total": int(t["redundant_runs"]), "energy_j": t["redundant_energy_j"],
                "emissions_g": t["redundant_emissions_g"], **page}  # fmt: skip

    # -- the cache ---------------------------------------------------------------------------

    def _cached_facts(self, project: str, notebook: str | None) -> tuple[dict[str, Any], Any]:
        from ..statements import statement_facts

        registry = self.registry()
        key = (project, notebook)
        with registry._transaction(f"checking project {project!r} for changes") as conn:
            token = queries.change_token(conn, project)
        found = _remembered(self._facts, key, token, self._guard)
        if found is None:
            with self._computing:
                found = _remembered(self._facts, key, token, self._guard)
                if found is None:
                    now = datetime.datetime.now(datetime.timezone.utc)
                    found = statement_facts(
                        registry, project=project, notebook=notebook, settings=self.settings, now=now
                    )
                    _remember(self._facts, key, token, found, self._guard)
        return found, registry


def _remembered(cache: collections.OrderedDict, key: tuple, token: tuple, guard: threading.Lock) -> Any:
    """What ``cache`` holds for ``key`` if it was computed at ``token``, else None."""
    with guard:
        found = cache.get(key)
        if found is None or found[0] != token:
            return None
        cache.move_to_end(key)
        return found[1]


def _remember(cache: collections.OrderedDict, key: tuple, token: tuple, value: Any, guard: threading.Lock) -> None:
    with guard:
        cache[key] = (token, value)
        cache.move_to_end(key)
        while len(cache) > CACHED:
            cache.popitem(last=False)

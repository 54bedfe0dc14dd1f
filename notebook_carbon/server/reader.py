"""``RegistryReader``: the one read-only registry of a server, and the endpoints' documents.

The registry is opened ahead of the first request, on a thread when the server starts (``warm``),
or else on first use (a server started before the first metered cell still comes up, and finds the
registry once a kernel has created it), then kept open until shutdown. SQLAlchemy is imported with
this module, as the server loads the extension, so the first request does not wait for it. Every
method is synchronous and is called off the event loop by the handlers.

Nothing is kept between requests: the figures come from the totals the database keeps
(``Registry.totals``, ``Registry.sweeps``), a few indexed reads whatever the number of runs, kept
current by the registry's triggers whoever writes, a hand edit in SQL included. So every answer is
as current as the registry. The statement, a download, is computed from the runs each time.
"""

from __future__ import annotations

import datetime
import logging
import threading
from typing import Any

from ..errors import RegistryError
from ..meters.detect import host_info
from ..registry.store import Registry
from ..settings import Settings
from . import documents


class RegistryReader:
    """Reads the registry at ``location`` for the endpoints; ``settings`` give what the figures
    compute for runs recorded without it (embodied emissions, water); ``root``, the server's root
    directory, what runs' notebook paths are given relative to (``documents.server_path``)."""

    def __init__(
        self, location: str, *, settings: Settings, log: logging.Logger | None = None, root: str | None = None
    ) -> None:
        self.location = location
        self.settings = settings
        self.root = root
        self.here = host_info()["hostname"]  # as this machine's runs record their host
        self._log = log or logging.getLogger(__name__)
        self._registry: Registry | None = None
        self._opening = threading.Lock()
        self._closed = False

    def registry(self) -> Registry:
        """The open registry, opened read-only on first use; ``RegistryError`` if it cannot be."""
        with self._opening:
            if self._closed:
                raise RegistryError("the notebook-carbon server extension has shut down")
            if self._registry is None:
                self._registry = Registry.open(self.location, read_only=True)
                self._log.info("notebook-carbon: reading registry %s", self._registry.where)
            return self._registry

    def warm(self, project: str) -> None:
        """Open the registry and read ``project``'s totals once, ahead of the first request (run on a
        thread when the server starts): opening and compiling the reads take longer than the reads
        themselves. Nothing read is kept; a registry that cannot be opened yet is tried again by the
        first request."""
        try:
            self.registry().totals(project)
        except RegistryError as exc:
            self._log.debug("notebook-carbon: registry not read ahead of the first request: %s", exc)

    def close(self) -> None:
        with self._opening:
            self._closed = True
            if self._registry is not None:
                self._registry.close()
                self._registry = None

    # -- the endpoints -----------------------------------------------------------------------

    def summary(self, project: str, notebook: str | None = None) -> dict[str, Any]:
        """The figures of ``project`` (or of one notebook's runs in it), made from its totals as a
        statement makes them (``statements.tally.figures``): runs and statuses, first and last
        start, ``totals`` (energy, facility energy, emissions, embodied, their sum and water, with
        ranges) and ``development`` (the overhead, selected, failed and redundant runs); and
        ``excluded``, the runs left out of them for implausible figures (id, name, reason)."""
        from ..statements.tally import figures

        registry = self.registry()
        totals = registry.totals(project, notebook)
        # looked for only when the totals counted some: the search reads every run of the project
        left_out = registry.excluded(project, notebook) if totals.excluded_runs else []
        counted = figures(totals, self.settings)
        now = datetime.datetime.now(datetime.timezone.utc)
        return documents.json_ready({
            "project": project,
            "notebook": notebook,
            "registry": registry.where,
            "computed_at": now.isoformat(timespec="seconds"),
            **counted["scope"],
            "excluded": left_out,
            "totals": counted["totals"],
            "development": counted["development"],
        })  # fmt: skip

    def count(self, project: str, notebook: str | None = None) -> int:
        """How many runs the totals of ``project`` (or one of its notebooks) count."""
        return self.registry().totals(project, notebook).runs

    def sweeps(self, project: str, *, params: bool = True) -> dict[str, Any]:
        """The sweeps of ``project``, the most energy first, each as ``documents.sweep_row``; with
        ``params``, each one's varying parameters too."""
        found = self.registry().sweeps(project, params=params)
        return {"project": project, "sweeps": [documents.sweep_row(s, params=params) for s in found]}

    def runs(self, project: str, *, status: str | None, sweep: str | None, limit: int, offset: int) -> dict:
        """A page of the runs of ``project``, newest first, and how many match in all."""
        rows, total = self.registry().page(project, status=status, sweep=sweep, limit=limit, offset=offset)
        return {"total": total, "runs": [documents.run_row(row, self.root, self.here) for row in rows]}

    def parts(self, run: int | str | None, project: str) -> dict[str, Any] | None:
        """Run ``run`` (an id or a uid; None: the newest run of ``project``), as a page gives it, and
        its ``parts``, each as ``documents.part_row``: a distributed job's ranks (the driver first,
        then by block and rank), then the blocks metered inside the run, by start. None when there
        is no run ``run``; ``"run": None`` and no parts when ``project`` has no runs."""
        from ..registry.parts import parts

        registry = self.registry()
        found = registry.get_run(run) if run is not None else registry.last_run(project)
        if found is None:
            return None if run is not None else {"run": None, "parts": []}
        rows = sorted(parts(registry, found["uid"]), key=_part_order)
        return {"run": documents.run_row(found, self.root, self.here), "parts": [documents.part_row(row) for row in rows]}

    def redundant(self, project: str, *, limit: int, offset: int) -> dict:
        """A page of the redundant runs of ``project``, and how many there are with their energy
        and emissions (the totals': runs left out for implausible figures are not counted)."""
        registry = self.registry()
        t = registry.totals(project)
        rows = registry.redundant_page(project, limit=limit, offset=offset)
        return {"total": t.redundant_runs, "energy_j": float(t.redundant_energy_j),
                "emissions_g": float(t.redundant_emissions_g),
                "runs": [documents.run_row(row, self.root, self.here) for row in rows]}  # fmt: skip

    def history(self, project: str, spans: int) -> dict[str, Any]:
        """``project``'s cumulative emissions and runs over time, in ``spans`` equal spans
        (``registry.history.cumulative``): three indexed reads whatever the number of runs."""
        from ..registry.history import cumulative

        return documents.json_ready(cumulative(self.registry(), project, spans=spans))

    def tradeoffs(self, project: str, limit: int) -> dict[str, Any]:
        """Was each result worth its energy (``analysis.tradeoffs``): the costliest ``limit`` result
        sweeps of ``project`` whose runs logged a metric, each with its runs as points (run id,
        energy in J, value) and ``text``, the line ``%carbon sweeps`` prints for it after its label."""
        from ..analysis.tradeoffs import describe, sweep_tradeoffs

        found = sweep_tradeoffs(self.registry(), project, points=True, limit=limit)
        return documents.json_ready({"project": project, "tradeoffs": [{**t, "text": describe(t, named=False)} for t in found]})

    def statement(self, project: str, fmt: str, *, notebook: str | None = None,
                  training_type: str | None = None) -> str:  # fmt: skip
        """The impact statement in ``fmt`` (``statements.FORMATS``), computed from the runs."""
        from ..statements import impact_statement

        return impact_statement(
            self.registry(), format=fmt, training_type=training_type,
            project=project, notebook=notebook, settings=self.settings,
        )  # fmt: skip


def _part_order(part: dict[str, Any]) -> tuple:
    """The driver, then ranks by block and rank, then blocks metered inside the run, by start."""
    if not part.get("job"):
        return (2, 0, 0, part["started_at"], part["id"])
    if part.get("rank") is None:
        return (0, 0, 0, part["started_at"], part["id"])
    return (1, part.get("block") or 0, part["rank"], part["started_at"], part["id"])

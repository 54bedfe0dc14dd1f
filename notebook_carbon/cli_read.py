"""The commands of ``notebook-carbon`` that only read a registry: sweeps, summary, statement, chart
and check (``runs`` is in ``cli_runs``).

They never create anything: the registry is opened read-only, and a missing one is one error that
names it as it was given. Every name given (project, notebook, sweep) must be known to the registry,
else the error names the close matches; a notebook is found however its path is written
(``./x.ipynb``, ``x.ipynb`` or absolute), as its kernel recorded it. A run whose process died is
marked crashed when the registry can be written, and shown crashed when it cannot. User text goes
to the terminal through ``units.terminal_text``, figures through the one display scheme (``units``).
"""

from __future__ import annotations

import argparse
import dataclasses
import difflib
import os
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from .errors import ConfigError, RegistryError
from .units import (
    emissions_text,
    energy_text,
    percent_text,
    ranged_text,
    ratio_text,
    terminal_text,
    text_like,
    water_text,
)

NO_RUNS = "no runs recorded"


def sweeps(args: argparse.Namespace) -> int:
    from .summary import sweeps_table

    with _Reading(args) as reading:
        if args.project is None and not reading.projects:
            print(NO_RUNS)
            return 0
        project = reading.project(args.project)
        crashed = reading.settle_crashed()
        crashed_in = _sweeps_of(reading.registry, crashed, project)
        summaries = [_shown_crashed(s, crashed_in.get(s.key, 0)) for s in reading.registry.sweeps(project)]
    print(sweeps_table(summaries, project=project))
    return 0


def summary(args: argparse.Namespace) -> int:
    with _Reading(args) as reading:
        if args.project is None and not reading.projects:
            print(NO_RUNS)
            return 0
        selection = reading.selection()
        crashed = reading.settle_crashed()
        facts = reading.facts(selection, disclose=False)
        if crashed:
            _count_crashed(facts, reading, selection, crashed)
    t, d, scope = facts["totals"], facts["development"], facts["scope"]
    print(f"project {terminal_text(scope['project'], 100)}: {scope['runs']} run{'s' if scope['runs'] != 1 else ''}"
          + (f" from {scope['first_run_at'][:10]} to {scope['last_run_at'][:10]}" if scope["runs"] else ""))
    _print_excluded(facts)
    if not scope["runs"]:
        return 0
    statuses = ", ".join(f"{n} {status}" for status, n in scope["statuses"].items())
    print(f"  runs:        {statuses}")
    print(f"  energy:      {ranged_text(t['energy_j'], 'energy')}; "
          f"{percent_text(facts['methods']['measured_share'])} measured, "
          f"{percent_text(facts['methods']['estimated_share'])} estimated")
    print(f"  emissions:   {ranged_text(t['emissions_g'], 'emissions')} operational, "
          f"{emissions_text(t['embodied_g']['value'])} embodied, {emissions_text(t['total_g']['value'])} in all")
    if t["water_l"]:
        print(f"  water:       {water_text(t['water_l']['value'])}")
    selected = d["selected_runs"]
    print(f"  overhead:    {ratio_text(d['ratio'])} (all runs {energy_text(d['all_energy_j'])} vs the "
          f"{selected} selected result{'s' if selected != 1 else ''} "
          f"{text_like(d['selected_energy_j'], d['all_energy_j'], 'energy')}); "
          f"failed {percent_text(d['failed_share'])}, redundant {percent_text(d['redundant_share'])} of the energy")
    if facts["sweeps"]:
        print(f"  costliest sweeps (of {len(facts['sweeps'])}):")
        for sweep in facts["sweeps"][:5]:
            print(f"    {terminal_text(sweep['label'], 40):<40} {sweep['runs']:>6} run{'s' if sweep['runs'] != 1 else ' '} {energy_text(sweep['energy_j']):>11}"
                  f" {emissions_text(sweep['emissions_g']):>14}  overhead {ratio_text(sweep['overhead_ratio'])}")
    return 0


def statement(args: argparse.Namespace) -> int:
    from .statements.render import render

    with _Reading(args) as reading:
        selection = reading.selection()
        reading.settle_crashed()
        facts = reading.facts(selection, regions=args.region, equivalents=args.equivalents)
    unit, units = args.functional_unit or (None, None)
    text = render(facts, args.format, training_type=args.training_type, include_embodied=args.include_embodied,
                  functional_unit=unit, units=units, sci_values=args.sci_values,
                  sci_rationale=args.sci_rationale)  # fmt: skip
    if args.bib:
        Path(args.bib).write_text(render(facts, "bib"), encoding="utf-8")
        print(f"wrote {terminal_text(args.bib)}", file=sys.stderr)
    if args.output:
        Path(args.output).write_text(text, encoding="utf-8")
        print(f"wrote {terminal_text(args.output)}", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return 0


def chart(args: argparse.Namespace) -> int:
    from . import analysis, charts

    suffix = Path(args.output).suffix.lower()
    if suffix not in (".svg", ".png", ".pdf"):
        raise ConfigError(f"cannot tell the format of {args.output!r}: name it .svg, .png or .pdf")
    if args.kind == "power" and args.run is None:
        raise ConfigError("the power chart is of one run: give --run ID (see `notebook-carbon runs`)")
    if args.kind == "pareto" and args.sweep is None:
        raise ConfigError("the pareto chart (a metric against energy) is of one sweep: give --sweep NAME")
    with _Reading(args) as reading:
        if args.kind == "power":
            if reading.registry.get_run(args.run) is None:
                raise ConfigError(
                    f"there is no run {args.run} in registry {reading.shown}; see `notebook-carbon runs`"
                )
            figure = charts.power_timeline(reading.registry, args.run)
        elif args.kind == "pareto":
            figure = charts.accuracy_energy(_tradeoff(reading, reading.selection()))
        else:
            selection = reading.selection()
            df = analysis.runs(
                reading.registry, **selection, tags=args.tags, since=args.since, until=args.until
            )
            figure = charts.cumulative_emissions(df) if args.kind == "cumulative" else charts.sweep_energy(df)
    charts.save(figure, args.output)
    print(f"wrote {terminal_text(args.output)}", file=sys.stderr)
    return 0


def _tradeoff(reading: Any, selection: dict[str, Any]) -> dict[str, Any]:
    """The sweep's metric against energy (``analysis.tradeoffs``), or what to do when there is none."""
    from .analysis.tradeoffs import sweep_tradeoffs

    found = sweep_tradeoffs(reading.registry, selection["project"], keys=[selection["sweep"]], points=True)
    if not found:
        raise ConfigError(
            f"sweep {selection['sweep']!r} has nothing to chart: its selected run and one other must have logged a "
            "metric whose direction is known (%carbon log acc=0.93, run.log(...); see docs/statements.md)"
        )
    return found[0]


def check(args: argparse.Namespace) -> int:
    with _Reading(args) as reading:
        selection = reading.selection()
        reading.settle_crashed()
        facts = reading.facts(selection, disclose=False)
    t = facts["totals"]
    what = "operational emissions" if args.operational_only else "emissions (operational + embodied)"
    used = t["emissions_g"] if args.operational_only else t["total_g"]
    verdict = "over" if used["value"] > args.budget else "within"
    print(f"project {terminal_text(facts['scope']['project'], 100)}: {what} {ranged_text(used, 'emissions')} "
          f"over {facts['scope']['runs']} runs: {verdict} the budget of {emissions_text(args.budget)}")
    _print_excluded(facts)
    return 1 if verdict == "over" else 0


def _print_excluded(facts: dict, shown: int = 10) -> None:
    """The runs left out of these figures (implausible values), each with why: never in silence."""
    excluded = facts["scope"].get("excluded") or []
    if not excluded:
        return
    print(f"  left out:    {len(excluded)} run{'s' if len(excluded) != 1 else ''} whose figures cannot be "
          "counted (fix or delete them in the registry):")
    for run in excluded[:shown]:
        name = f" ({terminal_text(run['name'], 40)})" if run.get("name") else ""
        print(f"    run {run['id']}{name}: {terminal_text(run['reason'], 120)}")
    if len(excluded) > shown:
        print(f"    and {len(excluded) - shown} more")


def registry_location(explicit: str | None) -> str:
    from .settings import resolve

    return explicit or resolve().registry_location()


class _Reading:
    """A read command's registry, opened read-only, and the names it knows."""

    def __init__(self, args: argparse.Namespace) -> None:
        from .registry.store import Registry

        self.args = args
        self.location = registry_location(args.registry)
        self.shown = _shown(self.location)
        if "://" not in self.location and not Path(self.location).expanduser().is_file():
            raise RegistryError(
                f"there is no registry at {self.shown}; check --registry (or NOTEBOOK_CARBON_REGISTRY), "
                "or run a metered cell to create one"
            )
        self.registry = Registry.open(self.location, read_only=True)
        self._projects: list[str] | None = None

    def __enter__(self) -> _Reading:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.registry.close()

    @property
    def projects(self) -> list[str]:
        if self._projects is None:
            from .registry.catalog import projects

            self._projects = projects(self.registry)
        return self._projects

    def project(self, given: str | None) -> str:
        """``given`` (else the settings' project), which must have runs in the registry."""
        from .settings import resolve

        project = given if given is not None else resolve().project
        if project not in self.projects:
            where = f"no project {project!r} in registry {self.shown}"
            if given is None:
                where += " (the configured project; choose one with --project)"
            if not self.projects:
                raise ConfigError(f"{where}: it has no runs recorded yet")
            raise ConfigError(f"{where}; {_close(project, self.projects, 'projects')}")
        return project

    def selection(self) -> dict[str, str | None]:
        """The project, notebook and sweep of the command's arguments, each as the registry records it."""
        from .registry import catalog

        args = self.args
        project = self.project(args.project)
        notebook = sweep = None
        if args.notebook is not None:
            notebook = _notebook(args.notebook, catalog.notebooks(self.registry, project), project, self.shown)
        if args.sweep is not None:
            sweep = self._sweep(args.sweep, project)
        return {"project": project, "notebook": notebook, "sweep": sweep}

    def _sweep(self, given: str, project: str) -> str:
        """The key of the sweep ``given`` names: its key, or the label it is shown with (``lr``,
        ``digits.ipynb, cell 9``) when that label is one sweep's."""
        from .registry import catalog

        known = catalog.sweeps(self.registry, project)
        if given in known:
            return given
        labels = {key: label for key, label in catalog.sweep_labels(self.registry, project).items() if key in known}
        named = sorted(key for key, label in labels.items() if label == given)
        if len(named) == 1:
            return named[0]
        where = f"project {project!r} (registry {self.shown})"
        if named:
            raise ConfigError(f"{len(named)} sweeps of {where} are labelled {given!r}; choose one by its key: "
                              f"{_quoted(named)}")  # fmt: skip
        shown = sorted(set(labels.values()))
        raise ConfigError(f"no sweep {given!r} in {where}; {_close(given, shown, 'sweeps')}")

    def facts(self, selection: dict, regions: Iterable[str] = (), equivalents: bool = False,
              disclose: bool = True) -> dict:  # fmt: skip
        """The statement's facts of the selection; ``disclose=False`` for a command that prints
        totals only (``summary``, ``check``), which need no pass over every run's notes."""
        from .statements import statement_facts

        args = self.args
        return statement_facts(self.registry, **selection, tags=args.tags, since=args.since, until=args.until,
                               regions=list(regions), equivalents=equivalents, disclose=disclose)

    def settle_crashed(self) -> frozenset[int]:
        """Mark the runs whose process died as crashed, if the registry can be written; return the
        ids of those that could not be marked, for what is printed to show them crashed."""
        from .registry.catalog import dead_runs
        from .registry.jobs import any_dead_parts
        from .registry.store import Registry

        dead = dead_runs(self.registry)
        if not dead and not any_dead_parts(self.registry):  # a job's dead rank among live ones: marked too
            return frozenset()
        try:
            with Registry.open(self.location) as writable:  # it exists: opening creates nothing
                writable.reap_crashed()
        except RegistryError:  # read-only: a file, a file system or a database user that may not write
            return frozenset(dead)
        return frozenset()


def _notebook(given: str, known: list[str], project: str, shown: str) -> str:
    """The recorded path of notebook ``given``: as typed, or the same file written another way
    (relative to the current directory, ``./``, ``..``, ``~``), the path as typed first."""
    def absolute(path: str) -> str:
        return os.path.normpath(os.path.join(os.getcwd(), os.path.expanduser(path)))

    wanted = absolute(given)
    same = [path for path in known if path == given or absolute(path) == wanted]
    if same:
        return given if given in same else (wanted if wanted in same else same[0])
    readable = {absolute(path): _readable(path) for path in known}
    close = [readable[path] for path in difflib.get_close_matches(wanted, list(readable), n=3)]
    hint = f"did you mean {_quoted(close)}?" if close else _known(list(readable.values()), "notebooks")
    raise ConfigError(f"no runs of notebook {given!r} in project {project!r} (registry {shown}); {hint}")


def _readable(path: str) -> str:
    """A recorded notebook path as the user would write it here: relative below the current directory."""
    if os.path.isabs(path):
        relative = os.path.relpath(path)
        if not relative.startswith(os.pardir):
            return relative
    return path


def _close(name: str, known: list[str], what: str) -> str:
    close = difflib.get_close_matches(name, known, n=3)
    if not close:
        close = [k for k in known if k.lower() == name.lower()]
    return f"did you mean {_quoted(close)}?" if close else _known(known, what)


def _known(known: list[str], what: str) -> str:
    if not known:
        return f"it has no {what}"
    more = f" and {len(known) - 5} more" if len(known) > 5 else ""
    return f"known {what}: {', '.join(repr(k) for k in known[:5])}{more}"


def _quoted(names: list[str]) -> str:
    return " or ".join(repr(name) for name in names)


def _shown(location: str) -> str:
    """The registry as the user gave it, a database URL without its password."""
    if "://" not in location:
        return location
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        return make_url(location).render_as_string(hide_password=True)
    except ArgumentError:
        return "(an unreadable database URL)"


def _sweeps_of(registry, crashed: frozenset[int], project: str) -> dict[str, int]:
    """How many of the runs ``crashed`` (ids; few) each sweep of ``project`` holds."""
    found: dict[str, int] = {}
    for run_id in crashed:
        run = registry.get_run(run_id)
        if run is not None and run.get("project") == project and run.get("sweep_key"):
            found[run["sweep_key"]] = found.get(run["sweep_key"], 0) + 1
    return found


def _shown_crashed(summary, crashed: int):
    """A sweep's summary with ``crashed`` of its running runs counted as crashed, not running."""
    n = min(crashed, summary.statuses.get("running", 0))
    if not n:
        return summary
    statuses = dict(summary.statuses)
    statuses["running"] -= n
    statuses["crashed"] = statuses.get("crashed", 0) + n
    shown = dataclasses.replace(summary.totals, statuses={k: v for k, v in statuses.items() if v})
    return dataclasses.replace(summary, totals=shown)


def _count_crashed(facts: dict, reading: _Reading, selection: dict, crashed: frozenset[int]) -> None:
    """Count the selected runs in ``crashed`` (still ``running`` in a registry that could not be
    written) as crashed in ``facts``' statuses."""
    from . import analysis

    args = reading.args
    running = analysis.runs(reading.registry, **selection, tags=args.tags, since=args.since, until=args.until,
                            status="running", columns=())
    n = len(crashed.intersection(int(i) for i in running.index))  # the frame is indexed by id
    statuses = facts["scope"]["statuses"]
    if n:
        statuses["running"] -= n
        statuses["crashed"] = statuses.get("crashed", 0) + n
        facts["scope"]["statuses"] = {k: statuses[k] for k in sorted(statuses) if statuses[k]}

"""The ``notebook-carbon`` command.

``demo`` runs the quickstart notebook headlessly in a real kernel, prints the runs it recorded and
writes their impact statement and a chart; ``runs`` lists a registry's runs; ``summary`` totals a
project; ``statement`` writes the impact statement; ``chart`` saves a chart; ``check --budget``
gates a project's emissions; ``sweeps`` lists sweeps; ``regions`` lists the grid regions the
bundled data knows; ``import-codecarbon`` records codecarbon's emissions.csv logs as runs.
Errors are one clear line on stderr; bad arguments (an unknown project, notebook or sweep among
them) exit with status 2, other failures with 1, and ``check`` exits 1 when the project is over its
budget. The commands that only read a registry are in ``cli_read`` (``runs``, whose ``--parts``
lists a distributed job's ranks under its one run, in ``cli_runs``); every name printed goes
through ``units.terminal_text``. A closed pipe (``notebook-carbon runs | head``) ends a command
quietly.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
from collections.abc import Sequence

from .errors import NotebookCarbonError


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="notebook-carbon", description="Energy and emissions of notebook cells and experiments."
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    demo = sub.add_parser("demo", help="run the quickstart notebook headlessly and show the runs it recorded")
    demo.add_argument("--out", default="notebook-carbon-demo", help="folder for the executed notebook and registry")
    demo.add_argument("--registry", help="registry to record into, added to if it has runs (default: a fresh "
                      "OUT/registry.sqlite; an earlier demo's is kept beside it)")
    demo.add_argument("--append", action="store_true",
                      help="record into OUT/registry.sqlite even when an earlier demo left runs there")
    demo.add_argument("--timeout", type=float, default=600, help="seconds allowed per cell (default 600)")

    runs = sub.add_parser("runs", help="list the runs of a registry, newest first")
    runs.add_argument("--registry", help="registry path or URL (default: settings)")
    runs.add_argument("--project", help="only this project")
    runs.add_argument("--limit", type=_limit_argument, default=20, help=f"how many runs, 1 to {MAX_LIMIT:,} (default 20)")
    runs.add_argument("--parts", action="store_true",
                      help="under each run, its parts: a job's ranks (node, status, energy, GPUs charged) and nested blocks")

    regions = sub.add_parser("regions", help="list the grid regions and their carbon intensity")
    regions.add_argument("filter", nargs="?", help="only regions whose code or name contains this text")

    sweeps = sub.add_parser("sweeps", help="a project's sweeps: cost, development overhead, redundant runs")
    sweeps.add_argument("--registry", help="registry path or URL (default: settings)")
    sweeps.add_argument("--project", help="the project (default: settings)")

    summary = sub.add_parser("summary", help="a project's totals, development overhead and costliest sweeps")
    _selection_arguments(summary)

    statement = sub.add_parser(
        "statement", help="write the environmental impact statement (Markdown, LaTeX, JSON, BibTeX, model card, checklists)"
    )
    _selection_arguments(statement)
    statement.add_argument("--format", "-f", default="md",
                           choices=("md", "latex", "latex-fragment", "json", "model-card", "bib", "checklist",
                                    "sci-ai", "sci-ai-json", "boamps"),
                           help="md (default: paragraph, appendix, checklist answers), latex (a document pdflatex "
                           "compiles), latex-fragment (to \\input in a paper), json, model-card (YAML), bib (the "
                           "sources, BibTeX), checklist (NeurIPS and ACL compute answers), sci-ai (the Green Software "
                           "Foundation's SCI for AI section; sci-ai-json, the same as JSON), boamps (Boavizta's AI energy report, JSON)")
    statement.add_argument("-o", "--output", metavar="FILE", help="write here (default: standard output)")
    statement.add_argument("--bib", metavar="FILE",
                           help="also write the sources the statement cites as BibTeX (the LaTeX's \\cite keys)")
    statement.add_argument("--region", action="append", default=[], metavar="CODE",
                           help="also show the emissions on this grid (repeatable; see `notebook-carbon regions`); "
                           "no other grid is compared unless named")
    statement.add_argument("--equivalents", action="store_true",
                           help="also say what the emissions equal in everyday terms (a distance driven by car)")
    statement.add_argument("--training-type", choices=("pre-training", "fine-tuning"),
                           help="for --format model-card: written only when given")
    statement.add_argument("--include-embodied", action="store_true",
                           help="for --format model-card: count embodied emissions in its figure (default: operational)")
    statement.add_argument("--functional-unit", type=_functional_unit, metavar="UNIT=COUNT",
                           help="for --format sci-ai: the SCI per token, parameter or flop, e.g. token=1.2e9")
    statement.add_argument("--sci-values", choices=("gross", "effective"),
                           help="for --format sci-ai: whether the figures are gross or effective (SCI for AI 8.2.2)")
    statement.add_argument("--sci-rationale", metavar="TEXT",
                           help="for --format sci-ai: why this functional unit was chosen, stated as given")

    chart = sub.add_parser("chart", help="save a chart as SVG, PNG or PDF (by the file's suffix), offline")
    chart.add_argument("kind", choices=("cumulative", "sweeps", "power", "pareto"),
                       help="cumulative emissions over time; energy per sweep; one run's power timeline")
    _selection_arguments(chart)
    chart.add_argument("-o", "--output", metavar="FILE", required=True, help="FILE.svg, FILE.png or FILE.pdf")
    chart.add_argument("--run", type=_run_argument, help="the run (id or uid) for the power chart")

    check = sub.add_parser(
        "check", help="exit 1 when a project's emissions are over a budget (a CI gate for a research repository)"
    )
    _selection_arguments(check)
    check.add_argument("--budget", required=True, type=_mass_argument, metavar="MASS",
                       help="the most CO2e allowed, with its unit: 5kg, 500g, 1.5t")
    check.add_argument("--operational-only", action="store_true",
                       help="compare operational emissions only (default: operational + embodied)")

    calibrate = sub.add_parser(
        "calibrate", help="measure this machine's idle power per device, while nothing runs, and keep it in the registry"
    )
    calibrate.add_argument("--seconds", type=float, default=30.0, help="how long to measure (default 30)")
    calibrate.add_argument("--registry", help="registry path or URL (default: settings)")

    imports = sub.add_parser(
        "import-codecarbon", help="record the runs of codecarbon emissions.csv files in the registry"
    )
    imports.add_argument("files", nargs="+", metavar="FILE", help="emissions.csv files written by codecarbon")
    imports.add_argument("--registry", help="registry path or URL (default: settings)")
    imports.add_argument("--project", help="project of every run (default: each row's project_name)")
    return parser


def _selection_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--registry", help="registry path or URL (default: settings)")
    parser.add_argument("--project", help="the project (default: settings)")
    parser.add_argument("--notebook", help="only the runs of this notebook")
    parser.add_argument("--sweep", help="only this sweep (its name, or code:FINGERPRINT)")
    parser.add_argument("--tag", action="append", dest="tags", metavar="TAG", help="only runs with this tag (repeatable)")
    parser.add_argument("--since", help="only runs started at or after this time (ISO date or datetime, UTC)")
    parser.add_argument("--until", help="only runs started before this time (ISO date or datetime, UTC)")


MAX_LIMIT = 1_000_000
"""The most runs ``runs --limit`` lists."""
MAX_RUN_ID = 2**63 - 1
"""Run ids are 64-bit signed integers in every registry database."""


def _limit_argument(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{_short(text)}' is not a whole number; give 1 to {MAX_LIMIT:,}") from None
    if not 1 <= value <= MAX_LIMIT:
        raise argparse.ArgumentTypeError(f"must be from 1 to {MAX_LIMIT:,}; got {_short(text)}")
    return value


def _run_argument(text: str) -> int | str:
    """A run id (1 to 2**63 - 1) or uid (32 hex digits, as ``Registry.get_run`` tells them apart)."""
    from .registry.values import is_uid

    if is_uid(text):
        return text
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"'{_short(text)}' is neither a run id (a number) nor a run uid (32 hex digits); see `notebook-carbon runs`"
        ) from None
    if not 1 <= value <= MAX_RUN_ID:
        raise argparse.ArgumentTypeError(f"a run id is from 1 to {MAX_RUN_ID}; got {_short(text)}")
    return value


def _functional_unit(text: str) -> tuple[str, float]:
    """``token=1.2e9``: SCI for AI's functional unit and how many of them."""
    unit, _, count = text.partition("=")
    try:
        return unit.strip(), float(count)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{_short(text)}: give UNIT=COUNT, e.g. token=1.2e9 or parameter=7e9") from None


def _mass_argument(text: str) -> float:
    from .errors import ConfigError
    from .impact.footprint import parse_mass_g

    try:
        grams = parse_mass_g(text)
    except ConfigError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    if not 0 < grams < math.inf:  # 1e999kg is infinite, 1e-999g is zero: neither is a budget
        raise argparse.ArgumentTypeError(f"the budget must be a finite mass above zero, e.g. 5kg; got '{_short(text)}'")
    return grams


def _short(text: str) -> str:
    """An argument for an error message, as text, and cut: a number of 10,000 digits is not repeated whole."""
    from .units import terminal_text

    return terminal_text(text.strip(), 40)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command; returns its exit status: 0, 1 (failed, or over budget), 2 (bad arguments)."""
    # module paths: the layer check counts `from notebook_carbon import x` as an import of the package
    import notebook_carbon.cli_demo as cli_demo  # noqa: PLR0402
    import notebook_carbon.cli_read as cli_read  # noqa: PLR0402
    import notebook_carbon.cli_runs as cli_runs  # noqa: PLR0402

    from .errors import ConfigError
    from .units import terminal_text

    args = _parser().parse_args(argv)
    try:
        code = {
            "demo": cli_demo.demo,
            "runs": cli_runs.runs,
            "regions": _regions,
            "sweeps": cli_read.sweeps,
            "summary": cli_read.summary,
            "statement": cli_read.statement,
            "chart": cli_read.chart,
            "check": cli_read.check,
            "import-codecarbon": _import_codecarbon,
            "calibrate": _calibrate,
        }[args.command](args)
        sys.stdout.flush()  # here, where a closed pipe can still be told apart from a failure
        return code
    except BrokenPipeError:
        # The reader went away (`notebook-carbon runs | head`): stop quietly. As Python's
        # documentation recommends for SIGPIPE, standard output now goes nowhere, so the
        # interpreter's own flush at exit does not fail again.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 1
    except ConfigError as exc:  # a bad value given (a date, a region, a name): the caller's to fix
        print(f"notebook-carbon: error: {terminal_text(exc)}", file=sys.stderr)
        return 2
    except NotebookCarbonError as exc:
        print(f"notebook-carbon: error: {terminal_text(exc)}", file=sys.stderr)
        return 1


def _calibrate(args: argparse.Namespace) -> int:
    """Measure the idle power of this machine's devices and keep it (``meters.idle``)."""
    from .cli_read import registry_location
    from .meters.detect import host_info
    from .meters.idle import measure_idle
    from .registry.calibration import record_calibration
    from .registry.store import Registry
    from .settings import resolve
    from .units import power_text, terminal_text

    location = registry_location(args.registry)
    host = host_info()["hostname"]
    print(f"measuring the idle power of {terminal_text(host)} for {args.seconds:g} s: leave the machine alone ...",
          file=sys.stderr, flush=True)  # fmt: skip
    found = measure_idle(resolve(), args.seconds, host=host)
    with Registry.open(location) as reg:
        record_calibration(reg, found.rows)
    for row in found.rows:
        print(f"{row['component']:<4} {power_text(row['idle_w']):>10}  {row['method']:<13} {terminal_text(row['device'])}")
    for note in found.notes:
        print(f"note: {terminal_text(note)}")
    print(f"idle power of {len(found.rows)} device{'s' if len(found.rows) != 1 else ''} over {found.seconds:.1f} s "
          f"(CPUs {100 * found.busy:.1f} % busy), kept in {terminal_text(location)}")  # fmt: skip
    return 0


def _regions(args: argparse.Namespace) -> int:
    from .impact.intensity import list_regions
    from .units import number_text, terminal_text

    needle = (args.filter or "").lower()
    shown = 0
    for region in list_regions():
        if needle and needle not in region.code.lower() and needle not in region.name.lower():
            continue
        year = region.year or ""
        print(f"{region.code:<28} {number_text(region.g_per_kwh):>7} g/kWh  {year!s:<5} {region.name}")
        shown += 1
    if not shown:
        print(f"no region matches {terminal_text(repr(args.filter))}", file=sys.stderr)
        return 1
    return 0


def _import_codecarbon(args: argparse.Namespace) -> int:
    from .cli_read import registry_location
    from .errors import ConfigError
    from .importers.codecarbon import read_codecarbon_csv, record_codecarbon_log
    from .registry.store import Registry
    from .units import terminal_text

    # Every file is read and checked before anything is written: a wrong file name imports nothing.
    logs, problems = [], []
    for name in args.files:
        try:
            logs.append((name, read_codecarbon_csv(name, project=args.project)))
        except ConfigError as exc:
            problems.append(str(exc))
    if problems:
        for problem in dict.fromkeys(problems):  # a bad --project is said once, not once per file
            print(f"notebook-carbon: error: {terminal_text(problem)}", file=sys.stderr)
        return 2
    rejected = 0
    registry = Registry.open(registry_location(args.registry))
    try:
        for name, log in logs:
            report = record_codecarbon_log(registry, log)
            print(f"{terminal_text(name)}: {terminal_text(report.summary())}")
            for error in report.errors:
                print(f"{terminal_text(name)}:{error.line}: {terminal_text(error.message)}", file=sys.stderr)
            rejected += len(report.errors)
    finally:
        registry.close()
    if rejected:
        print(
            "notebook-carbon: fix the rejected lines and run the same command again; "
            "runs already imported are skipped",
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

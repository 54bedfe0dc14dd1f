"""The ``notebook-carbon`` command.

``demo`` runs the quickstart notebook headlessly in a real kernel, prints the runs it recorded and
writes their impact statement and a chart; ``runs`` lists a registry's runs; ``summary`` totals a
project; ``statement`` writes the impact statement; ``chart`` saves a chart; ``check --budget``
gates a project's emissions; ``sweeps`` lists sweeps; ``regions`` lists the grid regions the
bundled data knows; ``import-codecarbon`` records codecarbon's emissions.csv logs as runs.
Errors are one clear line on stderr; bad arguments exit with status 2, other failures with 1, and
``check`` exits 1 when the project is over its budget.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from .errors import NotebookCarbonError


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="notebook-carbon", description="Energy and emissions of notebook cells and experiments."
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    demo = sub.add_parser("demo", help="run the quickstart notebook headlessly and show the runs it recorded")
    demo.add_argument("--out", default="notebook-carbon-demo", help="folder for the executed notebook and registry")
    demo.add_argument("--registry", help="registry to record into (default: OUT/registry.sqlite)")
    demo.add_argument("--timeout", type=float, default=600, help="seconds allowed per cell (default 600)")

    runs = sub.add_parser("runs", help="list the runs of a registry, newest first")
    runs.add_argument("--registry", help="registry path or URL (default: settings)")
    runs.add_argument("--project", help="only this project")
    runs.add_argument("--limit", type=int, default=20, help="how many runs (default 20)")

    regions = sub.add_parser("regions", help="list the grid regions and their carbon intensity")
    regions.add_argument("filter", nargs="?", help="only regions whose code or name contains this text")

    sweeps = sub.add_parser("sweeps", help="a project's sweeps: cost, development overhead, redundant runs")
    sweeps.add_argument("--registry", help="registry path or URL (default: settings)")
    sweeps.add_argument("--project", help="the project (default: settings)")

    summary = sub.add_parser("summary", help="a project's totals, development overhead and costliest sweeps")
    _selection_arguments(summary)

    statement = sub.add_parser(
        "statement", help="write the environmental impact statement (Markdown, LaTeX, JSON or model-card metadata)"
    )
    _selection_arguments(statement)
    statement.add_argument("--format", "-f", choices=("md", "latex", "json", "model-card"), default="md",
                           help="md (default), latex (a document pdflatex compiles), json, model-card (YAML)")
    statement.add_argument("-o", "--output", metavar="FILE", help="write here (default: standard output)")
    statement.add_argument("--region", action="append", default=[], metavar="CODE",
                           help="also show the emissions on this grid (repeatable; see `notebook-carbon regions`)")
    statement.add_argument("--training-type", choices=("pre-training", "fine-tuning"), default="pre-training",
                           help="for --format model-card (default pre-training)")

    chart = sub.add_parser("chart", help="save a chart as SVG, PNG or PDF (by the file's suffix), offline")
    chart.add_argument("kind", choices=("cumulative", "sweeps", "power"),
                       help="cumulative emissions over time; energy per sweep; one run's power timeline")
    _selection_arguments(chart)
    chart.add_argument("-o", "--output", metavar="FILE", required=True, help="FILE.svg, FILE.png or FILE.pdf")
    chart.add_argument("--run", help="the run (id or uid) for the power chart")

    check = sub.add_parser(
        "check", help="exit 1 when a project's emissions are over a budget (a CI gate for a research repository)"
    )
    _selection_arguments(check)
    check.add_argument("--budget", required=True, type=_mass_argument, metavar="MASS",
                       help="the most CO2e allowed, with its unit: 5kg, 500g, 1.5t")
    check.add_argument("--operational-only", action="store_true",
                       help="compare operational emissions only (default: operational + embodied)")

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


def _mass_argument(text: str) -> float:
    from .errors import ConfigError
    from .impact.footprint import parse_mass_g

    try:
        return parse_mass_g(text)
    except ConfigError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command; returns its exit status: 0, 1 (failed, or over budget), 2 (bad arguments)."""
    from .errors import ConfigError

    args = _parser().parse_args(argv)
    try:
        return {
            "demo": _demo,
            "runs": _runs,
            "regions": _regions,
            "sweeps": _sweeps,
            "summary": _summary,
            "statement": _statement,
            "chart": _chart,
            "check": _check,
            "import-codecarbon": _import_codecarbon,
        }[args.command](args)
    except ConfigError as exc:  # a bad value given (a date, a region, a format): the caller's to fix
        print(f"notebook-carbon: error: {exc}", file=sys.stderr)
        return 2
    except NotebookCarbonError as exc:
        print(f"notebook-carbon: error: {exc}", file=sys.stderr)
        return 1


def _facts(args: argparse.Namespace, regions: Sequence[str] = ()) -> dict:
    from .statements import statement_facts

    return statement_facts(
        _registry_location(args.registry), project=args.project, notebook=args.notebook, sweep=args.sweep,
        tags=args.tags, since=args.since, until=args.until, regions=regions,
    )  # fmt: skip


def _summary(args: argparse.Namespace) -> int:
    from .statements.render import energy_text, mass_text, pct_text, ratio_text, span_text

    facts = _facts(args)
    t, d = facts["totals"], facts["development"]
    scope = facts["scope"]
    print(f"project {scope['project']}: {scope['runs']} runs"
          + (f" from {scope['first_run_at'][:10]} to {scope['last_run_at'][:10]}" if scope["runs"] else ""))
    if not scope["runs"]:
        return 0
    statuses = ", ".join(f"{n} {status}" for status, n in scope["statuses"].items())
    print(f"  runs:        {statuses}")
    print(f"  energy:      {energy_text(t['energy_j']['value'])} ({span_text(t['energy_j'], 'energy')}); "
          f"{pct_text(facts['methods']['measured_share'])} measured, {pct_text(facts['methods']['estimated_share'])} estimated")
    print(f"  emissions:   {mass_text(t['emissions_g']['value'])} operational ({span_text(t['emissions_g'])}), "
          f"{mass_text(t['embodied_g']['value'])} embodied, {mass_text(t['total_g']['value'])} in all")
    if t["water_l"]:
        from .statements.render import water_text

        print(f"  water:       {water_text(t['water_l']['value'])}")
    print(f"  overhead:    {ratio_text(d['ratio'])} (all runs {energy_text(d['all_energy_j'])} vs the "
          f"{d['selected_runs']} selected results {energy_text(d['selected_energy_j'])}); "
          f"failed {pct_text(d['failed_share'])}, redundant {pct_text(d['redundant_share'])} of the energy")
    if facts["sweeps"]:
        print(f"  costliest sweeps (of {len(facts['sweeps'])}):")
        for sweep in facts["sweeps"][:5]:
            print(f"    {_cut(sweep['label'], 40):<40} {sweep['runs']:>6} runs {energy_text(sweep['energy_j']):>11}"
                  f" {mass_text(sweep['emissions_g']):>14}  overhead {ratio_text(sweep['overhead_ratio'])}")
    return 0


def _statement(args: argparse.Namespace) -> int:
    from .statements.render import render

    text = render(_facts(args, regions=args.region), args.format, training_type=args.training_type)
    if args.output:
        Path(args.output).write_text(text, encoding="utf-8")
        print(f"wrote {args.output}", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return 0


def _chart(args: argparse.Namespace) -> int:
    from . import analysis, charts
    from .errors import ConfigError

    suffix = Path(args.output).suffix.lower()
    if suffix not in (".svg", ".png", ".pdf"):
        raise ConfigError(f"cannot tell the format of {args.output!r}: name it .svg, .png or .pdf")
    location = _registry_location(args.registry)
    if args.kind == "power":
        if not args.run:
            raise ConfigError("the power chart is of one run: give --run ID (see `notebook-carbon runs`)")
        figure = charts.power_timeline(location, args.run)
    else:
        from .settings import resolve

        df = analysis.runs(location, project=args.project or resolve().project, notebook=args.notebook,
                           sweep=args.sweep, tags=args.tags, since=args.since, until=args.until)
        figure = charts.cumulative_emissions(df) if args.kind == "cumulative" else charts.sweep_energy(df)
    charts.save(figure, args.output)
    print(f"wrote {args.output}", file=sys.stderr)
    return 0


def _check(args: argparse.Namespace) -> int:
    from .statements.render import mass_text

    facts = _facts(args)
    t = facts["totals"]
    what = "operational emissions" if args.operational_only else "emissions (operational + embodied)"
    used = t["emissions_g"] if args.operational_only else t["total_g"]
    verdict = "over" if used["value"] > args.budget else "within"
    print(f"project {facts['scope']['project']}: {what} {mass_text(used['value'])} (range "
          f"{mass_text(used['low'])} to {mass_text(used['high'])}) over {facts['scope']['runs']} runs: "
          f"{verdict} the budget of {mass_text(args.budget)}")
    return 1 if verdict == "over" else 0


def _registry_location(explicit: str | None) -> str:
    from .settings import resolve

    return explicit or resolve().registry_location()


def _demo(args: argparse.Namespace) -> int:
    import nbformat
    from nbclient import NotebookClient

    out = Path(args.out).resolve()  # the kernel runs in OUT: relative paths would move
    out.mkdir(parents=True, exist_ok=True)
    registry = args.registry or str(out / "registry.sqlite")
    if "://" not in registry:  # a file path, not a database URL
        registry = str(Path(registry).resolve())
    source = _quickstart_path()
    executed = out / "quickstart.ipynb"
    nb = nbformat.read(source, as_version=4)
    env = dict(os.environ, NOTEBOOK_CARBON_REGISTRY=registry, JPY_SESSION_NAME=str(executed))
    print(f"notebook-carbon demo: executing {source.name} in a real kernel ...", flush=True)
    client = NotebookClient(
        nb,
        timeout=args.timeout,
        kernel_name="python3",
        resources={"metadata": {"path": str(out)}},
        # the kernel's own start-up warnings (loopback TCP is unencrypted) are not the demo's news
        extra_arguments=["--IPKernelApp.log_level=ERROR"],
    )
    client.execute(env=env)
    nbformat.write(nb, executed)
    print(f"executed notebook with outputs: {executed}")
    print(f"registry: {registry}\n")
    _print_runs(registry, project=None, limit=None)
    _demo_statement(registry, out)
    return 0


def _demo_statement(registry: str, out: Path) -> None:
    """The end of the demo: the statement of the quickstart's runs, as Markdown (printed and
    written), LaTeX and JSON, and the chart of their cumulative emissions."""
    from . import analysis, charts
    from .settings import resolve
    from .statements import statement_facts
    from .statements.render import render

    facts = statement_facts(registry, project=resolve().project)
    written = []
    for fmt, name in (("md", "statement.md"), ("latex", "statement.tex"), ("json", "statement.json")):
        (out / name).write_text(render(facts, fmt), encoding="utf-8")
        written.append(out / name)
    chart = out / "cumulative-emissions.svg"
    charts.save(charts.cumulative_emissions(analysis.runs(registry, project=resolve().project)), chart)
    written.append(chart)
    print("\n" + render(facts, "md"))
    print("written: " + ", ".join(str(path) for path in written))


def _quickstart_path() -> Path:
    packaged = Path(__file__).parent / "examples" / "quickstart.ipynb"
    if packaged.is_file():
        return packaged
    checkout = Path(__file__).resolve().parent.parent / "example_notebooks" / "quickstart.ipynb"
    if checkout.is_file():
        return checkout
    raise NotebookCarbonError("the quickstart notebook is missing from this installation; reinstall notebook-carbon")


def _runs(args: argparse.Namespace) -> int:
    if args.limit < 1:
        print("notebook-carbon: error: --limit must be at least 1", file=sys.stderr)
        return 2
    _print_runs(_registry_location(args.registry), project=args.project, limit=args.limit)
    return 0


def _sweeps(args: argparse.Namespace) -> int:
    from .registry.liveness import reap_crashed
    from .registry.store import Registry
    from .registry.sweeps import list_sweeps
    from .settings import resolve
    from .summary import sweeps_table

    project = args.project or resolve().project
    registry = Registry.open(_registry_location(args.registry))
    try:
        reap_crashed(registry)
        print(sweeps_table(list_sweeps(registry, project), project=project))
    finally:
        registry.close()
    return 0


def _print_runs(location: str, *, project: str | None, limit: int | None) -> None:
    from .impact.footprint import format_duration, format_energy, format_mass_g
    from .registry.store import Registry

    from .registry.liveness import reap_crashed

    registry = Registry.open(location)
    try:
        reap_crashed(registry)  # a run whose process died reads crashed, not running forever
        rows = registry.runs(project=project, limit=limit)
    finally:
        registry.close()
    if not rows:
        print("no runs recorded")
        return
    header = f"{'id':>4}  {'status':<11} {'name':<16} {'sweep':<10} {'energy':>10} {'CO2e':>10} {'time':>9}  methods"
    print(header)
    for row in reversed(rows):
        methods = ", ".join(
            f"{c} {row[f'{c}_method']}" for c in ("gpu", "cpu", "ram") if row.get(f"{c}_method") not in (None, "none")
        )
        energy = format_energy(row["energy_j"]) if row.get("energy_j") is not None else "-"
        co2 = format_mass_g(row["emissions_g"]) if row.get("emissions_g") is not None else "-"
        duration = format_duration(row["duration_s"]) if row.get("duration_s") is not None else "-"
        print(
            f"{row['id']:>4}  {row['status']:<11} {_cut(row.get('name'), 16):<16} {_cut(row.get('sweep'), 10):<10}"
            f" {energy:>10} {co2:>10} {duration:>9}  {methods}"
        )


def _cut(text: str | None, width: int) -> str:
    text = text or "-"
    return text if len(text) <= width else text[: width - 1] + "…"


def _regions(args: argparse.Namespace) -> int:
    from .impact.intensity import list_regions

    needle = (args.filter or "").lower()
    shown = 0
    for region in list_regions():
        if needle and needle not in region.code.lower() and needle not in region.name.lower():
            continue
        year = region.year or ""
        print(f"{region.code:<28} {region.g_per_kwh:>7.1f} g/kWh  {year!s:<5} {region.name}")
        shown += 1
    if not shown:
        print(f"no region matches {args.filter!r}", file=sys.stderr)
        return 1
    return 0


def _import_codecarbon(args: argparse.Namespace) -> int:
    from .errors import ConfigError
    from .registry.importer import read_codecarbon_csv, record_codecarbon_log
    from .registry.store import Registry

    # Every file is read and checked before anything is written: a wrong file name imports nothing.
    logs, problems = [], []
    for name in args.files:
        try:
            logs.append((name, read_codecarbon_csv(name, project=args.project)))
        except ConfigError as exc:
            problems.append(str(exc))
    if problems:
        for problem in dict.fromkeys(problems):  # a bad --project is said once, not once per file
            print(f"notebook-carbon: error: {problem}", file=sys.stderr)
        return 2
    rejected = 0
    registry = Registry.open(_registry_location(args.registry))
    try:
        for name, log in logs:
            report = record_codecarbon_log(registry, log)
            print(f"{name}: {report.summary()}")
            for error in report.errors:
                print(f"{name}:{error.line}: {error.message}", file=sys.stderr)
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

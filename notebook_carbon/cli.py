"""The ``notebook-carbon`` command.

``demo`` runs the quickstart notebook headlessly in a real kernel and prints the runs it recorded;
``runs`` lists a registry's runs; ``regions`` lists the grid regions the bundled data knows;
``import-codecarbon`` records codecarbon's emissions.csv logs as runs.
Errors are one clear line on stderr; bad arguments exit with status 2, other failures with 1.
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

    imports = sub.add_parser(
        "import-codecarbon", help="record the runs of codecarbon emissions.csv files in the registry"
    )
    imports.add_argument("files", nargs="+", metavar="FILE", help="emissions.csv files written by codecarbon")
    imports.add_argument("--registry", help="registry path or URL (default: settings)")
    imports.add_argument("--project", help="project of every run (default: each row's project_name)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return {
            "demo": _demo,
            "runs": _runs,
            "regions": _regions,
            "sweeps": _sweeps,
            "import-codecarbon": _import_codecarbon,
        }[args.command](args)
    except NotebookCarbonError as exc:
        print(f"notebook-carbon: error: {exc}", file=sys.stderr)
        return 1


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
    return 0


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

"""``notebook-carbon demo``: the quickstart notebook executed headlessly in a real kernel, the runs
it recorded, and their impact statement. Each demo starts a fresh registry in its folder (an
earlier demo's is renamed beside it, never deleted) unless told to add to one (``--append``, or
a ``--registry`` of the user's), and then says how many runs were there already."""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

from .errors import NotebookCarbonError
from .units import terminal_text


def demo(args: argparse.Namespace) -> int:
    import nbformat
    from nbclient import NotebookClient

    from . import cli_runs

    out = Path(args.out).resolve()  # the kernel runs in OUT: relative paths would move
    out.mkdir(parents=True, exist_ok=True)
    registry = args.registry or str(out / "registry.sqlite")
    if "://" not in registry:  # a file path, not a database URL
        registry = str(Path(registry).resolve())
    if args.registry is None and not args.append:
        _set_aside(Path(registry))
    else:
        _say_appending(registry, given=args.registry is not None)
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
    cli_runs.print_runs(registry)
    _demo_statement(registry, out)
    return 0


def _set_aside(registry: Path) -> None:
    """Start the demo on a fresh registry: an earlier demo's file is renamed, never deleted, and
    the user told where it is and how to add to it instead."""
    if not registry.exists():
        return
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(registry.stat().st_mtime))
    kept = registry.with_name(f"{registry.stem}-{stamp}{registry.suffix}")
    n = 1
    while kept.exists():
        n += 1
        kept = registry.with_name(f"{registry.stem}-{stamp}-{n}{registry.suffix}")
    for suffix in ("", "-wal", "-shm"):  # SQLite's journal files go with their database
        part = Path(str(registry) + suffix)
        if part.exists():
            part.rename(str(kept) + suffix)
    print(f"notebook-carbon demo: an earlier demo's registry was kept as {terminal_text(str(kept))}; this one "
          "starts a fresh registry (--append records into the earlier one instead)", flush=True)


def _say_appending(registry: str, *, given: bool) -> None:
    """Say that the demo adds to a registry that already has runs, and how to start fresh."""
    from .registry.store import Registry

    if "://" not in registry and not Path(registry).exists():
        return
    try:
        with Registry.open(registry, read_only=True) as found:
            earlier = len(found.runs())
    except NotebookCarbonError:  # an older schema or another file: the run itself says what is wrong
        return
    if earlier:
        fresh = "give another --registry" if given else "leave out --append"
        print(f"notebook-carbon demo: adding to {terminal_text(registry)}, which has {earlier} "
              f"run{'s' if earlier != 1 else ''} already; its totals and statement include them "
              f"(to start fresh, {fresh})", flush=True)


def _demo_statement(registry: str, out: Path) -> None:
    """The end of the demo: the statement of the quickstart's runs, as Markdown (printed and
    written), LaTeX and JSON, and the chart of their cumulative emissions."""
    from .analysis import runs
    from .charts import cumulative_emissions, save
    from .settings import resolve
    from .statements import statement_facts
    from .statements.render import render

    facts = statement_facts(registry, project=resolve().project)
    written = []
    for fmt, name in (("md", "statement.md"), ("latex", "statement.tex"), ("json", "statement.json")):
        (out / name).write_text(render(facts, fmt), encoding="utf-8")
        written.append(out / name)
    chart = out / "cumulative-emissions.svg"
    save(cumulative_emissions(runs(registry, project=resolve().project)), chart)
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

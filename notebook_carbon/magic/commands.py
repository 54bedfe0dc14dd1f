"""``CarbonMagics``: the ``%%carbon`` cell magic called directly, and the ``%carbon`` commands.

``%carbon config | last | auto on|off | sweeps | final RUN | dashboard``: each reads or changes the
extension's state (``extension.py``) or asks the registry through the session's writer. What they
print comes from ``summary.py``, imported when a command first needs it; the dashboard's libraries
load only when it is asked for.
"""

from __future__ import annotations

import ast
from typing import TYPE_CHECKING, Any

from IPython.core.error import UsageError
from IPython.core.magic import Magics, cell_magic, line_magic, magics_class

from ..cell.args import parse_cell_args
from ..errors import NotebookCarbonError
from ..session import block_status
from ..units import terminal_text
from .extension import say
from .jobs import driver_job, job_variable, summary

if TYPE_CHECKING:
    from .extension import CarbonExtension

SUBCOMMANDS = {
    "config": "%carbon config [key=value ...]   show or change settings (region=FR pue=1.2 ...)",
    "last": "%carbon last                      details of the last metered cell",
    "auto": "%carbon auto on|off               meter every cell",
    "sweeps": "%carbon sweeps                    the project's sweeps: cost, overhead, redundant runs",
    "final": "%carbon final RUN                 mark run RUN as its sweep's selected result",
    "log": "%carbon log NAME=VALUE ... [--step N]  what the run achieved (acc=0.93): this cell's run, else the last",
    "metric": "%carbon metric NAME higher|lower [--sweep S]  which is better for a metric, in the project or one sweep",
    "dashboard": "%carbon dashboard [--side]        totals, sweeps and charts; --side: in a side panel",
}


@magics_class
class CarbonMagics(Magics):
    def __init__(self, shell, extension: CarbonExtension) -> None:
        super().__init__(shell)
        self.ext = extension

    @cell_magic("carbon")
    def carbon_cell(self, line: str, cell: str):
        """Meter this cell's energy and emissions and record it as a run.

        %%carbon [--name NAME] [--sweep SWEEP] [--param KEY=VALUE ...] [--tag TAG ...] [--quiet] [--job [NAME]]

        The cell runs exactly as without the magic; one summary line follows it. ``--job``: the
        ranks of a distributed job that the cell starts (or that report NAME) join its run.
        """
        # Reached only when called directly (run_cell_magic); a %%carbon cell goes through the
        # transformer and the cell events instead (see the docstring of notebook_carbon.magic).
        __tracebackhide__ = True
        args = parse_cell_args(line)
        run = self.ext._begin(cell, job=driver_job(args), **args.fields())
        variable = job_variable(run, self.ext.warn)
        status, error = "ok", None
        try:
            if variable is not None:
                variable.set()
            return _exec_cell(self.shell, cell)
        except BaseException as exc:
            status, error = block_status(exc), exc
            raise
        finally:
            if variable is not None:
                variable.restore()
            self.ext.last = run.finish(status, error)
            problem = self.ext.last.recorded()
            if not args.quiet:
                say(summary(self.ext.last))
            if problem is not None:
                self.ext._warn_registry(problem, run)

    @line_magic("carbon")
    def carbon_line(self, line: str):
        """notebook-carbon commands: %carbon config | last | auto on|off"""
        words = line.split()
        if not words:
            print(_help(self.ext))
            return None
        command, rest = words[0], words[1:]
        if command == "config":
            return self._config(rest)
        if command == "last":
            return self._last(rest)
        if command == "auto":
            return self._auto(rest)
        if command == "sweeps":
            return self._sweeps(rest)
        if command == "final":
            return self._final(rest)
        if command == "log":
            return self._log(rest)
        if command == "metric":  # a sweep's or a metric's name may hold spaces: quoted, as in a shell
            return self._metric(_quoted(line)[1:])
        if command == "dashboard":
            from ..widgets import dashboard_magic  # ipywidgets, pandas and altair: only when asked for

            return dashboard_magic(self.ext, rest)
        raise UsageError(f"%carbon: unknown command {command!r}\n" + "\n".join(SUBCOMMANDS.values()))

    def _config(self, items: list[str]) -> None:
        from ..summary import settings_table

        if not items:
            print(settings_table(self.ext.session.settings))
            return
        changes = {}
        for item in items:
            key, sep, value = item.partition("=")
            if not sep:
                raise UsageError(f"%carbon config takes key=value pairs, got {item!r} (e.g. region=FR)")
            changes[key] = value
        try:
            self.ext.session.configure(**changes)
        except NotebookCarbonError as exc:
            raise UsageError(f"%carbon config: {exc}") from None
        print("notebook-carbon: " + ", ".join(f"{k}={v}" for k, v in changes.items()))

    def _last(self, rest: list[str]) -> None:
        from ..summary import run_report

        if rest:
            raise UsageError("%carbon last takes no arguments")
        if self.ext.last is None:
            print("notebook-carbon: no cell has been metered in this session yet")
            return
        print(run_report(self.ext.last, registry=self.ext.session.settings.registry_location()))

    def _sweeps(self, rest: list[str]) -> None:
        from ..summary import sweeps_table

        if rest:
            raise UsageError("%carbon sweeps takes no arguments")
        writer, project = self.ext.session.writer(), self.ext.session.settings.project
        writer.reap_crashed(awaited=True)  # dead kernels' runs show as crashed
        print(sweeps_table(_wait(writer.sweeps(project, awaited=True)), project=project))
        for line in _tradeoff_lines(self.ext.session.settings.registry_location(), project):
            print(line)

    def _final(self, rest: list[str]) -> None:
        if len(rest) != 1 or not rest[0].isascii() or not rest[0].isdigit() or not 0 < int(rest[0]) < 2**63:
            raise UsageError("%carbon final takes a run id (see %carbon sweeps or %carbon last), e.g. %carbon final 12")
        run = _wait(self.ext.session.writer().set_final(int(rest[0]), awaited=True))
        sweep = run["sweep"] or "its automatic sweep"
        print(f"notebook-carbon: run {run['id']} is now the selected result of {terminal_text(sweep)}")

    def _log(self, rest: list[str]) -> None:
        """Metrics of the run open in this cell (``%carbon log`` inside a ``%%carbon`` cell), else of
        the session's last run; written in order after the run's own writes."""
        from ..registry.metrics import check_metrics

        values, step, items = {}, None, iter(rest)
        for item in items:
            if item == "--step":
                text = next(items, "")
                if not (text.isascii() and text.isdigit()):
                    raise UsageError(f"%carbon log: --step takes a whole number of 0 or more, got {text!r}")
                step = int(text)
                continue
            name, sep, text = item.partition("=")
            try:
                values[name] = float(text) if sep and name else None
            except ValueError:
                raise UsageError(f"%carbon log: {name} must be a number, got {text!r}") from None
            if values[name] is None:
                raise UsageError(f"%carbon log takes NAME=VALUE pairs, got {item!r} (e.g. %carbon log acc=0.93 loss=0.21)")
        open_run = next((c.run for c in reversed(self.ext._open) if c.run is not None and c.run.result is None), None)
        try:
            checked = check_metrics(values, step)
            if open_run is not None:
                open_run.log(checked, step=step)
                which = "this cell's run"
            elif self.ext.last is not None:
                last = self.ext.last
                _wait(self.ext.session.writer().log_metrics(last.metrics_run(), checked, step, awaited=True))
                which = f"the last run ({terminal_text(last.row.get('name') or 'unnamed')})"
            else:
                raise UsageError("%carbon log: no run to log metrics for yet: use it in or after a %%carbon cell")
        except NotebookCarbonError as exc:
            raise UsageError(f"%carbon log: {exc}") from None
        said = ", ".join(f"{terminal_text(name)}={value:g}" for name, value in checked.items())
        print(f"notebook-carbon: logged {said}{f' at step {step}' if step is not None else ''} for {which}")

    def _metric(self, rest: list[str]) -> None:
        """Declare which is better for a metric (``registry.metrics.set_direction``): what the
        statement and ``%carbon sweeps`` compare runs by, where its name does not tell."""
        from ..registry.metrics import set_direction
        from ..registry.store import Registry

        if len(rest) not in (2, 4) or rest[1] not in ("higher", "lower") or (len(rest) == 4 and rest[2] != "--sweep"):
            raise UsageError("%carbon metric takes NAME higher|lower [--sweep SWEEP], e.g. %carbon metric bleu higher "
                             "(quote a name with spaces: --sweep \"lr sweep\")")
        name, direction, sweep = rest[0], rest[1], rest[3] if len(rest) == 4 else None
        settings = self.ext.session.settings
        self.ext.session.writer().flush(30)
        where = f"project {terminal_text(settings.project)}"
        try:
            with Registry.open(settings.registry_location()) as registry:
                if sweep is not None:
                    sweep, where = _sweep_key(registry, settings.project, sweep)
                set_direction(registry, settings.project, name, direction, sweep_key=sweep)
        except NotebookCarbonError as exc:
            raise UsageError(f"%carbon metric: {exc}") from None
        print(f"notebook-carbon: a {direction} {terminal_text(name)} is better in {where}")

    def _auto(self, rest: list[str]) -> None:
        if len(rest) != 1 or rest[0] not in ("on", "off"):
            state = "on" if self.ext.auto else "off"
            raise UsageError(f"%carbon auto takes on or off (now {state})")
        self.ext.auto = rest[0] == "on"
        print(f"notebook-carbon: auto mode {rest[0]}" + (" (every cell is metered)" if self.ext.auto else ""))



def _wait(future, timeout_s: float = 30.0):
    """The result of a registry query run by the writer; its errors become usage errors."""
    try:
        return future.result(timeout_s)
    except NotebookCarbonError as exc:
        raise UsageError(str(exc)) from None


def _quoted(line: str) -> list[str]:
    """``line``'s words as a shell splits them (``"lr sweep"`` is one word), a backslash kept as
    part of a name (``val\\acc``), or what to fix."""
    import shlex

    words = shlex.shlex(line, posix=True)
    words.whitespace_split, words.escape = True, ""
    try:
        return list(words)
    except ValueError as exc:
        raise UsageError(f"%carbon: {exc} in {line.strip()!r}: close the quotes around a name") from None


def _sweep_key(registry: Any, project: str, sweep: str) -> tuple[str, str]:
    """The key of the sweep ``sweep`` names in ``project`` (its key, or the label ``%carbon sweeps``
    shows), and what to say of it; a name no sweep has yet is taken as the key of one to come."""
    listed = registry.sweeps(project, params=False)
    if any(found.key == sweep for found in listed):
        return sweep, f"sweep {terminal_text(sweep)}"
    keys = [found.key for found in listed if found.label == sweep]
    if len(keys) > 1:
        raise UsageError(f"%carbon metric: {len(keys)} sweeps are labelled {terminal_text(sweep)!r}; "
                         f"name one by its key: {', '.join(terminal_text(k) for k in keys)}")  # fmt: skip
    if keys:
        return keys[0], f"sweep {terminal_text(sweep)}"
    return sweep, f"sweep {terminal_text(sweep)} (no run of it yet)"


def _tradeoff_lines(registry: str, project: str) -> list[str]:
    """One line per result sweep whose runs logged a metric (``analysis.tradeoffs``): was its
    selected run worth its energy. Read after the writer's pending writes (``%carbon sweeps``)."""
    from ..analysis.filters import opened
    from ..analysis.tradeoffs import describe, sweep_tradeoffs

    with opened(registry) as reg:
        return [describe(found, terminal_text) for found in sweep_tradeoffs(reg, project)]


def _exec_cell(shell, cell: str):
    """Run ``cell`` in the user namespace, returning the last expression's value (as ``%%time`` does)."""
    __tracebackhide__ = True
    source = shell.transform_cell(cell)
    filename = shell.compile.cache(source, shell.execution_count)  # tracebacks show the cell's lines
    tree = ast.parse(source, filename)
    last = None
    if tree.body and isinstance(tree.body[-1], ast.Expr):
        last = ast.Expression(tree.body.pop().value)
    ns = shell.user_ns
    exec(compile(tree, filename, "exec"), ns, ns)
    return eval(compile(last, filename, "eval"), ns, ns) if last is not None else None


def _help(ext: CarbonExtension) -> str:
    settings = ext.session.settings
    return "\n".join(
        [
            "notebook-carbon: put %%carbon on a cell to meter it.",
            "  %%carbon [--name NAME] [--sweep SWEEP] [--param KEY=VALUE ...] [--tag TAG ...] [--quiet] [--job [NAME]]",
            *("  " + text for text in SUBCOMMANDS.values()),
            f"auto mode: {'on' if ext.auto else 'off'}; region: {settings.region or 'not set (world average)'};"
            f" registry: {settings.registry_location()}",
        ]
    )

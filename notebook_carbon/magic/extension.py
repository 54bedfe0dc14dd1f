"""IPython integration: ``%%carbon``, ``%carbon`` and auto mode.

How a ``%%carbon`` cell runs, and why. The cell must behave exactly as without the magic: variables,
display of the last expression, ``await`` at top level, and a normal traceback that marks the cell
failed. Executing the body inside a cell-magic function breaks several of these (nested
``run_cell`` fires the cell events twice and cannot ``await``; ``exec`` inside the magic adds frames
to tracebacks). So the cell is not run by us at all:

1. an input transformer (pure text, safe for IPython's completeness checks) turns the
   ``%%carbon ...`` line into a comment, so IPython runs the body as an ordinary cell with its line
   numbers unchanged; bad arguments turn the whole cell into a ``raise UsageError(...)``, so the
   body never runs;
2. the ``pre_run_cell`` event parses the same line and opens the run (window + ``running`` record);
3. the ``post_run_cell`` event, which fires after the cell's output and traceback are shown, closes
   the run with ``ok``, ``failed`` or ``interrupted`` and prints the one-line summary.

Auto mode (``%carbon auto on``) uses the same two events for every cell. A registered ``%%carbon``
cell magic remains for callers that invoke it directly (``run_cell_magic``), where no transformer
runs. Any failure of ours is caught at this boundary and shown as one warning line; the user's cell
output and exception always come through untouched.
"""

from __future__ import annotations

import ast
import re
import sys
from typing import Any

from IPython.core.error import UsageError
from IPython.core.interactiveshell import InteractiveShell
from IPython.core.magic import Magics, cell_magic, line_magic, magics_class

from .cell.args import _CELL_LINE, CellArgs, parse_cell_args, split_carbon_cell, transform_carbon_cell
from .cell.redundancy import CellCheck, check_cell, repeat_message
from .errors import NotebookCarbonError
from .live import LiveMeter, WidgetSupport
from .session import ActiveRun, RunResult, Session, attach, detach, first_report
from .session.run import close_left_open
from .units import terminal_text

_LINE_MAGIC_CELL = re.compile(r"\s*%carbon(?=\s|$)[^\n]*\s*\Z")

SUBCOMMANDS = {
    "config": "%carbon config [key=value ...]   show or change settings (region=FR pue=1.2 ...)",
    "last": "%carbon last                      details of the last metered cell",
    "auto": "%carbon auto on|off               meter every cell",
    "sweeps": "%carbon sweeps                    the project's sweeps: cost, overhead, redundant runs",
    "final": "%carbon final RUN                 mark run RUN as its sweep's selected result",
    "dashboard": "%carbon dashboard [--side]        totals, sweeps and charts; --side: in a side panel",
}


class _Cell:
    """A cell between its pre- and post-run events: the run it opened, if any, and its arguments."""

    __slots__ = ("info", "run", "args", "depth")

    def __init__(self, info, depth: int) -> None:
        self.info = info
        self.run: ActiveRun | None = None
        self.args = CellArgs()
        self.depth = depth
        """How many cells run around this one (0: a cell the user ran, 1: one it ran with run_cell...)."""


_RUN_CELL_CODE = InteractiveShell.run_cell_async.__code__
"""Every cell runs through this coroutine once, whether started by ``run_cell`` or, as ipykernel
does for a cell with a top-level ``await``, by ``run_cell_async`` itself."""


def _cell_frame():
    """The frame running the current cell (its ``run_cell_async``), alive until the cell ends."""
    frame = sys._getframe(1)
    while frame is not None and frame.f_code is not _RUN_CELL_CODE:
        frame = frame.f_back
    return frame


def _cell_depth() -> int:
    """How many cells run around the caller's (a few µs): ``run_cell_async`` frames on the stack, less one."""
    depth, frame = -1, sys._getframe(1)
    while frame is not None:
        if frame.f_code is _RUN_CELL_CODE:
            depth += 1
        frame = frame.f_back
    return max(depth, 0)


class CarbonExtension:
    """Per-shell state: the session, auto mode, open runs and the last result."""

    def __init__(self, shell, session: Session | None = None) -> None:
        self.shell = shell

        def transformer(lines: list[str]) -> list[str]:
            return self.transform(lines)

        # It may query the registry: IPython's completeness checks must not call it as they type.
        transformer.has_side_effects = True
        self.transformer = transformer
        self.session = session if session is not None else Session()
        self.auto = False
        self.last: RunResult | None = None
        self._open: list[_Cell] = []  # cells whose post-run event has not come yet, outermost first
        # The transformer's verdict on the cell about to run (skip/error modes decide there, since
        # IPython transforms a cell before its pre_run_cell event): (key, CellCheck or exception).
        self._decided: tuple[tuple[str, str], Any] | None = None
        self.frontend = WidgetSupport(shell)
        self._live: dict[str, LiveMeter] = {}  # run uid -> the live line of its cell (widget front ends)

    # -- transformer ----------------------------------------------------------------------------

    def transform(self, lines: list[str]) -> list[str]:
        """``transform_carbon_cell``, plus the redundancy verdict for ``--on-duplicate skip|error``."""
        result = transform_carbon_cell(lines)
        if not lines or not _CELL_LINE.match(lines[0]) or result[0].startswith("raise "):
            return result
        arguments, body = lines[0][len("%%carbon") :].strip(), "".join(lines[1:])
        args = parse_cell_args(arguments)
        mode = args.on_duplicate or self.session.settings.on_duplicate
        if mode == "warn":
            return result
        try:
            check = self._check(body, args)
            self._decided = ((arguments, body), check)
            if check.earlier is None:
                return result
            repeated = repeat_message(check.earlier)
        except Exception as exc:  # reported by pre_run_cell; the cell runs as with ``warn``
            self._decided = ((arguments, body), exc)
            return result
        if mode == "skip":
            return [f"# %%carbon {arguments}: not run, identical to {repeated}\n"]
        error = f"this cell repeats {repeated}; not run (--on-duplicate error)"
        return [f"raise __import__('notebook_carbon.errors', fromlist=['_']).RedundantRunError({error!r})\n"]

    def _check(self, body: str, args: CellArgs) -> CellCheck:
        source = self.shell.transform_cell(body)  # IPython syntax (magics, !cmd) as it will run
        return check_cell(self.session, source, self.shell.user_ns, dict(args.params))

    def _take_decision(self, key: tuple[str, str]):
        decided, self._decided = self._decided, None
        if decided is not None and decided[0] == key:
            if isinstance(decided[1], BaseException):
                raise decided[1]
            return decided[1]
        return None

    # -- events ---------------------------------------------------------------------------------

    def pre_run_cell(self, info) -> None:
        # The cell is listed before its run opens: an interrupt at any point after this leaves
        # the run where post_run_cell (which IPython always fires) finds and closes it.
        cell = _Cell(info, _cell_depth())
        self._drop_stale(cell.depth)
        nested = self._nested()
        self._open.append(cell)
        try:
            split = split_carbon_cell(info.raw_cell)
            if split is not None:
                try:
                    cell.args = parse_cell_args(split[0])
                except UsageError:
                    return  # the transformed cell raises it; nothing to meter
                self._begin_checked(cell, split)
            elif self.auto and not nested and not _LINE_MAGIC_CELL.match(info.raw_cell):
                self._begin_checked(cell, (None, info.raw_cell))
        except Exception as exc:  # never let metering stop the user's cell
            self.warn(f"this cell runs unmetered: {_describe(exc)}")

    def _begin_checked(self, cell: _Cell, split: tuple[str | None, str]) -> None:
        """Fingerprint the cell, act on an identical earlier run, and open the run (none: not run)."""
        args = cell.args
        arguments, body = split
        mode = "warn" if arguments is None else (args.on_duplicate or self.session.settings.on_duplicate)
        try:
            check = (self._take_decision((arguments, body)) if mode != "warn" else None) or self._check(body, args)
        except Exception as exc:  # a cell we cannot fingerprint is still metered
            self.warn(f"no redundancy check for this cell: {_describe(exc)}")
            check = None
        earlier = check.earlier if check is not None else None
        if earlier is not None and mode == "skip":
            print(f"notebook-carbon: not run: this cell is identical to {repeat_message(earlier)}", flush=True)
            return
        if earlier is not None and mode == "error":
            return  # the transformed cell raises RedundantRunError
        if earlier is not None and arguments is not None:  # auto mode records it without a word:
            # re-running a plotting or import cell is routine, and a warning on each would be noise
            self.warn(
                f"this cell repeats {repeat_message(earlier)}: same code, inputs and parameters; "
                "it runs anyway (--on-duplicate skip would not run it)"
            )
        fields = args.fields()
        if check is not None:
            fields["params"] = check.params(fields["params"])
        self._begin(
            body,
            cell=cell,
            live=not args.quiet,
            fingerprints=check.fingerprints if check is not None else None,
            redundant_of=earlier["id"] if earlier is not None else None,
            **fields,
        )

    def post_run_cell(self, result) -> None:
        try:
            self._post_run_cell(result)
        except KeyboardInterrupt:
            # Interrupted while closing the run: each step below is idempotent, so finish them
            # (the window must not go on metering an idle kernel), then let the interrupt through.
            self._post_run_cell(result)
            raise

    def _post_run_cell(self, result) -> None:
        try:
            self.frontend.after_cell()  # once: does the front end render widgets? (see live.py)
        except Exception as exc:
            self.frontend.disable(str(exc))
            self.warn(f"no live meter in this session: {_describe(exc)}")
        cell = self._find(getattr(result, "info", None))
        if cell is None:
            self._report_writer_errors()
            return
        if cell.run is not None:
            # An interrupt in here leaves the cell listed: post_run_cell's retry closes it.
            self._close_run(cell, result)
        self._drop(cell)
        close_left_open()
        self._report_writer_errors()

    def _close_run(self, cell: _Cell, result) -> None:
        run, args = cell.run, cell.args
        try:
            status, error = _status_of(result)
            self.last = run.finish(status, error)
            self._close_live(run)  # the live line goes before the summary comes
        except Exception as exc:
            self._close_live(run)
            self.warn(f"could not complete the run record: {_describe(exc)}")
            return
        # The summary line says the run is recorded: it comes once the registry has it. (Composed
        # first, while the writer commits: the commit's I/O runs without the GIL.)
        line = None if args.quiet else self.last.summary()
        problem = self.last.recorded()
        if problem is None and args.final and status == "ok":
            if run.parent_uid is not None:
                self.warn("--final is ignored: this cell ran inside another metered run, as a part of it")
            else:
                final = self.session.writer().set_final(run.uid, awaited=True)
                problem = _exception_of(final)
        if line is not None:
            # a run that did not reach the registry says so on its own line, even when its cause
            # was already explained by a warning in an earlier cell
            _say(line + (" · NOT RECORDED (registry unavailable)" if problem is not None else ""))
        if problem is not None:
            self._warn_registry(problem, run)

    def _warn_registry(self, problem: BaseException, run: ActiveRun | None = None) -> None:
        """One warning per cause, naming the run it concerned and the registry."""
        if not first_report(problem):
            return
        where = getattr(problem, "where", None) or self.session.settings.registry_location()
        if run is None:
            what = "a registry write failed"
        elif run.row.get("name"):
            what = f"run {run.row['name']!r} was not recorded"
        else:
            what = "this cell's run was not recorded"
        self.warn(f"{what} in registry {where}: {_describe(problem)}")
    def _close_live(self, run: ActiveRun) -> None:
        meter = self._live.pop(run.uid, None)
        error = meter.close() if meter is not None else None
        if error is not None:  # said once: the live meter stays off for the rest of the session
            self.frontend.disable(_describe(error))
            self.warn(f"the live meter stopped and is off for this session: {_describe(error)}")

    def _nested(self) -> bool:
        return any(cell.run is not None for cell in self._open)

    def _find(self, info) -> _Cell | None:
        for cell in reversed(self._open):
            if cell.info is info or info is None:
                return cell
        return None

    def _drop_stale(self, depth: int) -> None:
        """Close the cells at ``depth`` or deeper still listed: an interrupt kept their post event away."""
        stale = [cell for cell in self._open if cell.depth >= depth]
        if stale:
            self._drop(stale[0], including=True)

    def _drop(self, cell: _Cell, *, including: bool = False) -> None:
        """Forget ``cell`` and the cells opened after it, whose post event never came (closing their runs)."""
        if cell not in self._open:
            return
        index = self._open.index(cell)
        for stale in self._open[index if including else index + 1 :]:
            if stale.run is not None:
                stale.run.finish("interrupted", "the cell's post-run event never arrived")
                self._close_live(stale.run)
        del self._open[index:]

    def _begin(self, source: str, *, cell: _Cell | None = None, live: bool = False, **fields: Any) -> ActiveRun:
        notebook = self.shell.user_ns.get("__session__") or None
        meter = None
        if live and self.frontend.renders_widgets():  # the cell gets a live line after 1 s
            intensity, pue = self.session.intensity(), self.session.settings.pue
            meter = self.frontend.meter(name=fields.get("name"), intensity=intensity, pue=pue)
        on_sample = meter.on_sample if meter is not None else None
        run = self.session.begin(cell_source=source, notebook=notebook, on_sample=on_sample, **fields)
        if meter is not None:
            self._live[run.uid] = meter
        if cell is not None:
            cell.run = run  # before it starts: from here on, post_run_cell closes it whatever happens
        return run.start(anchor=_cell_frame())

    # -- output ---------------------------------------------------------------------------------

    def warn(self, message: str) -> None:
        print(f"notebook-carbon warning: {terminal_text(message)}", file=sys.stderr, flush=True)

    def _report_writer_errors(self) -> None:
        """Failures of writes nobody waited for (a run's start, a checkpoint), once per cause."""
        from .session import _writers

        writer = _writers.get(self.session.settings.registry_location())
        for exc in writer.take_errors() if writer else []:
            self._warn_registry(exc)


def _status_of(result) -> tuple[str, BaseException | str | None]:
    if result is None:
        return "interrupted", "the cell was stopped before it finished"
    error = result.error_in_exec or result.error_before_exec
    if error is None:
        return "ok", None
    if isinstance(error, KeyboardInterrupt):
        return "interrupted", error
    return "failed", error


def _exception_of(future, timeout_s: float = 45.0) -> BaseException | None:
    try:
        future.result(timeout_s)
    except Exception as exc:
        return exc
    return None


def _describe(exc: BaseException) -> str:
    if isinstance(exc, NotebookCarbonError):
        return str(exc)
    return f"{type(exc).__name__}: {exc} (please report this as a notebook-carbon bug)"


@magics_class
class CarbonMagics(Magics):
    def __init__(self, shell, extension: CarbonExtension) -> None:
        super().__init__(shell)
        self.ext = extension

    @cell_magic("carbon")
    def carbon_cell(self, line: str, cell: str):
        """Meter this cell's energy and emissions and record it as a run.

        %%carbon [--name NAME] [--sweep SWEEP] [--param KEY=VALUE ...] [--tag TAG ...] [--quiet]

        The cell runs exactly as without the magic; one summary line follows it.
        """
        # Reached only when called directly (run_cell_magic); a %%carbon cell goes through the
        # transformer and the cell events instead (see the module docstring).
        __tracebackhide__ = True
        args = parse_cell_args(line)
        run = self.ext._begin(cell, **args.fields())
        status, error = "ok", None
        try:
            return _exec_cell(self.shell, cell)
        except KeyboardInterrupt as exc:
            status, error = "interrupted", exc
            raise
        except BaseException as exc:
            status, error = "failed", exc
            raise
        finally:
            self.ext.last = run.finish(status, error)
            problem = self.ext.last.recorded()
            if not args.quiet:
                _say(self.ext.last.summary())
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
        if command == "dashboard":
            from .widgets import dashboard_magic  # ipywidgets, pandas and altair: only when asked for

            return dashboard_magic(self.ext, rest)
        raise UsageError(f"%carbon: unknown command {command!r}\n" + "\n".join(SUBCOMMANDS.values()))

    def _config(self, items: list[str]) -> None:
        from .summary import settings_table

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
        from .summary import run_report

        if rest:
            raise UsageError("%carbon last takes no arguments")
        if self.ext.last is None:
            print("notebook-carbon: no cell has been metered in this session yet")
            return
        print(run_report(self.ext.last, registry=self.ext.session.settings.registry_location()))

    def _sweeps(self, rest: list[str]) -> None:
        from .summary import sweeps_table

        if rest:
            raise UsageError("%carbon sweeps takes no arguments")
        writer, project = self.ext.session.writer(), self.ext.session.settings.project
        writer.reap_crashed(awaited=True)  # dead kernels' runs show as crashed
        print(sweeps_table(_wait(writer.sweeps(project, awaited=True)), project=project))

    def _final(self, rest: list[str]) -> None:
        if len(rest) != 1 or not rest[0].isascii() or not rest[0].isdigit() or not 0 < int(rest[0]) < 2**63:
            raise UsageError("%carbon final takes a run id (see %carbon sweeps or %carbon last), e.g. %carbon final 12")
        run = _wait(self.ext.session.writer().set_final(int(rest[0]), awaited=True))
        sweep = run["sweep"] or "its automatic sweep"
        print(f"notebook-carbon: run {run['id']} is now the selected result of {terminal_text(sweep)}")

    def _auto(self, rest: list[str]) -> None:
        if len(rest) != 1 or rest[0] not in ("on", "off"):
            state = "on" if self.ext.auto else "off"
            raise UsageError(f"%carbon auto takes on or off (now {state})")
        self.ext.auto = rest[0] == "on"
        print(f"notebook-carbon: auto mode {rest[0]}" + (" (every cell is metered)" if self.ext.auto else ""))


def _say(line: str) -> None:
    """Print ``line`` in one write: ``print`` writes the text and its newline apart, and a kernel
    flushing its stdout in between splits the line into two stream outputs."""
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def _wait(future, timeout_s: float = 30.0):
    """The result of a registry query run by the writer; its errors become usage errors."""
    try:
        return future.result(timeout_s)
    except NotebookCarbonError as exc:
        raise UsageError(str(exc)) from None


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
            "  %%carbon [--name NAME] [--sweep SWEEP] [--param KEY=VALUE ...] [--tag TAG ...] [--quiet]",
            *("  " + text for text in SUBCOMMANDS.values()),
            f"auto mode: {'on' if ext.auto else 'off'}; region: {settings.region or 'not set (world average)'};"
            f" registry: {settings.registry_location()}",
        ]
    )


_extensions: dict[int, CarbonExtension] = {}


def load_ipython_extension(shell, session: Session | None = None) -> CarbonExtension:
    try:
        ext = CarbonExtension(shell, session)
    except NotebookCarbonError as exc:  # a bad config file or NOTEBOOK_CARBON_* value: say which
        raise UsageError(f"notebook-carbon could not load: {exc}") from None
    _extensions[id(shell)] = ext
    attach(shell, ext.session)  # track(), the widgets and integrations use it (session.current)
    shell.register_magics(CarbonMagics(shell, ext))
    shell.events.register("pre_run_cell", ext.pre_run_cell)
    shell.events.register("post_run_cell", ext.post_run_cell)
    shell.input_transformers_cleanup.append(ext.transformer)
    return ext


def unload_ipython_extension(shell) -> None:
    ext = _extensions.pop(id(shell), None)
    if ext is None:
        return
    detach(shell)
    ext.frontend.close()
    shell.events.unregister("pre_run_cell", ext.pre_run_cell)
    shell.events.unregister("post_run_cell", ext.post_run_cell)
    if ext.transformer in shell.input_transformers_cleanup:
        shell.input_transformers_cleanup.remove(ext.transformer)


def extension_for(shell) -> CarbonExtension | None:
    """The loaded extension of ``shell`` (for tests; others use ``session.current()``)."""
    return _extensions.get(id(shell))


def current_extension() -> CarbonExtension | None:
    """The extension of the running IPython shell, if there is one and it is loaded."""
    from IPython import get_ipython

    shell = get_ipython()
    return extension_for(shell) if shell is not None else None

"""``CarbonExtension``: the per-shell state and the cell events that meter a ``%%carbon`` cell.

The input transformer rewrites the ``%%carbon`` line (and, for ``--on-duplicate skip|error``,
decides there whether the body runs); ``pre_run_cell`` opens the run, ``post_run_cell`` closes it
and prints the summary. A cell whose code fails stops measuring before IPython renders its
traceback (``code_ended``, called by the ``CodeEndHook`` of ``cells.py``), so the run's duration
and energy are those of its code. Auto mode takes the same path for every cell. How and why the
cell is run this way: the package docstring (``notebook_carbon.magic``).
"""

from __future__ import annotations

import sys
from typing import Any

from IPython.core.error import UsageError

from ..cell.args import _CELL_LINE, CellArgs, parse_cell_args, split_carbon_cell, transform_carbon_cell
from ..cell import front_end_cell_id, is_cell_id
from ..cell.redundancy import CellCheck, check_cell, repeat_message
from ..errors import NotebookCarbonError
from ..live import LiveMeter, WidgetSupport
from ..session import ActiveRun, RunResult, Session, first_report
from ..session.run import close_left_open
from ..units import terminal_text
from .cells import LINE_MAGIC_CELL, CodeEndHook, OpenCell, cell_depth, cell_frame, status_of
from .jobs import driver_job, job_variable, summary


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
        self._open: list[OpenCell] = []  # cells whose post-run event has not come yet, outermost first
        # The transformer's verdict on the cell about to run (skip/error modes decide there, since
        # IPython transforms a cell before its pre_run_cell event): (key, CellCheck or exception).
        self._decided: tuple[tuple[str, str], Any] | None = None
        self.frontend = WidgetSupport(shell)
        self._live: dict[str, LiveMeter] = {}  # run uid -> the live line of its cell (widget front ends)
        self.code_end = CodeEndHook(shell, self.code_ended)  # installed and removed with the extension

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
        cell = OpenCell(info, cell_depth())
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
            elif self.auto and not nested and not LINE_MAGIC_CELL.match(info.raw_cell):
                self._begin_checked(cell, (None, info.raw_cell))
        except Exception as exc:  # never let metering stop the user's cell
            self.warn(f"this cell runs unmetered: {describe(exc)}")

    def _begin_checked(self, cell: OpenCell, split: tuple[str | None, str]) -> None:
        """Fingerprint the cell, act on an identical earlier run, and open the run (none: not run)."""
        args = cell.args
        arguments, body = split
        mode = "warn" if arguments is None else (args.on_duplicate or self.session.settings.on_duplicate)
        try:
            check = (self._take_decision((arguments, body)) if mode != "warn" else None) or self._check(body, args)
        except Exception as exc:  # a cell we cannot fingerprint is still metered
            self.warn(f"no redundancy check for this cell: {describe(exc)}")
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
        run = self._begin(
            body,
            cell=cell,
            live=not args.quiet,
            fingerprints=check.fingerprints if check is not None else None,
            redundant_of=earlier["id"] if earlier is not None else None,
            job=driver_job(args),
            **fields,
        )
        cell.job_variable = job_variable(run, self.warn)  # kept first: post_run_cell restores it
        if cell.job_variable is not None:
            cell.job_variable.set()

    def code_ended(self) -> None:
        """IPython is about to render the traceback that ends the running cell's code: the run opened
        for that cell (and for any cell inside it still listed) stops measuring now, not after the
        traceback is shown; ``post_run_cell`` then records the measurement as usual. The cells around
        it (a metered cell whose code ran the failing one with ``run_cell``) measure on."""
        depth = cell_depth()
        for cell in self._open:
            if cell.depth >= depth and cell.run is not None:
                try:
                    cell.run.stop_window()
                except Exception:  # noqa: BLE001, S110 - finish() at post_run_cell stops it again, says why
                    pass

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
            self.warn(f"no live meter in this session: {describe(exc)}")
        cell = self._find(getattr(result, "info", None))
        if cell is None:
            self._report_writer_errors()
            return
        if cell.job_variable is not None:
            cell.job_variable.restore()  # the cell's code is over: its ranks have inherited the key
        if cell.run is not None:
            # An interrupt in here leaves the cell listed: post_run_cell's retry closes it.
            self._close_run(cell, result)
        self._drop(cell)
        close_left_open()
        self._report_writer_errors()

    def _close_run(self, cell: OpenCell, result) -> None:
        run, args = cell.run, cell.args
        try:
            status, error = status_of(result)
            self.last = run.finish(status, error)
            self._close_live(run)  # the live line goes before the summary comes
        except Exception as exc:
            self._close_live(run)
            self.warn(f"could not complete the run record: {describe(exc)}")
            return
        # The summary line says the run is recorded: it comes once the registry has it. (Composed
        # first, while the writer commits: the commit's I/O runs without the GIL.)
        line = None if args.quiet else summary(self.last)
        problem = self.last.recorded()
        if problem is None and args.final and status == "ok":
            if run.parent_uid is not None:
                self.warn("--final is ignored: this cell ran inside another metered run, as a part of it")
            else:  # a job's driver is a part: the run to mark is the job's
                which = self.last.run_id() if self.last.job is not None else run.uid
                final = self.session.writer().set_final(which if which is not None else run.uid, awaited=True)
                problem = _exception_of(final)
        if line is not None:
            # a run that did not reach the registry says so on its own line, even when its cause
            # was already explained by a warning in an earlier cell
            say(line + (" · NOT RECORDED (registry unavailable)" if problem is not None else ""))
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
        self.warn(f"{what} in registry {where}: {describe(problem)}")

    def _close_live(self, run: ActiveRun) -> None:
        meter = self._live.pop(run.uid, None)
        error = meter.close() if meter is not None else None
        if error is not None:  # said once: the live meter stays off for the rest of the session
            self.frontend.disable(describe(error))
            self.warn(f"the live meter stopped and is off for this session: {describe(error)}")

    def _nested(self) -> bool:
        return any(cell.run is not None for cell in self._open)

    def _find(self, info) -> OpenCell | None:
        for cell in reversed(self._open):
            if cell.info is info or info is None:
                return cell
        return None

    def _drop_stale(self, depth: int) -> None:
        """Close the cells at ``depth`` or deeper still listed: an interrupt kept their post event away."""
        stale = [cell for cell in self._open if cell.depth >= depth]
        if stale:
            self._drop(stale[0], including=True)

    def _drop(self, cell: OpenCell, *, including: bool = False) -> None:
        """Forget ``cell`` and the cells opened after it, whose post event never came (closing their runs)."""
        if cell not in self._open:
            return
        index = self._open.index(cell)
        stale_cells = self._open[index if including else index + 1 :]
        for stale in reversed(stale_cells):  # innermost first: each puts back what it found
            if stale.job_variable is not None:
                stale.job_variable.restore()
        for stale in stale_cells:
            if stale.run is not None:
                stale.run.finish("interrupted", "the cell's post-run event never arrived")
                self._close_live(stale.run)
        del self._open[index:]

    def _begin(self, source: str, *, cell: OpenCell | None = None, live: bool = False, **fields: Any) -> ActiveRun:
        notebook = self.shell.user_ns.get("__session__") or None
        meter = None
        if live and self.frontend.renders_widgets():  # the cell gets a live line after 1 s
            intensity, pue = self.session.intensity(), self.session.settings.pue
            meter = self.frontend.meter(name=fields.get("name"), intensity=intensity, pue=pue)
        on_sample = meter.on_sample if meter is not None else None
        count = getattr(self.shell, "execution_count", None)  # the cell's In [n], as it runs
        fields.setdefault("execution_count", count if isinstance(count, int) else None)
        # the cell's id, as JupyterLab sends it with the cell (a view opens the notebook there): the
        # innermost open cell's that has one, else the request's (a cell run by run_cell has none)
        ids = (getattr(open_cell.info, "cell_id", None) for open_cell in [*reversed(self._open), cell] if open_cell)
        found = next((cell_id for cell_id in ids if is_cell_id(cell_id)), None)
        fields.setdefault("cell_id", found or front_end_cell_id(self.shell))
        run = self.session.begin(cell_source=source, notebook=notebook, on_sample=on_sample, **fields)
        if meter is not None:
            self._live[run.uid] = meter
        if cell is not None:
            cell.run = run  # before it starts: from here on, post_run_cell closes it whatever happens
        return run.start(anchor=cell_frame())

    # -- output ---------------------------------------------------------------------------------

    def warn(self, message: str) -> None:
        print(f"notebook-carbon warning: {terminal_text(message)}", file=sys.stderr, flush=True)

    def _report_writer_errors(self) -> None:
        """Failures of writes nobody waited for (a run's start, a checkpoint), once per cause."""
        from ..session import _writers

        writer = _writers.get(self.session.settings.registry_location())
        for exc in writer.take_errors() if writer else []:
            self._warn_registry(exc)


def _exception_of(future, timeout_s: float = 45.0) -> BaseException | None:
    try:
        future.result(timeout_s)
    except Exception as exc:
        return exc
    return None


def describe(exc: BaseException) -> str:
    """Our own errors as their message; anything else as a bug to report."""
    if isinstance(exc, NotebookCarbonError):
        return str(exc)
    return f"{type(exc).__name__}: {exc} (please report this as a notebook-carbon bug)"


def say(line: str) -> None:
    """Print ``line`` in one write: ``print`` writes the text and its newline apart, and a kernel
    flushing its stdout in between splits the line into two stream outputs."""
    sys.stdout.write(line + "\n")
    sys.stdout.flush()

"""The ``%%carbon`` line: its arguments, and the input transformer's pure text rewrite.

Kept apart from ``magic.py`` (the IPython events and commands) because both the transformer and
``pre_run_cell`` parse the same line, and tests check this part as plain functions.
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import functools
import re
import shlex
from typing import Any

from IPython.core.error import UsageError

from ..errors import ConfigError
from ..record import recordable_param
from ..settings import ON_DUPLICATE

_CELL_LINE = re.compile(r"%%carbon(?=\s|$)")

MAX_JOB_CHARS = 200
"""The longest ``--job`` NAME: what every rank accepts in ``NOTEBOOK_CARBON_JOB``
(``distributed.environment.MAX_KEY_CHARS``, a layer below this one may not import)."""
_NEW_JOB = object()  # ``--job`` without a NAME (told apart from ``--job ""``, a usage error)


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # argparse would sys.exit(); a magic must raise instead
        raise UsageError(f"{message}\n{self.format_usage().strip()}")


@functools.cache
def _cell_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="%%carbon", add_help=False, allow_abbrev=False)
    parser.add_argument("--name", help="name of the run")
    parser.add_argument("--sweep", help="sweep the run belongs to")
    parser.add_argument("--param", action="extend", nargs="+", default=[], metavar="KEY=VALUE")
    parser.add_argument("--tag", action="extend", nargs="+", default=[], metavar="TAG")
    parser.add_argument("--quiet", action="store_true", help="print no summary line")
    parser.add_argument("--final", action="store_true", help="mark the run as its sweep's result if it ends ok")
    parser.add_argument(
        "--on-duplicate", choices=ON_DUPLICATE, default=None, help="when the cell repeats an earlier ok run"
    )
    parser.add_argument("--job", nargs="?", const=_NEW_JOB, default=None, metavar="NAME",
                        help="drive a distributed job: the ranks this cell starts are parts of its run")  # fmt: skip
    return parser


@dataclasses.dataclass(frozen=True)
class CellArgs:
    """The parsed ``%%carbon`` line."""

    name: str | None = None
    sweep: str | None = None
    params: tuple[tuple[str, Any], ...] = ()
    tags: tuple[str, ...] = ()
    quiet: bool = False
    final: bool = False
    on_duplicate: str | None = None
    """None: the ``on_duplicate`` setting decides."""
    job: bool = False
    """``--job``: the cell drives a distributed job (``magic.jobs``)."""
    job_name: str | None = None
    """``--job NAME``'s name; None for a ``--job`` without one, whose key each run of the cell
    makes anew (this parse is cached: the same line gives the same arguments)."""

    def fields(self) -> dict[str, Any]:
        """Keyword arguments for ``Session.begin`` (fresh containers: the cached value stays intact)."""
        return {"name": self.name, "sweep": self.sweep, "params": dict(self.params), "tags": list(self.tags)}


@functools.lru_cache(maxsize=256)
def parse_cell_args(line: str) -> CellArgs:
    """Parse the ``%%carbon`` line; ``UsageError`` on anything wrong.

    Cached: the transformer and ``pre_run_cell`` both parse each cell's line, and a notebook
    re-runs the same lines, so a line is parsed once (argparse costs ~0.2 ms a parse).
    """
    if "\x00" in line:
        raise UsageError("%%carbon: the line contains a NUL character (\\x00); remove it")
    try:
        words = shlex.split(line)
    except ValueError as exc:
        raise UsageError(f"%%carbon: cannot parse {line!r}: {exc}") from None
    args = _cell_parser().parse_args(words)
    params = {}
    for item in args.param:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"%%carbon: --param takes KEY=VALUE, got {item!r} (e.g. --param lr=0.1)")
        try:
            params[key.strip()] = recordable_param(_literal(value), key.strip())
        except ConfigError as exc:
            why = str(exc).split(": ", 1)[-1].split(" (quote", 1)[0]
            raise UsageError(
                f"%%carbon: --param {item}: {why}; to record it as text, quote it: --param {key.strip()}='\"{value}\"'"
            ) from None
    for name in ("name", "sweep"):
        if getattr(args, name) is not None and not getattr(args, name).strip():
            raise UsageError(f"%%carbon: --{name} must not be empty")
    job_name = None if args.job is None or args.job is _NEW_JOB else _job_name(args.job)
    return CellArgs(
        args.name, args.sweep, tuple(params.items()), tuple(args.tag), args.quiet, args.final, args.on_duplicate,
        args.job is not None, job_name,
    )


def _job_name(text: str) -> str:
    """``--job NAME``'s name, as every rank will read it from ``NOTEBOOK_CARBON_JOB`` (stripped)."""
    name = text.strip()
    if not name:
        raise UsageError("%%carbon: --job NAME must not be blank (or give no NAME for a new key each run)")
    if len(name) > MAX_JOB_CHARS:
        raise UsageError(f"%%carbon: --job NAME has at most {MAX_JOB_CHARS} characters, got {len(name)}")
    if not name.isprintable():
        raise UsageError(f"%%carbon: --job NAME must be printable text, got {name[:40]!r}")
    return name


def _literal(text: str) -> Any:
    """``0.1`` -> 0.1, ``True`` -> True, ``adam`` -> 'adam': values keep their type where they have one."""
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def split_carbon_cell(raw_cell: str) -> tuple[str, str] | None:
    """``(magic line arguments, body)`` if the cell is a ``%%carbon`` cell, else None."""
    lines = raw_cell.splitlines(keepends=True)
    while lines and not lines[0].strip():  # IPython drops leading blank lines too
        lines.pop(0)
    if not lines or not _CELL_LINE.match(lines[0]):
        return None
    return lines[0][len("%%carbon") :].strip(), "".join(lines[1:])


def transform_carbon_cell(lines: list[str]) -> list[str]:
    """Input transformer: the ``%%carbon`` line becomes a comment (or the cell a usage error)."""
    if not lines or not _CELL_LINE.match(lines[0]):
        return lines
    arguments = lines[0][len("%%carbon") :].strip()
    body = lines[1:]
    try:
        parse_cell_args(arguments)
    except UsageError as exc:
        return [f"raise __import__('IPython.core.error', fromlist=['_']).UsageError({str(exc)!r})\n"]
    if body and body[0].startswith("%%"):
        return body  # another cell magic follows: IPython's own transformer must see it first
    return [f"# %%carbon {arguments}".rstrip() + "\n", *body]

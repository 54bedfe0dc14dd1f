"""The free variables of a metered cell: which names it reads from the user namespace.

Two runs are redundant when code, inputs and params all match (see the registry docs), so every
rule here leans one way: when Python is too dynamic to be sure, a name counts as an input (reading a
value that did not matter only makes a repeat go unnoticed; missing one could call two different
runs identical).

``free_variables`` takes the cell body *after* IPython's transform (``shell.transform_cell(body)``),
where ``%magic``, ``!cmd`` and ``x?`` are already plain ``get_ipython()...`` calls. It is pure and
cached by source text, sharing the parse of ``source.code_fingerprint``. The module body is walked
in execution order here; functions, lambdas, comprehensions and classes nested in it are analysed
by ``scopes``.
"""

from __future__ import annotations

import ast
import builtins
import collections
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .scopes import Scope, child_nodes, evaluated_at_definition
from .source import memo, parse, source_key

__all__ = ["CellInputs", "free_variables"]

_IGNORED = frozenset({"get_ipython"})
_DYNAMIC_CALLS = frozenset({"eval", "exec", "globals", "locals"})
_NO_ARG_DYNAMIC = frozenset({"vars"})  # vars() without an argument is locals()
_SAFE_MAGICS = frozenset(
    "matplotlib load_ext reload_ext unload_ext autoreload aimport config pinfo pinfo2 psearch pdef pdoc "
    "psource pfile who whos who_ls pip conda xmode colors precision".split()
)
"""Line magics that neither run code nor read variables (unless their line holds ``$x`` / ``{x}``)."""


_INPUTS: collections.OrderedDict[bytes, Any] = collections.OrderedDict()


@dataclass(frozen=True)
class CellInputs:
    """The names a cell reads from the user namespace.

    ``names`` (sorted) are inputs. ``builtins`` are builtin names the cell reads: inputs only where
    the user namespace shadows them (``max = 10``), see ``names_in``. ``exact`` is False when the
    cell can read names the analysis cannot see (``from m import *``, ``eval``, a magic that runs
    code) or does not parse; ``reason`` then says why, and a caller must not call such a run
    redundant.
    """

    names: tuple[str, ...]
    builtins: tuple[str, ...] = ()
    exact: bool = True
    reason: str | None = None

    def names_in(self, namespace: Mapping[str, Any]) -> tuple[str, ...]:
        """The names to fingerprint: ``names`` plus the builtins this namespace shadows."""
        return self.names + tuple(name for name in self.builtins if name in namespace)


def free_variables(source: str) -> CellInputs:
    """Which names the (transformed) cell ``source`` reads from the user namespace; see the rules
    in the registry docs, section "Fingerprints"."""
    key = source_key(source)
    return memo(_INPUTS, 256, key, lambda: _free_variables(source, key))


def _free_variables(source: str, key: bytes) -> CellInputs:
    tree = parse(source, key)
    if isinstance(tree, str):
        return CellInputs((), (), False, f"the cell does not parse ({tree})")
    analysis = _Analysis()
    _Flow(analysis).block(tree.body)
    reads = analysis.reads | (analysis.deferred_bound & analysis.deleted)
    reads -= _IGNORED
    known = vars(builtins)
    names = tuple(sorted(n for n in reads if n not in known))
    shadowable = tuple(sorted(n for n in reads if n in known))
    reasons = list(dict.fromkeys(analysis.reasons))
    return CellInputs(names, shadowable, not reasons, "; ".join(reasons) or None)


class _Analysis:
    """State shared by the walkers of one cell."""

    def __init__(self) -> None:
        self.reads: set[str] = set()
        self.deferred_bound: set[str] = set()  # read later by a function; bound when it was defined
        self.deleted: set[str] = set()  # ``del``-ed at module level somewhere in the cell
        self.reasons: list[str] = []


class _Flow:
    """Walks a module or class body in execution order, tracking the names certainly bound so far.

    A read of a name not certainly bound is an input. Branches (if, match, loops, try) are merged by
    intersection, so a name assigned on only some paths still counts as an input when read later.
    """

    def __init__(self, analysis: _Analysis, parent: _Flow | None = None) -> None:
        self.a = analysis
        self.parent = parent  # the module flow, for a class body (whose lookups fall back to it)
        self.bound: set[str] = set()
        self.conditional = 0  # inside ``x if c else y`` / ``a and b``: a walrus may not run

    @property
    def module(self) -> _Flow:
        return self.parent.module if self.parent else self

    def read(self, name: str) -> None:
        if name in self.bound:
            return
        if self.parent:
            self.parent.read(name)
        else:
            self.a.reads.add(name)

    def read_later(self, names: set[str]) -> None:
        """Reads by a function body, which runs later: inputs unless bound now and never deleted."""
        bound = self.module.bound
        self.a.reads.update(names - bound)
        self.a.deferred_bound.update(names & bound)

    def bind(self, names: list[str]) -> None:
        if not self.conditional:
            self.bound.update(names)

    # -- statements -------------------------------------------------------------------------------

    def block(self, stmts: list[ast.stmt]) -> bool:
        """Walks ``stmts``; False when the block certainly ends in return / raise / break / continue."""
        for stmt in stmts:
            self.stmt(stmt)
            if isinstance(stmt, (ast.Return, ast.Raise, ast.Break, ast.Continue)):
                return False
        return True

    def stmt(self, node: ast.stmt) -> None:
        method = getattr(self, "stmt_" + type(node).__name__, None)
        if method is not None:
            method(node)
        else:  # Expr, Return, Raise, Assert, Pass, ...: only reads
            self.expr(node)

    def stmt_Assign(self, node: ast.Assign) -> None:
        self.expr(node.value)
        for target in node.targets:
            self.assign(target)

    def assign(self, target: ast.AST) -> None:
        if isinstance(target, (ast.Name, ast.Tuple, ast.List, ast.Starred)):
            for elt in getattr(target, "elts", [target]):
                if isinstance(elt, ast.Name):
                    self.bind([elt.id])
                elif isinstance(elt, ast.Starred):
                    self.assign(elt.value)
                else:
                    self.assign(elt)
        else:  # obj.attr = / obj[key] = read obj and key
            self.expr(target)

    def stmt_AugAssign(self, node: ast.AugAssign) -> None:
        if isinstance(node.target, ast.Name):
            self.read(node.target.id)  # ``x += 1`` reads x
        else:
            self.expr(node.target)
        self.expr(node.value)
        self.assign(node.target)

    def stmt_AnnAssign(self, node: ast.AnnAssign) -> None:
        self.expr(node.annotation)  # evaluated at module level (conservative under lazy annotations)
        if node.value is not None:
            self.expr(node.value)
            self.assign(node.target)
        elif not isinstance(node.target, ast.Name):
            self.expr(node.target)

    def stmt_Delete(self, node: ast.Delete) -> None:
        for target in node.targets:
            if isinstance(target, ast.Name):  # the value is not read, only removed
                self.bound.discard(target.id)
                self.a.deleted.add(target.id)
            else:
                self.expr(target)

    def stmt_Import(self, node: ast.Import) -> None:
        self.bind([alias.asname or alias.name.partition(".")[0] for alias in node.names])

    def stmt_ImportFrom(self, node: ast.ImportFrom) -> None:
        for alias in node.names:
            if alias.name == "*":
                self.a.reasons.append(f"`from {node.module} import *` binds names the analysis cannot see")
            else:
                self.bind([alias.asname or alias.name])

    def stmt_If(self, node: ast.If) -> None:
        self.expr(node.test)
        start, ends = self.bound, []
        for branch in (node.body, node.orelse):
            self.bound = set(start)
            if self.block(branch):  # a branch that raises does not reach the code after the if
                ends.append(self.bound)
        self.bound = set.intersection(*ends) if ends else start

    def stmt_For(self, node: ast.For | ast.AsyncFor | ast.While) -> None:
        start = set(self.bound)
        if isinstance(node, ast.While):
            self.expr(node.test)
        else:
            self.expr(node.iter)
            self.assign(node.target)
        self.block(node.body)
        body_end = self.bound
        self.bound = set(start)  # the loop may run zero times
        self.block(node.orelse)
        self.bound = start & body_end & self.bound

    stmt_AsyncFor = stmt_While = stmt_For

    def stmt_With(self, node: ast.With) -> None:
        for item in node.items:
            self.expr(item.context_expr)
            if item.optional_vars is not None:
                self.assign(item.optional_vars)
        # The body counts as certain: a context manager that swallows an exception could skip an
        # assignment, but treating every ``with torch.no_grad():`` body as conditional would make
        # most training cells read stale values.
        self.block(node.body)

    stmt_AsyncWith = stmt_With

    def stmt_Try(self, node: ast.Try) -> None:
        start = set(self.bound)
        # Any statement of the body may raise before the assignments after it, and a handler or
        # ``finally`` may then run: they start from what was bound before the ``try``.
        ends = []
        body_completes = self.block(node.body)
        if self.block(node.orelse) and body_completes:  # orelse walked anyway, for its reads
            ends.append(self.bound)
        for handler in node.handlers:
            self.bound = set(start)
            if handler.type is not None:
                self.expr(handler.type)
            if handler.name:
                self.bind([handler.name])
            if self.block(handler.body):
                ends.append(self.bound - {handler.name})  # Python deletes ``e`` after the handler
        self.bound = set(start)
        self.block(node.finalbody)
        final = self.bound
        self.bound = (set.intersection(*ends) if ends else set(start)) | (final - start)
        self.bound -= start - final  # a ``del`` in ``finally``

    stmt_TryStar = stmt_Try

    def stmt_Match(self, node: ast.Match) -> None:
        self.expr(node.subject)
        start = set(self.bound)
        ends = []
        for case in node.cases:
            self.bound = set(start)
            self.pattern(case.pattern)
            if case.guard is not None:
                self.expr(case.guard)
            self.block(case.body)
            ends.append(self.bound)
        self.bound = set.intersection(start, *ends)  # no case may match

    def pattern(self, pattern: ast.AST) -> None:
        """A case pattern reads value patterns (``case Color.RED``) and classes (``case Point()``),
        and binds its captures (``x=x0``, ``[first, *rest]``, ``**kw``)."""
        for n in ast.walk(pattern):
            if isinstance(n, ast.MatchValue):
                self.expr(n.value)
            elif isinstance(n, ast.MatchClass):
                self.expr(n.cls)
            elif isinstance(n, ast.MatchMapping):
                for key in n.keys:
                    self.expr(key)
                self.bind([n.rest] if n.rest else [])
            if isinstance(n, (ast.MatchAs, ast.MatchStar)) and n.name:
                self.bind([n.name])

    def stmt_FunctionDef(self, node: ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef) -> None:
        for decorator in node.decorator_list:
            self.expr(decorator)
        if isinstance(node, ast.ClassDef):
            for base in node.bases + [k.value for k in node.keywords]:
                self.expr(base)
            body = _Flow(self.a, parent=self.module)
            body.block(node.body)
        else:
            for expr in evaluated_at_definition(node.args) + [node.returns] * (node.returns is not None):
                self.expr(expr)
            self.read_later(Scope.of_function(node.args, node.body))
        self.bind([node.name])

    stmt_AsyncFunctionDef = stmt_ClassDef = stmt_FunctionDef

    # -- expressions ------------------------------------------------------------------------------

    def expr(self, node: ast.AST) -> None:
        t = type(node)
        if t is ast.Name:
            if type(node.ctx) is ast.Load:
                self.read(node.id)
        elif t is ast.Constant:
            pass
        elif isinstance(node, ast.NamedExpr):
            self.expr(node.value)
            self.bind([node.target.id])
        elif isinstance(node, (ast.IfExp, ast.BoolOp)):
            parts = [node.test, node.body, node.orelse] if isinstance(node, ast.IfExp) else node.values
            self.expr(parts[0])
            self.conditional += 1
            for part in parts[1:]:
                self.expr(part)
            self.conditional -= 1
        elif isinstance(node, ast.Lambda):
            for expr in evaluated_at_definition(node.args):
                self.expr(expr)
            self.read_later(Scope.of_function(node.args, [node.body]))
        elif isinstance(node, (ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)):
            self.expr(node.generators[0].iter)  # evaluated at once, in this scope
            free = Scope.of_comprehension(node)
            if isinstance(node, ast.GeneratorExp):  # lazy: it may run after later statements
                self.read_later(free)
            else:
                for name in free:
                    self.read(name)
        else:
            if t is ast.Call:
                self.check_call(node)
            for child in child_nodes(node):
                self.expr(child)

    def check_call(self, node: ast.Call) -> None:
        func = node.func
        if isinstance(func, ast.Name):
            if func.id in _DYNAMIC_CALLS or func.id in _NO_ARG_DYNAMIC and not node.args:
                self.a.reasons.append(f"{func.id}() reads names the analysis cannot see")
        elif (
            isinstance(func, ast.Attribute)
            and isinstance(func.value, ast.Call)
            and isinstance(func.value.func, ast.Name)
            and func.value.func.id == "get_ipython"
        ):
            texts = [a.value for a in node.args if isinstance(a, ast.Constant) and isinstance(a.value, str)]
            if func.attr in ("run_line_magic", "run_cell_magic") and texts:
                # A magic's arguments can hold code (%time, %%timeit) or expand $x / {x}.
                magic, line = texts[0], "".join(texts[1:2])
                if func.attr == "run_cell_magic" or magic not in _SAFE_MAGICS or "$" in line or "{" in line:
                    self.a.reasons.append(f"the magic %{magic} may read names the analysis cannot see")
            elif func.attr in ("system", "getoutput") and any("$" in t or "{" in t for t in texts):
                self.a.reasons.append("a shell command expands Python variables the analysis cannot see")


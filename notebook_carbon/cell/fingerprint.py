"""Fingerprints of a metered cell: its code, the inputs it reads, its explicit params.

Two runs are redundant when all three match (see the registry docs), so every rule here leans one
way: when Python is too dynamic to be sure, a name counts as an input (reading a value that did not
matter only makes a repeat go unnoticed; missing one could call two different runs identical).

``code_fingerprint`` and ``free_variables`` take the cell body *after* IPython's transform
(``shell.transform_cell(body)``), where ``%magic``, ``!cmd`` and ``x?`` are already plain
``get_ipython()...`` calls. Both are pure and cached by source text, because notebooks re-run the
same cells. Value digests live in ``digest`` and are re-exported here, lazily because ``digest``
builds on ``code_fingerprint``.
"""

from __future__ import annotations

import ast
import builtins
import collections
import hashlib
from dataclasses import dataclass
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Mapping

if TYPE_CHECKING:
    from .digest import InputsDigest, inputs_fingerprint, params_fingerprint

__all__ = [
    "CellInputs",
    "InputsDigest",
    "code_fingerprint",
    "free_variables",
    "inputs_fingerprint",
    "params_fingerprint",
]

_FROM_DIGEST = frozenset({"InputsDigest", "inputs_fingerprint", "params_fingerprint"})


def __getattr__(name: str) -> Any:
    if name in _FROM_DIGEST:
        from . import digest

        return getattr(digest, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


_PARSE_FLAGS = ast.PyCF_ONLY_AST | ast.PyCF_ALLOW_TOP_LEVEL_AWAIT
_IGNORED = frozenset({"get_ipython"})
_DYNAMIC_CALLS = frozenset({"eval", "exec", "globals", "locals"})
_NO_ARG_DYNAMIC = frozenset({"vars"})  # vars() without an argument is locals()
_SAFE_MAGICS = frozenset(
    "matplotlib load_ext reload_ext unload_ext autoreload aimport config pinfo pinfo2 psearch pdef pdoc "
    "psource pfile who whos who_ls pip conda xmode colors precision".split()
)
"""Line magics that neither run code nor read variables (unless their line holds ``$x`` / ``{x}``)."""


_PARSED_KEPT = 4
"""ASTs kept: the cell being analysed (fingerprint and free variables share its parse) and a few
re-run ones. A big cell's AST is megabytes: more would make memory grow with the notebook."""


def _source_key(source: str) -> bytes:
    """What the caches below are keyed by: a digest, so they never keep a cell's source (~1 GB/s)."""
    return hashlib.blake2b(source.encode("utf-8", "surrogatepass"), digest_size=16).digest()


def _memo(cache: collections.OrderedDict, size: int, key: bytes, compute: Callable[[], Any]) -> Any:
    """A bounded least-recently-used memo: ``cache[key]``, computed once."""
    try:
        cache.move_to_end(key)
        return cache[key]
    except KeyError:
        value = cache[key] = compute()
        while len(cache) > size:
            cache.popitem(last=False)
        return value


_PARSED: collections.OrderedDict[bytes, Any] = collections.OrderedDict()
_FINGERPRINTS: collections.OrderedDict[bytes, str] = collections.OrderedDict()
_INPUTS: collections.OrderedDict[bytes, Any] = collections.OrderedDict()


def _parse(source: str, key: bytes | None = None) -> ast.Module | str:
    """The cell's AST, or why it does not parse. Shared by both cached analyses below."""
    return _memo(_PARSED, _PARSED_KEPT, key or _source_key(source), lambda: _compile(source))


def _compile(source: str) -> ast.Module | str:
    """The cell's AST, or why it does not parse. Shared by both cached analyses below."""
    try:
        return compile(source, "<cell>", "exec", _PARSE_FLAGS, dont_inherit=True)
    except (SyntaxError, ValueError, RecursionError, MemoryError) as exc:  # ValueError: NUL bytes
        return f"{type(exc).__name__}: {exc}"


def _normalised_text(source: str) -> str:
    """Text fallback: trailing whitespace stripped, blank lines dropped, line endings unified.
    Spaces inside a line are kept: without a parse we cannot tell indentation or strings apart."""
    return "\n".join(line.rstrip() for line in source.splitlines() if line.strip())


def code_fingerprint(source: str) -> str:
    """32 hex digits identifying the cell's code: a digest of its AST (``ast.dump`` without line
    numbers), so comments, blank lines, spacing, parentheses and quote style do not matter while
    any change to the code does; a docstring is code and counts. A cell that does not parse is
    fingerprinted by its normalised text instead; the two kinds are hashed under different prefixes
    so they never collide. The AST differs slightly between Python versions, so fingerprints are
    comparable within one version (never falsely equal across them)."""
    key = _source_key(source)
    return _memo(_FINGERPRINTS, 512, key, lambda: _code_fingerprint(source, key))


def _code_fingerprint(source: str, key: bytes) -> str:
    tree = _parse(source, key)
    h = hashlib.blake2b(digest_size=16)
    if isinstance(tree, str):
        h.update(b"text\0" + _normalised_text(source).encode("utf-8", "surrogatepass"))
    else:
        h.update(b"ast\0" + ast.dump(tree).encode("utf-8", "surrogatepass"))
    return h.hexdigest()


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
    key = _source_key(source)
    return _memo(_INPUTS, 256, key, lambda: _free_variables(source, key))


def _free_variables(source: str, key: bytes) -> CellInputs:
    tree = _parse(source, key)
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


_LEAVES = (ast.Constant, ast.expr_context, ast.operator, ast.unaryop, ast.cmpop, ast.boolop)


def _children(node: ast.AST) -> list[ast.AST]:
    """Child nodes worth visiting (``ast.iter_child_nodes`` without leaves, ~2x faster)."""
    children = []
    for name in node._fields:
        value = getattr(node, name, None)
        if type(value) is list:
            children.extend(v for v in value if isinstance(v, ast.AST) and not isinstance(v, _LEAVES))
        elif isinstance(value, ast.AST) and not isinstance(value, _LEAVES):
            children.append(value)
    return children


def _target_names(target: ast.AST) -> list[str]:
    """Names bound by an assignment / for / with target (tuples and starred unpacked)."""
    if isinstance(target, ast.Name):
        return [target.id]
    if isinstance(target, (ast.Tuple, ast.List)):
        return [n for elt in target.elts for n in _target_names(elt)]
    if isinstance(target, ast.Starred):
        return _target_names(target.value)
    return []


def _parameters(args: ast.arguments) -> set[str]:
    every = args.posonlyargs + args.args + args.kwonlyargs + [args.vararg, args.kwarg]
    return {arg.arg for arg in every if arg is not None}


def _evaluated_at_definition(args: ast.arguments) -> list[ast.expr]:
    """Defaults and annotations of a function: evaluated where it is defined, not when called."""
    every = args.posonlyargs + args.args + args.kwonlyargs + [args.vararg, args.kwarg]
    annotations = [arg.annotation for arg in every if arg is not None and arg.annotation is not None]
    return args.defaults + [d for d in args.kw_defaults if d is not None] + annotations


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
            for expr in _evaluated_at_definition(node.args) + [node.returns] * (node.returns is not None):
                self.expr(expr)
            self.read_later(_Scope.of_function(node.args, node.body))
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
            for expr in _evaluated_at_definition(node.args):
                self.expr(expr)
            self.read_later(_Scope.of_function(node.args, [node.body]))
        elif isinstance(node, (ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)):
            self.expr(node.generators[0].iter)  # evaluated at once, in this scope
            free = _Scope.of_comprehension(node)
            if isinstance(node, ast.GeneratorExp):  # lazy: it may run after later statements
                self.read_later(free)
            else:
                for name in free:
                    self.read(name)
        else:
            if t is ast.Call:
                self.check_call(node)
            for child in _children(node):
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


class _Scope:
    """Flow-insensitive analysis of a function, lambda, comprehension or class nested in a cell:
    which names its body looks up outside itself. Python decides function locals statically (a name
    assigned anywhere in the body is local everywhere in it), so this is exact for functions."""

    def __init__(self, kind: str, bound: set[str] | None = None) -> None:
        self.kind = kind
        self.bound: set[str] = bound or set()
        self.loads: set[str] = set()
        self.declared_global: set[str] = set()
        self.declared_nonlocal: set[str] = set()
        self.forced_global: set[str] = set()  # ``global`` names of nested scopes: skip our locals
        self.walrus: set[str] = set()  # comprehension walrus targets bind in the enclosing scope

    @classmethod
    def of_function(cls, args: ast.arguments, body: list[ast.AST]) -> set[str]:
        scope = cls("function", _parameters(args))
        for node in body:
            scope.visit(node)
        free, forced_global = scope.resolve()
        return free | forced_global

    @classmethod
    def of_comprehension(cls, node: ast.AST) -> set[str]:
        scope = cls("comprehension")
        scope.comprehension(node)
        free, forced_global = scope.resolve()
        return free | forced_global

    def resolve(self) -> tuple[set[str], set[str]]:
        """(names looked up in the enclosing scopes, names that go straight to the globals)."""
        if self.kind == "class":  # a class body looks names up at run time: count every read
            return self.loads | self.declared_nonlocal, self.forced_global
        local = (self.bound | self.walrus) - self.declared_global - self.declared_nonlocal
        free = (self.loads - local - self.declared_global) | self.declared_nonlocal
        return free, self.forced_global | (self.loads & self.declared_global)

    def absorb(self, child: _Scope) -> None:
        free, forced_global = child.resolve()
        self.loads |= free  # a child's free name is a closure if it is local here, else free here too
        self.forced_global |= forced_global
        if child.kind == "comprehension":
            (self.walrus if self.kind == "comprehension" else self.bound).update(child.walrus)

    def comprehension(self, node: Any) -> None:
        """A comprehension's scope; its first iterable belongs to the enclosing scope."""
        for i, gen in enumerate(node.generators):
            if i:
                self.visit(gen.iter)
            self.bound.update(_target_names(gen.target))
            for cond in gen.ifs:
                self.visit(cond)
        for part in ("elt", "key", "value"):
            if hasattr(node, part):
                self.visit(getattr(node, part))

    def visit(self, node: ast.AST) -> None:
        if isinstance(node, ast.Name):
            (self.loads if isinstance(node.ctx, ast.Load) else self.bound).add(node.id)
            return
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            for expr in getattr(node, "decorator_list", []) + _evaluated_at_definition(node.args):
                self.visit(expr)
            if getattr(node, "returns", None) is not None:
                self.visit(node.returns)
            child = _Scope("function", _parameters(node.args))
            for stmt in node.body if isinstance(node.body, list) else [node.body]:
                child.visit(stmt)
            if not isinstance(node, ast.Lambda):
                self.bound.add(node.name)
            self.absorb(child)
            return
        if isinstance(node, ast.ClassDef):
            for expr in node.decorator_list + node.bases + [k.value for k in node.keywords]:
                self.visit(expr)
            child = _Scope("class")
            for stmt in node.body:
                child.visit(stmt)
            self.bound.add(node.name)
            self.absorb(child)
            return
        if isinstance(node, (ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)):
            self.visit(node.generators[0].iter)
            child = _Scope("comprehension")
            child.comprehension(node)
            self.absorb(child)
            return
        if isinstance(node, ast.NamedExpr):
            self.visit(node.value)
            (self.walrus if self.kind == "comprehension" else self.bound).add(node.target.id)
            return
        if isinstance(node, ast.Global):
            self.declared_global.update(node.names)
        elif isinstance(node, ast.Nonlocal):
            self.declared_nonlocal.update(node.names)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            self.bound.update(a.asname or a.name.partition(".")[0] for a in node.names)
        elif isinstance(node, ast.AugAssign) and isinstance(node.target, ast.Name):
            self.loads.add(node.target.id)  # ``x += 1`` reads x
        elif isinstance(node, (ast.ExceptHandler, ast.MatchAs, ast.MatchStar)) and node.name:
            self.bound.add(node.name)
        elif isinstance(node, ast.MatchMapping) and node.rest:
            self.bound.add(node.rest)
        for child in _children(node):
            self.visit(child)

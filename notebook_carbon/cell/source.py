"""The code fingerprint of a metered cell, and the parse it shares with the free-variable analysis.

``code_fingerprint`` takes the cell body *after* IPython's transform (``shell.transform_cell(body)``),
where ``%magic``, ``!cmd`` and ``x?`` are already plain ``get_ipython()...`` calls. It is pure and
cached by source text, because notebooks re-run the same cells; ``freevars`` reads the same cached
parse, so a cell is parsed once for both.
"""

from __future__ import annotations

import ast
import collections
import hashlib
from collections.abc import Callable
from typing import Any

__all__ = ["code_fingerprint", "memo", "parse", "source_key"]

_PARSE_FLAGS = ast.PyCF_ONLY_AST | ast.PyCF_ALLOW_TOP_LEVEL_AWAIT

_PARSED_KEPT = 4
"""ASTs kept: the cell being analysed (fingerprint and free variables share its parse) and a few
re-run ones. A big cell's AST is megabytes: more would make memory grow with the notebook."""


def source_key(source: str) -> bytes:
    """What the caches below are keyed by: a digest, so they never keep a cell's source (~1 GB/s)."""
    return hashlib.blake2b(source.encode("utf-8", "surrogatepass"), digest_size=16).digest()


def memo(cache: collections.OrderedDict, size: int, key: bytes, compute: Callable[[], Any]) -> Any:
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


def parse(source: str, key: bytes | None = None) -> ast.Module | str:
    """The cell's AST, or why it does not parse. Shared by the code fingerprint and ``freevars``."""
    return memo(_PARSED, _PARSED_KEPT, key or source_key(source), lambda: _compile(source))


def _compile(source: str) -> ast.Module | str:
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
    key = source_key(source)
    return memo(_FINGERPRINTS, 512, key, lambda: _code_fingerprint(source, key))


def _code_fingerprint(source: str, key: bytes) -> str:
    tree = parse(source, key)
    h = hashlib.blake2b(digest_size=16)
    if isinstance(tree, str):
        h.update(b"text\0" + _normalised_text(source).encode("utf-8", "surrogatepass"))
    else:
        h.update(b"ast\0" + ast.dump(tree).encode("utf-8", "surrogatepass"))
    return h.hexdigest()

"""What identifies notebook code and library objects among a cell's inputs.

A function defined in the notebook is identified by the ``code_fingerprint`` of the source that
defines it (IPython keeps each cell's text in ``linecache``) and by the globals its code names; a
function or class of an imported module by the name under which that module exports it.
"""

from __future__ import annotations

import inspect
import linecache
import sys
import textwrap
import tokenize
import types
from typing import Any

from .source import code_fingerprint

__all__ = ["global_names", "module_level_name", "source_fingerprint"]

_SOURCE_CACHE: dict[tuple[Any, ...], str | None] = {}


def source_fingerprint(code: types.CodeType) -> str | None:
    """``code_fingerprint`` of the source block that defines ``code``, or None without source.

    IPython puts every cell's text in ``linecache`` under a file name of its own, so notebook
    functions have source without reading files; the digest is cached per (file, line, size, mtime)
    because ``inspect.getblock`` tokenizes (~90 µs a function).
    """
    filename = code.co_filename
    lines = linecache.getlines(filename)
    entry = linecache.cache.get(filename)
    key = (filename, code.co_firstlineno, len(lines), entry[1] if entry else None)
    if key not in _SOURCE_CACHE:
        digest = None
        if 0 < code.co_firstlineno <= len(lines):
            try:
                block = inspect.getblock(lines[code.co_firstlineno - 1 :])
                digest = code_fingerprint(textwrap.dedent("".join(block)))
            except (SyntaxError, tokenize.TokenError):
                pass  # then the compiled code stands in
        if len(_SOURCE_CACHE) >= 4096:
            _SOURCE_CACHE.clear()
        _SOURCE_CACHE[key] = digest
    return _SOURCE_CACHE[key]


def module_level_name(obj: Any) -> str | None:
    """``module.qualname`` when ``obj`` is what that name denotes in an imported module (``len``,
    ``np.mean``, ``json.dumps``): a named library callable is identified by name and version."""
    module, qualname = getattr(obj, "__module__", None), getattr(obj, "__qualname__", None)
    if not isinstance(module, str) or not isinstance(qualname, str) or module == "__main__":
        return None
    target = sys.modules.get(module)
    for part in qualname.split("."):
        target = getattr(target, part, None)
    return f"{module}.{qualname}" if target is obj else None


def global_names(code: types.CodeType) -> set[str]:
    """Names a code object (and the code nested in it) may look up as globals; attribute names
    are included too (the bytecode does not tell them apart), which at worst hashes a bit more."""
    names = set(code.co_names)
    for const in code.co_consts:
        if type(const) is types.CodeType:
            names |= global_names(const)
    return names


"""The cell's own logic, before it runs: its ``%%carbon`` arguments, its fingerprints and the
redundancy verdict.

Pure computation over the cell's text and the values it reads; the one registry lookup the verdict
needs is asked of the caller, so this package imports neither the registry nor the session.

``args``        the ``%%carbon`` line and the input transformer's text rewrite
``source``      the code fingerprint (the cell's AST), and the parse it shares
``freevars``    the names a cell reads (its body in execution order); ``scopes``, nested functions
``values``      the canonical encoding of any value; ``callables``, what identifies code
``digest``      the inputs and params fingerprints, and the automatic params
``redundancy``  the verdict: the three fingerprints and the identical earlier run

``is_cell_id`` tells a notebook cell's id (what a front end sends with the cell it runs).

The fingerprint API is importable from here (lazily, so ``import notebook_carbon.cell`` costs
nothing): ``code_fingerprint``, ``free_variables`` (-> ``CellInputs``), ``inputs_fingerprint``
(-> ``InputsDigest``), ``params_fingerprint``.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .digest import InputsDigest, inputs_fingerprint, params_fingerprint
    from .freevars import CellInputs, free_variables
    from .source import code_fingerprint

__all__ = [
    "CellInputs",
    "InputsDigest",
    "code_fingerprint",
    "free_variables",
    "front_end_cell_id",
    "inputs_fingerprint",
    "is_cell_id",
    "params_fingerprint",
]

_LAZY = {
    "CellInputs": "freevars",
    "InputsDigest": "digest",
    "code_fingerprint": "source",
    "free_variables": "freevars",
    "inputs_fingerprint": "digest",
    "params_fingerprint": "digest",
}


def is_cell_id(value: object) -> bool:
    """Whether ``value`` is a notebook cell's id as nbformat 4.5 defines it: 1 to 64 letters,
    digits, ``-`` or ``_`` (JupyterLab sends it with each cell it runs)."""
    return isinstance(value, str) and re.fullmatch(r"[A-Za-z0-9_-]{1,64}", value) is not None


def front_end_cell_id(shell: Any) -> str | None:
    """The id of the notebook cell an IPython kernel's ``shell`` runs now, as the front end sent it
    with its execute request (``cellId`` in the request's metadata: JupyterLab sends it); None
    outside a kernel, for a front end that sends none, and for what is not an id. What a block
    run inside a cell (``track()``, a ``run_cell`` of another cell) takes as its cell."""
    kernel = getattr(shell, "kernel", None)
    try:
        parent = kernel.get_parent() if kernel is not None else None
    except Exception:  # a kernel of another kind: no cell to name
        return None
    metadata = parent.get("metadata") if isinstance(parent, dict) else None
    found = metadata.get("cellId") if isinstance(metadata, dict) else None
    return found if is_cell_id(found) else None


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
        globals()[name] = value  # resolve once
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

"""``assert_close``: figures computed in parts equal figures computed at once, to the last bits.

Sums of the same numbers taken in another order (per sweep, then across sweeps) differ in their last
bits; everything else (counts, text, None) must be equal.
"""

from __future__ import annotations

import math
from typing import Any

REL = 1e-12


def assert_close(found: Any, expected: Any, where: str = "") -> None:
    if isinstance(expected, dict):
        assert isinstance(found, dict) and found.keys() == expected.keys(), f"{where}: {found!r} != {expected!r}"
        for key in expected:
            assert_close(found[key], expected[key], f"{where}.{key}")
    elif isinstance(expected, (list, tuple)):
        assert isinstance(found, (list, tuple)) and len(found) == len(expected), f"{where}: {found!r} != {expected!r}"
        for i, (a, b) in enumerate(zip(found, expected)):
            assert_close(a, b, f"{where}[{i}]")
    elif isinstance(expected, float) and not isinstance(found, bool) and isinstance(found, (int, float)):
        assert math.isclose(found, expected, rel_tol=REL, abs_tol=1e-9), f"{where}: {found!r} != {expected!r}"
    else:
        assert found == expected and type(found) is type(expected), f"{where}: {found!r} != {expected!r}"

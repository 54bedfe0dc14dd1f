"""The inputs fingerprint (the values a cell reads) and the params fingerprint (its explicit params).

Both digest through ``values.Encoder``, the one canonical encoding: a value that cannot be
fingerprinted makes its name ``unknown`` and the whole inputs fingerprint ``None``. Small plain
inputs also become the run's automatic params (``as_param``).
"""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ..errors import ConfigError
from ..record import recordable_param
from .values import Encoder, Unknown, blake, put

__all__ = ["DEFAULT_MAX_BYTES", "InputsDigest", "as_param", "inputs_fingerprint", "params_fingerprint"]

DEFAULT_MAX_BYTES = 256 * 2**20
"""Most bytes of array / frame content hashed per cell; beyond it inputs are ``unknown``."""

PARAM_MAX_ITEMS = 64
PARAM_MAX_CHARS = 1024
"""A scalar or container becomes an automatic param only within these (items counted recursively,
characters of its JSON text); larger values are still hashed, just not listed as params."""


def _param_value(value: Any, budget: list[int]) -> Any:
    """``value`` as a JSON-safe param, or raise ``Unknown`` when it is not a small plain value."""
    budget[0] -= 1
    if budget[0] < 0:
        raise Unknown("too many items")
    t = type(value)
    if value is None or t in (bool, int, str):
        return value
    if t is float:
        if not math.isfinite(value):  # NaN / inf are not JSON; still hashed, just not listed
            raise Unknown("not finite")
        return value
    if t in (list, tuple):
        return [_param_value(v, budget) for v in value]
    if t is dict and all(type(k) is str for k in value):
        return {k: _param_value(v, budget) for k, v in value.items()}
    if t in (set, frozenset):
        return sorted((_param_value(v, budget) for v in value), key=lambda v: json.dumps(v, sort_keys=True))
    np = sys.modules.get("numpy")
    if np is not None and isinstance(value, (np.bool_, np.integer, np.floating)):
        return _param_value(value.item(), budget)
    raise Unknown("not a plain value")


def as_param(value: Any) -> tuple[bool, Any]:
    """``(True, json_safe)`` when ``value`` is small and plain enough to be recorded as a param."""
    try:
        converted = _param_value(value, [PARAM_MAX_ITEMS])
        ok = len(json.dumps(converted, allow_nan=False)) <= PARAM_MAX_CHARS
    except Unknown:
        return False, None
    return ok, converted if ok else None


@dataclass(frozen=True)
class InputsDigest:
    """What ``inputs_fingerprint`` found. Do not mutate ``params`` or ``reasons``.

    ``fingerprint`` is ``None`` when any input is unknown. ``params`` maps the inputs that are small
    plain values to JSON-safe copies (tuples and sets as lists). ``unknown`` names the inputs that
    could not be fingerprinted (why in ``reasons``); ``missing`` those absent from the namespace (the
    cell will raise NameError), which are part of the fingerprint as a marker, not unknown.
    """

    fingerprint: str | None
    params: dict[str, Any] = field(default_factory=dict)
    unknown: tuple[str, ...] = ()
    missing: tuple[str, ...] = ()
    reasons: dict[str, str] = field(default_factory=dict)


def inputs_fingerprint(
    names: Iterable[str], namespace: Mapping[str, Any], *, max_bytes: int = DEFAULT_MAX_BYTES
) -> InputsDigest:
    """Digest of the values ``names`` have in ``namespace`` (the user namespace of the kernel).

    ``max_bytes`` bounds the array / frame / string content hashed in total (all names together).
    """
    encoder = Encoder(namespace, max_bytes)
    h = blake()
    h.update(b"inputs\0")
    params: dict[str, Any] = {}
    unknown: list[str] = []
    missing: list[str] = []
    reasons: dict[str, str] = {}
    for name in sorted(set(names)):
        put(h, b"name", name.encode())
        if name not in namespace:
            missing.append(name)
            put(h, b"missing")
            continue
        value = namespace[name]
        try:
            put(h, b"value", encoder.digest(value))
        except Unknown as exc:
            unknown.append(name)
            reasons[name] = str(exc)
            continue
        ok, param = as_param(value)
        if ok:
            params[name] = param
    fingerprint = None if unknown else h.hexdigest()
    return InputsDigest(fingerprint, params, tuple(unknown), tuple(missing), reasons)


def params_fingerprint(params: Mapping[str, Any]) -> str:
    """Digest of explicit params (``--param`` / ``track(params=...)``), independent of their order.

    Raises ``ConfigError`` for a value that is not a JSON scalar or a list / dict of them.
    """
    normalised = {}
    for key, value in params.items():
        if type(key) is not str:
            raise ConfigError(f"param name {key!r} is not a string")
        normalised[key] = recordable_param(value, repr(key))
    # Hashed as it will read back from the registry, so a tuple and a list give one fingerprint.
    h = blake()
    h.update(b"params\0")
    put(h, b"value", Encoder({}, DEFAULT_MAX_BYTES).digest(normalised))
    return h.hexdigest()

"""Content digests of the values a cell reads (inputs fingerprint) and of explicit params.

Every value is fed to BLAKE2b (16-byte digest) through one canonical, type-tagged encoding: each
item is a type tag plus a length-prefixed payload, so ``1``, ``1.0``, ``True`` and ``"1"`` differ
and no two different values encode to the same bytes. Floats are encoded by ``repr`` (every NaN
alike, ``-0.0`` apart from ``0.0``); sets and dicts by their sorted item digests, so order does not
matter. numpy arrays are hashed by dtype, shape and content bytes, pandas objects by
``hash_pandas_object`` plus their index, columns and dtypes (bulk bytes through SHA-256, see
``_bulk_digest``). numpy and pandas are never imported here: a value is recognised by its type's
module, which is then already in ``sys.modules``.

A value that cannot be fingerprinted makes its name ``unknown`` (with the reason) and the whole
inputs fingerprint ``None``, because a guess could call two different runs identical.

Functions defined in the notebook are identified by the ``code_fingerprint`` of their source
(IPython keeps each cell's text in ``linecache``), so a function re-defined with only formatting or
comment changes keeps its identity, plus their defaults, closure cells and the values of the
globals their code names, recursively (``train()`` must not look redundant after ``lr`` changed).
Source is used rather than the code object because CPython 3.11 rewrites some bytecode of a
function after its first calls, so ``co_code`` is not stable; the code object (bytecode,
constants, names; no line numbers) stands in only where there is no source, as for ``exec``.
Notebook classes are identified by their bases and attributes. Functions and classes of imported
modules are identified by module, qualified name and the package's ``__version__``, modules by
name and version: an edited local module reloaded with ``%autoreload`` is not noticed.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import linecache
import math
import sys
import textwrap
import tokenize
import types
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ..errors import ConfigError
from ..record import recordable_param
from .fingerprint import code_fingerprint

DEFAULT_MAX_BYTES = 256 * 2**20
"""Most bytes of array / frame content hashed per cell; beyond it inputs are ``unknown``."""

MAX_OBJECTS = 100_000
"""Most Python objects (container items) encoded per cell: hashing them one by one costs ~1 µs each."""

PARAM_MAX_ITEMS = 64
PARAM_MAX_CHARS = 1024
"""A scalar or container becomes an automatic param only within these (items counted recursively,
characters of its JSON text); larger values are still hashed, just not listed as params."""

_MAX_DEPTH = 50
_PLUMBING = frozenset({"get_ipython", "exit", "quit"})  # IPython's own names in the user namespace


class _Unknown(Exception):
    """A value that cannot be fingerprinted; the message is the reason shown to the user."""


def _blake() -> Any:
    return hashlib.blake2b(digest_size=16)


def _put(h: Any, tag: bytes, payload: bytes = b"") -> None:
    """One item: tag and payload both length-prefixed, so no item's bytes are a prefix of another's."""
    h.update(bytes((len(tag),)) + tag + len(payload).to_bytes(8, "little"))
    h.update(payload)


def _bulk_digest(buffer: Any) -> bytes:
    """Digest of array content. SHA-256 rather than BLAKE2b: CPUs hash it in hardware (SHA-NI, ARMv8
    crypto), about 3x faster on 10 MB here, and an array can be hundreds of MB before every cell."""
    return hashlib.sha256(buffer).digest()


def _version(module_name: str) -> str:
    """``__version__`` of the module or, failing that, of its top-level package ('' if none)."""
    for name in (module_name, module_name.partition(".")[0]):
        version = getattr(sys.modules.get(name), "__version__", None)
        if version is not None:
            return str(version)
    return ""


def _mb(n: float) -> str:
    return f"{n / 2**20:,.1f} MB" if n >= 2**20 else f"{n:,.0f} bytes"


class _Encoder:
    """One fingerprinting pass: a shared byte budget, a memo of big objects, cycle detection."""

    def __init__(self, namespace: Mapping[str, Any], max_bytes: int) -> None:
        self.namespace = namespace
        self.max_bytes = max_bytes
        self.bytes_left = max_bytes
        self.objects_left = MAX_OBJECTS
        self.memo: dict[int, bytes] = {}  # id -> digest of arrays and frames hashed already
        self.active: set[int] = set()  # containers / functions being encoded (cycles)

    def digest(self, obj: Any, depth: int = 0) -> bytes:
        h = _blake()
        self.feed(h, obj, depth)
        return h.digest()

    def charge(self, nbytes: int) -> None:
        if nbytes > self.bytes_left:
            limit = _mb(self.max_bytes)
            if self.bytes_left < self.max_bytes:
                limit = f"{_mb(self.bytes_left)} left of the {limit} limit"
            raise _Unknown(f"too large to fingerprint ({_mb(nbytes)} > {limit})")
        self.bytes_left -= nbytes

    def feed(self, h: Any, obj: Any, depth: int = 0) -> None:
        if depth > _MAX_DEPTH:
            raise _Unknown(f"nested more than {_MAX_DEPTH} levels deep")
        self.objects_left -= 1
        if self.objects_left < 0:
            raise _Unknown(f"holds more than {MAX_OBJECTS:,} Python objects; a numpy array is hashed faster")
        t = type(obj)
        # Exact type checks: a subclass (IntEnum, numpy.float64, a str subclass) may carry state or
        # behaviour of its own, so it never passes for the builtin.
        if obj is None:
            _put(h, b"N")
        elif t is bool:
            _put(h, b"?", b"1" if obj else b"0")
        elif t is int:
            _put(h, b"i", obj.to_bytes(obj.bit_length() // 8 + 1, "little", signed=True))
        elif t is float:
            _put(h, b"f", repr(obj).encode())
        elif t is complex:
            _put(h, b"j", repr(obj).encode())
        elif t is str:
            self.charge(len(obj))
            _put(h, b"s", obj.encode("utf-8", "surrogatepass"))
        elif t is bytes or t is bytearray:
            self.charge(len(obj))
            _put(h, b"b" if t is bytes else b"B", bytes(obj))
        elif obj is Ellipsis:
            _put(h, b".")
        elif t is range:
            _put(h, b"r")
            for v in (obj.start, obj.stop, obj.step):
                self.feed(h, v, depth + 1)
        elif t in (list, tuple, set, frozenset, dict):
            self._container(h, obj, depth)
        elif t.__module__.partition(".")[0] in ("numpy", "pandas") and self._scientific(h, obj):
            pass
        elif t is types.FunctionType:
            self._function(h, obj, depth)
        elif t is types.CodeType:
            self._code(h, obj, depth)
        elif isinstance(obj, types.ModuleType):
            _put(h, b"M", f"{obj.__name__}=={_version(obj.__name__)}".encode())
        elif isinstance(obj, type):
            self._class(h, obj, depth)
        elif t.__module__ == "functools" and t.__name__ == "partial":
            _put(h, b"p")
            for part in (obj.func, obj.args, obj.keywords):
                self.feed(h, part, depth + 1)
        elif t.__module__ == "functools" and t.__name__ == "_lru_cache_wrapper":
            _put(h, b"lru")  # a cache does not change what the function computes
            self.feed(h, obj.__wrapped__, depth + 1)
        else:
            name = _module_level_name(obj)
            if name is None:
                raise _Unknown(f"cannot fingerprint a {t.__module__}.{t.__qualname__}")
            _put(h, b"c", f"{name}=={_version(name)}".encode())

    def _container(self, h: Any, obj: Any, depth: int) -> None:
        if id(obj) in self.active:
            raise _Unknown("contains itself")
        self.active.add(id(obj))
        try:
            t = type(obj)
            if t is list or t is tuple:
                _put(h, b"l" if t is list else b"t", len(obj).to_bytes(8, "little"))
                for item in obj:
                    self.feed(h, item, depth + 1)
                return
            if t is dict:
                # Order-insensitive: each (key, value) pair is digested alone, then the pairs sorted.
                items = [self.digest(k, depth + 1) + self.digest(v, depth + 1) for k, v in obj.items()]
            else:
                items = [self.digest(item, depth + 1) for item in obj]
            _put(h, {dict: b"d", set: b"S", frozenset: b"F"}[t], b"".join(sorted(items)))
        finally:
            self.active.discard(id(obj))

    def _scientific(self, h: Any, obj: Any) -> bool:
        """Arrays, scalars, dtypes and frames; False for other numpy / pandas objects."""
        np, pd = sys.modules.get("numpy"), sys.modules.get("pandas")
        if np is not None and type(obj) is np.ndarray:
            memo_tag = b"A"
        elif np is not None and isinstance(obj, np.generic):
            if obj.dtype.hasobject:
                raise _Unknown("a numpy scalar of Python objects")
            _put(h, b"g", obj.dtype.str.encode() + b":" + obj.tobytes())
            return True
        elif pd is not None and isinstance(obj, (pd.DataFrame, pd.Series, pd.Index)):
            memo_tag = b"P"
        elif np is not None and isinstance(obj, np.ufunc):
            _put(h, b"u", f"numpy.{obj.__name__}=={np.__version__}".encode())
            return True
        elif np is not None and isinstance(obj, np.dtype):
            _put(h, b"D", repr(obj.descr).encode())
            return True
        else:
            return False
        if id(obj) not in self.memo:
            sub = _blake()
            if memo_tag == b"A":
                self._ndarray(sub, obj, np)
            else:
                self._pandas(sub, obj, pd)
            self.memo[id(obj)] = sub.digest()
        _put(h, memo_tag, self.memo[id(obj)])
        return True

    def _ndarray(self, h: Any, arr: Any, np: Any) -> None:
        if arr.dtype.hasobject:
            raise _Unknown(f"a numpy array of Python objects (dtype {arr.dtype}) has no content digest")
        self.charge(arr.nbytes)
        _put(h, b"dtype", repr(arr.dtype.descr).encode())
        _put(h, b"shape", repr(arr.shape).encode())
        data = arr if arr.flags.c_contiguous else np.ascontiguousarray(arr)
        _put(h, b"data", _bulk_digest(data.reshape(-1).view(np.uint8)))  # a byte view, no copy

    def _pandas(self, h: Any, obj: Any, pd: Any) -> None:
        is_index = isinstance(obj, pd.Index)
        size = obj.memory_usage(deep=False) if is_index else obj.memory_usage(index=False, deep=False)
        self.charge(int(size.sum()) if hasattr(size, "sum") else int(size))
        # hash_pandas_object turns Python objects into str() before hashing, so 1 and "1", or two
        # long arrays with the same abbreviated repr, would collide: only plain object columns pass.
        if isinstance(obj, pd.DataFrame):
            columns = [obj.iloc[:, i] for i, dtype in enumerate(obj.dtypes) if dtype == object]
        else:
            columns = list(obj.levels) if isinstance(obj, pd.MultiIndex) else [obj]
        for col in columns:
            if col.dtype == object:
                kind = pd.api.types.infer_dtype(col, skipna=True)
                if kind not in _PANDAS_OBJECT_KINDS:
                    raise _Unknown(f"pandas object values of kind {kind!r} have no reliable content digest")
        try:
            # categorize=False: one pass, as fast with or without repeated values.
            hashes = pd.util.hash_pandas_object(obj, index=False, categorize=False).to_numpy()
        except Exception as exc:  # pandas' own verdict on what it can hash; reported, not hidden
            raise _Unknown(f"pandas cannot hash it ({type(exc).__name__}: {exc})") from exc
        _put(h, b"type", type(obj).__qualname__.encode())
        if isinstance(obj, pd.DataFrame):
            self.feed(h, [str(dtype) for dtype in obj.dtypes])
            self._pandas(h, obj.columns, pd)
        elif not is_index:
            self.feed(h, str(obj.dtype))
            self.feed(h, obj.name)
        else:
            self.feed(h, str(obj.dtype))
            self.feed(h, list(obj.names))
        if not is_index:
            self._pandas(h, obj.index, pd)
        _put(h, b"rows", _bulk_digest(hashes))

    def _code(self, h: Any, code: types.CodeType, depth: int) -> None:
        source = _source_fingerprint(code)
        if source is not None:
            _put(h, b"src", source.encode())
            if code.co_name == "<lambda>":  # several lambdas can share one line of source
                _put(h, b"cols", repr([p[2:] for p in code.co_positions()]).encode())
            return
        # No source (made by exec): the compiled code, without line numbers or file name. Python
        # 3.11 rewrites some instructions of a function once it has run, so this digest can change
        # after the first calls; that only hides a repeat, it never makes two codes look alike.
        _put(h, b"C", code.co_code)
        _put(h, b"n", "\0".join((*code.co_names, "|", *code.co_varnames, "|", *code.co_freevars)).encode())
        signature = (code.co_argcount, code.co_posonlyargcount, code.co_kwonlyargcount, code.co_flags)
        _put(h, b"a", repr(signature).encode())
        self.feed(h, code.co_consts, depth + 1)

    def _function(self, h: Any, fn: types.FunctionType, depth: int) -> None:
        if not self._in_notebook(fn):
            _put(h, b"f", f"{fn.__module__}.{fn.__qualname__}=={_version(fn.__module__ or '')}".encode())
            return
        if id(fn) in self.active:  # recursion (a function calling itself through a global)
            _put(h, b"R", fn.__qualname__.encode())
            return
        self.active.add(id(fn))
        try:
            _put(h, b"fn", fn.__qualname__.encode())
            self._code(h, fn.__code__, depth)
            self.feed(h, fn.__defaults__, depth + 1)
            self.feed(h, fn.__kwdefaults__, depth + 1)
            for cell in fn.__closure__ or ():
                try:
                    self.feed(h, cell.cell_contents, depth + 1)
                except ValueError:  # an empty cell: a closure variable not assigned yet
                    _put(h, b"empty")
            # What the function reads from the notebook is as much an input as the cell's own
            # reads: ``train()`` must not look redundant after ``lr`` changed.
            for name in sorted(_global_names(fn.__code__) - _PLUMBING):
                if name in fn.__globals__:
                    _put(h, b"g", name.encode())
                    try:
                        self.feed(h, fn.__globals__[name], depth + 1)
                    except _Unknown as exc:
                        raise _Unknown(f"{fn.__qualname__} reads global {name!r}: {exc}") from None
        finally:
            self.active.discard(id(fn))

    def _in_notebook(self, obj: Any) -> bool:
        module = getattr(obj, "__module__", None)
        return module == "__main__" or getattr(obj, "__globals__", None) is self.namespace or module is None

    def _class(self, h: Any, cls: type, depth: int) -> None:
        name = f"{cls.__module__}.{cls.__qualname__}"
        if cls.__module__ != "__main__":
            _put(h, b"K", f"{name}=={_version(cls.__module__)}".encode())
            return
        if id(cls) in self.active:
            _put(h, b"R", name.encode())
            return
        self.active.add(id(cls))
        try:
            _put(h, b"k", name.encode())
            self.feed(h, cls.__bases__, depth + 1)
            for key, value in sorted(vars(cls).items()):
                if isinstance(value, (staticmethod, classmethod)):
                    value = value.__func__
                elif isinstance(value, property):
                    value = (value.fget, value.fset, value.fdel)
                elif isinstance(value, (types.MemberDescriptorType, types.GetSetDescriptorType)) or (
                    key.startswith("__") and key != "__doc__" and type(value) is not types.FunctionType
                ):
                    continue  # bookkeeping (__dict__, __slots__ members, __dataclass_fields__, ...)
                _put(h, b"attr", key.encode())
                try:
                    self.feed(h, value, depth + 1)
                except _Unknown as exc:
                    raise _Unknown(f"class {cls.__qualname__}.{key}: {exc}") from None
        finally:
            self.active.discard(id(cls))


_PANDAS_OBJECT_KINDS = frozenset(
    "string bytes empty integer floating mixed-integer-float decimal complex boolean "
    "datetime64 datetime date timedelta64 timedelta time period interval".split()
)


_SOURCE_CACHE: dict[tuple[Any, ...], str | None] = {}


def _source_fingerprint(code: types.CodeType) -> str | None:
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


def _module_level_name(obj: Any) -> str | None:
    """``module.qualname`` when ``obj`` is what that name denotes in an imported module (``len``,
    ``np.mean``, ``json.dumps``): a named library callable is identified by name and version."""
    module, qualname = getattr(obj, "__module__", None), getattr(obj, "__qualname__", None)
    if not isinstance(module, str) or not isinstance(qualname, str) or module == "__main__":
        return None
    target = sys.modules.get(module)
    for part in qualname.split("."):
        target = getattr(target, part, None)
    return f"{module}.{qualname}" if target is obj else None


def _global_names(code: types.CodeType) -> set[str]:
    """Names a code object (and the code nested in it) may look up as globals; attribute names
    are included too (the bytecode does not tell them apart), which at worst hashes a bit more."""
    names = set(code.co_names)
    for const in code.co_consts:
        if type(const) is types.CodeType:
            names |= _global_names(const)
    return names


def _param_value(value: Any, budget: list[int]) -> Any:
    """``value`` as a JSON-safe param, or raise ``_Unknown`` when it is not a small plain value."""
    budget[0] -= 1
    if budget[0] < 0:
        raise _Unknown("too many items")
    t = type(value)
    if value is None or t in (bool, int, str):
        return value
    if t is float:
        if not math.isfinite(value):  # NaN / inf are not JSON; still hashed, just not listed
            raise _Unknown("not finite")
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
    raise _Unknown("not a plain value")


def as_param(value: Any) -> tuple[bool, Any]:
    """``(True, json_safe)`` when ``value`` is small and plain enough to be recorded as a param."""
    try:
        converted = _param_value(value, [PARAM_MAX_ITEMS])
        ok = len(json.dumps(converted, allow_nan=False)) <= PARAM_MAX_CHARS
    except _Unknown:
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
    encoder = _Encoder(namespace, max_bytes)
    h = _blake()
    h.update(b"inputs\0")
    params: dict[str, Any] = {}
    unknown: list[str] = []
    missing: list[str] = []
    reasons: dict[str, str] = {}
    for name in sorted(set(names)):
        _put(h, b"name", name.encode())
        if name not in namespace:
            missing.append(name)
            _put(h, b"missing")
            continue
        value = namespace[name]
        try:
            _put(h, b"value", encoder.digest(value))
        except _Unknown as exc:
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
    h = _blake()
    h.update(b"params\0")
    _put(h, b"value", _Encoder({}, DEFAULT_MAX_BYTES).digest(normalised))
    return h.hexdigest()

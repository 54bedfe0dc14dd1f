"""The canonical encoding behind the inputs and params fingerprints: any value to a digest, or ``Unknown``.

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
import sys
import types
from collections.abc import Mapping
from typing import Any

from .callables import global_names, module_level_name, source_fingerprint

__all__ = ["MAX_OBJECTS", "Encoder", "Unknown", "blake", "put"]

MAX_OBJECTS = 100_000
"""Most Python objects (container items) encoded per cell: hashing them one by one costs ~1 µs each."""

_MAX_DEPTH = 50
_PLUMBING = frozenset({"get_ipython", "exit", "quit"})  # IPython's own names in the user namespace


class Unknown(Exception):
    """A value that cannot be fingerprinted; the message is the reason shown to the user."""


def blake() -> Any:
    return hashlib.blake2b(digest_size=16)


def put(h: Any, tag: bytes, payload: bytes = b"") -> None:
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


class Encoder:
    """One fingerprinting pass: a shared byte budget, a memo of big objects, cycle detection."""

    def __init__(self, namespace: Mapping[str, Any], max_bytes: int) -> None:
        self.namespace = namespace
        self.max_bytes = max_bytes
        self.bytes_left = max_bytes
        self.objects_left = MAX_OBJECTS
        self.memo: dict[int, bytes] = {}  # id -> digest of arrays and frames hashed already
        self.active: set[int] = set()  # containers / functions being encoded (cycles)

    def digest(self, obj: Any, depth: int = 0) -> bytes:
        h = blake()
        self.feed(h, obj, depth)
        return h.digest()

    def charge(self, nbytes: int) -> None:
        if nbytes > self.bytes_left:
            limit = _mb(self.max_bytes)
            if self.bytes_left < self.max_bytes:
                limit = f"{_mb(self.bytes_left)} left of the {limit} limit"
            raise Unknown(f"too large to fingerprint ({_mb(nbytes)} > {limit})")
        self.bytes_left -= nbytes

    def feed(self, h: Any, obj: Any, depth: int = 0) -> None:
        if depth > _MAX_DEPTH:
            raise Unknown(f"nested more than {_MAX_DEPTH} levels deep")
        self.objects_left -= 1
        if self.objects_left < 0:
            raise Unknown(f"holds more than {MAX_OBJECTS:,} Python objects; a numpy array is hashed faster")
        t = type(obj)
        # Exact type checks: a subclass (IntEnum, numpy.float64, a str subclass) may carry state or
        # behaviour of its own, so it never passes for the builtin.
        if obj is None:
            put(h, b"N")
        elif t is bool:
            put(h, b"?", b"1" if obj else b"0")
        elif t is int:
            put(h, b"i", obj.to_bytes(obj.bit_length() // 8 + 1, "little", signed=True))
        elif t is float:
            put(h, b"f", repr(obj).encode())
        elif t is complex:
            put(h, b"j", repr(obj).encode())
        elif t is str:
            self.charge(len(obj))
            put(h, b"s", obj.encode("utf-8", "surrogatepass"))
        elif t is bytes or t is bytearray:
            self.charge(len(obj))
            put(h, b"b" if t is bytes else b"B", bytes(obj))
        elif obj is Ellipsis:
            put(h, b".")
        elif t is range:
            put(h, b"r")
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
            put(h, b"M", f"{obj.__name__}=={_version(obj.__name__)}".encode())
        elif isinstance(obj, type):
            self._class(h, obj, depth)
        elif t.__module__ == "functools" and t.__name__ == "partial":
            put(h, b"p")
            for part in (obj.func, obj.args, obj.keywords):
                self.feed(h, part, depth + 1)
        elif t.__module__ == "functools" and t.__name__ == "_lru_cache_wrapper":
            put(h, b"lru")  # a cache does not change what the function computes
            self.feed(h, obj.__wrapped__, depth + 1)
        else:
            name = module_level_name(obj)
            if name is None:
                raise Unknown(f"cannot fingerprint a {t.__module__}.{t.__qualname__}")
            put(h, b"c", f"{name}=={_version(name)}".encode())

    def _container(self, h: Any, obj: Any, depth: int) -> None:
        if id(obj) in self.active:
            raise Unknown("contains itself")
        self.active.add(id(obj))
        try:
            t = type(obj)
            if t is list or t is tuple:
                put(h, b"l" if t is list else b"t", len(obj).to_bytes(8, "little"))
                for item in obj:
                    self.feed(h, item, depth + 1)
                return
            if t is dict:
                # Order-insensitive: each (key, value) pair is digested alone, then the pairs sorted.
                items = [self.digest(k, depth + 1) + self.digest(v, depth + 1) for k, v in obj.items()]
            else:
                items = [self.digest(item, depth + 1) for item in obj]
            put(h, {dict: b"d", set: b"S", frozenset: b"F"}[t], b"".join(sorted(items)))
        finally:
            self.active.discard(id(obj))

    def _scientific(self, h: Any, obj: Any) -> bool:
        """Arrays, scalars, dtypes and frames; False for other numpy / pandas objects."""
        np, pd = sys.modules.get("numpy"), sys.modules.get("pandas")
        if np is not None and type(obj) is np.ndarray:
            memo_tag = b"A"
        elif np is not None and isinstance(obj, np.generic):
            if obj.dtype.hasobject:
                raise Unknown("a numpy scalar of Python objects")
            put(h, b"g", obj.dtype.str.encode() + b":" + obj.tobytes())
            return True
        elif pd is not None and isinstance(obj, (pd.DataFrame, pd.Series, pd.Index)):
            memo_tag = b"P"
        elif np is not None and isinstance(obj, np.ufunc):
            put(h, b"u", f"numpy.{obj.__name__}=={np.__version__}".encode())
            return True
        elif np is not None and isinstance(obj, np.dtype):
            put(h, b"D", repr(obj.descr).encode())
            return True
        else:
            return False
        if id(obj) not in self.memo:
            sub = blake()
            if memo_tag == b"A":
                self._ndarray(sub, obj, np)
            else:
                self._pandas(sub, obj, pd)
            self.memo[id(obj)] = sub.digest()
        put(h, memo_tag, self.memo[id(obj)])
        return True

    def _ndarray(self, h: Any, arr: Any, np: Any) -> None:
        if arr.dtype.hasobject:
            raise Unknown(f"a numpy array of Python objects (dtype {arr.dtype}) has no content digest")
        self.charge(arr.nbytes)
        put(h, b"dtype", repr(arr.dtype.descr).encode())
        put(h, b"shape", repr(arr.shape).encode())
        data = arr if arr.flags.c_contiguous else np.ascontiguousarray(arr)
        put(h, b"data", _bulk_digest(data.reshape(-1).view(np.uint8)))  # a byte view, no copy

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
                    raise Unknown(f"pandas object values of kind {kind!r} have no reliable content digest")
        try:
            # categorize=False: one pass, as fast with or without repeated values.
            hashes = pd.util.hash_pandas_object(obj, index=False, categorize=False).to_numpy()
        except Exception as exc:  # pandas' own verdict on what it can hash; reported, not hidden
            raise Unknown(f"pandas cannot hash it ({type(exc).__name__}: {exc})") from exc
        put(h, b"type", type(obj).__qualname__.encode())
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
        put(h, b"rows", _bulk_digest(hashes))

    def _code(self, h: Any, code: types.CodeType, depth: int) -> None:
        source = source_fingerprint(code)
        if source is not None:
            put(h, b"src", source.encode())
            if code.co_name == "<lambda>":  # several lambdas can share one line of source
                put(h, b"cols", repr([p[2:] for p in code.co_positions()]).encode())
            return
        # No source (made by exec): the compiled code, without line numbers or file name. Python
        # 3.11 rewrites some instructions of a function once it has run, so this digest can change
        # after the first calls; that only hides a repeat, it never makes two codes look alike.
        put(h, b"C", code.co_code)
        put(h, b"n", "\0".join((*code.co_names, "|", *code.co_varnames, "|", *code.co_freevars)).encode())
        signature = (code.co_argcount, code.co_posonlyargcount, code.co_kwonlyargcount, code.co_flags)
        put(h, b"a", repr(signature).encode())
        self.feed(h, code.co_consts, depth + 1)

    def _function(self, h: Any, fn: types.FunctionType, depth: int) -> None:
        if not self._in_notebook(fn):
            put(h, b"f", f"{fn.__module__}.{fn.__qualname__}=={_version(fn.__module__ or '')}".encode())
            return
        if id(fn) in self.active:  # recursion (a function calling itself through a global)
            put(h, b"R", fn.__qualname__.encode())
            return
        self.active.add(id(fn))
        try:
            put(h, b"fn", fn.__qualname__.encode())
            self._code(h, fn.__code__, depth)
            self.feed(h, fn.__defaults__, depth + 1)
            self.feed(h, fn.__kwdefaults__, depth + 1)
            for cell in fn.__closure__ or ():
                try:
                    self.feed(h, cell.cell_contents, depth + 1)
                except ValueError:  # an empty cell: a closure variable not assigned yet
                    put(h, b"empty")
            # What the function reads from the notebook is as much an input as the cell's own
            # reads: ``train()`` must not look redundant after ``lr`` changed.
            for name in sorted(global_names(fn.__code__) - _PLUMBING):
                if name in fn.__globals__:
                    put(h, b"g", name.encode())
                    try:
                        self.feed(h, fn.__globals__[name], depth + 1)
                    except Unknown as exc:
                        raise Unknown(f"{fn.__qualname__} reads global {name!r}: {exc}") from None
        finally:
            self.active.discard(id(fn))

    def _in_notebook(self, obj: Any) -> bool:
        module = getattr(obj, "__module__", None)
        return module == "__main__" or getattr(obj, "__globals__", None) is self.namespace or module is None

    def _class(self, h: Any, cls: type, depth: int) -> None:
        name = f"{cls.__module__}.{cls.__qualname__}"
        if cls.__module__ != "__main__":
            put(h, b"K", f"{name}=={_version(cls.__module__)}".encode())
            return
        if id(cls) in self.active:
            put(h, b"R", name.encode())
            return
        self.active.add(id(cls))
        try:
            put(h, b"k", name.encode())
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
                put(h, b"attr", key.encode())
                try:
                    self.feed(h, value, depth + 1)
                except Unknown as exc:
                    raise Unknown(f"class {cls.__qualname__}.{key}: {exc}") from None
        finally:
            self.active.discard(id(cls))



_PANDAS_OBJECT_KINDS = frozenset(
    "string bytes empty integer floating mixed-integer-float decimal complex boolean "
    "datetime64 datetime date timedelta64 timedelta time period interval".split()
)

"""Fingerprints: code (AST digest, text fallback), free variables, inputs and explicit params."""

from __future__ import annotations

import io
import itertools
import linecache
import subprocess
import sys
import textwrap

import numpy as np
import pandas as pd
import pytest

from notebook_carbon.cell import (
    CellInputs,
    code_fingerprint,
    free_variables,
    inputs_fingerprint,
    params_fingerprint,
)
from notebook_carbon.errors import ConfigError


def _cell(text: str) -> str:
    return textwrap.dedent(text).strip("\n") + "\n"


# -- code fingerprint ---------------------------------------------------------------------------

BASE = _cell(
    """
    x = f(a, b=2)
    for i in range(3):
        total = total + x * i
    """
)


@pytest.mark.parametrize(
    "variant",
    [
        "x = f(a, b=2)\nfor i in range(3):\n    total = total + x * i\n",
        "# setup\nx = f(a, b=2)  # call\n\nfor i in range(3):\n\n    total = total + x * i   \n",
        "x=f(a,b=2)\nfor i in range(3): total=total+x*i\n",
        "x = f(\n    a,\n    b=2,\n)\nfor i in (range(3)):\n        total = (total + x * i)\n",
        "x = f(a, b=2)\r\nfor i in range(3):\r\n    total = total + x * i\r\n",
    ],
)
def test_formatting_comments_and_blank_lines_keep_the_code_fingerprint(variant):
    assert code_fingerprint(variant) == code_fingerprint(BASE)


@pytest.mark.parametrize(
    "variant",
    [
        "x = f(a, b=3)\nfor i in range(3):\n    total = total + x * i\n",  # a constant
        "x = f(a, b=2)\nfor i in range(4):\n    total = total + x * i\n",
        "x = f(a, b=2)\nfor j in range(3):\n    total = total + x * j\n",  # a name
        "x = f(a, b=2)\nfor i in range(3):\n    total = total - x * i\n",  # an operator
        "x = f(a, b=2)\nfor i in range(3):\n    pass\ntotal = total + x * i\n",  # structure
    ],
)
def test_code_changes_change_the_code_fingerprint(variant):
    assert code_fingerprint(variant) != code_fingerprint(BASE)


def test_quote_style_does_not_matter_but_a_docstring_does():
    assert code_fingerprint("s = 'a'\n") == code_fingerprint('s = "a"\n')
    with_doc = 'def f():\n    """Trains."""\n    return 1\n'
    assert code_fingerprint(with_doc) != code_fingerprint(with_doc.replace("Trains", "Fits"))


def test_an_unparseable_cell_uses_the_text_fallback():
    broken = "x = (1,\ny = 2\n"
    digest = code_fingerprint(broken)
    assert len(digest) == 32 and int(digest, 16) >= 0
    assert code_fingerprint("x = (1,   \n\n\ny = 2\t\n") == digest  # trailing spaces, blank lines
    assert code_fingerprint("x = (1,\ny = 3\n") != digest
    assert code_fingerprint("x  = (1,\ny = 2\n") != digest  # inner spacing is kept


def test_top_level_await_parses():
    cell = "result = await fetch(url)\n"
    assert code_fingerprint(cell) != code_fingerprint("result = fetch(url)\n")
    assert free_variables(cell) == CellInputs(("fetch", "url"))
    assert free_variables("async for row in stream():\n    rows.append(row)\n").names == ("rows", "stream")


def test_transformed_ipython_syntax_is_analysed():
    from IPython.core.inputtransformer2 import TransformerManager

    transform = TransformerManager().transform_cell
    cell = transform("%matplotlib inline\nplt.plot(xs)\nxs?\n!ls\nawait done(xs)\n")
    assert free_variables(cell) == CellInputs(("done", "plt", "xs"))
    spaced = transform("%matplotlib inline\n\nplt.plot( xs )\nxs?\n!ls\nawait done(xs)")
    assert code_fingerprint(cell) == code_fingerprint(spaced)
    timed = free_variables(transform("%time y = lr * 2\n"))
    assert not timed.exact and "%time" in timed.reason


# -- free variables -----------------------------------------------------------------------------

FREE_VARIABLES = [
    # (cell, inputs, builtins read)
    ("x = 1\ny = x + z\n", ("z",), ()),
    ("y = x\nx = 1\n", ("x",), ()),  # read before it is assigned
    ("y = [i * k for i in range(n)]\n", ("k", "n"), ("range",)),
    ("d = {k: v for k, v in pairs}\ns = {w for w in words}\n", ("pairs", "words"), ()),
    ("g = sum(x * w for x in xs)\n", ("w", "xs"), ("sum",)),
    ("def f(a):\n    b = a + c\n    return b\nf(d)\n", ("c", "d"), ()),
    ("def f():\n    return lr\nlr = 1\nf()\n", ("lr",), ()),  # the body may run before lr = 1
    ("lr = 1\ndef f():\n    return lr\nf()\n", (), ()),
    ("lr = 1\ndef f():\n    return lr\ndel lr\nf()\n", ("lr",), ()),
    ("def outer():\n    v = 1\n    def inner():\n        return v + g\n    return inner\n", ("g",), ()),
    ("f = lambda q: q * scale\n", ("scale",), ()),
    ("def f(x=default, *a: Ann) -> Ret:\n    return x\n", ("Ann", "Ret", "default"), ()),
    ("if flag:\n    x = 1\nprint(x)\n", ("flag", "x"), ("print",)),  # conditional
    ("if flag:\n    x = 1\nelse:\n    x = 2\nprint(x)\n", ("flag",), ("print",)),  # both branches
    ("if not ok:\n    raise ValueError\nelse:\n    x = 1\nx\n", ("ok",), ("ValueError",)),
    ("for i in items:\n    last = i\nprint(last)\n", ("items", "last"), ("print",)),
    ("while n > 0:\n    m = n\n    n -= 1\nm\n", ("m", "n"), ()),
    ("try:\n    v = compute()\nexcept Exception:\n    pass\nv\n", ("compute", "v"), ("Exception",)),
    ("try:\n    v = compute()\nexcept Exception:\n    v = None\nv\n", ("compute",), ("Exception",)),
    ("try:\n    pass\nexcept E as e:\n    pass\ne\n", ("E", "e"), ()),  # e is deleted after
    ("with open(p) as fh:\n    data = fh.read()\ndata\n", ("p",), ("open",)),
    ("x += 1\n", ("x",), ()),  # augmented assignment reads
    ("counts[k] += 1\n", ("counts", "k"), ()),
    ("if (n := len(a)) > 3:\n    print(n)\n", ("a",), ("len", "print")),
    ("y = a if c else (w := 1)\nw\n", ("a", "c", "w"), ()),
    ("import numpy as np\nimport os.path\nfrom math import pi as PI\nnp, os, PI\n", (), ()),
    ("def train():\n    pass\nclass Model:\n    pass\ntrain(Model())\n", (), ()),
    ("print(len(a), max(b))\n", ("a", "b"), ("len", "max", "print")),
    ("del x\n", (), ()),  # removes x; its value is not read
    ("x: Foo = 1\n", ("Foo",), ()),
    ("match c:\n    case P(x=x0):\n        x0\n    case _:\n        pass\nx0\n", ("P", "c", "x0"), ()),
    ("match cmd:\n    case [first, *rest]:\n        first, rest\n", ("cmd",), ()),
    ("class C:\n    k = 1\n    j = k + m\n    def meth(self):\n        return k\n", ("k", "m"), ()),
    ("def bump():\n    global counter\n    counter += 1\n", ("counter",), ()),
    ("[y := v for v in vals]\ny\n", ("vals", "y"), ()),
    ("for k, v in d.items():\n    pass\nelse:\n    k\n", ("d", "k"), ()),
    ("__name__\n", (), ("__name__",)),
    ("get_ipython().system('ls')\n", (), ()),
]


@pytest.mark.parametrize(("cell", "names", "builtin_names"), FREE_VARIABLES)
def test_free_variables(cell, names, builtin_names):
    found = free_variables(cell)
    assert (found.names, found.builtins, found.exact) == (names, builtin_names, True), cell


@pytest.mark.parametrize(
    ("cell", "reason"),
    [
        ("from torch import *\nfoo()\n", "import *"),
        ("eval('lr * 2')\n", "eval()"),
        ("x = vars()\n", "vars()"),
        ("get_ipython().run_line_magic('time', 'y = lr * 2')\n", "%time"),
        ("get_ipython().run_cell_magic('timeit', '', 'f(x)\\n')\n", "%timeit"),
        ("get_ipython().run_line_magic('matplotlib', '$backend')\n", "%matplotlib"),
        ("get_ipython().system('cp {src} out/')\n", "shell command"),
        ("x = (1,\n", "does not parse"),
    ],
)
def test_cells_the_analysis_cannot_see_through_are_not_exact(cell, reason):
    found = free_variables(cell)
    assert not found.exact
    assert reason in found.reason


def test_star_import_keeps_the_names_it_can_see():
    assert free_variables("from m import *\nfoo(lr)\n").names == ("foo", "lr")


def test_shadowed_builtins_are_inputs_only_where_the_namespace_shadows_them():
    found = free_variables("y = max(a)\n")
    assert found.names_in({"a": [1]}) == ("a",)
    assert found.names_in({"a": [1], "max": 3}) == ("a", "max")


# -- inputs fingerprint -------------------------------------------------------------------------


def _digest(value, name="v", **kwargs):
    return inputs_fingerprint([name], {name: value}, **kwargs)


def test_scalars_are_params_and_fingerprinted():
    ns = {"lr": 0.1, "batch_size": 32, "optimizer": "adam", "nesterov": True, "seed": None}
    digest = inputs_fingerprint(list(ns), ns)
    assert digest.params == ns
    assert digest.fingerprint and len(digest.fingerprint) == 32
    assert (digest.unknown, digest.missing) == ((), ())
    assert inputs_fingerprint(list(ns), dict(ns, lr=0.2)).fingerprint != digest.fingerprint
    assert inputs_fingerprint(reversed(list(ns)), dict(ns)).fingerprint == digest.fingerprint


@pytest.mark.parametrize(
    ("a", "b"),
    [
        (1, 1.0),
        (1, True),
        (1, "1"),
        (0, False),
        (None, "None"),
        (0.0, -0.0),
        ([1, 2], (1, 2)),
        ({1, 2}, frozenset({1, 2})),
        (b"x", "x"),
        ([[1], 2], [1, [2]]),
        (np.float64(1.0), 1.0),
        (np.int32(1), np.int64(1)),
    ],
)
def test_values_of_different_types_differ(a, b):
    assert _digest(a).fingerprint != _digest(b).fingerprint


def test_order_insensitive_where_python_is():
    assert _digest({"a": 1, "b": 2}).fingerprint == _digest({"b": 2, "a": 1}).fingerprint
    assert _digest({3, 1, 2}).fingerprint == _digest({1, 2, 3}).fingerprint
    assert _digest([1, 2]).fingerprint != _digest([2, 1]).fingerprint
    assert _digest(float("nan")).fingerprint == _digest(float("nan")).fingerprint


def test_small_containers_are_params_as_json_and_large_ones_only_hashed():
    opt = {"betas": (0.9, 0.99), "name": "adam"}
    assert _digest(opt).params == {"v": {"betas": [0.9, 0.99], "name": "adam"}}
    assert _digest({3, 1}).params == {"v": [1, 3]}
    big = list(range(1000))
    assert _digest(big).params == {} and _digest(big).fingerprint
    assert _digest("x" * 5000).params == {} and _digest("x" * 5000).fingerprint
    assert _digest({1: "a"}).params == {}  # JSON objects have string keys
    assert _digest(float("inf")).params == {}  # not JSON
    assert _digest(np.float32(0.5)).params == {"v": 0.5}


def test_numpy_arrays_by_dtype_shape_and_content():
    a = np.arange(12, dtype=np.float64).reshape(3, 4)
    same = _digest(a.copy()).fingerprint
    assert _digest(a).fingerprint == same
    changed = a.copy()
    changed[1, 2] = 99
    assert _digest(changed).fingerprint != same
    assert _digest(a.astype(np.float32)).fingerprint != same
    assert _digest(a.reshape(4, 3)).fingerprint != same
    assert _digest(np.asfortranarray(a)).fingerprint == same  # content, not memory layout
    assert _digest(a.T).fingerprint == _digest(np.ascontiguousarray(a.T)).fingerprint
    assert _digest(a).params == {}


def test_object_arrays_and_unknown_objects_are_unknown_with_a_reason():
    digest = _digest(np.array([{}, []], dtype=object))
    assert digest.fingerprint is None and digest.unknown == ("v",)
    assert "object" in digest.reasons["v"]
    with io.StringIO() as fh:
        digest = inputs_fingerprint(["fh", "lr"], {"fh": fh, "lr": 0.1})
    assert digest.fingerprint is None
    assert digest.unknown == ("fh",) and "StringIO" in digest.reasons["fh"]
    assert digest.params == {"lr": 0.1}  # the other inputs are still reported


def test_too_large_is_unknown():
    digest = _digest(np.zeros(2**20), max_bytes=2**20)
    assert digest.fingerprint is None
    assert digest.reasons["v"] == "too large to fingerprint (8.0 MB > 1.0 MB)"
    assert _digest(np.zeros(2**17), max_bytes=2**20).fingerprint is not None


def test_the_byte_limit_is_shared_by_all_inputs():
    ns = {"a": np.zeros(2**16), "b": np.ones(2**16)}  # 512 KiB each
    digest = inputs_fingerprint(["a", "b"], ns, max_bytes=2**19 + 100)
    assert digest.unknown == ("b",)
    assert "left of the" in digest.reasons["b"]


def test_missing_names_are_recorded_and_fingerprinted_not_unknown():
    digest = inputs_fingerprint(["lr", "nope"], {"lr": 0.1})
    assert digest.missing == ("nope",) and digest.unknown == ()
    assert digest.fingerprint is not None
    assert digest.fingerprint != inputs_fingerprint(["lr"], {"lr": 0.1}).fingerprint
    assert digest.fingerprint != inputs_fingerprint(["lr", "nope"], {"lr": 0.1, "nope": None}).fingerprint


def _frame():
    return pd.DataFrame({"x": [1.0, 2.0, 3.0], "label": ["a", "b", "c"], "n": [1, 2, 3]}, index=[10, 20, 30])


def test_dataframes_equal_and_different():
    same = _digest(_frame()).fingerprint
    assert same is not None and _digest(_frame()).fingerprint == same
    changed = _frame()
    changed.loc[20, "x"] = 2.5
    assert _digest(changed).fingerprint != same
    assert _digest(_frame().rename(columns={"x": "y"})).fingerprint != same
    assert _digest(_frame().set_axis([1, 2, 3])).fingerprint != same  # the index counts
    assert _digest(_frame().astype({"n": "int32"})).fingerprint != same  # so do dtypes
    assert _digest(_frame()[["label", "x", "n"]]).fingerprint != same


def test_series_and_index():
    s = pd.Series([1.0, 2.0], name="loss")
    assert _digest(s).fingerprint == _digest(s.copy()).fingerprint
    assert _digest(s).fingerprint != _digest(s.rename("acc")).fingerprint
    assert _digest(pd.Index(["a", "b"])).fingerprint != _digest(pd.Index(["a", "c"])).fingerprint


def test_pandas_object_columns_that_would_hash_by_str_are_unknown():
    mixed = pd.Series([1, "1"], dtype=object)
    assert _digest(mixed).fingerprint is None and "mixed" in _digest(mixed).reasons["v"]
    arrays = pd.Series([np.zeros(3), np.ones(3)])
    assert _digest(arrays).fingerprint is None
    assert _digest(pd.Series(["a", None], dtype=object)).fingerprint is not None


_CELLS = itertools.count()


def _run_cell(source: str, ns: dict) -> None:
    """Runs ``source`` the way IPython runs a cell: its text registered in ``linecache``."""
    source = textwrap.dedent(source)
    filename = f"<cell-{next(_CELLS)}>"
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    exec(compile(source, filename, "exec"), ns)


def _notebook(source: str) -> dict:
    ns = {"__name__": "__main__"}
    _run_cell(source, ns)
    return ns


def test_notebook_functions_are_identified_by_code_and_the_globals_they_read():
    ns = _notebook(
        """
        import math
        lr = 0.1
        def helper(n):
            return math.sqrt(n)
        def train(n):
            return helper(n) * lr
        """
    )
    first = inputs_fingerprint(["train"], ns).fingerprint
    assert first is not None
    ns["train"](4)  # running it (and specialising its bytecode) does not change it
    assert inputs_fingerprint(["train"], ns).fingerprint == first
    ns["lr"] = 0.2
    assert inputs_fingerprint(["train"], ns).fingerprint != first  # a global it reads
    ns["lr"] = 0.1
    _run_cell("def helper(n):\n    return math.sqrt(n) + 1\n", ns)
    assert inputs_fingerprint(["train"], ns).fingerprint != first  # a function it calls
    _run_cell("\n\ndef helper(n):  # again\n    return math.sqrt( n )\n", ns)
    assert inputs_fingerprint(["train"], ns).fingerprint == first  # only formatting changed
    assert inputs_fingerprint(["train"], ns).params == {}


def test_a_function_from_a_real_ipython_cell_keeps_its_identity_until_its_code_or_globals_change():
    from IPython.core.interactiveshell import InteractiveShell

    shell = InteractiveShell.instance()
    ns = shell.user_ns
    shell.run_cell("import math\nfp_lr = 0.1\ndef fp_train(n):\n    return math.sqrt(n) * fp_lr\n")
    try:
        cell = free_variables(shell.transform_cell("fp_result = fp_train(4)\n"))
        assert cell.names == ("fp_train",)
        first = inputs_fingerprint(cell.names_in(ns), ns).fingerprint
        for _ in range(20):  # warm enough for the interpreter to specialise its bytecode
            shell.run_cell("fp_result = fp_train(4)\n")
        assert inputs_fingerprint(cell.names_in(ns), ns).fingerprint == first
        shell.run_cell("def fp_train(n):\n    # reworded\n    return math.sqrt(n) * fp_lr\n")
        assert inputs_fingerprint(cell.names_in(ns), ns).fingerprint == first
        shell.run_cell("fp_lr = 0.2\n")
        assert inputs_fingerprint(cell.names_in(ns), ns).fingerprint != first
    finally:
        for name in ("fp_lr", "fp_train", "fp_result"):
            ns.pop(name, None)


def test_functions_without_source_fall_back_to_their_code_object():
    ns = {"__name__": "__main__"}
    exec("def f(x):\n    return x + 1\ng = lambda x: x - 1\n", ns)
    digests = {name: inputs_fingerprint([name], ns).fingerprint for name in ("f", "g")}
    assert None not in digests.values()
    exec("def f(x):\n    return x + 2\n", ns)
    assert inputs_fingerprint(["f"], ns).fingerprint != digests["f"]


def test_lambdas_on_one_line_are_told_apart():
    ns = _notebook("inc, dec = (lambda x: x + 1), (lambda x: x - 1)\n")
    assert inputs_fingerprint(["inc"], ns).fingerprint != inputs_fingerprint(["dec"], ns).fingerprint


def test_library_functions_by_name_and_version():
    ns = {"sqrt": np.sqrt, "dumps": __import__("json").dumps, "mean": np.mean}
    digest = inputs_fingerprint(list(ns), ns)
    assert digest.fingerprint is not None


def test_notebook_functions_reading_unknown_globals_are_unknown():
    ns = _notebook("def save():\n    return log.write('x')\n")
    ns["log"] = io.StringIO()
    digest = inputs_fingerprint(["save"], ns)
    assert digest.fingerprint is None
    assert "save reads global 'log'" in digest.reasons["save"]


def test_recursive_functions_classes_and_dataclasses():
    ns = _notebook(
        """
        from dataclasses import dataclass
        def fib(n):
            return n if n < 2 else fib(n - 1) + fib(n - 2)
        @dataclass
        class Config:
            lr: float = 0.1
        class Net:
            scale = 2
            def forward(self, x):
                return super().__init__() or x * self.scale
        """
    )
    for name in ("fib", "Config", "Net"):
        assert inputs_fingerprint([name], ns).fingerprint is not None, name
    before = inputs_fingerprint(["Net"], ns).fingerprint
    ns["Net"].scale = 3
    assert inputs_fingerprint(["Net"], ns).fingerprint != before


def test_modules_by_name_and_version():
    digest = inputs_fingerprint(["np", "pd"], {"np": np, "pd": pd})
    assert digest.fingerprint is not None and digest.params == {}


def test_numpy_and_pandas_are_not_imported_for_plain_values():
    code = textwrap.dedent(
        """
        import sys
        from notebook_carbon.cell import free_variables, inputs_fingerprint
        inputs_fingerprint(free_variables("y = lr * 2").names, {"lr": 0.1})
        print("numpy" in sys.modules, "pandas" in sys.modules)
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]


# -- params fingerprint -------------------------------------------------------------------------


def test_params_fingerprint_is_order_independent_and_typed():
    a = params_fingerprint({"lr": 0.1, "layers": [64, 64], "opt": {"name": "adam", "eps": 1e-8}})
    b = params_fingerprint({"opt": {"eps": 1e-8, "name": "adam"}, "layers": (64, 64), "lr": 0.1})
    assert a == b  # a tuple reads back from the registry as a list
    assert params_fingerprint({"lr": 1}) != params_fingerprint({"lr": 1.0})
    assert params_fingerprint({"lr": 0.1}) != params_fingerprint({"lr": "0.1"})
    assert params_fingerprint({}) == params_fingerprint({})
    assert params_fingerprint({"lr": 0.1}) != inputs_fingerprint(["lr"], {"lr": 0.1}).fingerprint


@pytest.mark.parametrize(
    "params",
    [
        {"model": object()},
        {"w": np.zeros(3)},
        {"lr": float("nan")},
        {"tags": {"a", "b"}},
        {"m": {1: 2}},
        {1: 2},
    ],
)
def test_params_that_are_not_json_raise_config_error(params):
    with pytest.raises(ConfigError, match="param"):
        params_fingerprint(params)

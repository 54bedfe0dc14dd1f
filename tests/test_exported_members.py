"""The public API, tested both ways: every name ``__all__`` lists is importable from the top level,
and nothing else public sits there but the package's own modules. Importing the package stays cheap."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import types

import pytest

import notebook_carbon
from notebook_carbon import errors


@pytest.mark.parametrize("name", notebook_carbon.__all__)
def test_every_name_in_all_is_importable_from_the_top_level(name):
    namespace: dict = {}
    exec(f"from notebook_carbon import {name}", namespace)  # noqa: S102 - the statement users write
    assert namespace[name] is getattr(notebook_carbon, name) is not None


def test_nothing_else_public_is_at_the_top_level():
    for name in notebook_carbon.__all__:
        getattr(notebook_carbon, name)  # resolve the lazy names: their modules become attributes too
    for name in dir(notebook_carbon):
        if name.startswith("_") or name in notebook_carbon.__all__:
            continue
        value = getattr(notebook_carbon, name)
        assert isinstance(value, types.ModuleType), f"notebook_carbon.{name} is public but not in __all__"
        assert value.__name__ == f"notebook_carbon.{name}", f"notebook_carbon.{name} is another package's module"
    with pytest.raises(AttributeError):
        notebook_carbon.not_a_thing  # noqa: B018


def test_a_fresh_import_binds_only_what_all_lists_and_imports_only_its_version():
    code = (
        "import json, sys, notebook_carbon\n"
        "print(json.dumps([n for n in vars(notebook_carbon) if not n.startswith('_')]))\n"
        "print(json.dumps([m for m in sys.modules if m.startswith('notebook_carbon.')"
        " or m.partition('.')[0] in ('IPython', 'sqlalchemy', 'numpy', 'pandas', 'psutil', 'pynvml')]))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    bound, imported = (json.loads(line) for line in out.splitlines())
    assert set(bound) <= set(notebook_carbon.__all__)
    assert imported == ["notebook_carbon._version"]  # the version string, and nothing else of ours


def test_every_exception_is_exported_and_drawn_in_the_tree():
    ours = {
        name
        for name, value in vars(errors).items()
        if isinstance(value, type) and issubclass(value, BaseException) and value.__module__ == errors.__name__
    }
    assert ours == {
        "NotebookCarbonError", "ConfigError", "UnknownRegionError", "MeterError", "RegistryError",
        "RedundantRunError", "NotebookCarbonWarning",
    }  # fmt: skip
    assert ours <= set(notebook_carbon.__all__)
    for name in ours:
        assert re.search(rf"(?m)^[ │├└─]*{name}\b", errors.__doc__), f"{name} is not drawn in errors.py's tree"
    assert issubclass(errors.RedundantRunError, errors.NotebookCarbonError)


@pytest.mark.parametrize("package", ["notebook_carbon.cell", "notebook_carbon.testing"])
def test_subpackage_all_resolves(package):
    module = __import__(package, fromlist=["_"])
    for name in module.__all__:
        assert getattr(module, name) is not None

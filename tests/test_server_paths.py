"""A run's notebook as the path the server opens it by (``documents.server_path``): under the
root, on this host, a notebook, through symbolic links; never an error, whatever the paths (a
notebook on another Windows drive made every page of runs fail)."""

from __future__ import annotations

import ntpath
import pathlib

import pytest

from notebook_carbon.server import documents
from notebook_carbon.server.documents import server_path


@pytest.mark.parametrize(("notebook", "root", "expected"), [
    ("/srv/lab/a/b.ipynb", "/srv/lab", "a/b.ipynb"),
    ("/srv/lab/a/b.ipynb", "/srv/lab/", "a/b.ipynb"),
    ("/srv/lab/é dir/b c.ipynb", "/srv/lab", "é dir/b c.ipynb"),
    ("/srv/lab2/b.ipynb", "/srv/lab", None),  # a sibling whose name starts the same
    ("/srv/other/b.ipynb", "/srv/lab", None),
    ("/srv/lab/../etc/b.ipynb", "/srv/lab", None),
    ("a/b.ipynb", "/srv/lab", "a/b.ipynb"),  # recorded relative: taken as under the root
    ("../b.ipynb", "/srv/lab", None),
    ("/srv/lab/script.py", "/srv/lab", None),  # not a notebook: JupyterLab would open it as one
    ("/srv/lab", "/srv/lab", None),
    (None, "/srv/lab", None),
    ("/srv/lab/b.ipynb", None, None),
])  # fmt: skip
def test_a_path_under_the_root(notebook, root, expected):
    assert server_path(notebook, root) == expected


def test_runs_of_another_host_have_no_path():
    """A lab's shared registry: a colleague's /home/jovyan/train.ipynb is not this server's."""
    assert server_path("/home/jovyan/train.ipynb", "/home/jovyan", host="gpu-2", here="gpu-1") is None
    assert server_path("/home/jovyan/train.ipynb", "/home/jovyan", host="gpu-1", here="gpu-1") == "train.ipynb"
    assert server_path("/home/jovyan/train.ipynb", "/home/jovyan", host=None, here="gpu-1") == "train.ipynb"


def test_a_root_or_notebook_reached_through_a_symbolic_link(tmp_path):
    real = tmp_path / "real"
    (real / "sub").mkdir(parents=True)
    (real / "sub" / "nb.ipynb").write_text("{}")
    (tmp_path / "link").symlink_to(real)
    assert server_path(str(real / "sub" / "nb.ipynb"), str(tmp_path / "link")) == "sub/nb.ipynb"
    assert server_path(str(tmp_path / "link" / "sub" / "nb.ipynb"), str(real)) == "sub/nb.ipynb"


@pytest.mark.parametrize(("notebook", "root", "expected"), [
    ("C:\\Users\\me\\proj\\nb.ipynb", "C:\\Users\\me", "proj/nb.ipynb"),
    ("D:\\data\\nb.ipynb", "C:\\Users\\me", None),  # another drive: os.path.commonpath raised
    ("\\\\server\\share\\nb.ipynb", "C:\\Users\\me", None),
])  # fmt: skip
def test_windows_paths_on_another_drive_are_outside_and_never_an_error(monkeypatch, notebook, root, expected):
    monkeypatch.setattr(documents, "_paths", ntpath)
    monkeypatch.setattr(documents, "_PurePath", pathlib.PureWindowsPath)
    assert server_path(notebook, root) == expected

"""Shared fixtures. Every test runs with a clean ``NOTEBOOK_CARBON_*`` environment and its own
config and data directories, so nothing a developer has configured leaks in or gets written to."""

from __future__ import annotations

import os

import pytest


@pytest.fixture(autouse=True)
def clean_environ(monkeypatch, tmp_path_factory):
    for key in list(os.environ):
        if key.startswith("NOTEBOOK_CARBON_") or key == "JPY_SESSION_NAME":
            monkeypatch.delenv(key)
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / "config"))
    monkeypatch.setenv("XDG_DATA_HOME", str(home / "data"))
    return home

"""The dashboard's latest runs, a page at a time: the page as HTML (``markup.latest``) and two
buttons that ask for the newer or the older page."""

from __future__ import annotations

from collections.abc import Callable

import ipywidgets as widgets

from . import markup
from .figures import Snapshot

PAGE = 10
"""Runs on a page."""


class RunsPager(widgets.VBox):
    """The latest runs and the buttons that turn the page; ``offset`` is how many newer runs the
    page skips. ``on_turn`` is called (no argument) after a button moved ``offset``."""

    def __init__(self, on_turn: Callable[[], None]) -> None:
        self.offset = 0
        self.page = PAGE
        self.html = widgets.HTML()
        self.html.add_class("nc-latest-widget")
        self.newer = widgets.Button(description="Newer", icon="chevron-left", tooltip="the newer runs")
        self.older = widgets.Button(description="Older", icon="chevron-right", tooltip="the older runs")
        for button, step in ((self.newer, -PAGE), (self.older, PAGE)):
            button.add_class("nc-page")
            button.on_click(lambda _, step=step: self._turn(step, on_turn))
        self.buttons = widgets.HBox([self.newer, self.older])
        super().__init__([self.html, self.buttons])

    def _turn(self, step: int, on_turn: Callable[[], None]) -> None:
        self.offset = max(self.offset + step, 0)
        on_turn()

    def show(self, snapshot: Snapshot) -> None:
        """The page ``snapshot`` holds, with the buttons that lead somewhere enabled."""
        self.offset = snapshot.runs_offset
        self.html.value = markup.latest(snapshot)
        self.newer.disabled = snapshot.runs_offset == 0
        self.older.disabled = snapshot.runs_offset + len(snapshot.latest) >= snapshot.runs_total
        self.buttons.layout.display = "none" if snapshot.runs_total <= self.page else None

    def close(self) -> None:
        for part in (self.html, self.newer, self.older, self.buttons):
            part.close()
        super().close()

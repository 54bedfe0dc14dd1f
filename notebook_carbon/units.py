"""The one display scheme: how values are shown to people.

For now its text part: ``terminal_text`` shows user text (run, sweep, project and notebook names,
tags, parameters, error messages) on a terminal as text. Names come from notebooks, scripts and
shared registries, so any of them may hold what a terminal acts on instead of showing it: escape
sequences (ESC, the 8-bit CSI and OSC; an OSC can set the window title, write a hyperlink or, left
unterminated, swallow the output after it), carriage returns and newlines that overwrite or split
a table's line, bidirectional overrides that reorder the text around them. Each such character is
shown as its visible escape instead, and a field is cut to its width only after escaping, so a cut
never leaves half a sequence behind.
"""

from __future__ import annotations

import re

__all__ = ["terminal_text"]

_CONTROLS = re.compile(
    "["
    "\x00-\x1f\x7f"  # C0 (NUL, BEL, BS, TAB, LF, CR, ESC...) and DEL
    "\x80-\x9f"  # C1: 8-bit CSI, OSC, NEL...
    "\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069"  # bidi marks, embeddings, overrides, isolates
    "\u2028\u2029"  # line and paragraph separators: line breaks to some terminals and str.splitlines
    "]"
)
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}
_TOKENS = re.compile(r"\\(?:x[0-9a-f]{2}|u[0-9a-f]{4}|[nrt])|.", re.S)
_ELLIPSIS = "…"


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    if char in _NAMED:
        return _NAMED[char]
    code = ord(char)
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"


def terminal_text(value: object, width: int | None = None) -> str:
    """``value`` as text that a terminal shows as it is: ``"-"`` for None, control characters,
    DEL, C1 controls, bidi controls and line separators as visible escapes (``\\x1b``, ``\\n``,
    ``\\u202e``); backslashes and all printable text (any script, emoji, ``<`` ``&``) unchanged.

    ``width``: at most this many characters, the last one ``…`` when the text was longer; the cut
    falls between escapes, never inside one. Widths count characters, not terminal cells.
    """
    if width is not None and width < 1:
        raise ValueError(f"width must be at least 1, got {width}")
    text = _CONTROLS.sub(_escape, "-" if value is None else str(value))
    if width is None or len(text) <= width:
        return text
    kept, used = [], 0
    for token in _TOKENS.findall(text):
        if used + len(token) > width - 1:
            break
        kept.append(token)
        used += len(token)
    return "".join(kept) + _ELLIPSIS

"""Escaping of user text (run, sweep and project names, tags, params, regions) for each format.

Everything a user typed reaches a statement through one of these filters, applied by the
templates' environments (``autoescape``-style: a value is escaped unless a template marks it as
already formatted), so a run named ``50%_lr&{bs}#1`` prints as itself in LaTeX and
``<img src=x onerror=alert(1)>`` stays text in Markdown rendered to HTML.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable

__all__ = ["latex_cell", "latex_escape", "latex_typeset", "markdown_escape", "plain_text"]

# LaTeX's ten special characters, each as text (textcomp's commands are in the LaTeX kernel since 2020).
_LATEX = {
    "\\": r"\textbackslash{}",
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
    # Not special, but typeset wrongly in T1 text (as inverted marks, or merged into ligatures):
    "<": r"\textless{}",
    ">": r"\textgreater{}",
    "|": r"\textbar{}",
    '"': "''",  # OT1, pdflatex's default font encoding, has no straight double quote
    # Braced so that no macro before them can take them as an optional argument or a star: after
    # ``\\`` (a table row's end) ``[2J]`` is read as a length, which stops the document or loops
    # forever, and ``*`` as the starred form; after ``\item`` ``[..]`` is its label. Each vanishes
    # from the PDF at best.
    "[": "{[}",
    "]": "{]}",
    "*": "{*}",
    # Braced so that they cannot form ligatures with what follows: ``--`` is a dash, ``''`` and
    # ``` `` ``` quotes, ``!``` and ``?``` inverted marks.
    "-": "-{}",
    "`": "{`}",
    "'": "{'}",
    "\u2013": "--{}",
    "\u2014": "---{}",
    "\u2212": "-{}",
    "\u00a0": "~",
}
_LATEX_RE = re.compile("|".join(re.escape(c) for c in _LATEX))
_LAST_SAFE = 0x17F
"""Latin-1 and Latin Extended-A: what pdflatex's default UTF-8 input sets with its default (OT1)
fonts, except the letters below, found by compiling every one of them with pdflatex."""
_UNSET = {
    "\u00ab": "<<", "\u00bb": ">>", "\u00d0": "D", "\u00de": "Th", "\u00f0": "d", "\u00fe": "th",
    "\u0110": "D", "\u0111": "d", "\u0126": "H", "\u0127": "h", "\u0138": "k", "\u013f": "L",
    "\u0140": "l", "\u0149": "'n", "\u014a": "N", "\u014b": "n", "\u0166": "T", "\u0167": "t",
    "\u017f": "s",
}
"""Letters of that range pdflatex cannot set in OT1 and that Unicode does not decompose, with their
usual transliteration; the others it cannot set (``Ą``, ``ę``...) lose their ogonek by decomposition."""


def latex_escape(value: object) -> str:
    """``value`` as LaTeX text that pdflatex sets exactly as written, whatever it contains.

    Characters pdflatex cannot set with its default fonts (Greek, CJK, emoji, most symbols) would
    stop the document from compiling; they are replaced by their closest Latin form where Unicode
    gives one (``ﬁ`` -> ``fi``, ``ą`` -> ``a``; ``é`` stays ``é``) and by ``?`` otherwise. Control
    characters (a newline in a name) become spaces. The result is safe anywhere text goes: at the
    start of a line, of a table cell, after ``\\\\`` or ``\\item``.
    """
    text = "".join(_settable(c) for c in str(value))
    return _LATEX_RE.sub(lambda m: _LATEX[m.group()], text)


def _settable(char: str) -> str:
    if " " <= char <= "~" or char in _LATEX:
        return char
    if unicodedata.category(char).startswith("C"):
        return " "
    if char in _UNSET:
        return _UNSET[char]
    if ord(char) <= _LAST_SAFE and not unicodedata.combining(char):
        folded = unicodedata.normalize("NFKD", char)
        if not any(unicodedata.combining(c) and c not in _ACCENTS for c in folded):
            return char
    kept = "".join(
        _UNSET.get(c, c) for c in unicodedata.normalize("NFKD", char)
        if " " <= c <= "~" or (ord(c) <= _LAST_SAFE and not unicodedata.combining(c) and c not in _UNSET)
    )
    return kept if kept.strip() else "?"


_ACCENTS = set("\u0300\u0301\u0302\u0303\u0304\u0306\u0307\u0308\u030a\u030b\u030c\u0327")
"""Combining accents OT1 sets over a letter: grave, acute, circumflex, tilde, macron, breve, dot,
diaeresis, ring, double acute, caron, cedilla (not the ogonek: ``ą`` fails)."""


# Characters that change what surrounds them rather than show: C0 and C1 controls (a terminal's
# escape sequences, carriage return, NUL), line and paragraph separators, and the bidirectional
# embeddings, overrides and isolates (U+202E shows the rest of a line backwards).
_UNSAFE_RE = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def plain_text(value: object) -> str:
    """``value`` as one line of text that shows as written and nothing else: every control
    character, line or paragraph separator and bidirectional formatting character is a space."""
    return _UNSAFE_RE.sub(" ", str(value))


# Inline Markdown (CommonMark + GitHub's tables and strikethrough, and the ``$`` of the math that
# Jupyter and GitHub render); the rest (``-``, ``+``, ``(``) is special only at the start of a line,
# where a value never is.
_MARKDOWN_RE = re.compile(r"([\\`*_\[\]#|~>$&])")


def markdown_escape(value: object) -> str:
    """``value`` as inline Markdown text: HTML special characters as entities (so it is never markup,
    whatever renderer), Markdown's inline punctuation and ``$`` backslash-escaped (so ``*`` and ``_``
    are not emphasis, ``|`` does not split a table cell and ``$x$`` is not math), and as
    ``plain_text``: one line, without control characters. ``&`` is backslash-escaped rather than
    written ``&amp;``: the text stays readable as Markdown source, and ``\\&lt;`` is not an entity."""
    text = plain_text(value)
    text = _MARKDOWN_RE.sub(r"\\\1", text)
    return text.replace("<", "&lt;").replace("\\>", "&gt;").replace('"', "&quot;")


CELL_CHARACTERS = 90
"""The longest user text a LaTeX table cell prints; longer text ends with ``...``."""

_LONG_WORD = 8
_CHUNK = 6
_BREAK = "\\penalty300{}"
"""A place a long word may break (no hyphen: a name must read back as written), dearer than a space."""


def latex_cell(value: object, limit: int = CELL_CHARACTERS) -> str:
    """``value`` escaped as ``latex_escape`` does, for a narrow table column: at most ``limit``
    characters (the rest abbreviated to ``...``), and a word longer than eight characters may
    break after every sixth, so that no name makes a table wider than its column."""
    return _broken(value, limit, lambda word: _chunked(word) if len(word) > _LONG_WORD else latex_escape(word))


_PROSE_WORD = 20
"""A word of running text longer than this (an identifier, a path, a URL) may break."""
_PROSE_POINTS = re.compile(r"(?<=[/_.:,-])(?=.)")


def latex_prose(value: object, limit: int = 300) -> str:
    """``value`` escaped as ``latex_escape`` does, for running text: at most ``limit`` characters
    (the rest abbreviated to ``...``), and only a word longer than 20 characters (an identifier, a
    path) may break: after its ``/ _ . : , -``, else every sixth character. Ordinary words are left
    whole, as TeX breaks them (``latex_cell`` breaks every long word, for narrow table columns)."""

    def word_of_prose(word: str) -> str:
        if len(word) <= _PROSE_WORD:
            return latex_escape(word)
        if _PROSE_POINTS.search(word[:-1]):
            return "\\allowbreak{}".join(latex_escape(part) for part in _PROSE_POINTS.split(word))
        return _chunked(word)

    return _broken(value, limit, word_of_prose)


def _broken(value: object, limit: int, word: Callable[[str], str]) -> str:
    """``value`` as one line of at most ``limit`` characters (``...`` ending what is cut), each
    word (and each space) escaped by ``word``."""
    text = plain_text(value)
    if len(text) > limit:
        text = text[: limit - 3].rstrip() + "..."
    return "".join(word(part) for part in re.split(r"( )", text))


def _chunked(word: str) -> str:
    """A long word escaped, with a place to break after every sixth character (no hyphen)."""
    return _BREAK.join(latex_escape(word[i : i + _CHUNK]) for i in range(0, len(word), _CHUNK))


_UNIT_AFTER = re.compile(r"(?<=\d) (?=(?:[kMGTm\u00b5]?(?:Wh|J|W|g|L|t)\b|kg\b|mg\b|h\b|s\b|min\b|d\b|\\%|g/kWh))")


_MINUS = re.compile(r"(?:^|(?<=[\s(]))-\{\}(?=\d)")
_TIMES = re.compile(r"(?<=[\w)]) x (?=[\w(])")


def latex_typeset(text: str, *, names: bool = False) -> str:
    """Figures' typography in escaped LaTeX text: CO$_2$e, $\\times$ for multipliers, $\\pm$, and a
    thin space between a number and its unit; in our own sentences (not ``names``, which print
    as written) also `` x `` between two terms as $\\times$."""
    text = text.replace("CO2e", "CO$_2$e").replace("CO2", "CO$_2$")
    if not names:
        text = _TIMES.sub(lambda _: " $\\times$ ", text)
    text = text.replace("\u00d7", "$\\times$").replace("\u00b1", "$\\pm$")
    if not names:  # a negative figure's sign is a minus, not a hyphen ("-{}33 %", escaped)
        text = _MINUS.sub("$-$", text)
    return _UNIT_AFTER.sub(r"\\,", text)

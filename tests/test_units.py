"""units.terminal_text: user text shown on a terminal as text, table-driven."""

from __future__ import annotations

import pytest

from notebook_carbon.units import terminal_text


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        ("lr-sweep", "lr-sweep"),
        ("café 日本 😀 <img src=x onerror=alert(1)>", "café 日本 😀 <img src=x onerror=alert(1)>"),
        (None, "-"),
        (42, "42"),
        ("a\nb\rc\td", r"a\nb\rc\td"),
        ("\x1b[31mred\x1b[0m", r"\x1b[31mred\x1b[0m"),
        ("\x1b]8;;http://x\x07link\x1b]8;;\x1b\\", r"\x1b]8;;http://x\x07link\x1b]8;;\x1b" "\\"),  # ST: ESC then a backslash
        ("nul\x00del\x7f", r"nul\x00del\x7f"),
        ("c1 \x85 \x9b \x9d", r"c1 \x85 \x9b \x9d"),  # NEL, CSI and OSC of the 8-bit controls
        ("abc\u202efed", r"abc\u202efed"),  # right-to-left override
        ("\u202a\u202b\u202c\u202d\u2066\u2067\u2068\u2069", r"\u202a\u202b\u202c\u202d\u2066\u2067\u2068\u2069"),
        ("line\u2028para\u2029", r"line\u2028para\u2029"),  # line breaks to str.splitlines and some terminals
    ],
)
def test_controls_are_shown_as_visible_escapes(value, shown):
    assert terminal_text(value) == shown


@pytest.mark.parametrize(
    ("value", "width", "shown"),
    [
        ("short", 10, "short"),
        ("exactly-10", 10, "exactly-10"),
        ("eleven-char", 10, "eleven-ch…"),
        # the escape of ESC is 4 characters: it is kept whole or left out, never cut in half
        ("abcdef\x1b]8;;", 10, r"abcdef…"),
        ("abcde\x1b]8;;", 10, "abcde\\x1b…"),
        ("\x1b\x1b\x1b", 9, "\\x1b\\x1b…"),
        ("anything", 1, "…"),
        (None, 5, "-"),
    ],
)
def test_truncation_happens_after_escaping_and_keeps_escapes_whole(value, width, shown):
    assert terminal_text(value, width) == shown
    assert len(shown) <= width


def test_a_width_under_one_is_refused():
    with pytest.raises(ValueError, match="width"):
        terminal_text("x", 0)

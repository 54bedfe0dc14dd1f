"""units: the one display scheme, from the table of cases the sidebar's formatter is also tested
against (tests/data/display_cases.json); terminal_text, user text shown on a terminal as text."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

from notebook_carbon import units
from notebook_carbon.units import terminal_text

CASES = json.loads((Path(__file__).parent / "data" / "display_cases.json").read_text(encoding="utf-8"))
SPECIAL = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}
FUNCTIONS = {
    "number": units.number_text,
    "energy": units.energy_text,
    "mass": units.mass_text,
    "emissions": units.emissions_text,
    "water": units.water_text,
    "power": units.power_text,
    "duration": units.duration_text,
    "ratio": units.ratio_text,
    "percent": units.percent_text,
    "unit": lambda kind, value: list(units.unit_for(kind, value)),
    "range": units.range_text,
    "span": units.span_text,
}


def _argument(value):
    return SPECIAL.get(value, value) if isinstance(value, str) else value


def test_the_table_covers_every_function_and_nothing_else():
    assert set(CASES) - {"about"} == set(FUNCTIONS)


@pytest.mark.parametrize(
    ("name", "case"), [(name, case) for name in FUNCTIONS for case in CASES[name]], ids=lambda x: repr(x)[:40]
)
def test_figures_are_shown_as_the_table_says(name, case):
    *args, shown = case
    assert FUNCTIONS[name](*map(_argument, args)) == shown


def test_a_range_given_as_a_figure_reads_as_one_given_in_parts():
    figure = {"value": 3600.0, "low": 3240.0, "high": 4320.0}
    assert units.ranged_text(figure, "energy") == units.range_text(3600.0, 3240.0, 4320.0, "energy")
    assert units.ranged_text(None, "energy") == units.MISSING


def test_no_figure_is_ever_a_run_of_zeros_or_an_exponent():
    for exponent in range(-30, 30):
        for kind in units.KINDS:
            for mantissa in (1.0, 9.0909, 9.9996):
                text = units.range_text(mantissa * 10.0**exponent, 0.0, 2 * mantissa * 10.0**exponent, kind)
                assert "e" not in text.replace("CO2e", "") and "0.0000" not in text, text


def test_importing_units_stays_cheap():
    code = (
        "import sys, notebook_carbon.units; "
        "print(sorted(m for m in ('numpy', 'pandas', 'decimal') if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


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

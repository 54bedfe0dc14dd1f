"""Units and the one display scheme: how figures and user text are shown to people.

Records keep SI base units (energy in J, emissions in g CO2e, water in L, power in W, time in s);
they are converted here, at the edge, and nowhere else. Every view (the summary line, the live
meter, ``%carbon`` and the CLI, chart axes, the dashboard, statements) formats through these
functions, and the sidebar's ``labextension/src/format.ts`` implements the same ones; both are
tested against one table of cases, ``tests/data/display_cases.json``.

The rules:

=============  ==========================================================================
figures        3 significant figures, trailing zeros dropped ("1.2 kWh", "10.3 Wh", "15×");
               whole digits are never rounded away: 12,345 stays "12,345" (thousands
               separated by commas), since "12,300" would read as exact. Ties round away from
               zero, on the exact value of the float.
unit           the largest unit in which the figure rounds to at least 1, so it reads
               between 1 and 1,000 except past the largest unit and below the smallest;
               999.96 Wh is "1 kWh", never "1000 Wh".
energy         mJ, J, kJ below one watt-hour; Wh, kWh, MWh, GWh from it: a quick cell reads
               "850 mJ" or "35.2 J" (joules are what a researcher compares small costs in),
               anything of a watt-hour or more reads in watt-hours, as papers report it.
mass           g CO2e as mg, g, kg, t; ``emissions_text`` adds " CO2e".
water          mL, L, m³.   power: mW, W, kW, MW.
small          below 0.001 of the smallest unit: "< 0.001 mJ", "< 0.001 mg", never a run
               of zeros; 0 is "0" in the base unit ("0 J", "0 g", "0 s").
missing        None, NaN and infinities are "n/a" (``MISSING``), whatever the figure.
duration       "0.8 ms", "340 ms", "2.3 s", "2 min 13 s", "1 h 02 min" (hours keep counting).
ratio          a figure and "×": "10.3×", "1×", "0.25×" (the development overhead, what-if grids).
percentage     a fraction as per cent to one decimal, a space before the sign as SI writes it:
               "12.3 %", "5 %", "0.5 %"; "< 0.1 %" for a share that rounds to none, "> 99.9 %"
               for one that rounds to all but is not.
range          "1.2 kWh (0.9–1.5 kWh)": the figure, then low–high in the figure's own unit,
               with an en dash and the unit once; just the figure when the range is missing
               or shows the same as it. ``span_text`` is the part in brackets, for a table's
               own range column.
=============  ==========================================================================

Text: ``terminal_text`` shows user text (run, sweep, project and notebook names, tags,
parameters, error messages) on a terminal as text. Names come from notebooks, scripts and
shared registries, so any of them may hold what a terminal acts on instead of showing it: escape
sequences (ESC, the 8-bit CSI and OSC; an OSC can set the window title, write a hyperlink or, left
unterminated, swallow the output after it), carriage returns and newlines that overwrite or split
a table's line, bidirectional overrides that reorder the text around them. Each such character is
shown as its visible escape instead, and a field is cut to its width only after escaping, so a cut
never leaves half a sequence behind.

This module imports nothing but the standard library's ``math`` and ``re``: every view, however
quick, may import it.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping

__all__ = [
    "J_PER_KWH",
    "J_PER_WH",
    "KINDS",
    "MISSING",
    "duration_text",
    "emissions_text",
    "energy_text",
    "mass_text",
    "number_text",
    "percent_text",
    "power_text",
    "range_text",
    "ranged_text",
    "ratio_text",
    "span_text",
    "terminal_text",
    "text_like",
    "unit_for",
    "water_text",
]

J_PER_WH = 3600.0
"""Joules in one watt-hour, exactly (1 W x 3600 s)."""
J_PER_KWH = 3.6e6
"""Joules in one kilowatt-hour, exactly (1000 W x 3600 s)."""

MISSING = "n/a"
"""Shown for a figure that is not known: None, NaN or infinite."""

SMALLEST = 0.001
"""Below this much of the smallest unit a figure is shown as ``< 0.001 unit``."""

# Largest unit first; each kind's base unit (factor 1) is what a zero is shown in.
_SCALES: dict[str, tuple[tuple[float, str], ...]] = {
    "energy": (
        (3.6e12, "GWh"), (3.6e9, "MWh"), (3.6e6, "kWh"), (3600.0, "Wh"),
        (1000.0, "kJ"), (1.0, "J"), (0.001, "mJ"),
    ),
    "mass": ((1e6, "t"), (1000.0, "kg"), (1.0, "g"), (0.001, "mg")),
    "emissions": ((1e6, "t CO2e"), (1000.0, "kg CO2e"), (1.0, "g CO2e"), (0.001, "mg CO2e")),
    "water": ((1000.0, "m\u00b3"), (1.0, "L"), (0.001, "mL")),
    "power": ((1e6, "MW"), (1000.0, "kW"), (1.0, "W"), (0.001, "mW")),
}
KINDS = tuple(_SCALES)
"""The quantities ``unit_for``, ``range_text`` and ``span_text`` know: energy (J), mass (g),
emissions (g CO2e), water (L), power (W)."""

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


# -- figures ----------------------------------------------------------------------------------------


def _known(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _half_up(size: float, power: int) -> int:
    """``size / 10**power`` rounded to a whole number, ties away from zero, on the exact value of
    the float (as JavaScript's ``toFixed`` and ``toExponential`` round); ``size`` >= 0."""
    num, den = size.as_integer_ratio()
    if power >= 0:
        den *= 10**power
    else:
        num *= 10 ** (-power)
    whole, rest = divmod(num, den)
    return whole + (2 * rest >= den)


def _sig3(size: float) -> tuple[int, int]:
    """``size`` > 0 to 3 significant figures: ``(digits, exponent)`` with 100 <= digits <= 999 and
    ``size`` about ``digits * 10**(exponent - 2)``."""
    exponent = math.floor(math.log10(size))
    while True:  # log10 may be off by one next to a power of ten; rounding may carry (999.6)
        digits = _half_up(size, exponent - 2)
        if digits < 100:
            exponent -= 1
        elif digits >= 1000:
            exponent += 1
        else:
            return digits, exponent


def _grouped(whole: int) -> str:
    return f"{whole:,}"


def _magnitude(size: float) -> str:
    """``size`` >= 0 as the scheme writes a figure: 3 significant figures, whole digits kept."""
    if size == 0:
        return "0"
    digits, exponent = _sig3(size)
    if exponent >= 3:
        return _grouped(_half_up(size, 0))
    if exponent < -3:
        return f"< {SMALLEST:g}"
    shown = str(digits)
    if exponent >= 2:
        return shown
    if exponent >= 0:
        text = f"{shown[:exponent + 1]}.{shown[exponent + 1:]}"
    else:
        text = "0." + "0" * (-exponent - 1) + shown
    return text.rstrip("0").rstrip(".")


def _signed(value: float) -> str:
    shown = _magnitude(abs(value))
    if value >= 0 or shown == "0":
        return shown
    return f"> -{SMALLEST:g}" if shown.startswith("<") else f"-{shown}"


def number_text(value: float | None) -> str:
    """A plain figure: ``"56.3"``, ``"0.00123"``, ``"12,345"``, ``"< 0.001"``; ``n/a`` if unknown."""
    return _signed(value) if _known(value) else MISSING


def _rounds_to_one(size: float) -> bool:
    return size > 0 and _sig3(size)[1] >= 0


def unit_for(kind: str, value: float | None) -> tuple[float, str]:
    """The unit ``value`` of ``kind`` (one of ``KINDS``) is shown in: its size in the base unit and
    its name, e.g. ``unit_for("energy", 5400.0) == (3600.0, "Wh")``. Chart axes use it for their
    largest value. Zero and unknown values take the base unit."""
    scales = _SCALES[kind]
    if not _known(value) or value == 0:
        return next(scale for scale in scales if scale[0] == 1.0)
    size = abs(value)
    for factor, unit in scales:
        if _rounds_to_one(size / factor):
            return factor, unit
    return scales[-1]


def _quantity(value: float | None, kind: str) -> str:
    if not _known(value):
        return MISSING
    factor, unit = unit_for(kind, value)
    return f"{_signed(value / factor)} {unit}"


def text_like(value: float | None, like: float | None, kind: str) -> str:
    """``value`` of ``kind`` in the unit ``like`` is shown in, so two figures compared in one
    sentence share a unit: ``text_like(2280.0, 9120.0, "energy") == "0.633 Wh"``."""
    if not _known(value):
        return MISSING
    factor, unit = unit_for(kind, like if _known(like) and like else value)
    return f"{_signed(value / factor)} {unit}"


def energy_text(joules: float | None) -> str:
    """Joules as ``"850 mJ"``, ``"35.2 J"``, ``"2.5 kJ"`` below 1 Wh, then ``"12.3 Wh"``, ``"1.23 kWh"``."""
    return _quantity(joules, "energy")


def mass_text(grams: float | None) -> str:
    """Grams as ``"12.3 mg"``, ``"4.1 g"``, ``"1.23 kg"``, ``"2.5 t"``."""
    return _quantity(grams, "mass")


def emissions_text(grams: float | None) -> str:
    """Grams of CO2e as ``"4.1 g CO2e"``: ``mass_text`` with what the mass is of."""
    return _quantity(grams, "emissions")


def water_text(litres: float | None) -> str:
    """Litres as ``"12.5 mL"``, ``"3 L"``, ``"4.2 m³"``."""
    return _quantity(litres, "water")


def power_text(watts: float | None) -> str:
    """Watts as ``"500 mW"``, ``"41.2 W"``, ``"1.2 kW"``."""
    return _quantity(watts, "power")


def duration_text(seconds: float | None) -> str:
    """Seconds as ``"0.8 ms"``, ``"340 ms"``, ``"2.3 s"``, ``"2 min 13 s"``, ``"1 h 02 min"``;
    hours keep counting (``"1,234 h 05 min"``)."""
    if not _known(seconds):
        return MISSING
    if seconds < 0:
        shown = duration_text(-seconds)
        return shown if shown == "0 s" else f"-{shown}"
    if seconds == 0:
        return "0 s"
    if not _rounds_to_one(seconds):
        return f"{_magnitude(seconds * 1000)} ms"
    digits, exponent = _sig3(seconds)
    if exponent < 1 or (exponent == 1 and digits < 600):  # under 60 s once rounded to 3 figures
        return f"{_magnitude(seconds)} s"
    whole_s = _half_up(seconds, 0)
    if whole_s < 3600:
        return f"{whole_s // 60} min {whole_s % 60:02d} s"
    whole_min = _half_up(seconds / 60, 0)
    return f"{_grouped(whole_min // 60)} h {whole_min % 60:02d} min"


def ratio_text(ratio: float | None) -> str:
    """A ratio (the development overhead, a grid against the actual one) as ``"10.3×"``, ``"1×"``."""
    return f"{_signed(ratio)}\u00d7" if _known(ratio) else MISSING


def percent_text(fraction: float | None) -> str:
    """A fraction as per cent to one decimal: ``0.123`` is ``"12.3 %"``, ``0.05`` ``"5 %"``;
    ``"< 0.1 %"`` for a share that would round to none, ``"> 99.9 %"`` for one that would round to
    all but is not."""
    if not _known(fraction):
        return MISSING
    percent = fraction * 100
    tenths = _half_up(abs(percent), -1)
    if percent != 0 and tenths == 0:
        return "< 0.1 %" if percent > 0 else "> -0.1 %"
    if tenths == 1000 and 0 < percent < 100:
        return "> 99.9 %"
    whole, tenth = divmod(tenths, 10)
    shown = _grouped(whole) + (f".{tenth}" if tenth else "")
    return f"-{shown} %" if percent < 0 else f"{shown} %"


def span_text(value: float | None, low: float | None, high: float | None, kind: str) -> str:
    """The range ``low``–``high`` in the unit ``value`` is shown in: ``"0.9–1.5 kWh"``; just that
    unit's figure when both ends show alike (``"1.2 kWh"``), ``n/a`` when an end is unknown."""
    if not (_known(low) and _known(high)):
        return MISSING
    factor, unit = unit_for(kind, value if _known(value) else max(abs(low), abs(high)))
    low_text, high_text = _signed(low / factor), _signed(high / factor)
    if low_text == high_text:
        return f"{low_text} {unit}"
    return f"{low_text}\u2013{high_text} {unit}"


def range_text(value: float | None, low: float | None, high: float | None, kind: str) -> str:
    """A figure with its range: ``"1.2 kWh (0.9–1.5 kWh)"``; just the figure when the range is
    unknown or shows the same as the figure."""
    shown = _quantity(value, kind)
    if shown == MISSING or not (_known(low) and _known(high)):
        return shown
    factor, _ = unit_for(kind, value)
    if _signed(low / factor) == _signed(high / factor) == _signed(value / factor):
        return shown
    return f"{shown} ({span_text(value, low, high, kind)})"


def ranged_text(figure: Mapping[str, float | None] | None, kind: str) -> str:
    """``range_text`` of a ``{"value", "low", "high"}`` figure, as statements and the server give them."""
    if not figure:
        return MISSING
    return range_text(figure.get("value"), figure.get("low"), figure.get("high"), kind)

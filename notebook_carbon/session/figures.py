"""A finished run's figures that are not energy: its share of its hardware's embodied emissions, and
how it failed, as text any registry stores."""

from __future__ import annotations

import functools

from ..settings import Settings


def embodied_share(settings: Settings, gpu_count: int, reserved_s: float):
    """The run's share of its hardware's embodied emissions (``impact.embodied.Embodied``)."""
    from ..impact.embodied import embodied

    return embodied(
        reserved_s,
        hardware=settings.hardware,
        gpu_count=gpu_count,
        embodied_kg=settings.embodied_kg,
        lifetime_years=settings.lifetime_years,
        reused=settings.reused_hardware,
        has_battery=settings.hardware == "auto" and has_battery(),
    )


def embodied_note(e) -> str:
    """One short line per run on how its ``embodied_g`` was obtained (sources: docs/methods.md)."""
    gpus = f" with {e.gpu_count} GPU{'' if e.gpu_count == 1 else 's'}" if e.gpu_count else ""
    what = "user-provided" if e.user_total else e.hardware + gpus
    note = f"embodied: {what}, {e.total_kg:g} kg CO2e amortised over {e.lifetime_years:g} years"
    note += " (SCI time-share)"
    if e.reused:
        note += "; reused hardware: none attributed"
    return note + (f"; {e.hardware_reason}" if e.hardware_reason else "")


@functools.cache
def has_battery() -> bool:
    """Whether this machine runs on a battery (a laptop), for ``hardware = "auto"``; read once."""
    try:
        import psutil

        return psutil.sensors_battery() is not None
    except (AttributeError, NotImplementedError, OSError):  # no battery API here, or unreadable: no laptop
        return False


MAX_ERROR_CHARS = 2000


def error_text(error: BaseException | str | None) -> str | None:
    """How a run failed, as it can be stored anywhere: NUL shown as ``\\x00``, at most 2,000 characters."""
    if error is None:
        return None
    if isinstance(error, str):
        text = error
    else:
        try:
            message = str(error)
        except Exception:  # an exception whose __str__ fails must not lose the run
            message = "(its message could not be read)"
        text = f"{type(error).__name__}: {message}" if message else type(error).__name__
    text = text.replace("\x00", "\\x00")
    return text if len(text) <= MAX_ERROR_CHARS else text[: MAX_ERROR_CHARS - 1] + "\u2026"

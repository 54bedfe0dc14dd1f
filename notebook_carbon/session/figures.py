"""A finished run's figures that are not energy: its share of its hardware's embodied emissions, and
how it failed, as text any registry stores."""

from __future__ import annotations

import dataclasses
import functools

from ..settings import Settings


def embodied_share(
    settings: Settings,
    gpu_count: int,
    reserved_s: float,
    *,
    gpus_used: int | None = None,
    gpus_total: int | None = None,
):
    """The run's share of its hardware's embodied emissions (``impact.embodied.Embodied``).

    ``gpu_count`` GPUs (those the run metered) add their embodied emissions to the machine's. The
    resource share (``impact.resources``) is the ``resource_share`` setting, else ``gpus_used`` of
    ``gpus_total`` when the caller knows both, else the process's CPU affinity over the host's
    logical CPUs. ``lifetime_years`` left at its default lets a factor keep its source's own
    lifespan (gpu-server: BLOOM's 6 years at 85 % use).
    """
    from ..impact.embodied import DEFAULT_LIFETIME_YEARS, embodied
    from ..impact.resources import resource_share

    cpus_reserved, cpus_total = cpu_affinity()
    share = resource_share(
        cpus_reserved=cpus_reserved, cpus_total=cpus_total, gpus_used=gpus_used or 0,
        gpus_total=gpus_total, override=settings.resource_share,
    )  # fmt: skip
    lifetime = None if settings.lifetime_years == DEFAULT_LIFETIME_YEARS else settings.lifetime_years
    return embodied(
        reserved_s,
        hardware=settings.hardware,
        gpu_count=gpu_count,
        embodied_kg=settings.embodied_kg,
        lifetime_years=lifetime,
        resource_share=share.share,
        resource_how=share.how,
        reused=settings.reused_hardware,
        has_battery=settings.hardware == "auto" and has_battery(),
    )


def cpu_affinity() -> tuple[int | None, int | None]:
    """Logical CPUs this process may run on, and the host's logical CPUs (``None`` when unknown)."""
    import os

    total = os.cpu_count()
    try:
        reserved = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # no affinity API (macOS, Windows): the whole machine
        reserved = total
    return reserved, total


def embodied_note(e) -> str:
    """One short line per run on how its ``embodied_g`` was obtained (sources: docs/methods.md)."""
    gpus = f" with {e.gpu_count} GPU{'' if e.gpu_count == 1 else 's'}" if e.gpu_count else ""
    what = "user-provided" if e.user_total else e.hardware + gpus
    note = f"embodied: {what}, {e.total_kg:g} kg CO2e amortised over {e.lifetime_years:g} years"
    if getattr(e, "use_fraction", 1.0) != 1:
        note += f" at {e.use_fraction * 100:g} % use"
    note += " (SCI time-share)"
    how = getattr(e, "resource_how", None)
    note += f"; resource share {e.resource_share:.4g}" + (f" ({how})" if how else "")
    if getattr(e, "lower_bound", False):
        note += "; a lower bound: the 150 kg per GPU is one"
    if e.reused:
        note += "; reused hardware: none attributed"
    return note + (f"; {e.hardware_reason}" if e.hardware_reason else "")


_EMBODIED_NOTE = None  # compiled on first use: importing stays cheap


@dataclasses.dataclass(frozen=True)
class RecordedEmbodied:
    """What a run's embodied note (``embodied_note``) says of the factor it was computed with."""

    kind: str
    """``gpu-server``, ``server``, ``workstation``, ``laptop``, or ``user-provided`` (``embodied_kg``)."""
    gpu_count: int
    total_kg: float
    lifetime_years: float
    use_fraction: float
    reused: bool


def parse_embodied_note(note: str) -> RecordedEmbodied | None:
    """The factor an ``embodied_note`` line names, or None for any other line (a note of another
    kind, or of a format this version does not know)."""
    global _EMBODIED_NOTE
    if not note.startswith("embodied: "):
        return None
    if _EMBODIED_NOTE is None:
        import re

        number = r"[0-9][0-9.e+]*"
        _EMBODIED_NOTE = re.compile(
            rf"embodied: (?P<kind>[a-z-]+)(?: with (?P<gpus>[0-9]+) GPUs?)?, (?P<kg>{number}) kg CO2e amortised "
            rf"over (?P<years>{number}) years(?: at (?P<use>{number}) % use)? \(SCI time-share\)"
        )
    found = _EMBODIED_NOTE.match(note)
    if found is None:
        return None
    try:
        return RecordedEmbodied(
            found["kind"], int(found["gpus"] or 0), float(found["kg"]), float(found["years"]),
            float(found["use"]) / 100 if found["use"] else 1.0, "; reused hardware: none attributed" in note,
        )  # fmt: skip
    except ValueError:
        return None


def water_note(settings: Settings) -> str | None:
    """The run's line on its water figure: the WUE and where it comes from (``wue_source``); None
    without a WUE (no water recorded)."""
    if settings.wue_l_per_kwh is None:
        return None
    source = f"from {settings.wue_source}" if settings.wue_source else "its source not given"
    return f"water: WUE {settings.wue_l_per_kwh:g} L/kWh, {source}"


def parse_water_note(note: str) -> tuple[float, str | None] | None:
    """The WUE and its source (None when not given) of a ``water_note`` line; None for another line."""
    prefix = "water: WUE "
    if not note.startswith(prefix) or " L/kWh, " not in note:
        return None
    figure, _, source = note[len(prefix):].partition(" L/kWh, ")
    try:
        wue = float(figure)
    except ValueError:
        return None
    return wue, (source[len("from "):] if source.startswith("from ") else None)


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

"""A BoAmps report of a statement's facts: Boavizta's open format for the energy of an AI task.

BoAmps ("Boavizta AI measurement reports", https://github.com/Boavizta/BoAmps, format 1.1.0 of
19 March 2025, published under CC BY 4.0) is a set of JSON Schemas (draft-04) for a report of one
computing task: a header, the task (stage, family, algorithms, datasets), its energy measures, the
infrastructure's components and the environment (country, grid intensity). The report here is of
the whole development of the selection (every sweep, failed and redundant run) as one measure,
with the energy the runs were charged (IT energy, before PUE) in kWh as the format asks.

What the facts cannot know (the task's stage and family, the algorithm, the datasets, the
publisher, the kind of infrastructure) is the user's to give; where the schema requires a value
that was not given, the report says ``unknown`` (or the format's own ``other``) rather than guess,
and stays a ``draft``. Pure: the facts in, a JSON-ready dict out.
"""

from __future__ import annotations

import datetime
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from ..errors import ConfigError
from ..units import J_PER_KWH

__all__ = ["FORMAT_URI", "FORMAT_VERSION", "INFRA_TYPES", "REPORT_STATUSES", "boamps_report"]

FORMAT_VERSION = "1.1.0"
FORMAT_URI = "https://github.com/Boavizta/BoAmps/tree/main/model"
INFRA_TYPES = ("publicCloud", "privateCloud", "onPremise", "other")
REPORT_STATUSES = ("draft", "final", "corrective", "other")

_TRACKING = {  # our methods as BoAmps' cpuTrackingMode / gpuTrackingMode words
    "rapl": "rapl", "nvml-counter": "nvml", "nvml-power": "nvml",
    "estimate-tdp": "constant", "estimate-ram": "constant",
}  # fmt: skip

# the format's quality classes: high is +/-10 %, medium +/-25 %, low +/-50 %
_QUALITY = ((0.10, "high"), (0.25, "medium"), (0.50, "low"))


def boamps_report(
    facts: dict[str, Any],
    *,
    task_stage: str | None = None,
    task_family: str | None = None,
    algorithms: Sequence[Mapping[str, Any]] = (),
    datasets: Sequence[Mapping[str, Any]] = (),
    infra_type: str | None = None,
    publisher: Mapping[str, Any] | None = None,
    licensing: str | None = None,
    report_id: str | None = None,
    report_status: str = "draft",
) -> dict[str, Any]:
    """The BoAmps 1.1.0 report of a statement's ``facts`` (``statement_facts``), as a JSON-ready dict.

    ``task_stage`` (e.g. ``training``, ``finetuning``), ``task_family`` (e.g. ``image
    classification``), ``algorithms`` and ``datasets`` (dicts in BoAmps' own fields, e.g.
    ``{"algorithmName": "cnn", "framework": "pytorch"}``, ``{"dataUsage": "input", "dataType":
    "image"}``), ``infra_type`` (one of ``INFRA_TYPES``), ``publisher`` (its ``confidentialityLevel``
    is required by the format) and ``licensing`` are the user's; without them the report says
    ``unknown`` / ``other``. ``report_id``: default, a new UUID4.
    """
    if infra_type is not None and infra_type not in INFRA_TYPES:
        raise ConfigError(f"infrastructure type {infra_type!r}: choose one of {', '.join(INFRA_TYPES)}")
    if report_status not in REPORT_STATUSES:
        raise ConfigError(f"report status {report_status!r}: choose one of {', '.join(REPORT_STATUSES)}")
    if publisher is not None and "confidentialityLevel" not in publisher:
        raise ConfigError(
            "a BoAmps publisher needs its confidentialityLevel (public, internal, confidential, secret)"
        )
    totals, methods = facts["totals"], facts["methods"]
    header: dict[str, Any] = {
        "formatVersion": FORMAT_VERSION,
        "formatVersionSpecificationUri": FORMAT_URI,
        "reportId": report_id or str(uuid.uuid4()),
        "reportDatetime": _datetime(facts.get("generated_at")) or _datetime(_now()),
        "reportStatus": report_status,
    }
    if licensing is not None:
        header["licensing"] = str(licensing)
    if publisher is not None:
        header["publisher"] = dict(publisher)
    report: dict[str, Any] = {
        "header": header,
        "task": {
            "taskStage": task_stage or "unknown",
            "taskFamily": task_family or "unknown",
            "algorithms": [dict(a) for a in algorithms] or [{}],
            "dataset": [dict(d) for d in datasets] or [{"dataUsage": "input", "dataType": "other"}],
            "taskDescription": _description(facts),
        },
        "measures": [_measure(facts)],
        "software": {"language": "python"},
        "infrastructure": {
            "infraType": infra_type or "other",
            "components": _components(facts["hardware"], methods),
        },
    }
    environment = _environment(methods["intensity"])
    if environment is not None:
        report["environment"] = environment
    quality = _quality(totals["energy_j"])
    if quality is not None:
        report["quality"] = quality
    return report


def _measure(facts: dict[str, Any]) -> dict[str, Any]:
    totals, scope, methods = facts["totals"], facts["scope"], facts["methods"]
    measure: dict[str, Any] = {
        "measurementMethod": "notebook-carbon",
        "version": str(facts.get("generator", "notebook-carbon")).removeprefix("notebook-carbon").strip()
        or "unknown",
        "powerConsumption": totals["energy_j"]["value"] / J_PER_KWH,
        "measurementDuration": totals["duration_s"],
    }
    started = _datetime(scope.get("first_run_at"))
    if started:
        measure["measurementDateTime"] = started
    for component, key in (("cpu", "cpuTrackingMode"), ("gpu", "gpuTrackingMode")):
        modes = sorted({_TRACKING.get(m, m) for row in methods["components"] if row["component"] == component
                        for m in str(row["method"]).split("+")})  # fmt: skip
        if modes:
            measure[key] = "+".join(modes)
    return measure


def _components(hardware: dict[str, Any], methods: dict[str, Any]) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    for gpu in hardware.get("gpus") or []:
        count = gpu.get("count")
        if count == 0:
            continue
        found.append({"componentName": f"{count or 1} x {gpu['model']}", "componentType": "gpu",
                      "nbComponent": int(count or 1)})  # fmt: skip
    for cpu in hardware.get("cpus") or []:
        # the runs record the model, not how many sockets: one, at least
        found.append({"componentName": str(cpu), "componentType": "cpu", "nbComponent": 1})
    if any(row["component"] == "ram" for row in methods["components"]):
        found.append({"componentType": "ram", "nbComponent": 1})
    return found or [{"componentType": "unknown", "nbComponent": 1}]


def _environment(intensity: dict[str, Any]) -> dict[str, Any] | None:
    regions = [str(g["region"]) for g in intensity["grids"] if g["region"]]
    if not regions:
        return None
    environment: dict[str, Any] = {"country": regions[0] if len(regions) == 1 else ", ".join(regions)}
    if intensity.get("g_per_kwh") is not None:
        environment["powerSourceCarbonIntensity"] = float(intensity["g_per_kwh"])
    return environment


def _quality(energy: dict[str, float]) -> str | None:
    """The format's quality class of the energy's range: its larger relative distance to the value."""
    value = energy["value"]
    if not value:
        return None
    spread = max(abs(value - energy["low"]), abs(energy["high"] - value)) / value
    return next((name for bound, name in _QUALITY if spread <= bound + 1e-12), None)


def _description(facts: dict[str, Any]) -> str:
    t, d = facts["totals"], facts["development"]
    project = facts["scope"].get("project")
    return (
        f"The whole development of project {project!s} as measured by {facts.get('generator', 'notebook-carbon')}: "
        f"{_count(t['runs'], 'metered run')} in {_count(d['sweeps'], 'sweep')}, including {d['failed_runs']} failed "
        f"and {d['redundant_runs']} redundant; powerConsumption is the IT energy the runs were charged, "
        "before the data centre's PUE"
    )


def _count(n: int, what: str) -> str:
    return f"{n} {what}{'' if n == 1 else 's'}"


def _datetime(value: Any) -> str | None:
    """An ISO 8601 time as the format writes it: ``YYYY-MM-DD HH:MM:SS`` (UTC)."""
    if value is None:
        return None
    when = value if isinstance(value, datetime.datetime) else datetime.datetime.fromisoformat(str(value))
    if when.tzinfo is not None:
        when = when.astimezone(datetime.timezone.utc)
    return when.strftime("%Y-%m-%d %H:%M:%S")


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc)

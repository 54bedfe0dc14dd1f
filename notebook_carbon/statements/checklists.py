"""Answers to the compute questions of the NeurIPS paper checklist and the ACL Responsible NLP
Research checklist, their questions quoted as the checklists word them and the statement's figures
filled in. ``answers(data)`` gives them as plain text, which the Markdown statement and
``--format checklist`` print (escaped like every value)."""

from __future__ import annotations

from typing import Any

from ..units import (
    duration_text, emissions_text, energy_text, number_text, percent_text, ratio_text, span_text, text_like,
)

__all__ = ["CHECKLISTS", "answers"]

CHECKLISTS = {
    "neurips": {
        "name": "NeurIPS Paper Checklist, 8. Experiments compute resources",
        "question": "For each experiment, does the paper provide sufficient information on the computer "
        "resources (type of compute workers, memory, time of execution) needed to reproduce the experiments?",
        "guideline": "The paper should disclose whether the full research project required more compute than "
        "the experiments reported in the paper (e.g., preliminary or failed experiments that didn't make it "
        "into the paper).",
    },
    "acl": {
        "name": "ACL Responsible NLP Research Checklist, C1",
        "question": "Did you report the number of parameters in the models used, the total computational budget "
        "(e.g., GPU hours), and computing infrastructure used?",
        "guideline": None,
    },
}
"""The questions, quoted; a ``guideline`` the answer also meets."""


def answers(data: dict[str, Any]) -> list[dict[str, str | None]]:
    """Each checklist's name, question, guideline and our answer, from the statement ``data``."""
    hardware = _hardware(data)
    t, d = data["totals"], data["development"]
    time = duration_text(t["duration_s"])
    runs = data["scope"]["runs"]
    gpu_hours = data["hardware"].get("gpu_hours")
    gpus = f" ({number_text(gpu_hours) if gpu_hours >= 0.01 else f'{gpu_hours:.2g}'} GPU hours)" if gpu_hours else ""
    budget = (
        f"{runs} metered run{'s' if runs != 1 else ''} took {time} of run time{gpus} and "
        f"{energy_text(t['energy_j']['value'])} ({span_text(t['energy_j']['value'], t['energy_j']['low'], t['energy_j']['high'], 'energy')}) "
        f"on {hardware}, emitting {emissions_text(t['total_g']['value'])} including embodied emissions"
    )  # fmt: skip
    if d["selected_runs"]:
        whole = (
            f"The {_runs(d['selected_runs'])} behind the reported results took "
            f"{text_like(d['selected_energy_j'], t['energy_j']['value'], 'energy')}; the whole project, including {_runs(d['failed_runs'], 'failed ')} "
            f"and every preliminary run, took {ratio_text(d['ratio'])} as much energy"
        )
    else:
        whole = "The figures cover the whole project, preliminary and failed runs included"
    measured = data["methods"].get("measured_share")
    how = (f"{percent_text(measured)} of the energy was measured by hardware sensors, the rest estimated"
           if measured is not None else "no energy was recorded")  # fmt: skip
    out = []
    for key, listed in CHECKLISTS.items():
        answer = f"Yes. {budget}. {whole}. {how[0].upper() + how[1:]}."
        out.append({"checklist": key, "name": listed["name"], "question": listed["question"],
                    "guideline": listed["guideline"], "answer": answer})  # fmt: skip
    return out


def _runs(count: int, what: str = "") -> str:
    """``"1 failed run"``, ``"2 runs"``: a count of runs with its plural."""
    return f"{count} {what}run{'s' if count != 1 else ''}"


def _hardware(data: dict[str, Any]) -> str:
    h = data["hardware"]
    parts = [f"{g['count'] or 1} \u00d7 {g['model']}" for g in h["gpus"]] + list(h["cpus"])
    hosts = h["hosts"]
    where = f" on {hosts} host{'s' if hosts != 1 else ''}" if hosts else ""
    return (", ".join(parts) or "unrecorded hardware") + where

"""The statement's sources as BibTeX, and which of them a statement cites.

Every entry has a title and an identifier (DOI, arXiv id, HAL id, standard number or URL), so a
reader can find what a figure rests on. ``cited_keys`` picks the entries a statement's facts rest
on (the LaTeX cites them with ``\\cite``); ``bibtex`` writes them (``notebook-carbon statement
--bib FILE``); ``bibitems`` writes the same as a ``thebibliography`` for the standalone document,
which then compiles without BibTeX.
"""

from __future__ import annotations

import re
from typing import Any

__all__ = ["ENTRIES", "bibitems", "bibtex", "breakable_url", "cited_keys"]

ENTRIES: dict[str, dict[str, str]] = {
    "gsf2024sci": {
        "type": "misc",
        "author": "{Green Software Foundation}",
        "title": "{Software Carbon Intensity (SCI) Specification}, version 1.1.0",
        "note": "Published as ISO/IEC 21031:2024",
        "year": "2024",
        "url": "https://github.com/Green-Software-Foundation/sci",
        "short": "Green Software Foundation, Software Carbon Intensity (SCI) Specification 1.1.0 "
        "(ISO/IEC 21031:2024)",
    },
    "jay2023": {
        "type": "inproceedings",
        "author": "Jay, Mathilde and Ostapenco, Vladimir and Lef{\\`e}vre, Laurent and Trystram, Denis and "
        "Orgerie, Anne-C{\\'e}cile and Fichel, Beno{\\^\\i}t",
        "title": "An experimental comparison of software-based power meters: focus on {CPU} and {GPU}",
        "booktitle": "2023 IEEE/ACM 23rd International Symposium on Cluster, Cloud and Internet Computing (CCGrid)",
        "pages": "106--118",
        "year": "2023",
        "note": "HAL: hal-04030223",
        "url": "https://inria.hal.science/hal-04030223",
        "short": "Jay et al. (2023), An experimental comparison of software-based power meters, CCGrid 2023",
    },
    "nvidia-nvml": {
        "type": "manual",
        "author": "{NVIDIA}",
        "title": "{NVML API Reference Guide}",
        "year": "2024",
        "url": "https://docs.nvidia.com/deploy/nvml-api/",
        "short": "NVIDIA, NVML API Reference Guide",
    },
    "zeus-issue12": {
        "type": "misc",
        "author": "{ml-energy/zeus contributors}",
        "title": "On using {nvmlDeviceGetTotalEnergyConsumption} (issue 12)",
        "year": "2023",
        "url": "https://github.com/ml-energy/zeus/issues/12",
        "short": "ml-energy/zeus issue 12 (2023), energy counter versus integrated power",
    },
    "codecarbon": {
        "type": "misc",
        "author": "{CodeCarbon contributors}",
        "title": "{CodeCarbon}: estimate and track carbon emissions from machine learning computing "
        "(bundled grid carbon-intensity data)",
        "year": "2025",
        "url": "https://github.com/mlco2/codecarbon",
        "short": "CodeCarbon's bundled grid carbon-intensity data",
    },
    "luccioni2023bloom": {
        "type": "article",
        "author": "Luccioni, Alexandra Sasha and Viguier, Sylvain and Ligozat, Anne-Laure",
        "title": "Estimating the Carbon Footprint of {BLOOM}, a {176B} Parameter Language Model",
        "journal": "Journal of Machine Learning Research",
        "volume": "24",
        "number": "253",
        "pages": "1--15",
        "year": "2023",
        "eprint": "2211.02001",
        "archiveprefix": "arXiv",
        "url": "https://arxiv.org/abs/2211.02001",
        "short": "Luccioni et al. (2023), Estimating the Carbon Footprint of BLOOM, JMLR 24(253)",
    },
    "boavizta-data": {
        "type": "misc",
        "author": "{Boavizta}",
        "title": "environmental-footprint-data: manufacturers' product carbon footprints",
        "year": "2023",
        "url": "https://github.com/Boavizta/environmental-footprint-data",
        "short": "Boavizta, environmental-footprint-data",
    },
    "greengrid2011wue": {
        "type": "techreport",
        "author": "{The Green Grid}",
        "title": "Water Usage Effectiveness ({WUE}): A {Green Grid} Data Center Sustainability Metric",
        "institution": "The Green Grid",
        "number": "White Paper 35",
        "year": "2011",
        "url": "https://www.thegreengrid.org/",
        "short": "The Green Grid, Water Usage Effectiveness (WUE), White Paper 35 (2011)",
    },
}
"""Every source a statement may cite, by BibTeX key; ``short`` is the reference in plain text."""

_FIELDS = ("author", "title", "booktitle", "journal", "volume", "number", "pages", "institution", "year",
           "eprint", "archiveprefix", "note", "url")  # fmt: skip


def cited_keys(data: dict[str, Any]) -> list[str]:
    """The keys of the sources the statement ``data`` rests on, in the order it cites them."""
    m = data["methods"]
    methods = "+".join(str(c["method"]) for c in m["components"])
    keys = ["gsf2024sci"]
    if any("codecarbon" in str(g.get("source") or "").lower() for g in m["intensity"]["grids"]):
        keys.append("codecarbon")
    if "rapl" in methods:
        keys.append("jay2023")
    if "nvml" in methods:
        keys.append("nvidia-nvml")
    if "nvml-power" in methods:
        keys.append("zeus-issue12")
    source = str(m["embodied"].get("source") or "")
    if "BLOOM" in source or "Luccioni" in source:
        keys.append("luccioni2023bloom")
    if "Boavizta" in source:
        keys.append("boavizta-data")
    if data["totals"].get("water_l"):
        keys.append("greengrid2011wue")
    return keys


def bibtex(data: dict[str, Any] | None = None) -> str:
    """The BibTeX entries the statement ``data`` cites (every entry without ``data``)."""
    keys = cited_keys(data) if data is not None else list(ENTRIES)
    blocks = []
    for key in keys:
        entry = ENTRIES[key]
        fields = ",\n".join(f"  {name} = {{{_field(entry, name)}}}" for name in _FIELDS if name in entry or name == "note")
        blocks.append(f"@{entry['type']}{{{key},\n{fields}\n}}\n")
    return "\n".join(blocks)


def _field(entry: dict[str, str], name: str) -> str:
    """A field's BibTeX text; ``note`` also gives the identifier, since classic styles (``plain``)
    print no ``url``, written so that it may break after a ``/`` or ``.`` in a narrow column."""
    if name != "note":
        return entry[name]
    where = f"Online at {_bib_url(entry['url'])}" if "eprint" not in entry else f"arXiv:{entry['eprint']}"
    return ". ".join(part for part in (entry.get("note"), where) if part)


def _bib_url(url: str) -> str:
    return "\\allowbreak{}".join(re.split(r"(?<=[/.])(?=.)", url))


def bibitems(keys: list[str]) -> str:
    """A ``thebibliography`` of ``keys``: the standalone document's references, without BibTeX."""
    from .escape import latex_escape

    lines = ["\\begin{thebibliography}{9}", "\\sloppy"]
    for key in keys:
        entry = ENTRIES[key]
        where = entry.get("note", "")
        lines.append(
            f"\\bibitem{{{key}}} {latex_escape(entry['short'])}."
            + (f" {latex_escape(where)}." if where and where not in entry["short"] else "")
            + f" \\texttt{{{breakable_url(entry['url'])}}}"
        )
    lines.append("\\end{thebibliography}")
    return "\n".join(lines)


def breakable_url(url: str) -> str:
    """``url`` as LaTeX text that may break after each ``/``, ``.`` or ``-`` (no url package)."""
    from .escape import latex_escape

    parts = re.split(r"(?<=[/.\-_])", url)
    return "\\allowbreak{}".join(latex_escape(p) for p in parts if p)

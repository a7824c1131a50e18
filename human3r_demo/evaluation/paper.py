"""The Human3R paper's own figures (arXiv 2510.06219, Tables 1-2 and Fig. 8), each with where it was read.

Only figures read from a citable copy of the paper go here, never one typed from memory. None could be
read for this kit yet: the stored copy of the paper that was searched (https://arxiv.org/html/2510.06219v1)
returns its abstract and introduction only, and the upstream repository's README and ``docs/eval.md``
(fanegg/Human3R@e313921) state no numbers. The table therefore prints "n/a (not found)" in the paper's row;
add a figure as ``FIGURES[("emdb1", "pa_mpjpe")] = Figure(value, "Table 1, arXiv v1")`` once read from the
PDF, and the table shows it beside ours.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["FIGURES", "Figure", "PAPER", "figure"]

PAPER = "Chen et al., Human3R: Everyone Everywhere All at Once, arXiv 2510.06219"


@dataclass(frozen=True)
class Figure:
    """One number of the paper and where it was read (table or figure, version)."""

    value: float
    source: str


FIGURES: dict[tuple[str, str], Figure] = {}
NOT_FOUND = "the paper's figures were not found in the material available here: see human3r_demo/evaluation/paper.py"


def figure(benchmark: str, metric: str) -> Figure | None:
    """The paper's figure for ``metric`` on ``benchmark``, or ``None`` when it is not known."""
    return FIGURES.get((benchmark, metric))

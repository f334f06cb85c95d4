"""The paper's claimed points (Table 1, ATHENA-base), for comparison plots only.

Quoted from the paper (see ../shared/method.md §4): pruning ratio -> test accuracy (%) and the
"speed↑" column, a percentage gain (17.2 means 1.172x). raykd never mixes these into its own
results: they are drawn as a separate, labelled series when a sweep's data set matches.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

PAPER_LABEL = "paper (quoted, ATHENA-base)"


@dataclass(frozen=True)
class PaperPoint:
    dataset: str
    ratio: float  # fraction of heads pruned
    accuracy_pct: float  # test answer accuracy, %
    speed_pct: float  # "speed↑" column, %
    params_pct: float  # "params↓" column, %
    flops_pct: float  # "FLOPs↓" column, %

    @property
    def speedup(self) -> float:
        """The speed gain as a latency ratio: 17.2 % -> 1.172x."""
        return 1.0 + self.speed_pct / 100.0

    @property
    def accuracy(self) -> float:
        """Accuracy as a fraction, like raykd's results."""
        return self.accuracy_pct / 100.0


PAPER_TABLE1: dict[str, tuple[PaperPoint, ...]] = {
    "math23k": (
        PaperPoint("math23k", 0.00, 84.4, 0.0, 0.0, 0.0),
        PaperPoint("math23k", 0.20, 84.2, 18.4, 12.5, 12.3),
        PaperPoint("math23k", 0.25, 84.0, 22.7, 15.8, 15.2),
        PaperPoint("math23k", 0.30, 83.7, 27.5, 18.7, 17.5),
    ),
    "asdiv-a": (
        PaperPoint("asdiv-a", 0.00, 86.4, 0.0, 0.0, 0.0),
        PaperPoint("asdiv-a", 0.20, 86.1, 17.2, 13.2, 11.5),
        PaperPoint("asdiv-a", 0.25, 85.9, 21.3, 16.2, 14.8),
        PaperPoint("asdiv-a", 0.30, 85.5, 26.5, 19.5, 17.2),
    ),
}
DATASET_NAMES = {"math23k": "Math23k", "asdiv-a": "ASDiv-A"}


def paper_dataset(data_spec: str | None) -> str | None:
    """"asdiv-a" / "math23k" when a data spec names one of the paper's data sets, else None."""
    text = (data_spec or "").lower()
    if re.search(r"asdiv[-_ ]?a(?![a-z])", text):
        return "asdiv-a"
    if "math23k" in text:
        return "math23k"
    return None


def paper_points(data_spec: str | None) -> tuple[PaperPoint, ...]:
    """The paper's Table 1 points for the sweep's data set (empty when it is not one of them)."""
    ds = paper_dataset(data_spec)
    return PAPER_TABLE1[ds] if ds else ()

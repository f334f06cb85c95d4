"""The paper's claimed points (Table 1, ATHENA-base), for comparison plots only.

Quoted from the paper (the one copy: `raykd.paper_figures`, from ../shared/method.md §4): pruning ratio -> test accuracy (%) and the
"speed↑" column, a percentage gain (17.2 means 1.172x). raykd never mixes these into its own
results: they are drawn as a separate, labelled series when a sweep's data set matches.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from raykd.paper_figures import TABLE1

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
    ds: tuple(PaperPoint(ds, ratio, row["accuracy"], row["speed"], row["params"], row["flops"])
              for ratio, row in sorted(rows.items()))
    for ds, rows in TABLE1.items()
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

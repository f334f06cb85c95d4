"""Analysis of a sweep's results: open it, read the front, query it, plot it, export a model.

Importable without Ray or torch (a notebook on a laptop reads a cloud sweep with pandas/pyarrow
only)::

    from raykd.analysis import open_sweep
    sw = open_sweep("s3://bucket/raykd_runs/asdiv")    # or a local <storage>/<name> directory
    sw.front()                       # non-dominated complete trials (accuracy max, speedup max)
    sw.hypervolume()                 # reference: accuracy 0, speedup 1.0x
    sw.query(max_drop=0.5)           # fastest trial within 0.5 accuracy points of the teacher
    sw.query(min_speedup=1.2)        # smallest trial (params) with speedup >= 1.2x
    sw.rounds(trial_id); sw.importance("accuracy"); sw.plot_front("front.png")
    sw.export("my-model", max_drop=0.5)

Conventions (reference point, ties, NaNs): raykd.results.pareto and docs/results.md.
"""

import functools
from typing import Any

from raykd.analysis import export as _export
from raykd.analysis import plots as _plots
from raykd.analysis.export import parse_pick
from raykd.analysis.paper import (
    PAPER_LABEL,
    PAPER_TABLE1,
    PaperPoint,
    paper_dataset,
    paper_points,
)
from raykd.analysis.plots import plot_fronts
from raykd.analysis.sweep import (
    Comparison,
    NoCompleteTrialError,
    Sweep,
    compare_sweeps,
    open_sweep,
)
from raykd.results import (
    EmptySweepError,
    NotASweepError,
    UnknownObjectiveError,
    hypervolume,
    pareto_mask,
)

__all__ = [
    "PAPER_LABEL",
    "PAPER_TABLE1",
    "Comparison",
    "EmptySweepError",
    "NoCompleteTrialError",
    "NotASweepError",
    "PaperPoint",
    "Sweep",
    "UnknownObjectiveError",
    "compare_sweeps",
    "export_trial",
    "hypervolume",
    "open_sweep",
    "paper_dataset",
    "paper_points",
    "pareto_mask",
    "parse_pick",
    "plot_front",
    "plot_fronts",
    "plot_rounds",
]


# Path-or-Sweep entry points. The plotting and export modules take an opened `Sweep` (so they never
# import the module that defines it, which calls them); these open a path or URI first.
def _opening(fn: Any) -> Any:
    @functools.wraps(fn)
    def with_sweep(sweep: Any, *args: Any, **kwargs: Any) -> Any:
        return fn(open_sweep(sweep), *args, **kwargs)

    return with_sweep


plot_front = _opening(_plots.plot_front)
plot_rounds = _opening(_plots.plot_rounds)
export_trial = _opening(_export.export_trial)

"""Paper reproduction: the experiments behind the paper's tables, run as plain chains.

`plan` says which chains each table needs, `run` executes them (pure PyTorch, resumable per
experiment), `tables` turns their records into the tables, next to the figures `paper` quotes.
"""

from raykd.experiments.plan import TABLES, Experiment, plan_experiments
from raykd.experiments.run import ReproductionResult, run_reproduction
from raykd.experiments.tables import render_markdown, build_tables

__all__ = [
    "TABLES",
    "Experiment",
    "plan_experiments",
    "ReproductionResult",
    "run_reproduction",
    "render_markdown",
    "build_tables",
]

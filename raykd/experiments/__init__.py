"""Paper reproduction: the experiments behind the paper's tables, run as plain chains.

`plan` says which chains each table needs, `run` executes them (pure PyTorch, resumable per
experiment), `tables` turns their records into the tables, next to the figures `paper` quotes.
"""

# Only the plan here: `raykd --help` reads TABLES through this package, and `run` imports torch.
from raykd.experiments.plan import TABLES, Experiment, plan_experiments

__all__ = [
    "TABLES",
    "Experiment",
    "plan_experiments",
]

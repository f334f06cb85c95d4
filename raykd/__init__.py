"""raykd: head pruning + recursive knowledge distillation for math-word-problem transformers,
searched on Ray Tune + Optuna. See README.md."""

__version__ = "0.1.0"

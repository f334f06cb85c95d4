"""The small interface between a task and the method.

The method (importance, pruning, distillation, the chain) never learns what a math problem is:
it asks a `Task` for batches, for the model's outputs on a batch (logits over the task's output
space, which positions count, and the task's own loss), and for an evaluation. The MWP solver is
one `Task`; another task (classification, say) would implement the same methods.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterator, Protocol, runtime_checkable

import torch
from torch import nn

Batch = dict[str, torch.Tensor]


@dataclass
class TaskOutput:
    logits: torch.Tensor  # (B, T, V): distributions the distillation KL compares
    mask: torch.Tensor  # (B, T) bool: positions that count
    loss: torch.Tensor  # scalar task loss (cross-entropy against the gold)


@runtime_checkable
class Task(Protocol):
    primary_metric: str
    """Name of the metric `evaluate` returns that early stopping and the sweep maximise."""

    def batches(self, split: str, batch_size: int, *, shuffle: bool = False, seed: int = 0) -> Iterator[Batch]:
        """Batches of one split ("train", "valid", "test", or "calib")."""

    def outputs(self, model: nn.Module, batch: Batch) -> TaskOutput:
        """Run `model` on `batch` (with grad if enabled by the caller)."""

    def evaluate(self, model: nn.Module, split: str) -> dict[str, Any]:
        """Metrics on a split; must include `primary_metric`."""

    def num_examples(self, split: str) -> int:
        """How many examples the split holds (for throughput figures)."""

    def has_split(self, split: str) -> bool:
        """Whether the task holds this split (a chain reports test accuracy only when it does)."""

    def fingerprint(self) -> str:
        """A digest of the task's data (every split, in order): what a resumed run must share."""

    workloads: dict[str, str]
    """What `run` can time: name -> one line saying what it does. The first is the default and
    must be what the task's users run at inference (every speed figure names its workload)."""

    def run(self, model: nn.Module, batch: Batch, workload: str = "default") -> Any:
        """One inference of `workload` on `batch` (what latency measures; batch already on device)."""

    def flops(self, model: nn.Module, batch: Batch) -> int:
        """Analytic FLOPs of one teacher-forced forward pass on `batch` (the FLOPs-ideal figure)."""

    def query_masks(self, batch: Batch) -> dict[str, torch.Tensor]:
        """Per attention kind, (B, Lq) True at real query positions (for attention entropy
        and the attention-map loss: padding rows must not count)."""


def resolve_workload(task: Task, name: str) -> str:
    """The workload `name` stands for ("default": the task's first); ConfigError naming the
    task's workloads when it has no such one."""
    from raykd.errors import ConfigError

    names = list(task.workloads)
    if name == "default":
        return names[0]
    if name not in task.workloads:
        raise ConfigError(f"latency_workload {name!r} is not one of this task's workloads: default, {', '.join(names)}")
    return name

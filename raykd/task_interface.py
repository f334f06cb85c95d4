"""The small interface between a task and the method.

The method (importance, pruning, distillation, the chain) never learns what a math problem is:
it asks a `Task` for batches, for the model's outputs on a batch (logits over the task's output
space, which positions count, and the task's own loss), and for an evaluation. The MWP solver is
one `Task`; another task (classification, say) implements the same methods.

A `TaskPlugin` is what the sweep and the CLI need on top: how to train (or copy) a teacher from a
data spec and how to load a saved model as (model, `Task`, `ModelIO`). Built-in plug-ins are
named (`mwp`, `causal-lm`); a user's own is given by import path or by an installed entry point
(`raykd.task.registry`, docs/tasks.md) and must be marked as one (`task_plugin`), so that nothing
else (`os:system`, any callable that happens to be importable) can ever be reached by name.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, Protocol, TypeVar, runtime_checkable

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


def loss_units(task: Task, batch: Batch) -> float:
    """What the task loss of `batch` is a mean over (target tokens, say): a task may say so with
    an optional `loss_units(batch)` method; otherwise its loss is taken as a mean over rows.
    Data-parallel training weights each rank's share of a global batch by it, so that DDP's
    averaged gradient is the one a single worker computes on the whole batch."""
    own = getattr(task, "loss_units", None)
    return float(own(batch)) if callable(own) else float(batch_rows(batch))


def batch_rows(batch: Batch) -> int:
    """How many rows (examples) a batch holds: every tensor of a batch is batch-first."""
    return int(next(iter(batch.values())).shape[0])


class ModelIO(Protocol):
    """How a task's models are written to and read from a directory (every round of a chain)."""

    def save(self, model: nn.Module, directory: Path, extra: dict[str, Any]) -> None: ...

    def load(self, directory: Path) -> nn.Module: ...


@dataclass
class LoadedModel:
    """A saved model ready for the method: the model (eval mode), the task over the run's data
    built for it (its tokenizer, its vocabulary), and the IO every round of a chain saves with."""

    model: nn.Module
    task: Task
    io: ModelIO


@runtime_checkable
class TaskPlugin(Protocol):
    """A task as the sweep, `raykd chain` and `raykd teacher` see it (docs/tasks.md).

    Everything is a plain method of data: a plug-in holds its options (set when it is made) and
    nothing trained, so the sweep's driver and every Ray worker can make their own."""

    name: str
    workloads: dict[str, str]
    """What the task's `run` can time (as `Task.workloads`; known before any model is loaded)."""
    # optional: `reads_data_uris = True` says its data specs may be storage URIs (s3://...), so a
    # sweep on remote storage copies local data there for every node (raykd.distributed.data_staging)

    def teacher_settings(self, raw: Mapping[str, Any] | None) -> dict[str, Any]:
        """The sweep's `teacher:` mapping, validated, with defaults (None: the default teacher).
        `{path: DIR}` means a trained teacher to copy; anything else is for `train_teacher`.
        Raise `raykd.errors.ConfigError` naming the bad key."""

    def train_teacher(self, data: str, settings: Mapping[str, Any], out: Path, *, seed: int = 0,
                      progress: bool = False, log: Callable[[str], None] = print, device: str = "cpu") -> dict[str, Any]:
        """Train a teacher on `data`'s train split (early-stopping on valid) on `device` ("cpu",
        "cuda") and save it to `out`, a new directory that `load` reads. Returns a report holding at least "valid" (the task's
        metrics there)."""

    def load(self, directory: Path, data: str, *, seed: int = 0) -> LoadedModel:
        """The model saved in `directory` (by `train_teacher` or any round of a chain) and the
        task over `data` for it. Raise `raykd.errors.RaykdInputError` subclasses for bad input."""

    def data_fingerprint(self, data: str, *, seed: int = 0) -> str:
        """A digest of `data`'s splits (what a resumed sweep must read again), without a model."""


TASK_PLUGIN_MARK = "__raykd_task_plugin__"
"""The attribute `task_plugin` sets: what `raykd.task.registry` looks for before calling anything."""

F = TypeVar("F", bound=Callable[..., Any])


def task_plugin(factory: F) -> F:
    """Mark `factory` (a function that returns a `TaskPlugin`, or a plug-in class) as a raykd task
    plug-in. raykd calls a factory named by import path or entry point only when it carries this
    mark (or is a class that subclasses `TaskPlugin` explicitly): a task name in a space file or a
    sweep can then never reach `os.system`, `subprocess` or any other callable (docs/security.md).

        @task_plugin
        def make_task(**options): ...
    """
    setattr(factory, TASK_PLUGIN_MARK, True)
    return factory


def is_task_plugin(obj: Any) -> bool:
    """Whether `obj` is marked as a plug-in factory by its own definition (`@task_plugin`, not a
    mark inherited from a base class) or is a class listing `TaskPlugin` among its bases."""
    try:
        own = vars(obj)
    except TypeError:  # builtins and other objects without a __dict__
        return False
    if own.get(TASK_PLUGIN_MARK) is True:
        return True
    return isinstance(obj, type) and TaskPlugin in obj.__mro__[1:]


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

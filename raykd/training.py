"""One training loop for every model raykd trains: teachers and distilled students.

Pure PyTorch over the `Task` interface: AdamW with decoupled weight decay (none on biases and
norms), linear warm-up then linear decay, gradient clipping, evaluation on the validation split,
early stopping with patience, and the best weights restored at the end. The distillation chain
passes its own `loss_fn`; the teacher uses the task loss.

Every call builds a fresh optimiser and schedule, so a chain that calls `fit` once per round (and
once more for its final recovery phase) restarts the warm-up (`warmup_ratio` of the call's steps)
and the linear decay each time: the AdamW moments start from zero with the new, smaller model.
"""

from __future__ import annotations

import copy
import math
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Callable

import torch
from torch import nn

from raykd import fit_checkpoint, replicas
from raykd.errors import ConfigError
from raykd.fit_checkpoint import FitCheckpoint
from raykd.precision import PRECISIONS
from raykd.task_interface import Batch, Task, batch_rows, loss_units

LossFn = Callable[[nn.Module, Batch], tuple[torch.Tensor, dict[str, float]]]


@dataclass(frozen=True)
class FitConfig:
    """Optimisation budget and settings; validated on construction."""

    epochs: int = 30
    max_steps: int = 0  # 0: no cap beyond `epochs`
    batch_size: int = 32
    lr: float = 5e-5
    head_lr: float = 0.0  # learning rate for parameters outside `encoder.*`; 0: same as lr
    weight_decay: float = 0.01
    warmup_ratio: float = 0.1
    max_grad_norm: float = 1.0
    patience: int = 5
    eval_every: int = 0  # steps between evaluations; 0: once per epoch
    seed: int = 0
    time_budget_s: float = 0.0  # 0: unlimited
    mixed_precision: str = "auto"  # "auto": bf16 autocast on CUDA, fp32 elsewhere; "bf16"; "fp32"

    def __post_init__(self) -> None:
        checks = [
            (self.epochs >= 1, "epochs must be >= 1"),
            (self.max_steps >= 0, "max_steps must be >= 0"),
            (self.batch_size >= 1, "batch_size must be >= 1"),
            (self.lr > 0, "lr must be > 0"),
            (self.head_lr >= 0, "head_lr must be >= 0"),
            (self.weight_decay >= 0, "weight_decay must be >= 0"),
            (0 <= self.warmup_ratio < 1, "warmup_ratio must be in [0, 1)"),
            (self.max_grad_norm > 0, "max_grad_norm must be > 0"),
            (self.patience >= 1, "patience must be >= 1"),
            (self.eval_every >= 0, "eval_every must be >= 0"),
            (self.time_budget_s >= 0, "time_budget_s must be >= 0"),
            (self.mixed_precision in PRECISIONS, f"mixed_precision must be one of {PRECISIONS}, got {self.mixed_precision!r}"),
        ]
        for ok, message in checks:
            if not ok:
                raise ConfigError(message)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class FitResult:
    best_metrics: dict[str, Any]
    steps: int
    epochs: float
    wall_s: float
    train_examples: int
    stopped: str  # "early-stopping", "epochs", "max-steps", "time-budget"
    history: list[dict[str, Any]] = field(default_factory=list)

    @property
    def examples_per_s(self) -> float:
        return self.train_examples / self.wall_s if self.wall_s > 0 else 0.0


def task_loss(task: Task) -> LossFn:
    def loss(model: nn.Module, batch: Batch) -> tuple[torch.Tensor, dict[str, float]]:
        out = task.outputs(model, batch)
        return out.loss, {"task": float(out.loss.detach())}

    return loss


def make_optimizer(model: nn.Module, config: FitConfig) -> torch.optim.Optimizer:
    """AdamW; the encoder at `lr`, everything else at `head_lr`; no decay on biases and norms."""
    groups: dict[tuple[float, float], list[nn.Parameter]] = {}
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        lr = config.lr if name.startswith("encoder.") or not config.head_lr else config.head_lr
        decay = 0.0 if param.ndim < 2 else config.weight_decay
        groups.setdefault((lr, decay), []).append(param)
    return torch.optim.AdamW([{"params": p, "lr": lr, "weight_decay": wd} for (lr, wd), p in groups.items()])


def fit(
    model: nn.Module,
    task: Task,
    config: FitConfig,
    *,
    loss_fn: LossFn | None = None,
    progress: bool = True,
    description: str = "train",
    on_eval: Callable[[dict[str, Any]], None] | None = None,
    checkpoint: FitCheckpoint | None = None,
) -> FitResult:
    """Train `model` on the task's train split; early-stop on the valid split's primary metric.

    The recipe does not depend on the worker count. Under torch.distributed (a Ray Train worker
    group) the model is wrapped in DDP and every rank walks the same shuffled global batches of
    `batch_size` rows, training on its share of each (`raykd.replicas.shard_batch`), so one step
    is one global batch on any number of workers and the learning rate needs no rescaling. Rank 0
    alone evaluates the valid split and takes the early-stopping (and time-budget) decisions,
    which it broadcasts; at the end every rank gets rank 0's best weights.

    `checkpoint` (single process only): the whole training state is written there every
    `checkpoint.every` steps and after each evaluation, and a fit given an existing checkpoint of the
    same training resumes from it, to the same weights an uninterrupted fit reaches
    (`raykd.fit_checkpoint`). The caller removes it once the model is saved."""
    from tqdm.auto import tqdm

    loss_fn = loss_fn or task_loss(task)
    n_train = task.num_examples("train")
    if n_train == 0:
        raise ConfigError("the training split is empty")
    size, rank = replicas.world()
    main = rank == 0
    if n_train < size:
        raise ConfigError(f"the training split has {n_train} example(s), fewer than the {size} data-parallel workers")
    if checkpoint is not None and size > 1:
        raise ConfigError("a fit checkpoint is for single-process training: a Ray Train worker group checkpoints per round")
    # a last partial batch too small to give every rank a row is left out (world size 1: never)
    steps_per_epoch = n_train // config.batch_size + (1 if n_train % config.batch_size >= size else 0)
    total = steps_per_epoch * config.epochs
    if config.max_steps:
        total = min(total, config.max_steps)
    eval_every = config.eval_every or steps_per_epoch
    optimizer = make_optimizer(model, config)
    train_model = replicas.wrap_ddp(model) if size > 1 else model
    warmup = int(total * config.warmup_ratio)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: (s + 1) / max(1, warmup) if s < warmup else max(0.0, (total - s) / max(1, total - warmup))
    )
    autocast = _autocast(model, config.mixed_precision)
    device = next(model.parameters()).device  # batches move here once; loss terms build on it (masks too)
    torch.manual_seed(config.seed)
    best_value, best_metrics, best_state = -math.inf, {}, None
    stale, step, seen, stopped = 0, 0, 0, "epochs"
    history: list[dict[str, Any]] = []
    epoch, skip, before = 0, 0, 0.0
    fp = fit_checkpoint.fingerprint(config.to_dict(), model, n_train, description) if checkpoint else {}
    if checkpoint is not None and checkpoint.exists():
        loop, best_state = fit_checkpoint.load(checkpoint, model=model, optimizer=optimizer, scheduler=scheduler, fp=fp)
        step, epoch, skip, seen, stale = loop.step, loop.epoch, loop.taken, loop.seen, loop.stale
        best_value, best_metrics, history, before = loop.best_value, loop.best_metrics or {}, loop.history or [], loop.elapsed_s
        stopped = loop.stopped
    start = time.perf_counter() - before

    def save_checkpoint(taken: int) -> None:
        fit_checkpoint.save(checkpoint, model=model, optimizer=optimizer, scheduler=scheduler, best_state=best_state, fp=fp,
                            loop=fit_checkpoint.LoopState(step, epoch, taken, seen, stale, best_value, best_metrics, history,
                                                          time.perf_counter() - start, stopped))

    bar = tqdm(total=total, initial=step, desc=description, disable=not (progress and main), leave=False)
    model.train()
    while step < total and stopped == "epochs":
        for index, batch in enumerate(task.batches("train", config.batch_size, shuffle=True, seed=config.seed + epoch)):
            if index >= steps_per_epoch:
                break
            if index < skip:  # resumed mid-epoch: these batches were trained on before the checkpoint
                continue
            rows = batch_rows(batch)
            mine = {k: v.to(device) for k, v in replicas.shard_batch(batch, rank, size).items()}
            with autocast:
                loss, stats = loss_fn(train_model, mine)
            optimizer.zero_grad(set_to_none=True)
            if size > 1:  # DDP averages the ranks' gradients: weighted by each rank's share of what the
                # loss is a mean over, that average is the gradient one worker takes on the whole batch
                units = loss_units(task, mine)
                (loss * (units * size / replicas.total(units))).backward()
            else:
                loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), config.max_grad_norm)
            optimizer.step()
            scheduler.step()
            step += 1
            seen += rows
            bar.update(1)
            bar.set_postfix(loss=f"{float(loss.detach()):.3f}", best=f"{max(best_value, 0):.3f}")
            if step % eval_every == 0 or step == total:
                if main:
                    metrics = task.evaluate(model, "valid")
                    value = float(metrics[task.primary_metric])
                    record = {"step": step, "epoch": step / steps_per_epoch, "loss": float(loss.detach()), **stats, **_flat(metrics)}
                    history.append(record)
                    if on_eval:
                        on_eval(record)
                    if value > best_value:
                        best_value, best_metrics, stale = value, metrics, 0
                        best_state = copy.deepcopy({k: v.detach().cpu() for k, v in model.state_dict().items()})
                    else:
                        stale += 1
                        if stale >= config.patience:
                            stopped = "early-stopping"
                stopped = replicas.from_main(stopped)
                model.train()
                if checkpoint is not None:
                    save_checkpoint(index + 1)
            elif checkpoint is not None and step % checkpoint.every == 0:
                save_checkpoint(index + 1)
            if config.time_budget_s and stopped == "epochs":
                if replicas.from_main(time.perf_counter() - start > config.time_budget_s):
                    stopped = "time-budget"
            if stopped != "epochs" or step >= total:
                break
        epoch, skip = epoch + 1, 0
    if stopped == "epochs" and config.max_steps and step >= config.max_steps:
        stopped = "max-steps"
    bar.close()
    if main:
        if best_state is not None:
            model.load_state_dict(best_state)
        else:  # stopped by the time budget before the first evaluation
            best_metrics = task.evaluate(model, "valid")
    replicas.broadcast_weights(model)
    best_metrics = replicas.from_main(best_metrics)
    model.eval()
    return FitResult(best_metrics, step, step / steps_per_epoch, time.perf_counter() - start, seen, stopped, history)


def _autocast(model: nn.Module, precision: str) -> Any:
    """bf16 autocast (fp32 master weights and optimiser state) where asked: "auto" means on CUDA
    devices that support bf16; "fp32" never; "bf16" on any device (CPU autocast included)."""
    import contextlib

    device = next(model.parameters()).device
    on = precision == "bf16" or (precision == "auto" and device.type == "cuda" and torch.cuda.is_bf16_supported())
    return torch.autocast(device.type, dtype=torch.bfloat16) if on else contextlib.nullcontext()


def _flat(metrics: dict[str, Any]) -> dict[str, Any]:
    """Scalar metrics only (for history rows)."""
    return {k: v for k, v in metrics.items() if isinstance(v, (int, float))}

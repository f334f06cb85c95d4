"""Resumable training: `raykd.training.fit`'s whole state on disk every N optimiser steps.

Why. One `fit` can outlast a process: fine-tuning SmolLM2-135M on ~900 reasoning traces takes
hours on 2 CPU cores, and a session, a spot node or a laptop lid ends it. With a checkpoint a
killed fit resumes at its last saved step and finishes with exactly the weights an uninterrupted
one gives (same machine): the model, the AdamW moments, the learning-rate schedule's position,
the torch RNG (dropout), the data order (the epoch's shuffle seed and how many of its batches were
taken), the early-stopping state (best metrics, best weights, patience left) and the history.

Tensors are stored with safetensors (never pickle); everything else as JSON. A checkpoint is
written into a fresh directory and renamed over the old one, so a kill mid-write leaves the
previous checkpoint whole. A checkpoint made by another training (other settings, data size or
model shape) is refused in one line rather than resumed into a different run.

Single-process training only (a Ray Train worker group checkpoints per chain round instead).
"""

from __future__ import annotations

import hashlib
import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from raykd.errors import ConfigError

STATE_FILE = "state.json"
FORMAT = 1


@dataclass(frozen=True)
class FitCheckpoint:
    """Where `fit` keeps its checkpoint, and how often (optimiser steps) it writes one. It is
    also written after every evaluation. The caller removes the directory once the trained model
    is safely saved (`remove`)."""

    directory: Path
    every: int = 50

    def __post_init__(self) -> None:
        object.__setattr__(self, "directory", Path(self.directory))
        if not isinstance(self.every, int) or self.every < 1:
            raise ConfigError(f"a fit checkpoint's every must be an integer >= 1 (optimiser steps), got {self.every!r}")

    def exists(self) -> bool:
        return (self.directory / STATE_FILE).is_file()

    def remove(self) -> None:
        shutil.rmtree(self.directory, ignore_errors=True)
        for left in self.directory.parent.glob(f".{self.directory.name}.*.tmp"):
            shutil.rmtree(left, ignore_errors=True)


@dataclass
class LoopState:
    """The loop's own counters and early-stopping state (what is not a tensor of the model or
    optimiser)."""

    step: int = 0
    epoch: int = 0
    taken: int = 0  # batches of `epoch` already trained on
    seen: int = 0
    stale: int = 0
    best_value: float = float("-inf")
    best_metrics: dict[str, Any] | None = None
    history: list[dict[str, Any]] | None = None
    elapsed_s: float = 0.0
    stopped: str = "epochs"  # set by an evaluation that stopped early: a resumed fit then trains no further


def fingerprint(config: dict[str, Any], model: nn.Module, n_train: int, description: str) -> dict[str, Any]:
    """What a checkpoint must match to be resumed: the fit settings, the training split's size,
    the run's name and the model's parameter names and shapes (a digest)."""
    shapes = hashlib.sha256(json.dumps([[k, list(v.shape)] for k, v in model.state_dict().items()]).encode()).hexdigest()
    return {"config": config, "n_train": n_train, "description": description, "parameters": shapes[:16]}


def _tensors(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Own, contiguous CPU copies: safetensors refuses tensors that share memory (tied embeddings)."""
    return {k: v.detach().to("cpu", copy=True).contiguous() for k, v in state.items()}


def save(checkpoint: FitCheckpoint, *, model: nn.Module, optimizer: torch.optim.Optimizer, scheduler: Any,
         loop: LoopState, best_state: dict[str, torch.Tensor] | None, fp: dict[str, Any]) -> None:
    """Write the whole training state to `checkpoint.directory` (atomically: all or the old one)."""
    target = checkpoint.directory
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.parent / f".{target.name}.{loop.step}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    save_file(_tensors(model.state_dict()), str(tmp / "model.safetensors"))
    if best_state is not None:
        save_file(_tensors(best_state), str(tmp / "best.safetensors"))
    opt = optimizer.state_dict()
    moments = {f"{index}.{name}": value for index, values in opt["state"].items() for name, value in values.items()
               if isinstance(value, torch.Tensor)}
    save_file(_tensors(moments), str(tmp / "optimizer.safetensors"))
    plain = {str(index): {name: value for name, value in values.items() if not isinstance(value, torch.Tensor)}
             for index, values in opt["state"].items()}
    rng = {"cpu": torch.get_rng_state()}
    if torch.cuda.is_available():
        rng.update({f"cuda.{i}": s for i, s in enumerate(torch.cuda.get_rng_state_all())})
    save_file(_tensors(rng), str(tmp / "rng.safetensors"))
    sched = {k: v for k, v in scheduler.state_dict().items() if k != "lr_lambdas"}
    state = {"format": FORMAT, "fingerprint": fp, "loop": loop.__dict__, "has_best": best_state is not None,
             "param_groups": opt["param_groups"], "optimizer_plain": plain, "scheduler": sched}
    (tmp / STATE_FILE).write_text(json.dumps(state, default=_json_default))
    old = target.parent / f".{target.name}.old.tmp"
    shutil.rmtree(old, ignore_errors=True)
    if target.exists():
        target.rename(old)
    tmp.rename(target)
    shutil.rmtree(old, ignore_errors=True)


def _json_default(value: Any) -> Any:
    if isinstance(value, torch.Tensor):
        return value.item()
    raise TypeError(f"cannot store {type(value).__name__} in a fit checkpoint")


def load(checkpoint: FitCheckpoint, *, model: nn.Module, optimizer: torch.optim.Optimizer, scheduler: Any,
         fp: dict[str, Any]) -> tuple[LoopState, dict[str, torch.Tensor] | None]:
    """Restore a checkpoint written by `save` into a freshly built model, optimiser and schedule;
    ConfigError (one line) when it belongs to another training or is damaged."""
    where = checkpoint.directory
    try:
        state = json.loads((where / STATE_FILE).read_text())
    except (OSError, ValueError) as exc:
        raise ConfigError(f"the fit checkpoint at {where} is damaged ({exc.__class__.__name__}): delete it to start over") from None
    if state.get("format") != FORMAT or state.get("fingerprint") != json.loads(json.dumps(fp, default=_json_default)):
        raise ConfigError(f"the fit checkpoint at {where} was written by another training (other settings, data or "
                          f"model): delete it to start over, or resume with the settings it was made with")
    try:
        model.load_state_dict(load_file(str(where / "model.safetensors")))
        moments = load_file(str(where / "optimizer.safetensors"))
        best = load_file(str(where / "best.safetensors")) if state["has_best"] else None
        rng = load_file(str(where / "rng.safetensors"))
    except (OSError, RuntimeError, KeyError) as exc:
        raise ConfigError(f"the fit checkpoint at {where} is damaged ({exc.__class__.__name__}): delete it to start over") from None
    per_param: dict[int, dict[str, Any]] = {}
    for key, value in moments.items():
        index, name = key.split(".", 1)
        per_param.setdefault(int(index), {})[name] = value
    for index, values in state["optimizer_plain"].items():
        per_param.setdefault(int(index), {}).update(values)
    optimizer.load_state_dict({"state": per_param, "param_groups": state["param_groups"]})
    scheduler.load_state_dict({**state["scheduler"], "lr_lambdas": [None] * len(optimizer.param_groups)})
    torch.set_rng_state(rng["cpu"])
    cuda = [rng[k] for k in sorted((k for k in rng if k.startswith("cuda.")), key=lambda k: int(k.split(".")[1]))]
    if cuda and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(cuda)
    return LoopState(**state["loop"]), best

"""Build and train a teacher solver: the starting point of every prune -> distill chain."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import torch

from raykd.data.problem import Problem
from raykd.task.encoders import (
    TINY_PRESET,
    build_tiny_encoder,
    load_pretrained_encoder,
    train_tiny_tokenizer,
)
from raykd.task.io import save_solver
from raykd.task.model import DecoderConfig, SolverModel
from raykd.task.mwp import MWPTask
from raykd.task.vocab import OutputVocab
from raykd.training import FitConfig, FitResult, fit

TINY_DECODER = {"num_layers": 2, "num_heads": 4, "dropout": 0.1}
PRETRAINED_DECODER = {"num_layers": 2, "num_heads": 8, "dropout": 0.1}


@dataclass(frozen=True)
class SolverSpec:
    """Which encoder to start from: a pretrained one by name/path, or the tiny preset."""

    encoder: str | None = None  # hub name, local path or packaged short name ("minilm")
    preset: str | None = None  # "tiny"
    decoder_layers: int = 0  # 0: preset default
    decoder_heads: int = 0
    encoder_layers: int = 0  # tiny preset only; 0: preset default
    encoder_heads: int = 0  # tiny preset only; must divide the preset's hidden size

    def __post_init__(self) -> None:
        if (self.encoder is None) == (self.preset is None):
            raise ValueError("give exactly one of encoder or preset")
        if self.encoder is not None and (self.encoder_layers or self.encoder_heads):
            raise ValueError("encoder_layers / encoder_heads shape the tiny preset only, not a pretrained encoder")
        if self.encoder_heads and TINY_PRESET["hidden_size"] % self.encoder_heads:
            raise ValueError(f"encoder_heads must divide the tiny hidden size {TINY_PRESET['hidden_size']}, got {self.encoder_heads}")
        if self.preset is not None and self.preset != "tiny":
            raise ValueError(f"unknown preset {self.preset!r} (known: tiny)")


def build_solver_from_spec(spec: SolverSpec, train_problems: Sequence[Problem], seed: int = 0) -> tuple[SolverModel, Any]:
    """A fresh (untrained) solver and its tokenizer; the vocabulary comes from the train split."""
    torch.manual_seed(seed)
    if spec.preset == "tiny":
        tokenizer = train_tiny_tokenizer(p.text for p in train_problems)
        shape = {"num_hidden_layers": spec.encoder_layers, "num_attention_heads": spec.encoder_heads}
        encoder = build_tiny_encoder(tokenizer, **{k: v for k, v in shape.items() if v})
        dec = dict(TINY_DECODER)
    else:
        encoder, tokenizer = load_pretrained_encoder(spec.encoder or "")
        dec = dict(PRETRAINED_DECODER)
    if spec.decoder_layers:
        dec["num_layers"] = spec.decoder_layers
    if spec.decoder_heads:
        dec["num_heads"] = spec.decoder_heads
    vocab = OutputVocab.from_problems(train_problems)
    decoder = DecoderConfig(d_model=int(encoder.config.hidden_size), **dec)
    return SolverModel(encoder, vocab, decoder), tokenizer


@dataclass
class TeacherReport:
    fit: FitResult
    valid: dict[str, Any]
    test: dict[str, Any] | None
    skipped_train: dict[str, int]
    device: str
    threads: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "valid": self.valid,
            "test": self.test,
            "steps": self.fit.steps,
            "epochs": round(self.fit.epochs, 2),
            "stopped": self.fit.stopped,
            "wall_s": round(self.fit.wall_s, 1),
            "examples_per_s": round(self.fit.examples_per_s, 1),
            "skipped_train": self.skipped_train,
            "device": self.device,
            "threads": self.threads,
        }


def train_teacher(
    splits: dict[str, Sequence[Problem]],
    spec: SolverSpec,
    fit_config: FitConfig,
    out: str | Path,
    *,
    device: str = "cpu",
    beam_size: int = 1,
    progress: bool = True,
    extra_config: dict[str, Any] | None = None,
    replace: bool = False,
) -> TeacherReport:
    """Train a solver on splits["train"], early-stop on "valid", save it to `out` (replacing a
    raykd model there only with `replace`; see `save_solver`)."""
    model, tokenizer = build_solver_from_spec(spec, splits["train"], seed=fit_config.seed)
    model.to(device)
    task = MWPTask(tokenizer, model.vocab, splits, beam_size=beam_size)
    result = fit(model, task, fit_config, progress=progress, description="teacher")
    valid = result.best_metrics
    test = task.evaluate(model, "test") if splits.get("test") else None
    save_solver(model.cpu(), tokenizer, out, extra={"training": {"fit": fit_config.to_dict(), "spec": spec.__dict__, **(extra_config or {})}},
                replace=replace)
    return TeacherReport(result, valid, test, dict(task.skipped("train")), device, torch.get_num_threads())

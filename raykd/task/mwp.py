"""The math-word-problem task: problems + tokenizer + output vocabulary behind `Task`."""

from __future__ import annotations

import dataclasses
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Iterator, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from raykd.data import prediction_correct
from raykd.data.augment import augment_problems
from raykd.data.problem import COMPLEXITY_LEVELS, Problem
from raykd.measure import flops
from raykd.resume import problems_digest
from raykd.stats import accuracy_interval, pack_correct
from raykd.task.decoding import decode_batch
from raykd.task.features import FeatureSet, build_features, iterate_batches
from raykd.task.vocab import OutputVocab
from raykd.task_interface import Batch, TaskOutput, resolve_workload

WORKLOADS: dict[str, str] = {
    "decode": ("encode the batch, then constrained greedy decoding with a KV cache for as many steps as "
               "the batch's longest gold expression, no early stop (what `raykd eval`/`solve` do, at a "
               "length fixed by the batch so a shape's cost does not depend on its predictions)"),
    "forward": "one teacher-forced forward pass (encoder + decoder over the gold prefix), as training runs it",
}
"""The MWP task's timed workloads; "decode" is the default."""


@dataclass
class Prediction:
    problem: Problem
    tokens: list[str]
    correct: bool

    @property
    def equation_correct(self) -> bool:
        return tuple(self.tokens) == tuple(self.problem.equation)


@dataclass
class MWPTask:
    """Splits of problems, tokenised once; training splits drop what the solver cannot learn."""

    tokenizer: Any
    vocab: OutputVocab
    splits: dict[str, Sequence[Problem]]
    max_input_len: int = 256
    max_output_len: int = 40
    eval_batch_size: int = 64
    beam_size: int = 1
    primary_metric: str = "accuracy"
    workloads: dict[str, str] = field(default_factory=lambda: dict(WORKLOADS))
    _features: dict[tuple[str, bool], FeatureSet] = field(default_factory=dict, repr=False)
    augmentation: dict[str, Any] | None = None  # set on a task `augmented` made: what was added, what fell short

    def features(self, split: str, *, for_training: bool) -> FeatureSet:
        key = (split, for_training)
        if key not in self._features:
            if split not in self.splits:
                raise KeyError(f"task has no split {split!r} (has {sorted(self.splits)})")
            self._features[key] = build_features(
                self.splits[split], self.tokenizer, self.vocab,
                max_input_len=self.max_input_len, max_output_len=self.max_output_len, for_training=for_training,
            )
        return self._features[key]

    def augmented(self, k: int, seed: int) -> MWPTask:
        """This task with `k` number-substituted variants of each "train" problem added to "train"
        (`raykd.data.augment`), every other split, the tokenizer and the vocabulary unchanged. Variants
        come only from "train", so a held-out problem never leaks into training, and none may have the
        text of a problem in another split. Variants the solver cannot learn are skipped like any
        training problem (`skipped("train")`)."""
        originals = list(self.splits.get("train", []))
        others = {p.text for name, problems in self.splits.items() if name != "train" for p in problems}
        problems, short = augment_problems(originals, k, seed, avoid_texts=others)
        info = {"k": k, "seed": seed, "originals": len(originals), "variants": len(problems) - len(originals),
                "short": dict(sorted(short.items()))}
        kept = {key: feats for key, feats in self._features.items() if key[0] != "train"}  # the same problems
        return dataclasses.replace(self, splits={**self.splits, "train": problems}, _features=kept, augmentation=info)

    def skipped(self, split: str) -> Counter:
        """Problems of `split` left out of training, by reason."""
        return self.features(split, for_training=True).skipped

    def has_split(self, split: str) -> bool:
        return bool(self.splits.get(split))  # a split with no problems is no split to train or score on

    def fingerprint(self) -> str:
        return problems_digest(self.splits)

    def num_examples(self, split: str) -> int:
        return len(self.features(split, for_training=True))

    def batches(self, split: str, batch_size: int, *, shuffle: bool = False, seed: int = 0) -> Iterator[Batch]:
        feats = self.features(split, for_training=True)
        return iterate_batches(feats, self.vocab, self.tokenizer.pad_token_id, batch_size, shuffle=shuffle, seed=seed)

    def outputs(self, model: nn.Module, batch: Batch) -> TaskOutput:
        batch = _to_device(batch, _device_of(model))
        logits = model(**batch)
        mask = batch["target"] != self.vocab.pad_id
        loss = F.cross_entropy(logits[mask], batch["target"][mask])
        return TaskOutput(logits=logits, mask=mask, loss=loss)

    def loss_units(self, batch: Batch) -> float:
        """The task loss is a mean over target tokens (raykd.task_interface.loss_units)."""
        return float((batch["target"] != self.vocab.pad_id).sum())

    def run(self, model: nn.Module, batch: Batch, workload: str = "default") -> Any:
        name = resolve_workload(self, workload)
        if name == "forward":
            return model(**batch)
        return decode_batch(model, batch, batch["decoder_input"].shape[1], stop_when_done=False)

    def flops(self, model: nn.Module, batch: Batch) -> int:
        b, seq_len = batch["input_ids"].shape
        decoder_len = batch["decoder_input"].shape[1]
        report = flops(model, b, seq_len, decoder_len=decoder_len,
                       linear_tokens=lambda name, _lin: model.linear_tokens(name, decoder_len))
        return report.total

    def query_masks(self, batch: Batch) -> dict[str, torch.Tensor]:
        decoder_rows = batch["target"] != self.vocab.pad_id
        return {"encoder_self": batch["attention_mask"].bool(), "decoder_self": decoder_rows, "decoder_cross": decoder_rows}

    def predict(self, model: nn.Module, split: str, *, beam_size: int | None = None) -> list[Prediction]:
        feats = self.features(split, for_training=False)
        device = _device_of(model)
        was_training = model.training
        model.eval()
        preds: list[tuple[int, Prediction]] = []
        with torch.inference_mode():
            for batch in iterate_batches(feats, self.vocab, self.tokenizer.pad_token_id, self.eval_batch_size):
                batch = _to_device(batch, device)
                ids = decode_batch(model, batch, self.max_output_len, beam_size or self.beam_size)
                for index, seq in zip(batch["problem_index"].tolist(), ids):
                    problem = feats.problems[index]
                    tokens = self.vocab.decode(seq)
                    preds.append((index, Prediction(problem, tokens, prediction_correct(problem, tokens))))
        model.train(was_training)
        return [p for _, p in sorted(preds, key=lambda ip: ip[0])]  # the split's problem order: pairable bits

    def evaluate(self, model: nn.Module, split: str, *, beam_size: int | None = None) -> dict[str, Any]:
        return summarize(self.predict(model, split, beam_size=beam_size))


def summarize(preds: Sequence[Prediction]) -> dict[str, Any]:
    """accuracy with its n and 95% Wilson interval, equation_accuracy, the same per complexity
    level, and `correct_bits`: per-problem correctness in the split's order (for paired tests)."""
    by: dict[str, dict[str, Any]] = {}
    for level in COMPLEXITY_LEVELS:
        by[level] = accuracy_interval([p.correct for p in preds if p.problem.complexity == level])
    return {
        **accuracy_interval([p.correct for p in preds]),
        "equation_accuracy": _mean(p.equation_correct for p in preds),
        "by_complexity": by,
        "correct_bits": pack_correct([p.correct for p in preds]),
    }


def _mean(flags: Any) -> float:
    flags = list(flags)
    return float(sum(flags)) / len(flags) if flags else 0.0


def _device_of(model: nn.Module) -> torch.device:
    return next(model.parameters()).device


def _to_device(batch: Batch, device: torch.device) -> Batch:
    return {k: v.to(device) for k, v in batch.items()}

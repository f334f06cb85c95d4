"""A complete raykd task plug-in that has nothing to do with math: sequence classification.

Each example is a sequence of token ids; the label is 1 when token 3 occurs more often than token
4. The data spec is `majority:N` (N synthetic examples, split 80/10/10, seeded) or a directory of
`train.jsonl`, `valid.jsonl` and optionally `test.jsonl`, one `{"tokens": [ids], "label": 0|1}`
per line. The model is a small BERT (`BertForSequenceClassification`), so heads, FFN channels and
layers are all prunable by raykd's BERT adapters; the metric is accuracy with its interval and
per-example bits (the chain's paired tests need them).

Use it from a sweep (the module must be importable: here, from this directory)::

    PYTHONPATH=examples raykd sweep --space examples/majority-sweep.yaml

with `task: majority_task:make_task` in the space file. See docs/tasks.md, which walks through
this file.
"""

from __future__ import annotations

import hashlib
import json
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping

import torch
import torch.nn.functional as F
from torch import nn

from raykd.errors import ConfigError, DataError
from raykd.stats import accuracy_interval, pack_correct
from raykd.task.hf_io import HFModelIO
from raykd.task_interface import Batch, LoadedModel, TaskOutput, resolve_workload, task_plugin

PAD, CLS, VOCAB, LENGTH = 0, 1, 16, 16
WORKLOADS = {"classify": "one forward pass over a batch of sequences, as inference runs it"}


# --- data ----------------------------------------------------------------------------------------
Example = tuple[list[int], int]


def synthetic(n: int, seed: int = 0) -> list[Example]:
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        tokens = [rng.choice([3, 4, 3, 4] + list(range(5, VOCAB))) for _ in range(LENGTH)]
        if tokens.count(3) == tokens.count(4):
            tokens[0] = 3
        out.append((tokens, int(tokens.count(3) > tokens.count(4))))
    return out


def read_jsonl(path: Path) -> list[Example]:
    """Rows of one file; DataError naming the file and line of the first bad row."""
    rows = []
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            tokens, label = row["tokens"], row["label"]
            ok = (isinstance(tokens, list) and tokens and all(isinstance(t, int) and 2 <= t < VOCAB for t in tokens)
                  and label in (0, 1))
        except (ValueError, TypeError, KeyError):
            ok = False
        if not ok:
            raise DataError(f"{path}:{number}: expected {{\"tokens\": [ids 2..{VOCAB - 1}], \"label\": 0 or 1}}")
        rows.append((tokens[:LENGTH], int(label)))
    return rows


def load_data(spec: str, seed: int = 0) -> dict[str, list[Example]]:
    if spec.startswith("majority:"):
        try:
            n = int(spec.split(":", 1)[1])
        except ValueError:
            raise DataError(f"data {spec!r}: majority:N needs an integer N") from None
        rows = synthetic(n, seed)
        a, b = int(0.8 * n), int(0.9 * n)
        return {"train": rows[:a], "valid": rows[a:b], "test": rows[b:]}
    root = Path(spec).expanduser()
    if not root.is_dir():
        raise DataError(f"data {spec!r} is neither majority:N nor a directory of train/valid/test.jsonl")
    return {s: read_jsonl(root / f"{s}.jsonl") for s in ("train", "valid", "test") if (root / f"{s}.jsonl").is_file()}


# --- the Task: what the method sees --------------------------------------------------------------
@dataclass
class MajorityTask:
    splits: dict[str, list[Example]]
    eval_batch_size: int = 64
    primary_metric: str = "accuracy"
    workloads: dict[str, str] = field(default_factory=lambda: dict(WORKLOADS))

    def batches(self, split: str, batch_size: int, *, shuffle: bool = False, seed: int = 0) -> Iterator[Batch]:
        rows = self.splits[split]
        order = list(range(len(rows)))
        if shuffle:
            random.Random(seed).shuffle(order)
        for start in range(0, len(order), batch_size):
            chunk = [rows[i] for i in order[start:start + batch_size]]
            width = 1 + max(len(t) for t, _ in chunk)
            ids = torch.full((len(chunk), width), PAD, dtype=torch.long)
            for i, (tokens, _) in enumerate(chunk):
                ids[i, : 1 + len(tokens)] = torch.tensor([CLS, *tokens])
            yield {"input_ids": ids, "attention_mask": (ids != PAD).long(),
                   "labels": torch.tensor([label for _, label in chunk])}

    def outputs(self, model: nn.Module, batch: Batch) -> TaskOutput:
        device = next(model.parameters()).device
        logits = model(input_ids=batch["input_ids"].to(device), attention_mask=batch["attention_mask"].to(device)).logits
        loss = F.cross_entropy(logits, batch["labels"].to(device))
        # one "position" per example: the distillation KL compares the class distributions
        return TaskOutput(logits=logits[:, None, :], mask=torch.ones_like(logits[:, :1], dtype=torch.bool), loss=loss)

    def evaluate(self, model: nn.Module, split: str) -> dict[str, Any]:
        was_training = model.training
        model.eval()
        flags: list[bool] = []
        with torch.inference_mode():
            for batch in self.batches(split, self.eval_batch_size):
                predicted = self.run(model, {k: v.to(next(model.parameters()).device) for k, v in batch.items()})
                flags += (predicted.cpu() == batch["labels"]).tolist()
        model.train(was_training)
        return {**accuracy_interval(flags), "correct_bits": pack_correct(flags)}

    def num_examples(self, split: str) -> int:
        return len(self.splits.get(split, ()))

    def has_split(self, split: str) -> bool:
        return bool(self.splits.get(split))

    def fingerprint(self) -> str:
        return hashlib.sha256(json.dumps(self.splits, sort_keys=True).encode()).hexdigest()

    def run(self, model: nn.Module, batch: Batch, workload: str = "default") -> Any:
        resolve_workload(self, workload)  # one workload: "classify"
        return model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits.argmax(-1)

    def flops(self, model: nn.Module, batch: Batch) -> int:
        tokens = int(batch["attention_mask"].sum())
        linear = sum(m.weight.numel() for m in model.modules() if isinstance(m, nn.Linear))
        return 2 * linear * tokens

    def query_masks(self, batch: Batch) -> dict[str, torch.Tensor]:
        return {"encoder_self": batch["attention_mask"].bool()}


# --- the plug-in: what the sweep and the CLI see -------------------------------------------------
TEACHER_KEYS = ("path", "epochs", "lr", "batch_size", "patience", "hidden_size", "layers", "heads")


@dataclass
class MajorityPlugin:
    eval_batch_size: int = 64
    name: str = "majority"
    workloads: dict[str, str] = field(default_factory=lambda: dict(WORKLOADS))

    def teacher_settings(self, raw: Mapping[str, Any] | None) -> dict[str, Any]:
        raw = dict(raw or {})
        unknown = set(raw) - set(TEACHER_KEYS)
        if unknown:
            raise ConfigError(f"teacher has unknown key(s) {', '.join(sorted(unknown))} (known: {', '.join(TEACHER_KEYS)})")
        settings = {"epochs": 8, "lr": 2e-3, "batch_size": 32, "patience": 3, "hidden_size": 64, "layers": 2, "heads": 4, **raw}
        if settings["hidden_size"] % settings["heads"]:
            raise ConfigError(f"teacher.heads ({settings['heads']}) must divide teacher.hidden_size ({settings['hidden_size']})")
        return settings

    def train_teacher(self, data: str, settings: Mapping[str, Any], out: Path, *, seed: int = 0,
                      progress: bool = False, log: Callable[[str], None] = print, device: str = "cpu") -> dict[str, Any]:
        from transformers import BertConfig, BertForSequenceClassification

        from raykd.training import FitConfig, fit

        settings = self.teacher_settings(settings)
        task = MajorityTask(load_data(data, seed), self.eval_batch_size)
        torch.manual_seed(seed)
        model = BertForSequenceClassification(BertConfig(
            vocab_size=VOCAB, hidden_size=settings["hidden_size"], num_hidden_layers=settings["layers"],
            num_attention_heads=settings["heads"], intermediate_size=4 * settings["hidden_size"],
            max_position_embeddings=LENGTH + 2, num_labels=2, pad_token_id=PAD)).to(device)
        result = fit(model, task, FitConfig(epochs=settings["epochs"], lr=settings["lr"], batch_size=settings["batch_size"],
                                            patience=settings["patience"], seed=seed), progress=progress)
        HFModelIO(model.config.to_dict(), auto_class="AutoModelForSequenceClassification").save(model.cpu(), Path(out), {})
        return {"valid": result.best_metrics}

    def load(self, directory: Path, data: str, *, seed: int = 0) -> LoadedModel:
        model, _tokenizer, io = HFModelIO.open(directory, tokenizer=False)
        return LoadedModel(model, MajorityTask(load_data(data, seed), self.eval_batch_size), io)

    def data_fingerprint(self, data: str, *, seed: int = 0) -> str:
        return MajorityTask(load_data(data, seed)).fingerprint()


@task_plugin  # raykd calls only a factory marked as a plug-in (docs/security.md)
def make_task(**options: Any) -> MajorityPlugin:
    """The factory `task: majority_task:make_task` names; options come from the sweep's task mapping."""
    return MajorityPlugin(**options)

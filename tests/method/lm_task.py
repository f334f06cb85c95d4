"""A small causal-LM task for the method's tests: continue a repeating token pattern.

Each sequence is a random period-3 pattern of tokens repeated to length 12; the model must predict
every next token after the first period (which it can, by copying from 3 positions back). It
implements raykd's `Task` over a Hugging Face causal LM: next-token logits over the vocabulary,
the causal-LM loss, exact-continuation accuracy per sequence (with n, interval and per-sequence
bits), and `decoder_self` query masks from the attention mask.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterator

import torch
import torch.nn.functional as F
from torch import nn

from raykd.stats import accuracy_interval, pack_correct
from raykd.task_interface import Batch, TaskOutput

PERIOD, LENGTH = 3, 12


def _split(n: int, vocab: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    patterns = torch.randint(1, vocab, (n, PERIOD), generator=g)
    return patterns.repeat(1, LENGTH // PERIOD)


@dataclass
class RepeatLMTask:
    vocab_size: int
    sizes: dict[str, int] = field(default_factory=lambda: {"train": 256, "valid": 32, "test": 32})
    primary_metric: str = "accuracy"
    workloads: dict[str, str] = field(default_factory=lambda: {"generate": "greedy generation of one period"})

    def __post_init__(self) -> None:
        self.data = {s: _split(n, self.vocab_size, seed=i) for i, (s, n) in enumerate(sorted(self.sizes.items()))}
        self.data["calib"] = self.data["train"]

    def batches(self, split: str, batch_size: int, *, shuffle: bool = False, seed: int = 0) -> Iterator[Batch]:
        ids = self.data[split]
        order = torch.randperm(len(ids), generator=torch.Generator().manual_seed(seed)) if shuffle else torch.arange(len(ids))
        for start in range(0, len(ids), batch_size):
            chunk = ids[order[start:start + batch_size]]
            yield {"input_ids": chunk, "attention_mask": torch.ones_like(chunk)}

    def outputs(self, model: nn.Module, batch: Batch) -> TaskOutput:
        logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits[:, :-1]
        target = batch["input_ids"][:, 1:]
        mask = torch.zeros_like(target, dtype=torch.bool)
        mask[:, PERIOD - 1:] = True  # predictable positions: after the first period
        return TaskOutput(logits=logits, mask=mask, loss=F.cross_entropy(logits[mask], target[mask]))

    def evaluate(self, model: nn.Module, split: str) -> dict[str, Any]:
        model.eval()
        flags: list[bool] = []
        with torch.no_grad():
            for batch in self.batches(split, 64):
                out = self.outputs(model, batch)
                right = (out.logits.argmax(-1) == batch["input_ids"][:, 1:]) | ~out.mask
                flags += right.all(-1).tolist()
        return {**accuracy_interval(flags), "correct_bits": pack_correct(flags)}

    def num_examples(self, split: str) -> int:
        return len(self.data[split])

    def has_split(self, split: str) -> bool:
        return split in self.data

    def fingerprint(self) -> str:
        return str(hash(tuple(self.data["train"].flatten().tolist())))

    def run(self, model: nn.Module, batch: Batch, workload: str = "default") -> Any:
        return model.generate(**batch, max_new_tokens=PERIOD, do_sample=False)

    def flops(self, model: nn.Module, batch: Batch) -> int:
        return 2 * sum(p.numel() for p in model.parameters()) * int(batch["input_ids"].numel())

    def query_masks(self, batch: Batch) -> dict[str, torch.Tensor]:
        return {"decoder_self": batch["attention_mask"].bool()}

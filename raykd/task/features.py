"""Problems -> model features -> padded batches.

Problems go through a Hugging Face `datasets.Dataset` (Arrow-backed) so tokenisation runs once
per split; batches are padded on the fly. A problem the solver cannot represent (an equation
constant missing from the vocabulary, more numbers than slots, an equation longer than the
decoder allows) is skipped and counted with its reason, never silently dropped.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Iterator, Sequence

import torch

from raykd.data.hf import to_hf_dataset
from raykd.data.problem import Problem
from raykd.task.vocab import OutputVocab, is_slot_token


@dataclass
class FeatureSet:
    """Encoded problems of one split plus what had to be left out."""

    rows: Any  # datasets.Dataset with the feature columns + "problem_index"
    problems: list[Problem]
    skipped: Counter = field(default_factory=Counter)

    def __len__(self) -> int:
        return len(self.rows)


def number_token_positions(offsets: Sequence[Sequence[int]], spans: Sequence[Sequence[int]]) -> list[int]:
    """Index of the first token overlapping each character span (-1 if truncated away)."""
    positions = []
    for start, end in spans:
        hit = -1
        for i, (a, b) in enumerate(offsets):
            if b > a and a < end and b > start:
                hit = i
                break
        positions.append(hit)
    return positions


def unrepresentable_reason(problem: Problem, vocab: OutputVocab, max_output_len: int) -> str | None:
    """Why the solver cannot be trained on `problem`, or None if it can."""
    if not problem.equation:
        return "no equation"
    if len(problem.equation) > max_output_len:
        return f"equation longer than {max_output_len} tokens"
    for token in problem.equation:
        if is_slot_token(token) and int(token[1:]) >= vocab.max_numbers:
            return f"uses number slot {token} beyond the {vocab.max_numbers} slots"
        if not is_slot_token(token) and token not in vocab.tokens:
            return f"constant {token} not in the vocabulary"
    return None


def build_features(
    problems: Sequence[Problem],
    tokenizer: Any,
    vocab: OutputVocab,
    *,
    max_input_len: int = 256,
    max_output_len: int = 40,
    for_training: bool = True,
) -> FeatureSet:
    """Tokenise `problems`; with `for_training`, leave out problems the solver cannot learn."""
    import datasets  # deferred: datasets (~1 s), only when features are built

    datasets.disable_progress_bars()

    skipped: Counter = Counter()
    keep: list[int] = []
    for i, p in enumerate(problems):
        reason = unrepresentable_reason(p, vocab, max_output_len) if for_training else None
        if reason:
            skipped[reason] += 1
        else:
            keep.append(i)
    kept = [problems[i] for i in keep]
    ds = to_hf_dataset(kept).add_column("problem_index", keep)

    def encode(batch: dict[str, list]) -> dict[str, list]:
        enc = tokenizer(batch["text"], truncation=True, max_length=max_input_len, return_offsets_mapping=True)
        out: dict[str, list] = {"input_ids": enc["input_ids"], "number_positions": [], "target": []}
        for offsets, spans, equation in zip(enc["offset_mapping"], batch["number_spans"], batch["equation"]):
            out["number_positions"].append(number_token_positions(offsets, spans)[: vocab.max_numbers])
            ok = equation and vocab.can_encode(equation) and len(equation) <= max_output_len
            out["target"].append(vocab.encode(equation) if ok else [])
        return out

    ds = ds.map(encode, batched=True, remove_columns=ds.column_names[:-1] if len(ds) else None)
    return FeatureSet(rows=ds, problems=list(problems), skipped=skipped)


def collate(rows: Sequence[dict], vocab: OutputVocab, pad_token_id: int) -> dict[str, torch.Tensor]:
    """Pad a list of feature rows into model inputs and teacher-forcing targets."""
    b = len(rows)
    max_in = max(len(r["input_ids"]) for r in rows)
    max_out = max(1, max(len(r["target"]) for r in rows))
    m = vocab.max_numbers
    input_ids = torch.full((b, max_in), pad_token_id, dtype=torch.long)
    attention_mask = torch.zeros((b, max_in), dtype=torch.long)
    number_positions = torch.full((b, m), -1, dtype=torch.long)
    target = torch.full((b, max_out), vocab.pad_id, dtype=torch.long)
    for i, r in enumerate(rows):
        ids = r["input_ids"]
        input_ids[i, : len(ids)] = torch.tensor(ids)
        attention_mask[i, : len(ids)] = 1
        pos = r["number_positions"][:m]
        number_positions[i, : len(pos)] = torch.tensor(pos, dtype=torch.long)
        target[i, : len(r["target"])] = torch.tensor(r["target"], dtype=torch.long)
    decoder_input = torch.cat([torch.full((b, 1), vocab.bos_id, dtype=torch.long), target[:, :-1]], dim=1)
    return {
        "input_ids": input_ids,
        "attention_mask": attention_mask,
        "number_positions": number_positions,
        "number_mask": number_positions >= 0,
        "decoder_input": decoder_input,
        "target": target,
        "problem_index": torch.tensor([r["problem_index"] for r in rows], dtype=torch.long),
    }


def iterate_batches(
    features: FeatureSet,
    vocab: OutputVocab,
    pad_token_id: int,
    batch_size: int,
    *,
    shuffle: bool = False,
    seed: int = 0,
) -> Iterator[dict[str, torch.Tensor]]:
    """Batches over `features`; shuffled with a seeded generator when asked."""
    n = len(features.rows)
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed)).tolist() if shuffle else list(range(n))
    for start in range(0, n, batch_size):
        idx = order[start : start + batch_size]
        yield collate(features.rows.select(idx).to_list(), vocab, pad_token_id)


def synthetic_batch(
    vocab: OutputVocab, tokenizer: Any, batch: int, seq_len: int, decoder_len: int, seed: int = 0
) -> dict[str, torch.Tensor]:
    """A batch of the exact shape asked for (random ordinary tokens, every position real), for
    timing and FLOPs at a fixed batch size and sequence length."""
    g = torch.Generator().manual_seed(seed)
    special = set(tokenizer.all_special_ids)
    ordinary = torch.tensor([i for i in range(len(tokenizer)) if i not in special][:5000])
    input_ids = ordinary[torch.randint(len(ordinary), (batch, seq_len), generator=g)]
    m = vocab.max_numbers
    positions = torch.randint(1, max(2, seq_len), (batch, m), generator=g)
    target = torch.randint(2, len(vocab), (batch, decoder_len), generator=g)
    decoder_input = torch.cat([torch.full((batch, 1), vocab.bos_id), target[:, :-1]], dim=1)
    return {
        "input_ids": input_ids,
        "attention_mask": torch.ones(batch, seq_len, dtype=torch.long),
        "number_positions": positions,
        "number_mask": torch.ones(batch, m, dtype=torch.bool),
        "decoder_input": decoder_input,
        "target": target,
    }

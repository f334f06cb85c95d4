"""Constrained decoding: every output is a well-formed prefix expression.

A prefix expression over binary operators is complete when its count of open operand slots,
starting at 1, reaches 0: an operator adds one slot, an operand fills one. At each step the
decoder may emit an operator only if the slots it opens can still be filled within the length
limit, and may emit only operands the problem has. So greedy and beam search both end with a
well-formed expression of at most `max_len` tokens.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from raykd.task.model import EncodedProblem, SolverModel


@dataclass(frozen=True)
class Hypothesis:
    ids: list[int]
    score: float  # sum of log-probabilities


def _allowed(model: SolverModel, open_slots: torch.Tensor, remaining: int, n_vocab: int) -> torch.Tensor:
    """(B, V) mask of tokens allowed next, given open slots and steps left after this one."""
    vocab = model.vocab
    is_op = torch.zeros(n_vocab, dtype=torch.bool, device=open_slots.device)
    is_op[list(vocab.operator_ids)] = True
    # after an operator, open_slots + 1 operands are still needed in `remaining` steps
    op_ok = (open_slots + 1 <= remaining).unsqueeze(1)
    allowed = torch.where(is_op.unsqueeze(0), op_ok, torch.ones_like(op_ok))
    return allowed & (open_slots > 0).unsqueeze(1)


def _operator_mask(model: SolverModel, device: torch.device) -> torch.Tensor:
    is_op = torch.zeros(len(model.vocab), dtype=torch.bool, device=device)
    is_op[list(model.vocab.operator_ids)] = True
    return is_op


@torch.no_grad()
def greedy_decode(model: SolverModel, enc: EncodedProblem, max_len: int, *, stop_when_done: bool = True) -> list[list[int]]:
    """One constrained greedy expression per problem in the batch, decoded with a KV cache.

    `stop_when_done=False` runs all `max_len` steps even after every expression is complete
    (finished rows emit padding): the fixed-length workload latency is timed on, so a shape's
    cost does not depend on what the model happens to predict.
    """
    b = enc.memory.shape[0]
    device = enc.memory.device
    vocab = model.vocab
    is_op = _operator_mask(model, device)
    tokens = torch.full((b,), vocab.bos_id, dtype=torch.long, device=device)
    open_slots = torch.ones(b, dtype=torch.long, device=device)
    state = model.start_decoding(enc)
    emitted: list[torch.Tensor] = []
    for step in range(max_len):
        if stop_when_done and not bool((open_slots > 0).any()):
            break
        logits, state = model.decode_step(enc, state, tokens)
        allowed = _allowed(model, open_slots, max_len - step - 1, logits.shape[-1])
        logits = logits.masked_fill(~allowed, float("-inf"))
        done = open_slots == 0
        tokens = torch.where(done, torch.full_like(tokens, vocab.pad_id), logits.argmax(-1))
        open_slots = torch.where(done, open_slots, open_slots + torch.where(is_op[tokens], 1, -1))
        emitted.append(tokens)
    if not emitted:
        return [[] for _ in range(b)]
    out = torch.stack(emitted, dim=1)
    return [[t for t in row.tolist() if t != vocab.pad_id] for row in out]


@torch.no_grad()
def beam_decode(model: SolverModel, enc: EncodedProblem, max_len: int, beam_size: int) -> list[list[int]]:
    """Constrained beam search with a KV cache; returns the best complete expression per problem."""
    vocab = model.vocab
    device = enc.memory.device
    is_op = _operator_mask(model, device)
    results: list[list[int]] = []
    for i in range(enc.memory.shape[0]):
        single = enc.select(torch.tensor([i], device=device))
        state = model.start_decoding(single)
        beams: list[tuple[list[int], float, int]] = [([vocab.bos_id], 0.0, 1)]
        finished: list[Hypothesis] = []
        for step in range(max_len):
            if not beams:
                break
            rows = single.select(torch.zeros(len(beams), dtype=torch.long, device=device))
            last = torch.tensor([b[0][-1] for b in beams], device=device)
            logits, state = model.decode_step(rows, state, last)
            logp = logits.log_softmax(-1)
            slots = torch.tensor([b[2] for b in beams], device=device)
            allowed = _allowed(model, slots, max_len - step - 1, logp.shape[-1])
            logp = logp.masked_fill(~allowed, float("-inf"))
            total = logp + torch.tensor([b[1] for b in beams], device=device).unsqueeze(1)
            top = total.flatten().topk(min(beam_size, int(torch.isfinite(total).sum())))
            candidates, sources = [], []
            for score, flat in zip(top.values.tolist(), top.indices.tolist()):
                src, tok = divmod(flat, logp.shape[-1])
                prev_ids, _, prev_slots = beams[src]
                slots_after = prev_slots + (1 if bool(is_op[tok]) else -1)
                if slots_after == 0:
                    finished.append(Hypothesis(prev_ids[1:] + [tok], score))
                else:
                    candidates.append((prev_ids + [tok], score, slots_after))
                    sources.append(src)
            beams = candidates
            if beams:
                state = state.select(torch.tensor(sources, dtype=torch.long, device=device))
            if len(finished) >= beam_size and beams and max(f.score for f in finished) >= max(b[1] for b in beams):
                break
        best = max(finished, key=lambda h: h.score)
        results.append(best.ids)
    return results


def decode_batch(model: SolverModel, batch: dict[str, torch.Tensor], max_len: int, beam_size: int = 1,
                 *, stop_when_done: bool = True) -> list[list[int]]:
    """Encode a batch once and decode it greedily (beam_size 1) or with beam search."""
    enc = model.encode(batch["input_ids"], batch["attention_mask"], batch["number_positions"], batch["number_mask"])
    if beam_size <= 1:
        return greedy_decode(model, enc, max_len, stop_when_done=stop_when_done)
    return beam_decode(model, enc, max_len, beam_size)

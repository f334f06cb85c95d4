"""Record attention probabilities during forward passes.

    with capture_attention(model, keep_grad=True) as cap:
        out = model(**batch)
    cap.maps["encoder_self"][3]        # (B, heads, Lq, Lk), last call of that block
    cap.head_ids["encoder_self"][3]    # the original ids of those heads, in order

Maps are softmax probabilities before attention dropout (so each query row sums to 1 over the keys;
padded keys get ~0). With `keep_grad=False` (default) they are detached; with `keep_grad=True` they
stay in the autograd graph, e.g. for an MSE between teacher and student maps. A block with no heads
records an empty (B, 0, Lq, Lk) tensor. A block called several times in one pass (step-wise
decoding) keeps every call in `cap.calls[(kind, layer)]`.
"""

from __future__ import annotations

import contextlib
from collections import defaultdict
from collections.abc import Iterable, Iterator

import torch
from torch import nn

from raykd.structures.heads.base import AttentionBlock
from raykd.structures.heads.surgery import find_attention_blocks


class AttentionCapture:
    """What `capture_attention` records. Read it after (or during) the forward pass."""

    def __init__(self, blocks: list[AttentionBlock], keep_grad: bool) -> None:
        self.blocks = blocks
        self.keep_grad = keep_grad
        self.calls: dict[tuple[str, int], list[torch.Tensor]] = defaultdict(list)

    def _record(self, block: AttentionBlock, probs: torch.Tensor) -> None:
        self.calls[(block.kind, block.layer)].append(probs if self.keep_grad else probs.detach())

    @property
    def maps(self) -> dict[str, list[torch.Tensor | None]]:
        """{kind: [last recorded map per layer, None if the block did not run]}."""
        out: dict[str, list[torch.Tensor | None]] = {}
        for b in self.blocks:
            seen = self.calls.get((b.kind, b.layer))
            out.setdefault(b.kind, []).append(seen[-1] if seen else None)
        return out

    @property
    def head_ids(self) -> dict[str, list[list[int]]]:
        """{kind: [original head ids per layer]}: which head each map channel is."""
        out: dict[str, list[list[int]]] = {}
        for b in self.blocks:
            out.setdefault(b.kind, []).append(b.head_ids)
        return out

    def clear(self) -> None:
        self.calls.clear()


@contextlib.contextmanager
def capture_attention(
    model: nn.Module, *, keep_grad: bool = False, kinds: Iterable[str] | None = None
) -> Iterator[AttentionCapture]:
    """Record attention probabilities of every block (or of `kinds` only) while inside.

    The model's outputs are unchanged up to float rounding: Hugging Face blocks run transformers'
    eager attention maths (instead of e.g. SDPA) for the duration, raykd blocks their explicit
    softmax path. Not re-entrant on the same model.
    """
    blocks = find_attention_blocks(model)
    if kinds is not None:
        wanted = set(kinds)
        blocks = [b for b in blocks if b.kind in wanted]
    cap = AttentionCapture(blocks, keep_grad)
    by_adapter: dict[int, list[AttentionBlock]] = defaultdict(list)
    for b in blocks:
        by_adapter[id(b.adapter)].append(b)
    with contextlib.ExitStack() as stack:
        for group in by_adapter.values():
            stack.enter_context(group[0].adapter.capture(model, group, cap._record))
        yield cap

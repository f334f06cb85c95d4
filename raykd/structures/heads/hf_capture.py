"""Attention capture for transformers models: one switch of the attention implementation.

For the duration, the configs' `_attn_implementation` is set to "raykd_capture", an eager
attention function registered once in transformers' `AttentionInterface` (with the eager mask in
`AttentionMaskInterface`). It records the softmax probabilities *before* dropout, so maps taken
in training mode still sum to 1, and is otherwise the eager computation (grouped-query K/V are
expanded to their query heads, so a GQA block records one map per query head). Blocks whose
attention was emptied (`_raykd_empty`) record through a forward hook instead.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence

import torch
from torch import nn

from raykd.structures.heads.base import AttentionBlock, Recorder

CAPTURE_IMPLEMENTATION = "raykd_capture"


# Active captures: (self-attention module id -> block, recorder).
_ACTIVE: list[tuple[dict[int, AttentionBlock], Recorder]] = []
_REGISTERED = False


def _capture_attention_forward(
    module: nn.Module,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: torch.Tensor | None,
    scaling: float | None = None,
    dropout: float = 0.0,
    **kwargs,
):
    """transformers' eager attention, recording the probabilities before dropout."""
    if scaling is None:
        scaling = query.size(-1) ** -0.5
    groups = int(getattr(module, "num_key_value_groups", 1) or 1)
    if groups > 1:  # grouped-query attention: expand K/V to the query heads
        key = key.repeat_interleave(groups, dim=1)
        value = value.repeat_interleave(groups, dim=1)
    scores = torch.matmul(query, key.transpose(2, 3)) * scaling
    if attention_mask is not None:
        mask = attention_mask[:, :, :, : key.shape[-2]]
        if mask.dtype == torch.bool:
            scores = scores.masked_fill(~mask, torch.finfo(scores.dtype).min)
        else:
            scores = scores + mask
    probs = nn.functional.softmax(scores, dim=-1)
    for blocks, record in _ACTIVE:
        block = blocks.get(id(module))
        if block is not None:
            record(block, probs)
    dropped = nn.functional.dropout(probs, p=dropout, training=module.training)
    out = torch.matmul(dropped, value).transpose(1, 2).contiguous()
    return out, probs


def _register_capture_implementation() -> None:
    global _REGISTERED
    if _REGISTERED:
        return
    from transformers import AttentionInterface
    from transformers.masking_utils import AttentionMaskInterface, eager_mask

    AttentionInterface.register(CAPTURE_IMPLEMENTATION, _capture_attention_forward)
    AttentionMaskInterface.register(CAPTURE_IMPLEMENTATION, eager_mask)
    _REGISTERED = True


@contextlib.contextmanager
def capture_hf(blocks: Sequence[AttentionBlock], record: Recorder, *,
               attention_of: Callable[[AttentionBlock], nn.Module]) -> Iterator[None]:
    """Record every block's probabilities; `attention_of(block)` is the module transformers passes
    to its attention function (BERT: `block.module.self`; Llama family: the block itself)."""
    _register_capture_implementation()
    by_module = {id(attention_of(b)): b for b in blocks}
    entry = (by_module, record)
    configs = {}
    for b in blocks:
        cfg = getattr(attention_of(b), "config", None)
        if cfg is not None and id(cfg) not in configs:
            configs[id(cfg)] = (cfg, cfg._attn_implementation)
    handles = []
    for b in blocks:
        if getattr(type(attention_of(b)), "_raykd_empty", False):
            handles.append(attention_of(b).register_forward_hook(lambda m, a, out, _b=b: record(_b, out[1])))
    _ACTIVE.append(entry)
    try:
        for cfg, _ in configs.values():
            cfg._attn_implementation = CAPTURE_IMPLEMENTATION
        yield
    finally:
        for cfg, old in configs.values():
            cfg._attn_implementation = old
        for h in handles:
            h.remove()
        for i, e in enumerate(_ACTIVE):
            if e is entry:
                del _ACTIVE[i]
                break

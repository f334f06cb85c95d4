"""Attention capture for transformers models: one switch of the attention implementation.

For the duration, each owning model is switched with transformers' public setter
(`PreTrainedModel.set_attn_implementation`) to "raykd_capture", an eager attention function
registered once in transformers' `AttentionInterface` (with the eager mask in
`AttentionMaskInterface`), and switched back to its previous implementation after. The function
records the softmax probabilities *before* dropout, so maps taken in training mode still sum to 1,
and is otherwise the eager computation (grouped-query K/V are expanded to their query heads, so a
GQA block records one map per query head). Blocks whose attention was emptied (`_raykd_empty`)
record through a forward hook instead.

transformers 5 has a public setter but no public getter for the implementation in use (it has
one for MoE experts, `get_experts_implementation`), so the previous value is read from
`config._attn_implementation`, the property the setter itself and transformers' attention
integrations read.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence

import torch
from torch import nn

from raykd.errors import RaykdInputError
from raykd.structures.heads.base import AttentionBlock, Recorder

CAPTURE_IMPLEMENTATION = "raykd_capture"


# Active captures: (self-attention module id -> block, recorder).
_ACTIVE: list[tuple[dict[int, AttentionBlock], Recorder]] = []
_REGISTERED = False


class CaptureUnavailableError(RaykdInputError):
    """A transformers model whose attention cannot be routed through raykd's capture."""


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


def _owners(model: nn.Module, configs: dict[int, object]) -> list[nn.Module]:
    """The outermost transformers model holding each of `configs` (by id), in `model`."""
    from transformers import PreTrainedModel

    owners, found = [], set()
    for module in model.modules():  # parents come before their children
        cid = id(getattr(module, "config", None))
        if isinstance(module, PreTrainedModel) and cid in configs and cid not in found:
            owners.append(module)
            found.add(cid)
    if len(found) < len(configs):
        raise CaptureUnavailableError(
            f"{type(model).__name__}: its transformers attention blocks are not inside a transformers model "
            "(PreTrainedModel) within it, so raykd cannot switch their attention implementation to capture maps")
    return owners


def _switch(owner: nn.Module, implementation: str) -> None:
    """`owner.set_attn_implementation(implementation)`, refused when transformers declined it
    (it only warns for a model class whose attention does not use the `AttentionInterface`)."""
    owner.set_attn_implementation(implementation)  # type: ignore[operator]
    if owner.config._attn_implementation != implementation:  # type: ignore[union-attr]
        raise CaptureUnavailableError(
            f"{type(owner).__name__} cannot switch its attention implementation to {implementation!r} "
            "(its attention does not use transformers' AttentionInterface), so raykd cannot capture its maps")


@contextlib.contextmanager
def capture_hf(model: nn.Module, blocks: Sequence[AttentionBlock], record: Recorder, *,
               attention_of: Callable[[AttentionBlock], nn.Module]) -> Iterator[None]:
    """Record every block's probabilities; `attention_of(block)` is the module transformers passes
    to its attention function (BERT: `block.module.self`; Llama family: the block itself), and
    `model` the model the blocks are in (the transformers models in it are switched)."""
    _register_capture_implementation()
    by_module = {id(attention_of(b)): b for b in blocks}
    entry = (by_module, record)
    configs = {}
    for b in blocks:
        cfg = getattr(attention_of(b), "config", None)
        if cfg is not None:
            configs[id(cfg)] = cfg
    switched = [(owner, owner.config._attn_implementation) for owner in _owners(model, configs)]  # type: ignore[union-attr]
    handles = []
    for b in blocks:
        if getattr(type(attention_of(b)), "_raykd_empty", False):
            handles.append(attention_of(b).register_forward_hook(lambda m, a, out, _b=b: record(_b, out[1])))
    _ACTIVE.append(entry)
    done = []
    try:
        for owner, old in switched:
            _switch(owner, CAPTURE_IMPLEMENTATION)
            done.append((owner, old))
        yield
    finally:
        for owner, old in done:
            owner.set_attn_implementation(old)  # type: ignore[operator]
        for h in handles:
            h.remove()
        for i, e in enumerate(_ACTIVE):
            if e is entry:
                del _ACTIVE[i]
                break

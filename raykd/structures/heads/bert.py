"""Head adapter for the BERT / RoBERTa family of Hugging Face transformers (v5).

Block = the `BertAttention`-like module (e.g. `encoder.layer.3.attention`) whose `.self` is one of
the supported self/cross-attention classes and whose `.output.dense` is the output projection O.
Q/K/V are `.self.query/.key/.value`. Which transformers families it matches (by class, subclasses
included) is said by the family that registers it, `raykd.structures.families.bert`. Kinds:
`encoder_self` for an encoder's self-attention, `decoder_self` for a causal (is_decoder)
self-attention, `decoder_cross` for cross-attention.

transformers 5 reshapes with `view(..., -1, head_size)`, so the head count follows the Linear
widths; we also keep `num_attention_heads` / `all_head_size` in step. `view(..., -1, d)` cannot
reshape an empty tensor, so a block whose every head is removed switches (in place, `__class__`
swap) to an "empty" subclass of its self-attention class whose forward returns a (B, L, 0) context
without touching Q/K/V (which stay as 0-row Linears, so the state-dict keys do not change).
`output.dense` then has 0 input columns and yields exactly its bias: the same as zeroing every
head's contribution. The subclass keeps `isinstance` checks (and HF's `output_attentions`) working.

Capture: transformers' attention-interface switch (`raykd.structures.heads.hf_capture`), keyed
on the `.self` module.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping, Sequence

import torch
from torch import nn

from raykd.structures.family import class_in, transformers_classes
from raykd.structures.heads.base import AttentionBlock, HeadAdapter, Projections, Recorder
from raykd.structures.heads.hf_capture import capture_hf
from raykd.structures.heads.kinds import DECODER_CROSS, DECODER_SELF, ENCODER_SELF, Kind


class BertFamilyAdapter(HeadAdapter):
    """The attention of every transformers family in `classes` (module name -> class prefix) whose
    `<Prefix>SelfAttention` / `<Prefix>CrossAttention` are BERT's; registered by
    `raykd.structures.families.bert`."""

    family = "bert"

    def __init__(self, classes: Mapping[str, str], supports: str) -> None:
        self.supports = supports
        self._self = transformers_classes(classes, "SelfAttention")
        self._cross = transformers_classes(classes, "CrossAttention")

    def match(self, module: nn.Module) -> Kind | None:
        inner = getattr(module, "self", None)
        dense = getattr(getattr(module, "output", None), "dense", None)
        if inner is None or not isinstance(dense, nn.Linear) or not isinstance(inner, nn.Module):
            return None
        cls = type(inner)
        if class_in(cls, self._cross):
            return DECODER_CROSS
        if class_in(cls, self._self):
            return DECODER_SELF if getattr(inner, "is_causal", False) else ENCODER_SELF
        return None

    def projections(self, module: nn.Module) -> Projections:
        s = module.self
        return Projections(s.query, s.key, s.value, module.output.dense)

    def num_heads(self, module: nn.Module) -> int:
        return int(module.self.num_attention_heads)

    def head_dim(self, module: nn.Module) -> int:
        return int(module.self.attention_head_size)

    def head_ids(self, module: nn.Module) -> list[int]:
        ids = getattr(module.self, "head_ids", None)
        return list(range(self.num_heads(module))) if ids is None else [int(i) for i in ids]

    def set_heads(self, module: nn.Module, head_ids: list[int], num_kv_heads: int) -> None:
        s = module.self
        s.num_attention_heads = len(head_ids)
        s.all_head_size = len(head_ids) * s.attention_head_size
        s.head_ids = list(head_ids)
        if not head_ids:
            s.__class__ = _empty_class(type(s), cross=class_in(type(s), self._cross))

    def capture(self, model: nn.Module, blocks: Sequence[AttentionBlock], record: Recorder) -> contextlib.AbstractContextManager:
        return capture_hf(model, blocks, record, attention_of=lambda b: b.module.self)


# --- whole-block removal -----------------------------------------------------------------------

_EMPTY_CLASSES: dict[type, type] = {}


def _empty_forward(self, hidden_states: torch.Tensor, *args, **kwargs):
    """Forward of a self/cross-attention with no heads left: a (B, L, 0) context, empty weights."""
    enc = kwargs.get("encoder_hidden_states")
    b, lq = hidden_states.shape[0], hidden_states.shape[-2]
    lk = enc.shape[-2] if enc is not None else lq
    # transformers >= 5.2x passes the cache as `cache` (was `past_key_values`, deprecated)
    cache = kwargs.get("cache", kwargs.get("past_key_values", args[1] if len(args) > 1 else None))
    if cache is not None and not self._raykd_cross:
        # Keep the cache's sequence length right for later steps (transformers reads it from the
        # first layer and counts an empty tensor as length 0): store a (B, 1, L, 1) zero
        # placeholder that nothing attends to.
        layer_cache = getattr(cache, "self_attention_cache", cache)
        placeholder = hidden_states.new_zeros(b, 1, lq, 1)
        keys, _ = layer_cache.update(placeholder, placeholder, self.layer_idx)
        lk = keys.shape[-2]
    context = hidden_states.new_zeros(*hidden_states.shape[:-1], 0)
    weights = hidden_states.new_zeros(b, 0, lq, lk)
    return context, weights


def _empty_class(cls: type, *, cross: bool) -> type:
    if getattr(cls, "_raykd_empty", False):
        return cls
    if cls not in _EMPTY_CLASSES:
        _EMPTY_CLASSES[cls] = type(
            f"Empty{cls.__name__}",
            (cls,),
            {
                "forward": _empty_forward,
                "_raykd_empty": True,
                "_raykd_cross": cross,
                "__module__": __name__,
                "__doc__": f"{cls.__name__} with every head removed (raykd): contributes nothing.",
            },
        )
        globals()[_EMPTY_CLASSES[cls].__name__] = _EMPTY_CLASSES[cls]
    return _EMPTY_CLASSES[cls]


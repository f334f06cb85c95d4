"""Head adapter for Llama-layout decoder-only LLMs of Hugging Face transformers (v5): grouped-query attention.

Llama, Mistral, Qwen2 (2.5) and Qwen3 share the layout (SmolLM2 checkpoints are LlamaForCausalLM),
and so does Gemma (the families are `raykd.structures.families.llama` and `.gemma`):
a `*Attention` module with `q_proj/k_proj/v_proj/o_proj`, an explicit `head_dim`, and
`num_key_value_groups` query heads reading each K/V head (query head h reads K/V head
h // groups). Qwen2 adds Q/K/V biases (sliced with their rows), Qwen3 adds `q_norm/k_norm`, which
act on one head's width and are shared by all heads (nothing to slice). Kind: `decoder_self`.

Heads are removed **within KV groups**: after any removal every kept K/V group still has the same
number of query heads, because transformers' GQA kernels (`repeat_kv`, SDPA's `enable_gqa`)
assume `num_heads = groups * kv_heads`. A set of kept query heads that leaves groups uneven is
refused, naming the per-group counts (`UnevenGroupsError`); a K/V head goes when its whole group
goes. A block cannot lose every head (transformers reshapes with `view(..., -1, head_dim)` and
the KV cache needs every layer): drop the layer instead. `raykd.method.gqa` chooses removals that
keep groups even.

Capture: the attention-interface switch of `raykd.structures.heads.hf_capture`, on the block.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping, Sequence

from torch import nn

from raykd.structures.family import class_in, transformers_classes
from raykd.structures.heads.base import AttentionBlock, HeadAdapter, Projections, Recorder
from raykd.structures.heads.hf_capture import capture_hf
from raykd.structures.heads.kinds import DECODER_SELF, Kind


class UnevenGroupsError(ValueError):
    """Kept query heads that would leave the K/V groups of a GQA block with different sizes."""


class LlamaFamilyAdapter(HeadAdapter):
    """The `<Prefix>Attention` of every transformers family in `classes` (module name -> class
    prefix) with Llama's layout; registered by `raykd.structures.families.llama` (and by each
    family built with its `llama_layout`)."""

    family = "llama"
    min_heads = 1  # a block with no K/V head cannot run: the layer is dropped instead

    def __init__(self, classes: Mapping[str, str], supports: str) -> None:
        self.supports = supports
        self._attention = transformers_classes(classes, "Attention")

    def match(self, module: nn.Module) -> Kind | None:
        return DECODER_SELF if class_in(type(module), self._attention) else None

    def projections(self, module: nn.Module) -> Projections:
        return Projections(module.q_proj, module.k_proj, module.v_proj, module.o_proj)

    def head_dim(self, module: nn.Module) -> int:
        return int(module.head_dim)

    def num_heads(self, module: nn.Module) -> int:
        return int(module.q_proj.out_features) // self.head_dim(module)

    def num_kv_heads(self, module: nn.Module) -> int:
        return int(module.k_proj.out_features) // self.head_dim(module)

    def kv_heads_for(self, module: nn.Module, keep: Sequence[int]) -> list[int]:
        if not keep:
            raise UnevenGroupsError(f"cannot remove every head of {type(module).__name__}: a grouped-query block needs "
                                    f"at least one; drop the layer instead")
        groups = self.num_heads(module) // self.num_kv_heads(module)
        per_group: dict[int, int] = {}
        for position in keep:
            per_group[position // groups] = per_group.get(position // groups, 0) + 1
        if len(set(per_group.values())) > 1:
            counts = ", ".join(f"group {g}: {n}" for g, n in sorted(per_group.items()))
            raise UnevenGroupsError(f"keeping query heads {list(keep)} leaves uneven K/V groups ({counts} of {groups}); "
                                    f"remove the same number of heads from every kept group, or whole groups")
        return sorted(per_group)

    def set_heads(self, module: nn.Module, head_ids: list[int], num_kv_heads: int) -> None:
        module.head_ids = list(head_ids)
        module.num_key_value_groups = len(head_ids) // num_kv_heads

    def capture(self, model: nn.Module, blocks: Sequence[AttentionBlock], record: Recorder) -> contextlib.AbstractContextManager:
        return capture_hf(model, blocks, record, attention_of=lambda b: b.module)


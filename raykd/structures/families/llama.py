"""The Llama layout of decoder-only LLMs in transformers: where each prunable structure lives.

Llama, Mistral, Qwen2 (2.5) and Qwen3 (SmolLM2 checkpoints are LlamaForCausalLM) share it; any
other family with the same layout is one call of `llama_layout` (`raykd.structures.families.gemma`):

- heads: each `<Prefix>Attention` (`q_proj/k_proj/v_proj/o_proj`, an explicit `head_dim`,
  grouped-query K/V heads, removed within groups: `raykd.structures.heads.llama`);
- FFN channels: each `<Prefix>MLP`'s `gate_proj`, `up_proj` -> `down_proj` (SwiGLU);
- layers: `model.layers`, a ModuleList of `<Prefix>DecoderLayer`s ("decoder_layers"). The KV
  cache is indexed by each attention's `layer_idx` and its length read from layer 0, and the
  model loops over `config.num_hidden_layers` with `config.layer_types[i]` choosing each layer's
  mask, so after a drop `renumber` numbers the kept layers 0..L'-1 and the config says L' layers
  of the kept layers' types: cached generation stays right, and the config is the stock config
  of the smaller model;
- stock config: heads, K/V heads, `head_dim`, `intermediate_size`, layers
  (`hf_export.causal_lm_shape`).
"""

from __future__ import annotations

from collections.abc import Mapping

from torch import nn

from raykd.structures.family import Family, class_in, register_family, transformers_classes
from raykd.structures.ffn import FFNAdapter
from raykd.structures.heads.llama import LlamaFamilyAdapter
from raykd.structures.hf_export import causal_lm_shape
from raykd.structures.layers import LayerAdapter, layer_ids

CLASSES: dict[str, str] = {"llama": "Llama", "mistral": "Mistral", "qwen2": "Qwen2", "qwen3": "Qwen3"}
"""transformers module name -> class prefix of each family with this layout."""
SUPPORTS = "Llama/Mistral/Qwen2/Qwen3/SmolLM2"
ORIGINAL_LAYER_TYPES = "raykd_layer_types"
"""Attribute of a dropped-from stack: the unpruned config's `layer_types` (kept layers index it)."""


class LlamaFamilyFFN(FFNAdapter):
    family = "llama"

    def __init__(self, classes: Mapping[str, str], supports: str) -> None:
        self.supports = supports
        self._mlps = transformers_classes(classes, "MLP")

    def match(self, module: nn.Module) -> str | None:
        return "decoder_ffn" if class_in(type(module), self._mlps) else None

    def linears(self, module: nn.Module) -> tuple[nn.Linear, nn.Linear]:
        return module.up_proj, module.down_proj

    def inputs(self, module: nn.Module) -> tuple[nn.Linear, ...]:
        return module.gate_proj, module.up_proj

    def set_width(self, module: nn.Module, width: int) -> None:
        module.intermediate_size = width


class LlamaFamilyLayers(LayerAdapter):
    def __init__(self, classes: Mapping[str, str], supports: str) -> None:
        self.supports = supports
        self._layers = transformers_classes(classes, "DecoderLayer")

    def match(self, module: nn.Module) -> bool:
        return class_in(type(module), self._layers)

    def stack_kind(self, stack: nn.ModuleList) -> str:
        return "decoder_layers"

    def renumber(self, stack: nn.ModuleList) -> None:
        """Kept layers' attention `layer_idx` -> 0..L'-1; the config: L' layers of the kept types."""
        config = stack[0].self_attn.config
        types = getattr(config, "layer_types", None)
        if types is not None and not hasattr(stack, ORIGINAL_LAYER_TYPES):
            setattr(stack, ORIGINAL_LAYER_TYPES, list(types))
        for position, layer in enumerate(stack):
            layer.self_attn.layer_idx = position
        config.num_hidden_layers = len(stack)
        if types is not None:
            config.layer_types = [getattr(stack, ORIGINAL_LAYER_TYPES)[i] for i in layer_ids(stack)]


def llama_layout(name: str, supports: str, classes: Mapping[str, str]) -> Family:
    """The `Family` of transformers models with Llama's layout, whose classes are `<Prefix>Attention`,
    `<Prefix>MLP` and `<Prefix>DecoderLayer` for each `classes` item (module name -> prefix)."""
    return Family(
        name=name,
        supports=supports,
        structures={
            "heads": (LlamaFamilyAdapter(classes, supports=f"{supports} grouped-query attention (transformers)"),),
            "ffn": (LlamaFamilyFFN(classes, supports=f"{supports} gated MLPs (transformers)"),),
            "layers": (LlamaFamilyLayers(classes, supports=f"{supports} decoder layers"),),
        },
        stock_config=causal_lm_shape,
    )


FAMILY = register_family(llama_layout("llama", SUPPORTS, CLASSES))

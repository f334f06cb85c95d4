"""Export a pruned model as a stock Transformers directory (no raykd needed to load it).

Which fields a family's stock config has is said by its `Family.stock_config`
(`raykd.structures.families`): `causal_lm_shape` for the Llama layout, `encoder_shape` for the
BERT family.

Llama-layout causal LMs (Llama, Mistral, Qwen2, Qwen3, SmolLM2, Gemma): a config holds one
`num_attention_heads`, `num_key_value_heads`, `head_dim` (explicit, so fewer heads keep their
width), `intermediate_size` and `num_hidden_layers` (with the kept layers' `layer_types`), so any
uniformly pruned shape exports: every layer the same query heads, K/V heads and FFN width.
`AutoModelForCausalLM.from_pretrained` then loads it and generates what raykd's model generates.
Uneven shapes load through raykd only (`raykd.structures.serialization`).

BERT-family encoders:

A BERT-family config can express a pruned shape only when it is uniform and has a config field:
`num_hidden_layers` (any number of layers dropped: the kept layers are renumbered 0..L'-1) and
`intermediate_size` (every layer's FFN the same width, >= 1). It cannot express fewer heads:
BertConfig derives the head width as hidden_size / num_attention_heads, so a layer with k < H
heads of width d has no stock config (transformers 5 also dropped `pruned_heads`). `hf_shape`
says which structure prevents an export; `export_hf` writes the directory with safetensors
weights, and the config carries `raykd_export` (where it came from), which stock loading ignores.
A chain with `uniform_shape: true` and heads left alone (`p_max: 0`) produces exportable shapes.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from torch import nn

from raykd.errors import RaykdInputError
from raykd.structures.family import Family, registered_families
from raykd.structures.ffn import ffn_widths
from raykd.structures.heads import blocks_by_kind, head_counts
from raykd.structures.layers import find_layer_stacks, layer_counts, layer_map


class NotExportableError(RaykdInputError):
    """The pruned shape cannot be written as a stock Transformers config (the message says why)."""


def _one(values: list[int], what: str) -> int:
    if len(set(values)) != 1:
        raise NotExportableError(f"{what} differ across layers ({values}): a stock config holds one number; "
                                 f"prune with uniform_shape: true to export")
    return values[0]


def causal_lm_shape(model: nn.Module) -> dict[str, Any]:
    """The stock config fields of a pruned Llama-layout causal LM; NotExportableError when uneven."""
    blocks = blocks_by_kind(model).get("decoder_self", [])
    widths = ffn_widths(model).get("decoder_ffn", [])
    if not blocks or not widths:
        raise NotExportableError(f"{type(model).__name__} has no Llama-family attention and MLP blocks to export")
    if min(widths) < 1:
        raise NotExportableError("an MLP lost every channel: a stock config needs intermediate_size >= 1")
    config = model.config
    fields: dict[str, Any] = {
        "num_attention_heads": _one([b.num_heads for b in blocks], "query heads per layer"),
        "num_key_value_heads": _one([b.num_kv_heads for b in blocks], "K/V heads per layer"),
        "head_dim": blocks[0].head_dim,
        "intermediate_size": _one(widths, "MLP widths"),
        "num_hidden_layers": len(blocks),
    }
    if config.hidden_size % fields["num_attention_heads"]:
        raise NotExportableError(f"{fields['num_attention_heads']} query heads do not divide hidden_size {config.hidden_size}, "
                                 f"which transformers' config validation requires even with an explicit head_dim")
    if getattr(config, "layer_types", None) is not None:
        fields["layer_types"] = list(config.layer_types)
    return fields


def hf_shape(model: nn.Module) -> dict[str, Any]:
    """The stock config fields of a pruned model's shape, as its family writes them (a BERT-family
    encoder, a Llama-layout causal LM); NotExportableError naming the structure when there are none.
    A model of no family with a stock config gets the encoder's, which says why it cannot be written."""
    family = _exporting_family(model)
    return (encoder_shape if family is None else family.stock_config)(model)  # type: ignore[misc]


def _exporting_family(model: nn.Module) -> Family | None:
    """The first family with a stock config whose layers `model` has."""
    for family in registered_families():
        if family.stock_config is not None and _layers_of(family, model.modules()):
            return family
    return None


def _layers_of(family: Family, modules: Iterable[nn.Module]) -> bool:
    return any(adapter.match(m) for m in modules for adapter in family.adapters("layers"))


def encoder_shape(encoder: nn.Module) -> dict[str, int]:
    """The stock config fields of a pruned BERT-family encoder; NotExportableError when uneven."""
    config = getattr(encoder, "config", None)
    if config is None or not hasattr(config, "intermediate_size") or not hasattr(config, "num_attention_heads"):
        raise NotExportableError(f"{type(encoder).__name__} is not a BERT-family transformers model: no stock config to write")
    heads = head_counts(encoder).get("encoder_self", [])
    # BertConfig builds heads x (hidden_size / heads) attention channels: a stock config holds a
    # shape only when every layer's heads x head width equals hidden_size (which hidden-size
    # pruning, raykd.structures.hidden, may have reduced: then heads must go with it).
    inner = {b.num_heads * b.head_dim for b in blocks_by_kind(encoder).get("encoder_self", [])}
    if inner and inner != {config.hidden_size}:
        if all(h == config.num_attention_heads for h in heads):
            raise NotExportableError(
                f"the hidden size was pruned to {config.hidden_size}, but each layer keeps {sorted(inner)} attention channels "
                f"(heads x head width): a BERT-family config derives the head width as hidden_size / num_attention_heads, "
                f"so prune heads to {config.hidden_size} channels per layer too, or keep the hidden size, to export")
        raise NotExportableError(
            f"heads were pruned (encoder heads per layer {heads}, of {config.num_attention_heads}): a BERT-family config "
            f"derives the head width from hidden_size / num_attention_heads, so it cannot hold fewer heads; "
            f"prune FFN channels and layers only (p_max: 0) to export")
    widths = ffn_widths(encoder).get("encoder_ffn", [])
    if len(set(widths)) > 1:
        raise NotExportableError(f"FFN widths differ across layers ({widths}): intermediate_size is one number; "
                                 f"prune with uniform_shape: true to export")
    if widths and widths[0] < 1:
        raise NotExportableError("every FFN channel was removed: a stock config needs intermediate_size >= 1")
    stacks = layer_counts(encoder)
    if set(stacks) - {"encoder_layers"}:
        raise NotExportableError(f"the model has decoder layers {sorted(set(stacks) - {'encoder_layers'})}: "
                                 f"only encoders are exported")
    fields = {"num_hidden_layers": stacks.get("encoder_layers", config.num_hidden_layers),
              "intermediate_size": widths[0] if widths else config.intermediate_size}
    if heads and heads[0] != config.num_attention_heads:  # fewer heads, with the hidden size cut to match
        fields["num_attention_heads"] = heads[0]
    return fields


def export_hf(model: nn.Module, directory: str | Path, *, tokenizer: Any = None, provenance: dict[str, Any] | None = None) -> Path:
    """Write `model` (a pruned BERT-family encoder or Llama-layout causal LM) to `directory` as
    `save_pretrained` does, with a config that states its shape. The directory must be new or
    empty (callers check --force)."""
    shape = hf_shape(model)
    stock = copy.deepcopy(model).cpu()
    cfg = stock.config
    for key, value in shape.items():
        setattr(cfg, key, value)
    cfg.raykd_export = {"layer_map": layer_map(model).get(_exported_stack(model)), **(provenance or {})}
    directory = Path(directory)
    stock.save_pretrained(str(directory), safe_serialization=True)
    if tokenizer is not None:
        tokenizer.save_pretrained(str(directory))
    return directory


def _exported_stack(model: nn.Module) -> str:
    """The stack whose kept layer ids the export records: the exporting family's."""
    family = _exporting_family(model)
    if family is not None:
        for kind, stack in find_layer_stacks(model).items():
            if _layers_of(family, stack[:1]):
                return kind
    return "encoder_layers"

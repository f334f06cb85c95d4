"""Export a pruned BERT-family encoder as a stock Transformers directory (no raykd needed to load it).

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
from pathlib import Path
from typing import Any

from torch import nn

from raykd.errors import RaykdInputError
from raykd.structures.ffn import ffn_widths
from raykd.structures.heads import head_counts
from raykd.structures.layers import layer_counts, layer_map


class NotExportableError(RaykdInputError):
    """The pruned shape cannot be written as a stock Transformers config (the message says why)."""


def hf_shape(encoder: nn.Module) -> dict[str, int]:
    """The stock config fields of `encoder`'s pruned shape; NotExportableError naming the
    structure when there are none."""
    config = getattr(encoder, "config", None)
    if config is None or not hasattr(config, "intermediate_size") or not hasattr(config, "num_attention_heads"):
        raise NotExportableError(f"{type(encoder).__name__} is not a BERT-family transformers model: no stock config to write")
    heads = head_counts(encoder).get("encoder_self", [])
    if any(h != config.num_attention_heads for h in heads):
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
    return {"num_hidden_layers": stacks.get("encoder_layers", config.num_hidden_layers),
            "intermediate_size": widths[0] if widths else config.intermediate_size}


def export_hf(encoder: nn.Module, directory: str | Path, *, tokenizer: Any = None, provenance: dict[str, Any] | None = None) -> Path:
    """Write `encoder` (pruned, BERT family) to `directory` as `save_pretrained` does, with a
    config that states its shape. The directory must be new or empty (callers check --force)."""
    shape = hf_shape(encoder)
    stock = copy.deepcopy(encoder).cpu()
    cfg = stock.config
    for key, value in shape.items():
        setattr(cfg, key, value)
    cfg.raykd_export = {"layer_map": layer_map(encoder).get("encoder_layers"), **(provenance or {})}
    directory = Path(directory)
    stock.save_pretrained(str(directory), safe_serialization=True)
    if tokenizer is not None:
        tokenizer.save_pretrained(str(directory))
    return directory

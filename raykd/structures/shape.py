"""A model's pruned shape as JSON: which layers, heads and FFN channels it kept.

Three maps, each of original ids, stored side by side in a model's config.json:

- `layer_map`: {stack kind: [kept layer ids]} (`raykd.structures.layers`);
- `head_map`: {attention kind: [[kept head ids] per remaining layer]} (`raykd.structures.heads`);
- `ffn_map`: {FFN kind: [[kept channel ids] per remaining layer]} (`raykd.structures.ffn`).

Heads and channels are numbered over the layers that remain, so `apply_shape` drops layers
first, then shrinks heads and channels. A config written before FFN and layer pruning existed has
only a head map: its layers and FFNs are as built (complete).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from torch import nn

from raykd.errors import ModelFormatError

SHAPE_KEYS: tuple[str, ...] = ("layer_map", "head_map", "ffn_map")


def shape_of(model: nn.Module) -> dict[str, Any]:
    """{"layer_map": ..., "head_map": ..., "ffn_map": ...} of `model` (JSON-serialisable)."""
    from raykd.structures.ffn import ffn_map
    from raykd.structures.heads import head_map
    from raykd.structures.layers import layer_map

    return {"layer_map": layer_map(model), "head_map": head_map(model), "ffn_map": ffn_map(model)}


def apply_shape(model: nn.Module, config: Mapping[str, Any]) -> nn.Module:
    """Shrink a freshly built `model` to the shape recorded in `config` (any of `SHAPE_KEYS`;
    absent ones leave that structure as built). ModelFormatError when a map does not fit."""
    from raykd.structures.ffn import apply_ffn_map
    from raykd.structures.heads import apply_head_map
    from raykd.structures.layers import apply_layer_map

    for key in SHAPE_KEYS:
        if key in config and not isinstance(config[key], Mapping):
            raise ModelFormatError(f"{key} must be a mapping, got {type(config[key]).__name__}")
    if config.get("layer_map"):
        apply_layer_map(model, config["layer_map"])
    if config.get("head_map"):
        apply_head_map(model, config["head_map"])
    if config.get("ffn_map"):
        apply_ffn_map(model, config["ffn_map"])
    return model


def structure_counts(model: nn.Module) -> dict[str, int]:
    """Totals per structure: {"layers": .., "heads": .., "ffn_channels": ..} (for reports)."""
    from raykd.structures.ffn import ffn_widths
    from raykd.structures.heads import head_counts
    from raykd.structures.layers import layer_counts

    return {"layers": sum(layer_counts(model).values()),
            "heads": sum(sum(v) for v in head_counts(model).values()),
            "ffn_channels": sum(sum(v) for v in ffn_widths(model).values())}

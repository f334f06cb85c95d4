"""A model's pruned shape as JSON: which layers, heads and FFN channels it kept.

Three maps, each of original ids, stored side by side in a model's config.json:

- `layer_map`: {stack kind: [kept layer ids]} (`raykd.structures.layers`);
- `head_map`: {attention kind: [[kept head ids] per remaining layer]} (`raykd.structures.heads`);
- `ffn_map`: {FFN kind: [[kept channel ids] per remaining layer]} (`raykd.structures.ffn`);
- one map per structure kind registered beyond these (`raykd.structures.registry`).

Heads and channels are numbered over the layers that remain, so `apply_shape` drops layers
first, then shrinks heads and channels. A config written before FFN and layer pruning existed has
only a head map: its layers and FFNs are as built (complete).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from torch import nn

from raykd.errors import ModelFormatError
from raykd.structures.registry import shape_order

SHAPE_KEYS: tuple[str, ...] = tuple(k.shape_key for k in shape_order())
"""The built-in kinds' map keys ("layer_map", "head_map", "ffn_map"); `shape_keys()` includes plug-ins."""


def shape_keys() -> tuple[str, ...]:
    """Every registered kind's map key, whole-layer kinds first (the order they are applied in)."""
    return tuple(k.shape_key for k in shape_order())


def shape_of(model: nn.Module) -> dict[str, Any]:
    """{"layer_map": ..., "head_map": ..., "ffn_map": ..., plug-in kinds' maps} of `model` (JSON-serialisable)."""
    return {k.shape_key: k.shape_of(model) for k in shape_order()}


def apply_shape(model: nn.Module, config: Mapping[str, Any]) -> nn.Module:
    """Shrink a freshly built `model` to the shape recorded in `config` (any of `shape_keys()`;
    absent ones leave that structure as built). ModelFormatError when a map does not fit."""
    kinds = shape_order()
    for kind in kinds:
        key = kind.shape_key
        if key in config and not isinstance(config[key], Mapping):
            raise ModelFormatError(f"{key} must be a mapping, got {type(config[key]).__name__}")
    for kind in kinds:
        if config.get(kind.shape_key):
            kind.apply_shape(model, config[kind.shape_key])
    return model


def structure_counts(model: nn.Module) -> dict[str, int]:
    """Totals per structure: {"layers": .., "heads": .., "ffn_channels": .., plug-ins' ..} (for reports)."""
    return {k.count_key: k.total(model) for k in shape_order()}

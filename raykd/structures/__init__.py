"""What can be removed from a model, and how: the architecture layer of raykd.

Three kinds of structure, each found by adapters per architecture family, removed physically,
and recorded as a map of original ids so that a model with uneven shapes reloads exactly:

- attention heads per attention kind (`raykd.structures.heads`: BERT family, raykd's MHA);
- FFN channels per layer (`raykd.structures.ffn`: BERT family, raykd's `FeedForward`);
- whole layers per stack (`raykd.structures.layers`: BERT-family encoders, raykd's decoder).

`shape_of` / `apply_shape` (`raykd.structures.shape`) describe and rebuild a pruned shape;
`raykd.structures.serialization` saves and loads it with safetensors. Pure PyTorch +
transformers: no Ray, no task knowledge. See docs/structures.md.

Names are loaded on first use (PEP 562): importing `raykd.structures.registry` (what a chain
config or a search space validates against) does not import torch.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_EXPORTS: dict[str, str] = {
    **dict.fromkeys(('FFN_KINDS', 'FFNBlock', 'apply_ffn_map', 'ffn_blocks_by_kind', 'ffn_map', 'ffn_widths', 'find_ffn_blocks', 'prune_ffn', 'zero_ffn'), 'raykd.structures.ffn'),
    **dict.fromkeys(('DECODER_CROSS', 'DECODER_SELF', 'ENCODER_SELF', 'KINDS', 'AttentionBlock', 'AttentionCapture', 'HeadAdapter', 'HeadMap', 'HeadSpec', 'Kind', 'Projections', 'apply_head_map', 'blocks_by_kind', 'capture_attention', 'find_attention_blocks', 'head_counts', 'head_map', 'head_positions', 'prune_heads', 'register_adapter', 'registered_adapters', 'total_heads', 'zero_heads'), 'raykd.structures.heads'),
    **dict.fromkeys(('LAYER_KINDS', 'QUERY_KIND_OF', 'STACK_OF', 'HiddenCapture', 'apply_layer_map', 'block_layer_ids', 'capture_hidden', 'drop_layers', 'find_layer_stacks', 'layer_counts', 'layer_ids', 'layer_map', 'original_layer_ids'), 'raykd.structures.layers'),
    **dict.fromkeys(('CONFIG_NAME', 'WEIGHTS_NAME', 'check_weights', 'load_pruned', 'load_state_with_shape', 'read_pruned_config', 'save_pruned'), 'raykd.structures.serialization'),
    **dict.fromkeys(('SHAPE_KEYS', 'apply_shape', 'shape_of', 'structure_counts'), 'raykd.structures.shape'),
    **dict.fromkeys(('StructureKind', 'register_structure', 'shape_order', 'structure_kind', 'structure_kinds', 'unregister_structure'), 'raykd.structures.registry'),
}

if TYPE_CHECKING:  # the same names, for type checkers and editors
    from raykd.structures.ffn import FFN_KINDS, FFNBlock, apply_ffn_map, ffn_blocks_by_kind, ffn_map, ffn_widths, find_ffn_blocks, prune_ffn, zero_ffn
    from raykd.structures.heads import DECODER_CROSS, DECODER_SELF, ENCODER_SELF, KINDS, AttentionBlock, AttentionCapture, HeadAdapter, HeadMap, HeadSpec, Kind, Projections, apply_head_map, blocks_by_kind, capture_attention, find_attention_blocks, head_counts, head_map, head_positions, prune_heads, register_adapter, registered_adapters, total_heads, zero_heads
    from raykd.structures.layers import LAYER_KINDS, QUERY_KIND_OF, STACK_OF, HiddenCapture, apply_layer_map, block_layer_ids, capture_hidden, drop_layers, find_layer_stacks, layer_counts, layer_ids, layer_map, original_layer_ids
    from raykd.structures.serialization import CONFIG_NAME, WEIGHTS_NAME, check_weights, load_pruned, load_state_with_shape, read_pruned_config, save_pruned
    from raykd.structures.shape import SHAPE_KEYS, apply_shape, shape_of, structure_counts
    from raykd.structures.registry import StructureKind, register_structure, shape_order, structure_kind, structure_kinds, unregister_structure

__all__ = [
    'CONFIG_NAME', 'DECODER_CROSS', 'DECODER_SELF', 'ENCODER_SELF', 'FFN_KINDS', 'KINDS', 'LAYER_KINDS',
    'QUERY_KIND_OF', 'SHAPE_KEYS', 'STACK_OF', 'WEIGHTS_NAME', 'AttentionBlock', 'AttentionCapture', 'FFNBlock',
    'HiddenCapture', 'HeadAdapter', 'HeadMap', 'HeadSpec', 'Kind', 'Projections', 'apply_ffn_map', 'apply_head_map',
    'apply_layer_map', 'apply_shape', 'block_layer_ids', 'blocks_by_kind', 'capture_attention', 'capture_hidden',
    'check_weights', 'drop_layers', 'ffn_blocks_by_kind', 'ffn_map', 'ffn_widths', 'find_attention_blocks',
    'find_ffn_blocks', 'find_layer_stacks', 'head_counts', 'head_map', 'head_positions', 'layer_counts',
    'layer_ids', 'layer_map', 'load_pruned', 'load_state_with_shape', 'original_layer_ids', 'prune_ffn',
    'prune_heads', 'read_pruned_config', 'register_adapter', 'registered_adapters', 'save_pruned', 'shape_of',
    'structure_counts', 'total_heads', 'zero_ffn', 'zero_heads', 'StructureKind', 'register_structure',
    'shape_order', 'structure_kind', 'structure_kinds', 'unregister_structure',
]


def __getattr__(name: str) -> Any:
    """Import the submodule that defines `name` on first use (torch comes with it)."""
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))

"""Attention heads: the first kind of structure raykd removes.

Knows how each supported architecture lays out its attention heads; finds the blocks, removes
heads physically, records attention maps, and rebuilds uneven head counts from a head map.
Pure PyTorch + transformers: no Ray, no task knowledge. See docs/structures.md.

Adapters (by layout): `raykd.structures.heads.bert` (BERT/RoBERTa, transformers 5),
`raykd.structures.heads.llama` (Llama-layout grouped-query attention) and
`raykd.structures.heads.mha` (`raykd.nn.MultiHeadAttention`). Which models each covers, and so
which adapters `find_attention_blocks` asks, is said by the architecture families that register
them (`raykd.structures.families`, one file per family; `registered_adapters()` reads them).
"""

from raykd.structures.heads.base import (
    AttentionBlock,
    HeadAdapter,
    Projections,
    register_adapter,
    registered_adapters,
)
from raykd.structures.heads.capture import AttentionCapture, capture_attention
from raykd.structures.heads.kinds import DECODER_CROSS, DECODER_SELF, ENCODER_SELF, KINDS, Kind
from raykd.structures.heads.surgery import (
    HeadMap,
    HeadSpec,
    apply_head_map,
    blocks_by_kind,
    find_attention_blocks,
    head_counts,
    head_map,
    head_positions,
    prune_heads,
    total_heads,
    zero_heads,
)

__all__ = [
    "DECODER_CROSS", "DECODER_SELF", "ENCODER_SELF", "KINDS", "AttentionBlock", "AttentionCapture", "HeadAdapter",
    "HeadMap", "HeadSpec", "Kind", "Projections", "apply_head_map", "blocks_by_kind", "capture_attention",
    "find_attention_blocks", "head_counts", "head_map", "head_positions", "prune_heads", "register_adapter",
    "registered_adapters", "total_heads", "zero_heads",
]

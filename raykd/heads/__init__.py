"""Attention-head surgery: the architecture layer ("graph") of raykd.

Knows how each supported architecture lays out its attention heads; finds the blocks, removes
heads physically, records attention maps, and saves/loads models with uneven head counts.
Pure PyTorch + transformers: no Ray, no task knowledge. See docs/heads.md.

Adapters: `raykd.heads.bert` (BERT/RoBERTa family, transformers 5) and `raykd.heads.mha`
(`raykd.nn.MultiHeadAttention`). A new family is one file: subclass `HeadAdapter`, call
`register_adapter`, import it here.
"""

from raykd.heads import bert as _bert  # noqa: F401  (registers the adapter)
from raykd.heads import mha as _mha  # noqa: F401  (registers the adapter)
from raykd.heads.base import (
    AttentionBlock,
    HeadAdapter,
    Projections,
    register_adapter,
    registered_adapters,
)
from raykd.heads.capture import AttentionCapture, capture_attention
from raykd.heads.kinds import DECODER_CROSS, DECODER_SELF, ENCODER_SELF, KINDS, Kind
from raykd.heads.serialization import (
    CONFIG_NAME,
    WEIGHTS_NAME,
    check_weights,
    load_pruned,
    load_state_with_head_map,
    read_pruned_config,
    save_pruned,
)
from raykd.heads.surgery import (
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
    "CONFIG_NAME",
    "DECODER_CROSS",
    "DECODER_SELF",
    "ENCODER_SELF",
    "KINDS",
    "WEIGHTS_NAME",
    "AttentionBlock",
    "AttentionCapture",
    "HeadAdapter",
    "HeadMap",
    "HeadSpec",
    "Kind",
    "Projections",
    "apply_head_map",
    "blocks_by_kind",
    "capture_attention",
    "check_weights",
    "find_attention_blocks",
    "head_counts",
    "head_map",
    "head_positions",
    "load_pruned",
    "load_state_with_head_map",
    "prune_heads",
    "read_pruned_config",
    "register_adapter",
    "registered_adapters",
    "save_pruned",
    "total_heads",
    "zero_heads",
]

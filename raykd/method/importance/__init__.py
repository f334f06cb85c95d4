"""Importance of every prunable structure: heads (the paper's Eqs. 1, 3, 4), FFN channels, layers.

Statistics are measured once per model (`collect_stats`, one calibration pass) and combined into
scores for any alpha; the lowest scores are pruned. See each module's docstring for the readings.
"""

from raykd.method.importance.ffn import (
    ChannelStats,
    channel_weight_norms,
    ffn_random_scores,
    ffn_scores,
    ffn_taylor_scores,
)
from raykd.method.importance.heads import (
    BlockStats,
    HeadStats,
    attention_entropy_sums,
    collect_head_stats,
    random_scores,
    scores,
    taylor_scores,
    weight_norms,
)
from raykd.method.importance.layers import (
    LayerStats,
    block_influence_sums,
    distill_loss_increase,
    layer_distill_scores,
    layer_random_scores,
    layer_scores,
    skipped,
)
from raykd.method.importance.normalise import NORMALISATIONS, Normalisation, normalise
from raykd.method.importance.stats import LEGACY_STATS_NAME, STATS_NAME, StructureStats, collect_stats

__all__ = [
    "LEGACY_STATS_NAME", "NORMALISATIONS", "STATS_NAME", "BlockStats", "ChannelStats", "HeadStats", "LayerStats",
    "Normalisation", "StructureStats", "attention_entropy_sums", "block_influence_sums", "channel_weight_norms",
    "collect_head_stats", "collect_stats", "ffn_random_scores", "ffn_scores", "ffn_taylor_scores",
    "distill_loss_increase", "layer_distill_scores", "layer_random_scores", "layer_scores", "skipped", "normalise", "random_scores", "scores", "taylor_scores", "weight_norms",
]

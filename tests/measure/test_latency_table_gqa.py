"""The latency table on a grouped-query model: it times only head counts a GQA block can have
(within-groups shapes, or whole groups), says which counts it could not build, and predicts a
within-groups student from the same table deterministically."""

from __future__ import annotations

from raykd.data import load_splits
from raykd.measure.latency import build_latency_table, kept_head_ids, uniform_variant
from raykd.structures import head_counts
from raykd.structures.heads import blocks_by_kind
from raykd.task.causal_lm import CausalLMTask, target_expression
from raykd.task.causal_lm_models import tiny_causal_lm


def test_kept_heads_stay_even_over_kv_groups():
    assert kept_head_ids(8, 8, 3) == [0, 1, 2]  # plain multi-head attention: the first k
    assert kept_head_ids(8, 2, 4) == [0, 1, 4, 5]  # 2 of each K/V group (within groups)
    assert kept_head_ids(9, 3, 3) == [0, 3, 6]
    assert kept_head_ids(8, 2, 6) == [0, 1, 2, 4, 5, 6]
    assert kept_head_ids(6, 2, 3) == [0, 1, 2]  # not a multiple of 2 groups: one whole group of 3
    assert kept_head_ids(8, 2, 5) is None and kept_head_ids(8, 2, 0) is None


def test_a_gqa_table_skips_counts_no_block_can_have_and_predicts_buildable_shapes():
    splits = load_splits("synthetic:40", seed=0)
    model, tokenizer = tiny_causal_lm([t for p in splits["train"] for t in (p.text, target_expression(p))])
    task = CausalLMTask(tokenizer, splits, max_new_tokens=4)
    batch = next(iter(task.batches("valid", 2)))
    table = build_latency_table(task, model.eval(), batch, rounds=3, warmup=1)
    assert table.meta["unbuildable"] == {"decoder_self": [0, 1, 3]}  # 4 heads in 2 groups: 2 and 4 exist
    saving = table.saving_ms["decoder_self"]
    assert len(saving) == 5 and saving[4] == 0.0 and saving[1] == saving[2] and saving[3] == saving[4]
    assert all(a >= b for a, b in zip(saving, saving[1:]))
    student = uniform_variant(model, "decoder_self", 2)
    assert head_counts(student)["decoder_self"] == [2, 2]
    assert [b.num_kv_heads for b in blocks_by_kind(student)["decoder_self"]] == [2, 2]  # every K/V head kept
    assert table.predicted_speedup_of(student) == table.predicted_speedup_of(uniform_variant(model, "decoder_self", 2))

"""The method on a grouped-query decoder-only LLM (a tiny random Llama): head units that keep K/V
groups even (within groups, or whole groups; counts rounded down and said), a round plan over heads,
FFN channels and layers, and a whole prune -> distill chain (KL + attention maps + hidden states)
that saves and reloads every round."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch
from transformers import AutoModelForCausalLM, LlamaConfig

from raykd.method.chain import Chain
from raykd.method.config import ChainConfig
from raykd.method.gqa import head_units, select_head_units
from raykd.method.importance import collect_stats
from raykd.method.plan import OriginalShape, plan_round
from raykd.structures import head_counts, layer_counts, shape_of
from raykd.structures.heads import blocks_by_kind
from raykd.task.hf_io import CausalLMIO
from raykd.training import FitConfig, fit

sys.path.insert(0, str(Path(__file__).parent))
from lm_task import RepeatLMTask  # noqa: E402

VOCAB = 24


def _llama(layers: int = 4) -> torch.nn.Module:
    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=VOCAB, hidden_size=48, intermediate_size=32, num_hidden_layers=layers,
                      num_attention_heads=6, num_key_value_heads=2, head_dim=8, max_position_embeddings=32)
    return AutoModelForCausalLM.from_config(cfg)


def test_units_within_groups_take_the_lowest_head_of_every_group_and_groups_average():
    scores = [0.9, 0.1, 0.5, 0.2, 0.8, 0.3]  # groups {0,1,2} and {3,4,5}
    within = head_units(scores, num_kv_heads=2, mode="within-groups")
    assert [u.heads for u in within] == [(1, 3), (2, 5), (0, 4)]
    assert within[0].score == pytest.approx(0.15)
    groups = head_units(scores, num_kv_heads=2, mode="groups")
    assert [u.heads for u in groups] == [(0, 1, 2), (3, 4, 5)] and groups[1].score == pytest.approx(13 / 30)
    assert [u.heads for u in head_units([0.3, 0.1], num_kv_heads=2, mode="groups")] == [(0,), (1,)]  # plain MHA


def test_a_count_that_is_not_whole_units_is_rounded_down_and_said_and_a_block_keeps_one_unit():
    units = {("decoder_self", 0): head_units([0.1, 0.2, 0.3, 0.4], 2, "within-groups"),
             ("decoder_self", 1): head_units([0.5, 0.6, 0.7, 0.8], 2, "within-groups")}
    grouped = dict.fromkeys(units, True)
    chosen, rounded = select_head_units(units, grouped, lambda k: k[0], {"decoder_self": 3})
    assert chosen == {"decoder_self": {0: [0, 2]}} and rounded == {"decoder_self": (3, 2)}
    chosen, _ = select_head_units(units, grouped, lambda k: k[0], {"decoder_self": 8})
    assert chosen == {"decoder_self": {0: [0, 2], 1: [0, 2]}}  # each block keeps its last unit


def _groups_even(model) -> bool:
    return all(b.num_heads % b.num_kv_heads == 0 for b in blocks_by_kind(model)["decoder_self"])


@pytest.mark.parametrize("mode", ["within-groups", "groups"])
def test_a_round_plan_over_heads_ffn_and_layers_keeps_groups_even(mode):
    model, task = _llama(), RepeatLMTask(VOCAB)
    stats = collect_stats(model, task, batches=2, batch_size=16)
    cfg = ChainConfig(p_min=0.5, p_max=0.5, ffn_p_min=0.25, ffn_p_max=0.25, layer_p_min=0.25, layer_p_max=0.25,
                      rounds=1, gqa_heads=mode)
    plan = plan_round(model, stats, cfg, 1, OriginalShape.of(model))
    plan.apply(model)
    assert layer_counts(model) == {"decoder_layers": 3}
    assert _groups_even(model)
    kv = [b.num_kv_heads for b in blocks_by_kind(model)["decoder_self"]]
    if mode == "groups":  # 9 of 18 surviving heads asked, whole groups of 3: 9 go (3 groups)
        assert sum(head_counts(model)["decoder_self"]) == 9 and sum(kv) == 3
    else:  # slices of 2 heads: 8 of the 9 asked go, the rounding is recorded
        assert sum(head_counts(model)["decoder_self"]) == 10 and kv == [2, 2, 2]
        assert plan.rounded == {"decoder_self": (9, 8)}


def test_a_prune_distill_chain_on_a_gqa_llm_distills_logits_maps_and_hidden_states_and_resumes(tmp_path):
    model, task = _llama(), RepeatLMTask(VOCAB)
    base = model.config.to_dict()
    fit(model, task, FitConfig(epochs=15, batch_size=16, lr=1e-2, patience=15), progress=False)
    teacher_accuracy = task.evaluate(model, "valid")["accuracy"]
    assert teacher_accuracy > 0.5  # the copy task is learnt
    cfg = ChainConfig(p_min=0.34, p_max=0.67, ffn_p_min=0.25, ffn_p_max=0.5, layer_p_min=0.0, layer_p_max=0.25, rounds=2,
                      lambda3=1.0, epochs_per_round=3, batch_size=16, lr=5e-3, calib_batches=2, calib_batch_size=16)
    io = CausalLMIO(base)
    seen = []
    result = Chain(task, model, cfg, io, tmp_path / "chain", measure=lambda ref, m, b: {}, progress=False,
                   on_round=lambda record, rdir: seen.append(record), log=lambda _m: None).run()
    last = result.final
    assert [r["round"] for r in seen] == [1, 2]
    assert last["layers_total"] == 3 and _groups_even(result.model)
    assert last["heads_total"] < 18 and last["ffn_channels_total"] < 3 * 32
    assert 0.0 <= last["accuracy"] <= 1.0 and last["accuracy_n"] == 32 and "accuracy_p_vs_teacher" in last
    reloaded = io.load(tmp_path / "chain" / "round-02")
    assert shape_of(reloaded) == shape_of(result.model)
    again = Chain(task, model, cfg, io, tmp_path / "chain", measure=lambda ref, m, b: {}, progress=False,
                  log=lambda _m: None).run()
    assert again.resumed_from == 2 and again.records == result.records


def test_a_block_already_down_to_one_head_per_group_is_never_emptied_by_a_later_round():
    # the second round of a chain sees blocks whose groups are single heads (g = 1): they are no
    # longer "grouped", but a Llama-family block still cannot run with no head at all
    model = _llama(layers=2)
    from raykd.structures import prune_heads

    prune_heads(model, {"decoder_self": {0: [1, 2, 4, 5]}})  # layer 0: 2 heads in 2 groups of 1
    assert [b.num_heads for b in blocks_by_kind(model)["decoder_self"]] == [2, 6]
    task = RepeatLMTask(VOCAB)
    stats = collect_stats(model, task, batches=1, batch_size=8)
    cfg = ChainConfig(p_min=0.75, p_max=0.75, rounds=1)  # asks for 6 of 8 heads: more than layer 1 alone can give
    plan = plan_round(model, stats, cfg, 1, OriginalShape.of(model))
    plan.apply(model)  # before the floor: UnevenGroupsError "cannot remove every head"
    assert all(b.num_heads >= 1 for b in blocks_by_kind(model)["decoder_self"])

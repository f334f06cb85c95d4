"""Structures in the method: importance for FFN channels and layers, one round's plan over heads +
FFN + layers, distillation across dropped layers, a chain that prunes all three and resumes."""

from __future__ import annotations

import copy
import math

import pytest
import torch

from raykd.errors import ConfigError
from raykd.method.chain import Chain, _captured, distillation_loss
from raykd.method.config import ChainConfig
from raykd.method.distill import hidden_mse
from raykd.method.importance import StructureStats, collect_head_stats, collect_stats
from raykd.method.importance.ffn import channel_weight_norms
from raykd.method.round_cost import make_measure
from raykd.method.plan import OriginalShape, plan_round
from raykd.structures import (
    QUERY_KIND_OF,
    capture_attention,
    capture_hidden,
    drop_layers,
    ffn_widths,
    find_ffn_blocks,
    head_counts,
    layer_counts,
    layer_map,
    prune_ffn,
)
from raykd.task.io import SolverIO, load_solver
from raykd.task.mwp import MWPTask

FAST = dict(rounds=2, p_min=0.1, p_max=0.3, epochs_per_round=1, lr=1e-3, calib_batches=2, calib_batch_size=16,
            latency_batch=4, latency_repeats=2, patience=2)


@pytest.fixture(scope="module")
def loaded(tiny_teacher_dir, synthetic_splits):
    teacher, tok, _ = load_solver(tiny_teacher_dir)
    return teacher, tok, MWPTask(tok, teacher.vocab, synthetic_splits)


@pytest.fixture(scope="module")
def stats(loaded):
    teacher, _, task = loaded
    return collect_stats(teacher, task, batches=2, batch_size=16, taylor=True)


def test_ffn_statistics_are_the_mean_absolute_activation_at_the_down_projection(loaded, stats):
    teacher, _, task = loaded
    batch = next(iter(task.batches("train", 16)))
    seen = {}
    block = find_ffn_blocks(teacher)[0]
    handle = block.down.register_forward_pre_hook(lambda _m, args: seen.setdefault("a", args[0].detach()))
    with torch.no_grad():
        task.outputs(teacher.eval(), batch)
    handle.remove()
    rows = task.query_masks(batch)["encoder_self"].bool()
    one_batch = collect_stats(teacher, task, batches=1, batch_size=16, layers=False)
    expected = seen["a"].abs()[rows].mean(0)
    got = torch.tensor(one_batch.ffn[(block.kind, block.layer)].activation)
    assert torch.allclose(got, expected, atol=1e-5)
    assert torch.allclose(torch.tensor(stats.ffn[(block.kind, block.layer)].norm), channel_weight_norms(block), atol=1e-6)
    assert all(len(s.taylor) == len(s.channel_ids) and sum(s.taylor) > 0 for s in stats.ffn.values())
    # heads' statistics are those of the heads-only collector (same pass, same numbers)
    heads_only = collect_head_stats(teacher, task, batches=2, batch_size=16, taylor=True)
    assert heads_only.to_json() == stats.heads.to_json()


def test_block_influence_is_one_minus_cosine_between_a_layers_input_and_output(loaded, stats):
    teacher, _, task = loaded
    batch = next(iter(task.batches("train", 16)))
    with torch.no_grad(), capture_hidden(teacher.eval(), inputs=True) as cap:
        task.outputs(teacher, batch)
    rows = task.query_masks(batch)["decoder_self"].bool()
    x, y = cap.inputs[("decoder_layers", 1)], cap.outputs[("decoder_layers", 1)]
    one_batch = collect_stats(teacher, task, batches=1, batch_size=16, ffn=False)
    expected = (1 - torch.nn.functional.cosine_similarity(x, y, dim=-1))[rows].mean()
    assert one_batch.layers[("decoder_layers", 1)].influence == pytest.approx(float(expected), rel=1e-5)
    assert set(stats.layers) == {("encoder_layers", 0), ("encoder_layers", 1), ("decoder_layers", 0), ("decoder_layers", 1)}


def test_statistics_round_trip_and_say_whether_they_fit_a_model(loaded, stats, tmp_path):
    teacher, _, _ = loaded
    stats.save(tmp_path / "s.json")
    again = StructureStats.load(tmp_path / "s.json")
    assert again.to_json() == stats.to_json()
    assert again.fits(teacher, ffn=True, layers=True, taylor=True)
    (tmp_path / "legacy.json").write_text(stats.heads.to_json())  # a head_stats.json of an older sweep
    legacy = StructureStats.load(tmp_path / "legacy.json")
    assert legacy.fits(teacher, ffn=False, layers=False, taylor=True) and not legacy.fits(teacher, ffn=True, layers=False, taylor=False)
    pruned = copy.deepcopy(teacher)
    prune_ffn(pruned, {"encoder_ffn": {0: [1, 2]}})
    assert not stats.fits(pruned, ffn=True, layers=False, taylor=False)
    dropped = copy.deepcopy(teacher)
    drop_layers(dropped, {"decoder_layers": [0]})
    assert not stats.fits(dropped, ffn=False, layers=True, taylor=False)
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(ConfigError, match="bad.json"):
        StructureStats.load(tmp_path / "bad.json")


def test_a_round_plan_drops_the_lowest_influence_layer_then_counts_heads_and_channels_over_the_survivors(loaded, stats):
    teacher, _, _ = loaded
    cfg = ChainConfig(rounds=1, p_min=0.25, p_max=0.25, ffn_p_min=0.5, ffn_p_max=0.5, layer_p_min=0.5, layer_p_max=0.5)
    plan = plan_round(teacher, stats, cfg, 1, OriginalShape.of(teacher))
    for stack in ("encoder_layers", "decoder_layers"):
        lowest = min(range(2), key=lambda pos: stats.layers[(stack, pos)].influence)
        assert plan.layers[stack] == [lowest]
    # no head or channel is taken from a layer that goes: they are counted over the survivors
    for kind, layers in plan.heads.items():
        stack = "encoder_layers" if kind == "encoder_self" else "decoder_layers"
        assert set(layers) <= {1 - plan.layers[stack][0]}
    student = copy.deepcopy(teacher)
    plan.apply(student)
    assert layer_counts(student) == {"encoder_layers": 1, "decoder_layers": 1}
    for kind, per_layer in head_counts(student).items():
        h = head_counts(teacher)[kind][0]
        assert per_layer == [h - math.floor(0.25 * h)]
    for kind, widths in ffn_widths(student).items():
        w = ffn_widths(teacher)[kind][0]
        assert widths == [w - w // 2]
    assert plan.removed()["layers"] == 2


def test_uniform_shape_keeps_every_layer_alike_and_floors_hold(loaded, stats):
    teacher, _, _ = loaded
    cfg = ChainConfig(rounds=1, p_min=0.5, p_max=0.5, ffn_p_min=0.3, ffn_p_max=0.3, uniform_shape=True)
    student = copy.deepcopy(teacher)
    plan_round(teacher, stats, cfg, 1, OriginalShape.of(teacher)).apply(student)
    assert all(len(set(v)) == 1 for v in head_counts(student).values())
    assert all(len(set(v)) == 1 for v in ffn_widths(student).values())
    # without uniform_shape a per-kind pool may take unevenly; the FFN floor keeps one channel per block
    deep = ChainConfig(rounds=1, p_min=0.1, p_max=0.1, ffn_p_min=0.99, ffn_p_max=0.99)
    s2 = copy.deepcopy(teacher)
    plan_round(teacher, stats, deep, 1, OriginalShape.of(teacher)).apply(s2)
    assert all(w >= 1 for v in ffn_widths(s2).values() for w in v)
    with pytest.raises(ConfigError, match="FFN channels"):
        plan_round(teacher, stats, ChainConfig(rounds=1, p_min=0.1, p_max=0.1, ffn_p_min=0.99, ffn_p_max=0.99,
                                               min_ffn_per_block=600), 1, OriginalShape.of(teacher))


def test_layer_pruning_never_empties_a_stack_and_needs_layer_statistics(loaded, stats):
    teacher, _, _ = loaded
    cfg = ChainConfig(rounds=1, p_min=0.0, p_max=0.0, layer_p_min=0.9, layer_p_max=0.9)
    student = copy.deepcopy(teacher)
    plan_round(teacher, stats, cfg, 1, OriginalShape.of(teacher)).apply(student)
    assert layer_counts(student) == {"encoder_layers": 1, "decoder_layers": 1}
    with pytest.raises(ConfigError, match="layer statistics"):
        plan_round(teacher, StructureStats(stats.heads), cfg, 1, OriginalShape.of(teacher))


def test_distillation_compares_each_student_layer_with_the_teacher_layer_it_was_cut_from(loaded):
    teacher, _, task = loaded
    student = copy.deepcopy(teacher)
    drop_layers(student, {"decoder_layers": [0], "encoder_layers": [0]})
    batch = next(iter(task.batches("train", 8)))
    masks = task.query_masks(batch)
    with torch.no_grad(), capture_attention(student) as cap, capture_hidden(student) as hid:
        task.outputs(student.eval(), batch)
    keys = set(_captured(student, cap, masks))
    assert keys == {("encoder_self", 1), ("decoder_self", 1), ("decoder_cross", 1)}  # original ids, not positions
    assert set(hid.outputs) == {("encoder_layers", 1), ("decoder_layers", 1)}
    # identical weights: a student that kept a teacher layer matches its hidden states exactly only
    # where its input is unchanged; the teacher against itself is 0, and the term is positive here
    with torch.no_grad(), capture_hidden(teacher.eval()) as thid:
        task.outputs(teacher, batch)
    stack_masks = {k: masks[q] for k, q in QUERY_KIND_OF.items()}
    assert float(hidden_mse(thid.outputs, thid.outputs, stack_masks)) == 0.0
    assert float(hidden_mse(thid.outputs, hid.outputs, stack_masks)) > 0.0
    loss = distillation_loss(teacher, task, ChainConfig(lambda3=1.0))
    student.train()
    value, parts = loss(student, batch)
    assert parts["hidden_mse"] > 0 and "attention_mse" in parts and "kl" in parts
    value.backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in student.parameters())
    off = distillation_loss(teacher, task, ChainConfig(lambda3=1.0, distill_hidden=False))
    assert "hidden_mse" not in off(student, batch)[1]


def test_a_chain_prunes_heads_ffn_and_layers_and_resumes_to_the_same_shape(tiny_teacher_dir, synthetic_splits, tmp_path, loaded):
    teacher, tok, task = loaded
    cfg = ChainConfig(**FAST, ffn_p_min=0.25, ffn_p_max=0.5, layer_p_min=0.0, layer_p_max=0.5, lambda3=0.5)
    measure = make_measure(task, repeats=cfg.latency_repeats)
    out = tmp_path / "chain"
    result = Chain(task, teacher, cfg, SolverIO(tok), out, measure, progress=False, log=lambda _m: None).run()
    first, last = result.records
    assert first["layers_removed_now"] == 0 and last["layers_removed_now"] == 2  # floor(0.25 * 2) = 0, floor(0.5 * 2) = 1 per stack
    assert last["layers_kept"] == {"encoder_layers": 1, "decoder_layers": 1}
    for kind, widths in last["ffn_kept"].items():
        w = ffn_widths(teacher)[kind][0]
        assert widths == [w - w // 2]
    assert last["structures"]["layers"] == 2 and last["structures_original"]["layers"] == 4
    assert (last["layers_total"], last["layers_original"]) == (2, 4)  # flat, for the sweep's results rows
    assert last["ffn_channels_total"] == sum(sum(v) for v in last["ffn_kept"].values()) < last["ffn_channels_original"]
    assert last["flops"] < first["flops"] < first["flops_reference"]
    reloaded, _, _ = load_solver(out / "round-02")
    assert layer_map(reloaded) == layer_map(result.model) and ffn_widths(reloaded) == ffn_widths(result.model)
    again = Chain(task, teacher, cfg, SolverIO(tok), out, measure, progress=False, log=lambda _m: None).run()
    assert again.resumed_from == 2 and again.records == result.records

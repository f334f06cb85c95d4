"""Layer importance by the distillation-loss increase when a layer is skipped (beside Block Influence):
skipping is exactly dropping, an identity layer costs nothing and goes first, the figure round-trips."""

from __future__ import annotations

import copy
import json
import sys
from pathlib import Path

import pytest
import torch
from transformers import AutoModelForCausalLM, BertConfig, BertModel, LlamaConfig

from raykd.errors import ConfigError
from raykd.method.chain import Chain
from raykd.method.config import ChainConfig
from raykd.method.importance import StructureStats, collect_stats, skipped
from raykd.method.round_cost import make_measure
from raykd.method.plan import OriginalShape, plan_round
from raykd.structures import drop_layers, find_layer_stacks, layer_map
from raykd.task.io import SolverIO, load_solver
from raykd.task.mwp import MWPTask

sys.path.insert(0, str(Path(__file__).parent))
from lm_task import RepeatLMTask  # noqa: E402

CALIB = dict(batches=2, batch_size=16)


@pytest.fixture(scope="module")
def loaded(tiny_teacher_dir, synthetic_splits):
    teacher, tok, _ = load_solver(tiny_teacher_dir)
    return teacher.eval(), tok, MWPTask(tok, teacher.vocab, synthetic_splits)


def _identity_decoder_layer(model: torch.nn.Module, position: int) -> None:
    """Zero every residual branch of a pre-LN decoder layer: x + 0 + 0 + 0 is exactly x."""
    layer = find_layer_stacks(model)["decoder_layers"][position]
    with torch.no_grad():
        for linear in (layer.self_attn.o, layer.cross_attn.o, layer.ffn.down):
            linear.weight.zero_()
            linear.bias.zero_()


def _bert() -> torch.nn.Module:
    torch.manual_seed(0)
    return BertModel(BertConfig(hidden_size=64, num_hidden_layers=3, num_attention_heads=4, intermediate_size=128,
                                vocab_size=100, attn_implementation="sdpa")).eval()


def _llama() -> torch.nn.Module:
    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=24, hidden_size=48, intermediate_size=32, num_hidden_layers=3, num_attention_heads=6,
                      num_key_value_heads=2, head_dim=8, max_position_embeddings=32)
    return AutoModelForCausalLM.from_config(cfg).eval()


def _ids(vocab: int) -> dict[str, torch.Tensor]:
    ids = torch.randint(3, vocab, (2, 9), generator=torch.Generator().manual_seed(1))
    mask = torch.ones_like(ids)
    mask[1, 6:] = 0
    return {"input_ids": ids, "attention_mask": mask}


@pytest.mark.parametrize("family", ["solver", "bert", "llama"])
def test_skipping_a_layer_computes_what_dropping_it_computes(family, loaded):
    if family == "solver":
        model, task = loaded[0], loaded[2]
        batch = next(iter(task.batches("valid", 8)))
        run = lambda m: task.outputs(m, batch).logits  # noqa: E731
    else:
        model = _bert() if family == "bert" else _llama()
        batch = _ids(100 if family == "bert" else 24)
        run = (lambda m: m(**batch).last_hidden_state) if family == "bert" else (lambda m: m(**batch).logits)  # noqa: E731
    for kind, stack in find_layer_stacks(model).items():
        for position in range(len(stack)):
            dropped = copy.deepcopy(model)
            drop_layers(dropped, {kind: [position]})
            with torch.no_grad():
                with skipped(stack[position]):
                    skip = run(model)
                full = run(model)
                expected = run(dropped)
            torch.testing.assert_close(skip, expected, rtol=1e-5, atol=1e-5)
            assert not torch.allclose(full, expected, atol=1e-4)  # the layer did matter, and the hook is gone again


def test_an_identity_layer_costs_no_distillation_loss_and_is_ranked_lowest(loaded):
    teacher, _, task = loaded
    model = copy.deepcopy(teacher)
    _identity_decoder_layer(model, 0)
    stats = collect_stats(model, task, **CALIB, layer_distill=True, tau=2.0)
    distill = {k: s.distill_loss for k, s in stats.layers.items()}
    assert distill[("decoder_layers", 0)] == pytest.approx(0.0, abs=1e-9)
    assert all(v > 1e-6 for k, v in distill.items() if k != ("decoder_layers", 0))
    assert min(distill, key=distill.get) == ("decoder_layers", 0)
    # Block Influence is unchanged by the extra figure (the same calibration pass)
    plain = collect_stats(model, task, **CALIB)
    assert {k: s.influence for k, s in plain.layers.items()} == {k: s.influence for k, s in stats.layers.items()}
    assert all(s.distill_loss is None for s in plain.layers.values())
    # and the round's plan drops it: one decoder layer of two with layer_p_max 0.5
    cfg = ChainConfig(rounds=1, p_min=0.0, p_max=0.0, layer_p_max=0.5, layer_importance="distill-loss")
    plan = plan_round(model, stats, cfg, 1, OriginalShape.of(model))
    assert plan.layers["decoder_layers"] == [0]
    # without the figure the plan refuses (one line), it never falls back to Block Influence
    with pytest.raises(ConfigError, match="distill-loss needs statistics"):
        plan_round(model, plain, cfg, 1, OriginalShape.of(model))


def test_the_distillation_loss_figure_round_trips_and_is_absent_when_not_measured(loaded):
    teacher, _, task = loaded
    stats = collect_stats(teacher, task, batches=1, batch_size=8, ffn=False, layer_distill=True)
    back = StructureStats.from_json(stats.to_json())
    assert back.layers == stats.layers and all(s.distill_loss is not None for s in back.layers.values())
    assert back.fits(teacher, ffn=False, layers=True, taylor=False, distill_loss=True)
    plain = collect_stats(teacher, task, batches=1, batch_size=8, ffn=False)
    assert all("distill_loss" not in row for row in json.loads(plain.to_json())["layers"])  # the file as before
    assert not StructureStats.from_json(plain.to_json()).fits(teacher, ffn=False, layers=True, taylor=False, distill_loss=True)


def test_distill_loss_importance_works_on_a_llama_family_model():
    model, task = _llama(), RepeatLMTask(vocab_size=24, sizes={"train": 32, "valid": 8, "test": 8})
    stats = collect_stats(model, task, batches=1, batch_size=16, ffn=False, layer_distill=True)
    assert sorted(stats.layers) == [("decoder_layers", i) for i in range(3)]
    assert all(s.distill_loss > 0 for s in stats.layers.values())


def test_a_chain_ranks_layers_by_distillation_loss_when_asked(loaded, tmp_path):
    teacher, tok, task = loaded
    model = copy.deepcopy(teacher)
    _identity_decoder_layer(model, 0)
    cfg = ChainConfig(rounds=1, p_min=0.1, p_max=0.1, layer_p_max=0.5, layer_importance="distill-loss", epochs_per_round=1,
                      steps_per_round=2, lr=1e-3, calib_batches=2, calib_batch_size=16, latency_batch=4, latency_repeats=1)
    result = Chain(task, model, cfg, SolverIO(tok), tmp_path / "c", make_measure(task, repeats=1), progress=False,
                   log=lambda _m: None).run()
    assert layer_map(result.model)["decoder_layers"] == [1]  # the identity layer went
    assert result.records[0]["layers_removed_now"] == 2  # one per stack

"""FFN channels and whole layers: removal equals zeroing (FFN) or skipping (layers), in every
adapter, repeated and mixed with head pruning; shapes round-trip through save/load."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from raykd.structures import find_attention_blocks, head_counts, prune_heads, zero_heads
from raykd.structures.ffn import apply_ffn_map, ffn_map, ffn_widths, prune_ffn, zero_ffn
from raykd.structures.layers import apply_layer_map, drop_layers, find_layer_stacks, layer_counts, layer_map

ATOL = 1e-5


def _bert(seed: int = 0) -> nn.Module:
    from transformers import BertConfig, BertModel

    torch.manual_seed(seed)
    cfg = BertConfig(vocab_size=120, hidden_size=32, num_hidden_layers=4, num_attention_heads=4, intermediate_size=48,
                     max_position_embeddings=64, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    return BertModel(cfg, add_pooling_layer=False).eval()


def _bert_out(model: nn.Module) -> torch.Tensor:
    g = torch.Generator().manual_seed(3)
    ids = torch.randint(1, 120, (3, 11), generator=g)
    mask = torch.ones_like(ids)
    mask[1, 7:] = 0
    with torch.no_grad():
        return model(input_ids=ids, attention_mask=mask).last_hidden_state


@pytest.fixture(scope="module")
def solver_and_batch(synthetic_splits):
    """A tiny solver with 3 decoder layers (weights spread out so every structure matters) and a batch."""
    from raykd.task.mwp import MWPTask
    from raykd.task.teacher import SolverSpec, build_solver_from_spec

    model, tok = build_solver_from_spec(SolverSpec(preset="tiny", decoder_layers=3), synthetic_splits["train"], seed=0)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.1)
    return model.eval(), next(iter(MWPTask(tok, model.vocab, synthetic_splits).batches("valid", 6))), tok


def _solver_out(model: nn.Module, batch) -> torch.Tensor:
    with torch.no_grad():
        return model(**batch)


class _Skip(nn.Module):
    """The identity, for any layer's call signature: what a dropped layer must equal."""

    def forward(self, hidden_states, *args, **kwargs):
        return hidden_states


# ---- FFN channels ------------------------------------------------------------------------------


def test_bert_ffn_channels_removed_equal_zeroed_repeated_and_mixed_with_heads():
    base = _bert()
    assert ffn_widths(base) == {"encoder_ffn": [48, 48, 48, 48]}
    first = {"encoder_ffn": {0: [0, 5, 47], 2: list(range(48)), 3: [1]}}  # layer 2 loses every channel
    heads = {"encoder_self": {1: [0, 2]}}
    zeroed, pruned = copy.deepcopy(base), copy.deepcopy(base)
    zero_ffn(zeroed, first)
    zero_heads(zeroed, heads)
    prune_ffn(pruned, first)
    prune_heads(pruned, heads)
    assert ffn_widths(pruned) == {"encoder_ffn": [45, 48, 0, 47]}
    torch.testing.assert_close(_bert_out(pruned), _bert_out(zeroed), atol=ATOL, rtol=0)
    # again, by current positions of the already pruned model: position 0 of layer 0 is original 1
    prune_ffn(pruned, {"encoder_ffn": {0: [0]}})
    zero_ffn(zeroed, {"encoder_ffn": {0: [1]}})
    assert ffn_map(pruned)["encoder_ffn"][0][:2] == [2, 3]
    torch.testing.assert_close(_bert_out(pruned), _bert_out(zeroed), atol=ATOL, rtol=0)
    assert not torch.allclose(_bert_out(pruned), _bert_out(base), atol=1e-3)  # it did change the model


def test_solver_decoder_ffn_channels_removed_equal_zeroed(solver_and_batch):
    solver, solver_batch, _ = solver_and_batch
    widths = ffn_widths(solver)
    assert set(widths) == {"encoder_ffn", "decoder_ffn"} and len(widths["decoder_ffn"]) == 3
    spec = {"decoder_ffn": {0: list(range(0, widths["decoder_ffn"][0], 2)), 2: list(range(widths["decoder_ffn"][2]))},
            "encoder_ffn": {1: [3, 4]}}
    zeroed, pruned = copy.deepcopy(solver), copy.deepcopy(solver)
    zero_ffn(zeroed, spec)
    prune_ffn(pruned, spec)
    torch.testing.assert_close(_solver_out(pruned, solver_batch), _solver_out(zeroed, solver_batch), atol=ATOL, rtol=0)
    assert ffn_widths(pruned)["decoder_ffn"][2] == 0


def test_bad_ffn_specs_are_refused_before_anything_changes():
    model = _bert()
    before = ffn_map(model)
    with pytest.raises(ValueError, match="positions \\[48\\] out of range"):
        prune_ffn(model, {"encoder_ffn": {0: [1], 1: [48]}})
    with pytest.raises(ValueError, match="layer 9 out of range"):
        prune_ffn(model, {"encoder_ffn": {9: [0]}})
    with pytest.raises(ValueError, match="no decoder_ffn"):
        prune_ffn(model, {"decoder_ffn": {0: [0]}})
    assert ffn_map(model) == before


# ---- whole layers ------------------------------------------------------------------------------


def test_dropping_bert_layers_equals_skipping_them_and_renumbers_the_rest():
    base = _bert()
    skipped, dropped = copy.deepcopy(base), copy.deepcopy(base)
    skipped.encoder.layer[1] = _Skip()
    skipped.encoder.layer[3] = _Skip()
    assert drop_layers(dropped, {"encoder_layers": [1, 3]}) == {"encoder_layers": [0, 2]}
    torch.testing.assert_close(_bert_out(dropped), _bert_out(skipped), atol=ATOL, rtol=0)
    assert head_counts(dropped)["encoder_self"] == [4, 4] and len(ffn_widths(dropped)["encoder_ffn"]) == 2
    # heads and channels are numbered over the layers that remain: layer 1 is now original layer 2
    # (in `skipped` too, whose _Skip modules hold no structure)
    prune_heads(dropped, {"encoder_self": {1: [0]}})
    prune_ffn(dropped, {"encoder_ffn": {1: [0, 1]}})
    zero_heads(skipped, {"encoder_self": {1: [0]}})
    zero_ffn(skipped, {"encoder_ffn": {1: [0, 1]}})
    assert [b.name for b in find_attention_blocks(dropped)][1].startswith("encoder.layer.1.")
    assert [b.name for b in find_attention_blocks(skipped)][1].startswith("encoder.layer.2.")
    torch.testing.assert_close(_bert_out(dropped), _bert_out(skipped), atol=ATOL, rtol=0)
    assert drop_layers(dropped, {"encoder_layers": [0]}) == {"encoder_layers": [2]}  # repeated


def test_dropping_solver_decoder_layers_equals_skipping_them(solver_and_batch):
    solver, solver_batch, _ = solver_and_batch
    skipped, dropped = copy.deepcopy(solver), copy.deepcopy(solver)
    skipped.layers[1] = _Skip()
    drop_layers(dropped, {"decoder_layers": [1]})
    assert layer_counts(dropped) == {"encoder_layers": layer_counts(solver)["encoder_layers"], "decoder_layers": 2}
    assert head_counts(dropped)["decoder_cross"] == head_counts(solver)["decoder_cross"][:2]
    torch.testing.assert_close(_solver_out(dropped, solver_batch), _solver_out(skipped, solver_batch), atol=ATOL, rtol=0)


def test_a_stack_keeps_at_least_one_layer_and_bad_positions_are_refused():
    model = _bert()
    with pytest.raises(ValueError, match="would leave none"):
        drop_layers(model, {"encoder_layers": [0, 1, 2, 3]})
    with pytest.raises(ValueError, match="positions \\[4\\] out of range"):
        drop_layers(model, {"encoder_layers": [4]})
    with pytest.raises(ValueError, match="no decoder_layers"):
        drop_layers(model, {"decoder_layers": [0]})
    assert layer_counts(model) == {"encoder_layers": 4}


def test_layer_and_ffn_maps_rebuild_the_shape_on_a_fresh_model():
    pruned = _bert()
    drop_layers(pruned, {"encoder_layers": [2]})
    prune_ffn(pruned, {"encoder_ffn": {0: [3, 4], 2: list(range(10))}})
    fresh = _bert(seed=5)  # other weights, same architecture
    apply_layer_map(fresh, layer_map(pruned))
    apply_ffn_map(fresh, ffn_map(pruned))
    assert layer_map(fresh) == layer_map(pruned) and ffn_map(fresh) == ffn_map(pruned)
    fresh.load_state_dict(pruned.state_dict())  # same tensor names and shapes: strict load works
    torch.testing.assert_close(_bert_out(fresh), _bert_out(pruned), atol=0, rtol=0)
    from raykd.errors import ModelFormatError

    with pytest.raises(ModelFormatError, match="layer map keeps encoder_layers \\[0, 7\\]"):
        apply_layer_map(_bert(), {"encoder_layers": [0, 7]})
    with pytest.raises(ModelFormatError, match="FFN map has 2 encoder_ffn layers, the model has 4"):
        apply_ffn_map(_bert(), {"encoder_ffn": [[0], [1]]})
    assert list(find_layer_stacks(_bert())) == ["encoder_layers"]


# ---- accounting and save/load -------------------------------------------------------------------


def test_params_and_flops_count_ffn_width_and_depth_exactly():
    from raykd.measure import count_params, flops

    base = _bert()
    hidden, batch, seq = 32, 2, 10
    f0, p0 = flops(base, batch, seq).total, count_params(base)
    narrow = copy.deepcopy(base)
    prune_ffn(narrow, {"encoder_ffn": {0: list(range(8)), 3: list(range(48))}})  # 8 + 48 channels gone
    removed = 8 + 48
    assert count_params(narrow) == p0 - removed * (hidden + 1 + hidden)  # up row + up bias + down column
    assert flops(narrow, batch, seq).total == f0 - removed * 2 * 2 * hidden * batch * seq  # two Linears, 2 FLOPs/MAC
    shallow = copy.deepcopy(base)
    drop_layers(shallow, {"encoder_layers": [1]})
    per_layer = (f0 - flops(_bert_with_layers(3), batch, seq).total)
    assert flops(shallow, batch, seq).total == f0 - per_layer


def _bert_with_layers(n: int) -> nn.Module:
    from transformers import BertConfig, BertModel

    cfg = BertConfig(vocab_size=120, hidden_size=32, num_hidden_layers=n, num_attention_heads=4, intermediate_size=48,
                     max_position_embeddings=64)
    return BertModel(cfg, add_pooling_layer=False)


def test_a_solver_with_every_structure_pruned_round_trips_and_a_wrong_shape_is_refused(solver_and_batch, tmp_path):
    import json

    from raykd.errors import ModelFormatError
    from raykd.structures import shape_of
    from raykd.task.io import load_solver, save_solver

    solver, batch, tokenizer = solver_and_batch
    model = copy.deepcopy(solver)
    drop_layers(model, {"decoder_layers": [0], "encoder_layers": [0]})
    prune_heads(model, {"decoder_self": {1: [0, 1, 2, 3]}, "encoder_self": {0: [1]}})
    prune_ffn(model, {"decoder_ffn": {0: list(range(5))}, "encoder_ffn": {0: [0, 2]}})
    saved = save_solver(model, tokenizer, tmp_path / "m")
    loaded, _, config = load_solver(saved)
    assert shape_of(loaded) == shape_of(model) and config["layer_map"] == {"encoder_layers": [1], "decoder_layers": [1, 2]}
    torch.testing.assert_close(_solver_out(loaded, batch), _solver_out(model, batch), atol=0, rtol=0)
    # a config whose FFN map does not describe the stored weights: one clear line, nothing loaded
    cfg_path = saved / "config.json"
    cfg = json.loads(cfg_path.read_text())
    cfg["ffn_map"]["decoder_ffn"][0] = cfg["ffn_map"]["decoder_ffn"][0][1:]
    cfg_path.write_text(json.dumps(cfg))
    with pytest.raises(ModelFormatError, match="decoder_ffn layer 0"):
        load_solver(saved)

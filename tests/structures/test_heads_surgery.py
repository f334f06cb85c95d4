import copy

import pytest
import torch
from heads_fixtures import (
    BERT_LIKE_SPEC,
    Seq2Seq,
    assert_rel_close,
    hf_inputs,
    seq2seq_inputs,
    tiny_hf,
    toy_decoder,
    toy_inputs,
)
from torch import nn

from raykd.errors import ModelFormatError, RaykdInputError
from raykd.structures import (
    apply_head_map,
    find_attention_blocks,
    head_counts,
    head_map,
    head_positions,
    prune_heads,
    total_heads,
    zero_heads,
)
from raykd.measure import count_params

BERT_SPEC = BERT_LIKE_SPEC
MHA_SPEC = {"decoder_self": {0: [2], 1: [0, 1]}, "decoder_cross": {0: [3, 0, 1], 1: [0, 1, 2, 3]}}


def hf_out(model, inputs):
    return model(**inputs).last_hidden_state


# --- finding blocks --------------------------------------------------------------------------


def test_find_blocks_bert_numbering_and_accessors():
    model = tiny_hf("bert")
    blocks = find_attention_blocks(model)
    assert [(b.kind, b.layer, b.name) for b in blocks] == [
        ("encoder_self", i, f"encoder.layer.{i}.attention") for i in range(3)
    ]
    b = blocks[1]
    layer = model.encoder.layer[1].attention
    assert b.q is layer.self.query and b.k is layer.self.key and b.v is layer.self.value and b.o is layer.output.dense
    assert (b.num_heads, b.head_dim, b.head_ids, b.num_kv_heads) == (4, 16, [0, 1, 2, 3], 4)


def test_find_blocks_numbers_layers_per_kind(seq2seq):
    kinds = [(b.kind, b.layer) for b in find_attention_blocks(seq2seq)]
    assert kinds == [("encoder_self", 0), ("encoder_self", 1), ("encoder_self", 2),
                     ("decoder_self", 0), ("decoder_cross", 0), ("decoder_self", 1), ("decoder_cross", 1)]
    assert head_counts(seq2seq) == {"encoder_self": [4, 4, 4], "decoder_self": [4, 4], "decoder_cross": [4, 4]}


def test_model_without_attention_is_refused():
    with pytest.raises(RaykdInputError, match=r"model Sequential has no attention heads .*supported: .*BERT"):
        find_attention_blocks(nn.Sequential(nn.Linear(4, 4), nn.ReLU(), nn.Linear(4, 2)))


# --- equivalence: pruning == zeroing ----------------------------------------------------------


@pytest.mark.parametrize("family", ["bert", "roberta"])
@pytest.mark.parametrize("impl", ["eager", "sdpa"])
def test_hf_pruning_equals_zeroing(family, impl):
    base = tiny_hf(family, impl)
    inputs = hf_inputs()
    zeroed, pruned = copy.deepcopy(base), copy.deepcopy(base)
    zero_heads(zeroed, BERT_SPEC)
    new_map = prune_heads(pruned, BERT_SPEC)
    assert new_map == {"encoder_self": [[0, 2, 3], [], [1, 2]]}
    assert head_counts(pruned) == {"encoder_self": [3, 0, 2]}
    with torch.no_grad():
        ref, out, full = hf_out(zeroed, inputs), hf_out(pruned, inputs), hf_out(base, inputs)
    assert_rel_close(out, ref)
    assert (full - ref).abs().max() > 1e-3  # the heads mattered: the test can fail
    s = pruned.encoder.layer[0].attention.self
    assert (s.num_attention_heads, s.all_head_size, s.query.out_features) == (3, 48, 48)
    assert pruned.encoder.layer[0].attention.output.dense.in_features == 48


@pytest.mark.parametrize("family", ["xlm-roberta", "electra"])
def test_other_bert_like_families(family):
    from transformers import (
        ElectraConfig,
        ElectraModel,
        XLMRobertaConfig,
        XLMRobertaModel,
    )

    torch.manual_seed(0)
    if family == "electra":
        base = ElectraModel(ElectraConfig(embedding_size=32, hidden_size=64, num_hidden_layers=3, num_attention_heads=4,
                                          intermediate_size=128, vocab_size=100)).eval()
    else:
        base = XLMRobertaModel(XLMRobertaConfig(hidden_size=64, num_hidden_layers=3, num_attention_heads=4,
                                                intermediate_size=128, vocab_size=100)).eval()
    zeroed, pruned = copy.deepcopy(base), copy.deepcopy(base)
    zero_heads(zeroed, BERT_SPEC)
    prune_heads(pruned, BERT_SPEC)
    with torch.no_grad():
        assert_rel_close(hf_out(pruned, hf_inputs()), hf_out(zeroed, hf_inputs()))


def test_bert_decoder_with_cross_attention():
    base = tiny_hf("bert", "eager", is_decoder=True, add_cross_attention=True)
    kinds = [(b.kind, b.layer) for b in find_attention_blocks(base)]
    assert kinds == [("decoder_self", 0), ("decoder_cross", 0), ("decoder_self", 1), ("decoder_cross", 1),
                     ("decoder_self", 2), ("decoder_cross", 2)]
    spec = {"decoder_self": {0: [0, 1, 2, 3], 2: [1]}, "decoder_cross": {1: [0, 1, 2, 3], 2: [2, 3]}}
    zeroed, pruned = copy.deepcopy(base), copy.deepcopy(base)
    zero_heads(zeroed, spec)
    prune_heads(pruned, spec)
    inputs = {**hf_inputs(), "encoder_hidden_states": torch.randn(2, 6, 64, generator=torch.Generator().manual_seed(3))}
    with torch.no_grad():
        assert_rel_close(hf_out(pruned, inputs), hf_out(zeroed, inputs))
        # Incremental decoding with a cache (layer 0's self-attention is empty) == full pass.
        ids, enc = inputs["input_ids"][:1], inputs["encoder_hidden_states"][:1]
        full = pruned(input_ids=ids, encoder_hidden_states=enc, use_cache=False).last_hidden_state
        first = pruned(input_ids=ids[:, :-1], encoder_hidden_states=enc, use_cache=True)
        assert first.past_key_values.get_seq_length() == ids.shape[1] - 1
        step = pruned(input_ids=ids[:, -1:], encoder_hidden_states=enc, past_key_values=first.past_key_values)
    assert_rel_close(step.last_hidden_state[:, -1], full[:, -1])


def test_mha_pruning_equals_zeroing():
    base = toy_decoder()
    inputs = toy_inputs()
    zeroed, pruned = copy.deepcopy(base), copy.deepcopy(base)
    zero_heads(zeroed, MHA_SPEC)
    assert prune_heads(pruned, MHA_SPEC) == {
        "decoder_self": [[0, 1, 3], [2, 3]],
        "decoder_cross": [[2], []],
    }
    with torch.no_grad():
        assert_rel_close(pruned(*inputs), zeroed(*inputs))
        assert (base(*inputs) - zeroed(*inputs)).abs().max() > 1e-3
    attn = pruned.layers[1].cross_attn
    assert (attn.num_heads, attn.head_ids, attn.q.out_features, attn.o.in_features) == (0, [], 0, 0)


def test_mixed_model_all_kinds(seq2seq):
    spec = {**BERT_SPEC, **MHA_SPEC}
    inputs = seq2seq_inputs()
    zeroed, pruned = copy.deepcopy(seq2seq), copy.deepcopy(seq2seq)
    zero_heads(zeroed, spec)
    prune_heads(pruned, spec)
    with torch.no_grad():
        assert_rel_close(pruned(**inputs), zeroed(**inputs))
    assert total_heads(pruned) == total_heads(seq2seq) - 7 - 10


@pytest.mark.parametrize("make", ["bert", "mha"])
def test_repeated_pruning(make):
    base = tiny_hf("bert", "sdpa") if make == "bert" else toy_decoder()
    kind = "encoder_self" if make == "bert" else "decoder_cross"
    inputs = hf_inputs() if make == "bert" else toy_inputs()

    def run(m):
        with torch.no_grad():
            return hf_out(m, inputs) if make == "bert" else m(*inputs)

    pruned = copy.deepcopy(base)
    prune_heads(pruned, {kind: {0: [1]}})  # ids left: [0, 2, 3]
    prune_heads(pruned, {kind: {0: [1]}})  # position 1 is now original id 2 -> [0, 3]
    prune_heads(pruned, {kind: {0: [3], 1: [0]}}, by="original")  # -> [0]; layer 1 -> [1, 2, 3]
    assert head_map(pruned)[kind][:2] == [[0], [1, 2, 3]]
    prune_heads(pruned, {kind: {0: [0]}})  # the whole block
    zeroed = copy.deepcopy(base)
    zero_heads(zeroed, {kind: {0: [0, 1, 2, 3], 1: [0]}}, by="original")
    assert_rel_close(run(pruned), run(zeroed))


# --- parameters, dtype, grad, untouched -------------------------------------------------------


def test_param_count_drops_by_exact_amount():
    model = tiny_hf("bert")
    before = count_params(model)
    prune_heads(model, BERT_SPEC)
    hidden, d, removed = 64, 16, 7
    per_head = 3 * (d * hidden + d) + hidden * d  # Q/K/V rows + biases, O columns
    assert before - count_params(model) == removed * per_head

    dec = toy_decoder()
    before = count_params(dec)
    prune_heads(dec, MHA_SPEC)
    assert before - count_params(dec) == 10 * (3 * (8 * 32 + 8) + 32 * 8)


def test_pruning_preserves_dtype_grad_flags_and_other_params():
    model = tiny_hf("bert").double()
    model.encoder.layer[0].attention.self.key.weight.requires_grad_(False)
    block_params = {id(p) for b in find_attention_blocks(model) for lin in b.projections for p in lin.parameters()}
    others = {n: p for n, p in model.named_parameters() if id(p) not in block_params}
    o_bias = model.encoder.layer[0].attention.output.dense.bias
    prune_heads(model, BERT_SPEC)
    after = dict(model.named_parameters())
    for n, p in others.items():  # same Parameter objects, same values
        assert after[n] is p
    assert model.encoder.layer[0].attention.output.dense.bias is o_bias  # O's bias is not sliced
    blk = find_attention_blocks(model)[0]
    assert all(p.dtype == torch.float64 for p in model.parameters())
    assert not blk.k.weight.requires_grad and blk.q.weight.requires_grad
    assert blk.q.weight.is_contiguous() and blk.o.weight.is_contiguous()


def test_pruned_model_trains():
    model = tiny_hf("bert", "sdpa")
    prune_heads(model, BERT_SPEC)
    model.train()
    out = hf_out(model, hf_inputs())
    out.pow(2).mean().backward()
    blk = find_attention_blocks(model)[0]
    assert blk.q.weight.grad is not None and blk.q.weight.grad.shape == (48, 64)
    assert torch.isfinite(blk.q.weight.grad).all() and blk.q.weight.grad.abs().sum() > 0


def test_deepcopy_of_emptied_model():
    model = tiny_hf("bert")
    prune_heads(model, BERT_SPEC)
    copied = copy.deepcopy(model)
    assert head_map(copied) == head_map(model)
    with torch.no_grad():
        assert torch.equal(hf_out(copied, hf_inputs()), hf_out(model, hf_inputs()))


# --- invalid specs ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "spec, by, match",
    [
        ({"encoder_self": {0: [4]}}, "position", "out of range"),
        ({"encoder_self": {3: [0]}}, "position", "layer 3 out of range"),
        ({"decoder_self": {0: [0]}}, "position", "has no decoder_self"),
        ({"encoder": {0: [0]}}, "position", "unknown attention kind"),
        ({"encoder_self": {0: [1]}}, "index", "by must be"),
    ],
)
def test_invalid_specs(spec, by, match):
    model = tiny_hf("bert")
    with pytest.raises(ValueError, match=match):
        prune_heads(model, spec, by=by)
    assert head_counts(model) == {"encoder_self": [4, 4, 4]}


def test_original_ids_must_be_present():
    model = tiny_hf("bert")
    prune_heads(model, {"encoder_self": {0: [1]}})
    with pytest.raises(ValueError, match="head 1 is not among"):
        prune_heads(model, {"encoder_self": {0: [1]}}, by="original")


def test_head_positions():
    assert head_positions([0, 2, 3, 5], [3, 5, 0]) == [2, 3, 0]
    with pytest.raises(ValueError):
        head_positions([0, 2], [1])


# --- apply_head_map -----------------------------------------------------------------------------


def test_apply_head_map_rebuilds_structure(seq2seq):
    pruned = copy.deepcopy(seq2seq)
    prune_heads(pruned, {**BERT_SPEC, **MHA_SPEC})
    fresh = Seq2Seq()
    apply_head_map(fresh, head_map(pruned))
    assert head_map(fresh) == head_map(pruned)
    shapes = {k: v.shape for k, v in pruned.state_dict().items()}
    assert {k: v.shape for k, v in fresh.state_dict().items()} == shapes
    fresh.load_state_dict(pruned.state_dict(), strict=True)
    inputs = seq2seq_inputs()
    with torch.no_grad():
        assert torch.equal(fresh(**inputs), pruned(**inputs))
    apply_head_map(fresh, head_map(pruned))  # idempotent
    assert head_map(fresh) == head_map(pruned)


@pytest.mark.parametrize(
    "mutate, match",
    [
        (lambda hm: hm["encoder_self"].pop(), "2 encoder_self layers, the model has 3"),
        (lambda hm: hm.pop("decoder_cross"), "covers kinds"),
        (lambda hm: hm["encoder_self"].__setitem__(0, [0, 7]), r"keeps heads \[0, 7\]"),
        (lambda hm: hm["encoder_self"].__setitem__(0, [2, 0]), "out of order"),
        (lambda hm: hm.__setitem__("encoder", []), "unknown attention kinds"),
    ],
)
def test_apply_head_map_refuses_bad_maps(seq2seq, mutate, match):
    hm = head_map(seq2seq)
    mutate(hm)
    with pytest.raises(ModelFormatError, match=match):
        apply_head_map(seq2seq, hm)


def test_head_params_are_the_heads_slices():
    model = tiny_hf("bert")
    prune_heads(model, {"encoder_self": {0: [1]}})
    block = find_attention_blocks(model)[0]  # heads [0, 2, 3] left; position 1 is original head 2
    full = tiny_hf("bert").encoder.layer[0].attention
    got = block.head_params(1)
    assert torch.equal(got["q"], full.self.query.weight[32:48])
    assert torch.equal(got["k_bias"], full.self.key.bias[32:48])
    assert torch.equal(got["v"], full.self.value.weight[32:48])
    assert torch.equal(got["o"], full.output.dense.weight[:, 32:48])
    with pytest.raises(ValueError):
        block.head_params(3)

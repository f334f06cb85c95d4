import copy

import pytest
import torch
from heads_fixtures import (
    BERT_LIKE_SPEC,
    SMALL,
    assert_rel_close,
    hf_inputs,
    seq2seq_inputs,
    tiny_hf,
    toy_decoder,
    toy_inputs,
)

from raykd.structures import capture_attention, head_positions, prune_heads, zero_heads
from raykd.structures.heads.hf_capture import CaptureUnavailableError

SPEC = BERT_LIKE_SPEC
MHA_SPEC = {"decoder_self": {0: [2], 1: [0, 1]}, "decoder_cross": {0: [3, 0, 1], 1: [0, 1, 2, 3]}}


@pytest.mark.parametrize("impl", ["sdpa", "eager"])
def test_hf_maps_are_probabilities_and_outputs_unchanged(impl):
    model = tiny_hf("bert", impl)
    prune_heads(model, SPEC)
    inputs = hf_inputs()
    with torch.no_grad():
        plain = model(**inputs).last_hidden_state
        with capture_attention(model) as cap:
            captured = model(**inputs).last_hidden_state
            assert model.config._attn_implementation == "raykd_capture"
    assert model.config._attn_implementation == impl  # restored
    assert_rel_close(captured, plain)
    maps = cap.maps["encoder_self"]
    assert [tuple(m.shape) for m in maps] == [(2, 3, 9, 9), (2, 0, 9, 9), (2, 2, 9, 9)]
    assert cap.head_ids == {"encoder_self": [[0, 2, 3], [], [1, 2]]}
    for m in (maps[0], maps[2]):
        assert torch.allclose(m.sum(-1), torch.ones(()), atol=1e-5)
        assert m[1, :, :, -3:].max() < 1e-6  # padded keys get no attention
        assert m[0, :, :, -3:].min() > 0  # ... but real keys do


def test_hf_blocks_outside_a_transformers_model_are_refused():
    """The switch goes through transformers' public `set_attn_implementation`, which only a
    transformers model (PreTrainedModel) has: capturing its bare layer stack is refused by name,
    and nothing is left switched."""
    model = tiny_hf("bert", "sdpa")
    with pytest.raises(CaptureUnavailableError, match="BertEncoder: .* not inside a transformers model"):
        with capture_attention(model.encoder):
            pass
    assert model.config._attn_implementation == "sdpa"
    with torch.no_grad(), capture_attention(model) as cap:  # the whole model is fine
        model(**hf_inputs())
    assert len(cap.maps["encoder_self"]) == 3


def test_a_model_transformers_will_not_switch_is_refused_not_captured_empty():
    """transformers only warns when a model class cannot switch its attention; raykd refuses it
    with one line instead of training on maps that were never recorded."""
    from legacy_attention_model import HandWrittenModel
    from transformers import BertConfig

    model = HandWrittenModel(BertConfig(**SMALL, attn_implementation="eager")).eval()
    with pytest.raises(CaptureUnavailableError, match="HandWrittenModel cannot switch its attention"):
        with capture_attention(model):
            pass
    assert model.config._attn_implementation == "eager"


def test_hf_maps_before_dropout_in_training_mode():
    model = tiny_hf("bert", "sdpa", attention_probs_dropout_prob=0.5).train()
    with capture_attention(model) as cap:
        model(**hf_inputs())
    for m in cap.maps["encoder_self"]:
        assert torch.allclose(m.sum(-1), torch.ones(()), atol=1e-5)


@pytest.mark.parametrize("family", ["bert", "roberta"])
def test_kept_heads_have_the_same_maps_as_before_pruning(family):
    base = tiny_hf(family, "sdpa")
    zeroed, pruned = copy.deepcopy(base), copy.deepcopy(base)
    zero_heads(zeroed, SPEC)  # same function as the pruned model, all heads still present
    prune_heads(pruned, SPEC)
    inputs = hf_inputs()
    with torch.no_grad(), capture_attention(zeroed) as ref, capture_attention(pruned) as got, capture_attention(base) as full:
        zeroed(**inputs)
        pruned(**inputs)
        base(**inputs)
    for layer in range(3):
        ids = got.head_ids["encoder_self"][layer]
        pos = head_positions(ref.head_ids["encoder_self"][layer], ids)
        assert_rel_close(got.maps["encoder_self"][layer], ref.maps["encoder_self"][layer][:, pos])
    # Layer 0 sees the same input in the unpruned model; later layers do not.
    ids0 = got.head_ids["encoder_self"][0]
    assert_rel_close(got.maps["encoder_self"][0], full.maps["encoder_self"][0][:, ids0])
    assert not torch.allclose(got.maps["encoder_self"][2], full.maps["encoder_self"][2][:, [1, 2]], atol=1e-4)


def test_keep_grad_lets_an_attention_loss_train_the_student():
    teacher = tiny_hf("bert", "sdpa")
    student = copy.deepcopy(teacher)
    prune_heads(student, SPEC)
    inputs = hf_inputs()
    with torch.no_grad(), capture_attention(teacher) as t:
        teacher(**inputs)
    with capture_attention(student, keep_grad=True) as s:
        student(**inputs)
    smap, tmap = s.maps["encoder_self"][2], t.maps["encoder_self"][2]
    assert smap.requires_grad and not tmap.requires_grad
    loss = torch.nn.functional.mse_loss(smap, tmap[:, head_positions(t.head_ids["encoder_self"][2], s.head_ids["encoder_self"][2])])
    loss.backward()
    q = student.encoder.layer[2].attention.self.query.weight
    assert q.grad is not None and q.grad.abs().sum() > 0
    with capture_attention(student) as s2:
        student(**inputs)
    assert not s2.maps["encoder_self"][2].requires_grad  # detached by default


def test_mha_capture():
    model = toy_decoder()
    prune_heads(model, MHA_SPEC)
    x, memory, mask = toy_inputs()
    with torch.no_grad():
        plain = model(x, memory, mask)
        with capture_attention(model) as cap:
            captured = model(x, memory, mask)
            _, weights = model.layers[0].self_attn(x, causal=True)
            assert weights is None  # a caller that did not ask for weights still gets None
            _, weights = model.layers[0].self_attn(x, causal=True, need_weights=True)
            assert weights is not None
    assert_rel_close(captured, plain)
    self_maps, cross_maps = cap.maps["decoder_self"], cap.maps["decoder_cross"]
    assert [tuple(m.shape) for m in self_maps] == [(2, 3, 5, 5), (2, 2, 5, 5)]
    assert [tuple(m.shape) for m in cross_maps] == [(2, 1, 5, 7), (2, 0, 5, 7)]
    assert len(cap.calls[("decoder_self", 0)]) == 3  # one in the model, two direct calls
    for m in self_maps:
        assert torch.allclose(m.sum(-1), torch.ones(()), atol=1e-5)
        assert torch.triu(m, diagonal=1).abs().max() == 0  # causal
    assert torch.allclose(cross_maps[0].sum(-1), torch.ones(()), atol=1e-5)
    assert cross_maps[0][0, :, :, -2:].max() == 0  # padded memory positions
    # Hooks are gone afterwards.
    assert not model.layers[0].self_attn._forward_hooks and not model.layers[0].self_attn._forward_pre_hooks


def test_mha_kept_heads_same_maps_as_zeroed():
    base = toy_decoder()
    zeroed, pruned = copy.deepcopy(base), copy.deepcopy(base)
    zero_heads(zeroed, MHA_SPEC)
    prune_heads(pruned, MHA_SPEC)
    inputs = toy_inputs()
    with torch.no_grad(), capture_attention(zeroed) as ref, capture_attention(pruned) as got:
        zeroed(*inputs)
        pruned(*inputs)
    for kind in ("decoder_self", "decoder_cross"):
        for layer in range(2):
            pos = head_positions(ref.head_ids[kind][layer], got.head_ids[kind][layer])
            assert_rel_close(got.maps[kind][layer], ref.maps[kind][layer][:, pos])


def test_capture_kinds_filter(seq2seq):
    with torch.no_grad(), capture_attention(seq2seq, kinds=["decoder_cross"]) as cap:
        seq2seq(**seq2seq_inputs())
    assert list(cap.maps) == ["decoder_cross"]
    assert seq2seq.encoder.config._attn_implementation == "sdpa"


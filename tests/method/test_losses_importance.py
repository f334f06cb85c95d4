import math

import pytest
import torch
import torch.nn.functional as F

from raykd.method.distill import (
    CapturedAttention,
    LossWeights,
    attention_mse,
    response_kl,
    total_loss,
)
from raykd.method.importance import (
    BlockStats,
    HeadStats,
    attention_entropy_sums,
    normalise,
    random_scores,
    scores,
)


def test_response_kl_matches_direct_computation():
    torch.manual_seed(0)
    t, s = torch.randn(2, 3, 5), torch.randn(2, 3, 5)
    mask = torch.tensor([[True, True, False], [True, False, False]])
    tau = 2.0
    direct = []
    for b, q in mask.nonzero().tolist():
        p = F.softmax(t[b, q] / tau, -1)
        log_q = F.log_softmax(s[b, q] / tau, -1)
        direct.append((p * (p.log() - log_q)).sum())
    expected = tau**2 * torch.stack(direct).mean()
    assert response_kl(t, s, mask, tau) == pytest.approx(float(expected), rel=1e-5)
    assert float(response_kl(t, t, mask, tau)) == pytest.approx(0.0, abs=1e-6)


def test_response_kl_ignores_masked_out_logits_of_both_models():
    t = torch.tensor([[[2.0, 1.0, -1e30]]])
    s = torch.tensor([[[1.0, 2.0, -1e30]]])
    value = response_kl(t, s, torch.ones(1, 1, dtype=torch.bool), 1.0)
    assert math.isfinite(float(value)) and float(value) > 0


def _maps(b, h, lq, lk, seed):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(b, h, lq, lk, generator=g).softmax(-1)


def test_attention_mse_kept_mapping_compares_same_original_heads():
    teacher = _maps(2, 4, 3, 3, 0)
    student = teacher[:, [1, 3]].clone()  # the student kept heads 1 and 3
    rows = torch.ones(2, 3, dtype=torch.bool)
    t = {("encoder_self", 0): CapturedAttention(teacher, [0, 1, 2, 3], rows)}
    s = {("encoder_self", 0): CapturedAttention(student, [1, 3], rows)}
    assert float(attention_mse(t, s, "kept")) == pytest.approx(0.0, abs=1e-12)
    s_wrong = {("encoder_self", 0): CapturedAttention(student, [0, 2], rows)}
    expected = (student - teacher[:, [0, 2]]).pow(2).mean()
    assert float(attention_mse(t, s_wrong, "kept")) == pytest.approx(float(expected), rel=1e-5)
    with pytest.raises(ValueError):
        attention_mse(t, {("encoder_self", 0): CapturedAttention(student, [7, 1], rows)}, "kept")


def test_attention_mse_masks_padding_rows_and_means_over_layers():
    teacher, student = _maps(1, 2, 2, 2, 1), _maps(1, 2, 2, 2, 2)
    rows = torch.tensor([[True, False]])
    t = {("k", 0): CapturedAttention(teacher, [0, 1], rows), ("k", 1): CapturedAttention(teacher, [0, 1], rows)}
    s = {("k", 0): CapturedAttention(student, [0, 1], rows), ("k", 1): CapturedAttention(teacher.clone(), [0, 1], rows)}
    layer0 = (student[:, :, 0] - teacher[:, :, 0]).pow(2).mean()
    assert float(attention_mse(t, s, "kept")) == pytest.approx(float(layer0) / 2, rel=1e-5)
    mean_map = attention_mse(t, s, "mean")
    direct = (student.mean(1)[:, 0] - teacher.mean(1)[:, 0]).pow(2).mean() / 2
    assert float(mean_map) == pytest.approx(float(direct), rel=1e-5)


def test_total_loss_weights_and_switches():
    task, kl, att = torch.tensor(2.0), torch.tensor(3.0), torch.tensor(5.0)
    loss, parts = total_loss(task, kl, att, LossWeights(0.5, 0.25, 2.0))
    assert float(loss) == pytest.approx(0.5 * (3 + 5) + 0.25 * 2)
    assert parts["kl"] == 3.0 and parts["attention_mse"] == 5.0
    response_only, _ = total_loss(task, kl, att, LossWeights(1.0, 1.0, 2.0, feature=False))
    assert float(response_only) == pytest.approx(3 + 2)
    feature_only, _ = total_loss(task, kl, att, LossWeights(1.0, 1.0, 2.0, response=False))
    assert float(feature_only) == pytest.approx(5 + 2)


def test_entropy_of_hand_built_maps():
    # head 0 uniform over 4 keys (entropy log 4), head 1 one-hot (entropy 0)
    probs = torch.zeros(1, 2, 3, 4)
    probs[0, 0] = 0.25
    probs[0, 1, :, 2] = 1.0
    rows = torch.tensor([[True, True, False]])
    probs[0, 0, 2] = torch.tensor([0.97, 0.01, 0.01, 0.01])  # a padded query row: must not count
    sums, n = attention_entropy_sums(probs, rows)
    assert n == 2
    assert (sums / n).tolist() == pytest.approx([math.log(4), 0.0], abs=1e-6)


def _stats():
    return HeadStats({
        ("encoder_self", 0): BlockStats([0, 1, 2], norm=[1.0, 2.0, 3.0], entropy=[0.3, 0.2, 0.1]),
        ("encoder_self", 1): BlockStats([0, 2], norm=[4.0, 0.0], entropy=[0.0, 0.5]),
    })


def test_alpha_one_and_zero_reduce_to_norm_only_and_entropy_only():
    st = _stats()
    norm_only = scores(st, 1.0)
    ent_only = scores(st, 0.0)
    assert norm_only[("encoder_self", 0)].tolist() == pytest.approx([0.25, 0.5, 0.75])
    assert norm_only[("encoder_self", 1)].tolist() == pytest.approx([1.0, 0.0])
    assert ent_only[("encoder_self", 0)].tolist() == pytest.approx([0.6, 0.4, 0.2])
    half = scores(st, 0.5)[("encoder_self", 0)]
    assert half.tolist() == pytest.approx([0.425, 0.45, 0.475])
    flipped = scores(st, 0.0, entropy_sign=-1)[("encoder_self", 0)]
    assert flipped.tolist() == pytest.approx([-0.6, -0.4, -0.2])


def test_normalisations_and_stats_round_trip():
    v = torch.tensor([3.0, 1.0, 2.0])
    assert normalise(v, "minmax").tolist() == pytest.approx([1.0, 0.0, 0.5])
    assert normalise(v, "rank").tolist() == pytest.approx([1.0, 0.0, 0.5])
    z = normalise(v, "zscore")
    assert float(z.mean()) == pytest.approx(0.0, abs=1e-6)
    assert normalise(v, "none").tolist() == [3.0, 1.0, 2.0]
    with pytest.raises(ValueError):
        normalise(v, "softmax")  # type: ignore[arg-type]
    st = _stats()
    again = HeadStats.from_json(st.to_json())
    assert again.blocks == st.blocks
    assert random_scores(st, 3)[("encoder_self", 0)].tolist() == random_scores(st, 3)[("encoder_self", 0)].tolist()
    with pytest.raises(ValueError):
        scores(HeadStats({("encoder_self", 0): BlockStats([0], norm=[1.0])}), 0.5)


# -- a term the loss asks for is never dropped (issue 35, "No silent fallbacks") ------------------

def test_an_attention_term_whose_capture_recorded_nothing_raises_naming_the_term_and_the_model():
    from raykd.method.distill import EmptyTermError

    rows = torch.ones(1, 2, dtype=torch.bool)
    t = {("encoder_self", 0): CapturedAttention(_maps(1, 2, 2, 2, 0), [0, 1], rows)}
    models = ("teacher (Solver)", "student (OpaqueStudent)")
    with pytest.raises(EmptyTermError, match=r"attention-map .*student \(OpaqueStudent\) recorded no attention maps"):
        attention_mse(t, {}, "kept", models)  # the student's capture returned nothing
    with pytest.raises(EmptyTermError, match=r"teacher \(Solver\) recorded no attention maps"):
        attention_mse({}, t, "kept", models)
    elsewhere = {("decoder_self", 3): CapturedAttention(_maps(1, 2, 2, 2, 1), [0, 1], rows)}
    with pytest.raises(EmptyTermError, match="lines up"):
        attention_mse(t, elsewhere, "kept", models)  # both recorded, but nothing compares


def test_a_hidden_state_term_whose_capture_recorded_nothing_raises():
    from raykd.method.distill import EmptyTermError, hidden_mse

    t = {("encoder_layers", 0): torch.ones(1, 2, 4)}
    with pytest.raises(EmptyTermError, match=r"hidden-state .*student recorded no hidden states"):
        hidden_mse(t, {}, {"encoder_layers": torch.ones(1, 2)})


def test_total_loss_refuses_a_weighted_term_it_was_not_given():
    from raykd.method.distill import EmptyTermError

    task, kl = torch.tensor(2.0), torch.tensor(3.0)
    with pytest.raises(EmptyTermError, match="attention-map"):
        total_loss(task, kl, None, LossWeights(0.5, 0.25, 2.0))
    with pytest.raises(EmptyTermError, match="hidden-state"):
        total_loss(task, kl, torch.tensor(1.0), LossWeights(0.5, 0.25, 2.0, lambda3=0.5), None)
    loss, parts = total_loss(task, kl, None, LossWeights(0.5, 0.25, 2.0, feature=False))  # switched off: fine
    assert "attention_mse" not in parts and float(loss) == pytest.approx(0.5 * 3 + 0.25 * 2)


class _Wrapped(torch.nn.Module):
    """A layer inside a wrapper (as activation checkpointing or a plug-in's adapter does): the
    model runs as before, but raykd's hidden-state capture no longer finds the layer stack."""

    def __init__(self, inner: torch.nn.Module) -> None:
        super().__init__()
        self.inner = inner

    def forward(self, *args, **kwargs):
        return self.inner(*args, **kwargs)


def test_the_chain_loss_raises_when_the_students_capture_records_nothing(synthetic_splits):
    import copy

    from raykd.method.chain import distillation_loss
    from raykd.method.config import ChainConfig
    from raykd.method.distill import EmptyTermError
    from raykd.structures.layers import find_layer_stacks
    from raykd.task.mwp import MWPTask
    from raykd.task.teacher import SolverSpec, build_solver_from_spec

    teacher, tok = build_solver_from_spec(SolverSpec(preset="tiny"), synthetic_splits["train"])
    task = MWPTask(tok, teacher.vocab, synthetic_splits)
    student = copy.deepcopy(teacher)
    for stack in find_layer_stacks(student).values():
        for i in range(len(stack)):
            stack[i] = _Wrapped(stack[i])
    assert find_layer_stacks(student) == {}
    batch = next(iter(task.batches("train", 4)))
    loss = distillation_loss(teacher, task, ChainConfig(lambda3=0.5, distill_feature=False))
    with pytest.raises(EmptyTermError, match=r"hidden-state .*student \(SolverModel\) recorded no hidden states"):
        loss(student.train(), batch)
    value, parts = distillation_loss(teacher, task, ChainConfig(lambda3=0.0, distill_feature=False))(student, batch)
    assert "hidden_mse" not in parts and torch.isfinite(value)  # without the term asked for, it trains

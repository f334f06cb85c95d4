import subprocess
import sys

import pytest
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from raykd.structures import prune_heads
from raykd.measure import (
    compare_latency,
    count_params,
    flops,
    ideal_speedup,
    measure_latency,
    param_breakdown,
    peak_memory,
)
from raykd.nn import MultiHeadAttention

H, LAYERS, HEADS, INTER, D = 64, 3, 4, 128, 16


def tiny_bert(impl="eager", pooler=True):
    from transformers import BertConfig, BertModel

    torch.manual_seed(0)
    cfg = BertConfig(hidden_size=H, num_hidden_layers=LAYERS, num_attention_heads=HEADS, intermediate_size=INTER,
                     vocab_size=100, attn_implementation=impl)
    return BertModel(cfg, add_pooling_layer=pooler).eval()


def hand_bert_flops(b, l, heads_per_layer):
    t = b * l
    total = 0
    for h in heads_per_layer:
        total += 4 * 2 * H * (h * D) * t  # Q, K, V, O
        total += 2 * 2 * b * l * l * h * D  # QK^T and AV
        total += 2 * 2 * H * INTER * t  # FFN
    return total + 2 * H * H * b  # pooler: first token only


# --- params ----------------------------------------------------------------------------------------


def test_count_params_exact_and_tied_counted_once():
    assert count_params(nn.Linear(3, 4)) == 16
    m = nn.Sequential(nn.Linear(5, 5, bias=False), nn.Linear(5, 5, bias=False))
    assert count_params(m) == 50
    m[1].weight = m[0].weight
    assert count_params(m) == 25
    m[0].weight.requires_grad_(False)
    assert count_params(m, trainable_only=True) == 0


def test_param_breakdown_bert():
    model = tiny_bert()
    parts = param_breakdown(model)
    assert parts["attention"] == LAYERS * 4 * (H * H + H)
    assert parts["embedding"] == (100 + 512 + 2) * H
    assert parts["total"] == count_params(model) == parts["attention"] + parts["embedding"] + parts["other"]


# --- FLOPs ---------------------------------------------------------------------------------------


def test_flops_hand_computed_bert():
    rep = flops(tiny_bert(), batch=2, seq_len=10)
    assert rep.total == hand_bert_flops(2, 10, [4, 4, 4])
    assert rep.attention_products == LAYERS * 2 * 2 * 2 * 10 * 10 * H
    assert [b.num_heads for b in rep.blocks] == [4, 4, 4]
    assert int(rep) == rep.total == rep.to_dict()["total"]


def test_flops_drop_when_heads_removed():
    model = tiny_bert()
    before = flops(model, 2, 10)
    prune_heads(model, {"encoder_self": {0: [1], 1: [0, 1, 2, 3], 2: [0, 3]}})
    after = flops(model, 2, 10)
    assert after.total == hand_bert_flops(2, 10, [3, 0, 2])
    per_head = 4 * 2 * H * D * 20 + 2 * 2 * 2 * 10 * 10 * D
    assert before.total - after.total == 7 * per_head
    assert after.other_linear == before.other_linear
    assert ideal_speedup(before, after) == pytest.approx(before.total / after.total)
    assert ideal_speedup(before, after) > 1


@pytest.mark.parametrize("prune", [False, True])
def test_flops_agree_with_flop_counter_mode(prune):
    model = tiny_bert("eager")  # on CPU, FlopCounterMode does not see SDPA's attention products
    if prune:
        prune_heads(model, {"encoder_self": {0: [1], 2: [0, 3]}})
    ids = torch.randint(0, 100, (3, 12))
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(input_ids=ids)
    measured = counter.get_total_flops()
    analytic = flops(model, 3, 12).total
    assert abs(analytic - measured) / measured < 0.01


class ToySeq2Seq(nn.Module):
    def __init__(self, d=32, heads=4):
        super().__init__()
        self.enc = nn.Linear(d, d)
        self.dec = nn.ModuleList([nn.Module()])
        self.dec[0].self_attn = MultiHeadAttention(d, heads, kind="decoder_self")
        self.dec[0].cross_attn = MultiHeadAttention(d, heads, kind="decoder_cross")
        self.dec[0].ffn = nn.Linear(d, 2 * d)
        self.head = nn.Linear(d, 7)


def test_flops_decoder_lengths_and_overrides():
    model = ToySeq2Seq()
    b, le, ld, d = 2, 11, 5, 32
    rep = flops(model, b, le, decoder_len=ld)
    self_blk = 4 * 2 * d * d * b * ld + 2 * 2 * b * ld * ld * d
    cross_blk = 2 * 2 * d * d * b * ld + 2 * 2 * d * d * b * le + 2 * 2 * b * ld * le * d
    enc = 2 * d * d * b * le
    ffn = 2 * d * 2 * d * b * ld  # next to the decoder blocks -> decoder tokens
    head = 2 * d * 7 * b * le  # unknown Linear: encoder tokens by default
    assert rep.total == self_blk + cross_blk + enc + ffn + head
    assert [(x.kind, x.q_len, x.k_len) for x in rep.blocks] == [("decoder_self", 5, 5), ("decoder_cross", 5, 11)]
    over = flops(model, b, le, decoder_len=ld, linear_tokens=lambda name, m: ld if name == "head" else None)
    assert rep.total - over.total == 2 * d * 7 * b * (le - ld)
    with pytest.raises(ValueError, match="decoder_len"):
        flops(model, b, le)


def test_flops_without_attention_counts_linears():
    assert flops(nn.Sequential(nn.Linear(4, 3), nn.Linear(3, 2)), 2, 5).total == 2 * (4 * 3 + 3 * 2) * 10


def test_ideal_speedup_validation():
    assert ideal_speedup(300, 200) == 1.5
    with pytest.raises(ValueError):
        ideal_speedup(1, 0)


# --- latency & memory (structure only: no timing thresholds) ---------------------------------------


def test_measure_latency_structure():
    x = torch.randn(64, 64)
    stats = measure_latency(lambda: x @ x, warmup=1, repeats=5, num_threads=1)
    assert len(stats.samples_ms) == 5 and all(s > 0 for s in stats.samples_ms)
    assert stats.p10_ms <= stats.median_ms <= stats.p90_ms
    assert stats.num_threads == 1 and stats.device == "cpu"
    assert set(stats.to_dict()) >= {"median_ms", "p10_ms", "p90_ms", "samples_ms"}


def test_compare_latency_interleaves_and_restores_threads():
    calls = []
    threads_inside = []
    fns = {n: (lambda n=n: calls.append(n) or threads_inside.append(torch.get_num_threads())) for n in "ABC"}
    before = torch.get_num_threads()
    res = compare_latency(fns, warmup=1, rounds=4, num_threads=1)
    assert torch.get_num_threads() == before and set(threads_inside) == {1}
    timed = calls[3:]  # after one warm-up round
    assert timed == list("ABC" "BCA" "CAB" "ABC")
    assert res.reference == "A" and res.speedup["A"] == 1.0
    assert set(res.stats) == {"A", "B", "C"} and all(len(s.samples_ms) == 4 for s in res.stats.values())
    assert res.speedup["B"] == pytest.approx(res.stats["A"].median_ms / res.stats["B"].median_ms)
    a, b = res.stats["A"].samples_ms, res.stats["B"].samples_ms
    assert res.paired_speedup["A"] == 1.0
    ratios = sorted(x / y for x, y in zip(a, b))  # per-round ratios; median of 4
    assert res.paired_speedup["B"] == pytest.approx((ratios[1] + ratios[2]) / 2)
    with pytest.raises(ValueError):
        compare_latency(fns, reference="Z")


def test_inference_mode_during_timing():
    seen = []
    measure_latency(lambda: seen.append(torch.is_inference_mode_enabled()), warmup=0, repeats=2)
    assert seen == [True, True]


def test_cpu_peak_memory_sees_allocations():
    def fn():
        a = torch.ones(1_000_000)  # 4 MB
        b = a * 2  # 4 MB more while a is alive
        return b.sum()

    peak = peak_memory(fn)
    assert 8_000_000 <= peak < 9_000_000


def test_measure_does_not_import_ray_datasets_optuna():
    code = "import sys, raykd.measure; bad = [m for m in ('ray', 'datasets', 'optuna') if m in sys.modules]; assert not bad, bad"
    subprocess.run([sys.executable, "-c", code], check=True)

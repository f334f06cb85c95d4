import pytest
import torch

from raykd.errors import ConfigError
from raykd.method.pruner import removal_counts, select_heads
from raykd.method.schedule import heads_removed_by, pruning_ratio, ratios, removal_plan


def test_schedule_matches_equation_5():
    # p_t = p_min + (p_max - p_min) (t/T)^n
    assert pruning_ratio(0, 4, 0.1, 0.3, 2.0) == pytest.approx(0.1)
    assert pruning_ratio(2, 4, 0.1, 0.3, 2.0) == pytest.approx(0.1 + 0.2 * 0.25)
    assert pruning_ratio(4, 4, 0.1, 0.3, 2.0) == pytest.approx(0.3)
    assert ratios(3, 0.0, 0.3, 1.0) == pytest.approx([0.1, 0.2, 0.3])


def test_exponent_back_loads_or_front_loads():
    slow = ratios(4, 0.0, 0.4, 3.0)
    fast = ratios(4, 0.0, 0.4, 0.5)
    assert slow[0] < fast[0] and slow[-1] == fast[-1] == pytest.approx(0.4)


def test_floor_is_robust_to_float_noise_and_plan_is_cumulative():
    assert heads_removed_by(0.3, 10) == 3  # 0.3 * 10 = 2.9999999999999996
    assert heads_removed_by(0.25, 72) == 18
    plan = removal_plan(3, 0.1, 0.3, 1.0, 72)
    assert sum(plan) == heads_removed_by(0.3, 72) == 21
    assert all(n >= 0 for n in plan)


@pytest.mark.parametrize("args", [(1, 2, 0.3, 0.2, 1.0), (1, 2, 0.1, 1.0, 1.0), (1, 2, 0.1, 0.2, 0.0), (3, 2, 0.1, 0.2, 1.0)])
def test_schedule_rejects_impossible_settings(args):
    with pytest.raises(ConfigError):
        pruning_ratio(*args)


def test_removal_counts_per_kind_and_global_are_cumulative():
    original = {"encoder_self": 48, "decoder_self": 16}
    counts = removal_counts(0.25, original, original, "per-kind")
    assert counts == {"encoder_self": 12, "decoder_self": 4}
    # after 12+4 are gone, reaching 0.5 removes the difference only
    present = {"encoder_self": 36, "decoder_self": 12}
    assert removal_counts(0.5, original, present, "per-kind") == {"encoder_self": 12, "decoder_self": 4}
    assert removal_counts(0.25, original, original, "global") == {"*": 16}
    with pytest.raises(ConfigError):
        removal_counts(1.0, original, original, "per-kind")


def test_lowest_scores_are_removed_per_kind():
    scores = {
        ("encoder_self", 0): torch.tensor([0.9, 0.1, 0.5]),
        ("encoder_self", 1): torch.tensor([0.2, 0.8, 0.05]),
        ("decoder_self", 0): torch.tensor([0.3, 0.7]),
    }
    removal = select_heads(scores, {"encoder_self": 2, "decoder_self": 1})
    assert removal == {"encoder_self": {0: [1], 1: [2]}, "decoder_self": {0: [0]}}


def test_global_ranking_mixes_kinds_and_floor_is_respected():
    scores = {("encoder_self", 0): torch.tensor([0.1, 0.2]), ("decoder_self", 0): torch.tensor([0.15, 0.9])}
    removal = select_heads(scores, {"*": 2})
    assert sorted((k, l, p) for k, ls in removal.items() for l, ps in ls.items() for p in ps) == [
        ("decoder_self", 0, 0), ("encoder_self", 0, 0)
    ]
    # a floor of one head per block: the encoder block can lose only one head
    floored = select_heads(scores, {"*": 2}, min_heads_per_block=1)
    assert floored == {"encoder_self": {0: [0]}, "decoder_self": {0: [0]}}
    with pytest.raises(ConfigError):
        select_heads(scores, {"*": 3}, min_heads_per_block=1)
    # without a floor a whole block may go
    assert select_heads(scores, {"encoder_self": 2}) == {"encoder_self": {0: [0, 1]}}

import pytest
import torch

from raykd.errors import ConfigError
from raykd.method.pruner import select_lowest
from raykd.method.schedule import pruning_ratio, ratios, units_removed_by


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


def test_floor_is_robust_to_float_noise():
    assert units_removed_by(0.3, 10) == 3  # 0.3 * 10 = 2.9999999999999996
    assert units_removed_by(0.25, 72) == 18


@pytest.mark.parametrize("args", [(1, 2, 0.3, 0.2, 1.0), (1, 2, 0.1, 1.0, 1.0), (1, 2, 0.1, 0.2, 0.0), (3, 2, 0.1, 0.2, 1.0)])
def test_schedule_rejects_impossible_settings(args):
    with pytest.raises(ConfigError):
        pruning_ratio(*args)


def test_lowest_scores_are_removed_per_kind():
    scores = {
        ("encoder_self", 0): torch.tensor([0.9, 0.1, 0.5]),
        ("encoder_self", 1): torch.tensor([0.2, 0.8, 0.05]),
        ("decoder_self", 0): torch.tensor([0.3, 0.7]),
    }
    removal = select_lowest(scores, lambda key: key[0], {"encoder_self": 2, "decoder_self": 1})
    assert removal == {"encoder_self": {0: [1], 1: [2]}, "decoder_self": {0: [0]}}


def test_global_ranking_mixes_kinds_and_floor_is_respected():
    scores = {("encoder_self", 0): torch.tensor([0.1, 0.2]), ("decoder_self", 0): torch.tensor([0.15, 0.9])}
    removal = select_lowest(scores, lambda key: "*", {"*": 2})
    assert sorted((k, l, p) for k, ls in removal.items() for l, ps in ls.items() for p in ps) == [
        ("decoder_self", 0, 0), ("encoder_self", 0, 0)
    ]
    # a floor of one head per block: the encoder block can lose only one head
    floored = select_lowest(scores, lambda key: "*", {"*": 2}, floor=1)
    assert floored == {"encoder_self": {0: [0]}, "decoder_self": {0: [0]}}
    with pytest.raises(ConfigError):
        select_lowest(scores, lambda key: "*", {"*": 3}, floor=1)
    # without a floor a whole block may go
    assert select_lowest(scores, lambda key: key[0], {"encoder_self": 2}) == {"encoder_self": {0: [0, 1]}}

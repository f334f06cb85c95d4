"""The structure registry: a fourth kind plugs in with one registration (and its importance with one
more, in the method layer), and everything converted to the registry picks it up without naming it.

The toy kind is real: the channels of the plain `nn.Sequential` FFNs of `ToyDecoder` (which the
built-in FFN adapters do not know), removed by slicing, recorded as kept original ids on the module.
"""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass

import pytest
import torch
from heads_fixtures import toy_decoder
from torch import nn

from raykd.errors import ConfigError, ModelFormatError
from raykd.method.config import ChainConfig, schedule_pairs
from raykd.method.importance import HeadStats, StructureStats
from raykd.method.importance.registry import KindImportance, register_importance, unregister_importance
from raykd.method.plan import OriginalShape, plan_round, round_ratios
from raykd.search.space import fractions, is_chain_setting
from raykd.structures import head_map, load_pruned, save_pruned, shape_of, structure_counts
from raykd.structures.registry import (
    StructureKind,
    register_structure,
    shape_order,
    structure_kind,
    structure_kinds,
    unregister_structure,
)

IDS = "toy_ids"  # kept original channel ids, on each Sequential


@dataclass
class ToyBlock:
    kind: str
    layer: int
    module: nn.Sequential

    @property
    def width(self) -> int:
        return self.module[0].out_features


def _blocks(model: nn.Module) -> list[ToyBlock]:
    return [ToyBlock("toy_ffn", i, layer.ffn) for i, layer in enumerate(getattr(model, "layers", []))
            if isinstance(getattr(layer, "ffn", None), nn.Sequential)]


def _ids(block: ToyBlock) -> list[int]:
    return list(getattr(block.module, IDS, range(block.width)))


def _keep(block: ToyBlock, keep: list[int]) -> None:
    """Keep channels at positions `keep` (rows of the first Linear, columns of the second)."""
    up, down = block.module[0], block.module[2]
    idx = torch.tensor(keep, dtype=torch.long)
    new_up = nn.Linear(up.in_features, len(keep))
    new_up.weight = nn.Parameter(up.weight.detach()[idx].clone())
    new_up.bias = nn.Parameter(up.bias.detach()[idx].clone())
    new_down = nn.Linear(len(keep), down.out_features)
    new_down.weight = nn.Parameter(down.weight.detach()[:, idx].clone())
    new_down.bias = down.bias
    ids = _ids(block)
    block.module[0], block.module[2] = new_up, new_down
    setattr(block.module, IDS, [ids[p] for p in keep])


def _remove(model: nn.Module, selection: dict) -> None:
    for block in _blocks(model):
        gone = set(selection.get(block.kind, {}).get(block.layer, []))
        if gone:
            _keep(block, [p for p in range(block.width) if p not in gone])


def _shape(model: nn.Module) -> dict:
    return {"toy_ffn": [_ids(b) for b in _blocks(model)]}


def _apply(model: nn.Module, kept: dict) -> nn.Module:
    blocks = _blocks(model)
    if len(kept.get("toy_ffn", [])) != len(blocks):
        raise ModelFormatError(f"toy_map has {len(kept.get('toy_ffn', []))} layers, the model {len(blocks)}")
    for block, ids in zip(blocks, kept["toy_ffn"]):
        present = {c: i for i, c in enumerate(_ids(block))}
        _keep(block, [present[c] for c in ids])
    return model


TOY = StructureKind(
    name="toy", unit="toy channels", count_key="toy_channels", shape_key="toy_map", p_min="toy_p_min", p_max="toy_p_max",
    sizes=lambda m: {"toy_ffn": [b.width for b in _blocks(m)]}, shape_of=_shape, apply_shape=_apply, remove=_remove,
    blocks=_blocks, block_size=lambda b: b.width, floor_field="min_toy_per_block")


def _norm_scores(stats: StructureStats, config: ChainConfig, round_index: int) -> dict:
    """The toy's importance: the L2 norm of each channel's row of the first Linear (real weights)."""
    return {("toy_ffn", b.layer): b.module[0].weight.detach().norm(dim=1) for b in _blocks(_MODEL[0])}


_MODEL: list[nn.Module] = []


@pytest.fixture
def toy_kind():
    register_structure(TOY)
    register_importance(KindImportance("toy", _norm_scores, lambda s: True, "toy pruning needs a model"))
    try:
        yield TOY
    finally:
        unregister_importance("toy")
        unregister_structure("toy")


def test_the_built_in_kinds_in_order():
    assert [k.name for k in structure_kinds()] == ["heads", "ffn", "layers"]
    assert [k.shape_key for k in shape_order()] == ["layer_map", "head_map", "ffn_map"]
    assert schedule_pairs() == (("heads", "p_min", "p_max"), ("ffn", "ffn_p_min", "ffn_p_max"),
                                ("layers", "layer_p_min", "layer_p_max"))
    heads = structure_kind("heads")
    assert heads.record_keys == ("heads_removed_now", "heads_kept", "heads_total", "heads_original")
    assert structure_kind("ffn").record_keys == ("ffn_removed_now", "ffn_kept", "ffn_channels_total", "ffn_channels_original")
    with pytest.raises(ValueError, match="unknown structure 'hidden' \\(known: heads, ffn, layers\\)"):
        structure_kind("hidden")


def test_duplicate_names_and_settings_are_refused(toy_kind):
    with pytest.raises(ValueError, match="name 'toy' is already registered"):
        register_structure(TOY)
    with pytest.raises(ValueError, match="name 'heads' is already registered"):
        register_structure(StructureKind(**{**vars(TOY), "name": "heads"}))
    with pytest.raises(ValueError, match="shape_key 'ffn_map' is already registered"):
        register_structure(StructureKind(**{**vars(TOY), "name": "toy2", "count_key": "t2", "shape_key": "ffn_map"}))
    with pytest.raises(ValueError, match="a schedule setting of 'layers'"):
        register_structure(StructureKind(**{**vars(TOY), "name": "toy2", "count_key": "t2", "shape_key": "t2_map",
                                            "p_min": "t2_p_min", "p_max": "layer_p_max"}))
    with pytest.raises(ValueError, match="importance of structure kind 'toy' is already registered"):
        register_importance(KindImportance("toy", _norm_scores, lambda s: True, ""))
    assert [k.name for k in structure_kinds()] == ["heads", "ffn", "layers", "toy"]


def test_a_registered_kind_has_chain_settings_and_a_schedule(toy_kind):
    assert schedule_pairs()[-1] == ("toy", "toy_p_min", "toy_p_max")
    cfg = ChainConfig.from_dict({"toy_p_min": 0.1, "toy_p_max": 0.5, "min_toy_per_block": 2, "rounds": 2})
    assert cfg.prunes == {"heads": True, "ffn": False, "layers": False, "toy": True}
    assert cfg.setting("toy_p_max") == 0.5 and cfg.floor(TOY) == 2
    assert round_ratios(cfg, 2) == {"heads": pytest.approx(0.25), "ffn": 0.0, "layers": 0.0, "toy": pytest.approx(0.5)}
    assert ChainConfig.from_dict(cfg.to_dict()) == cfg  # the settings round-trip by name
    assert cfg.to_dict()["toy_p_max"] == 0.5
    with pytest.raises(ConfigError, match=r"toy_p_min \(0.6\) must not exceed toy_p_max \(0.5\)"):
        ChainConfig.from_dict({"toy_p_min": 0.6, "toy_p_max": 0.5})
    with pytest.raises(ConfigError, match="toy_p_max must be a number"):
        ChainConfig.from_dict({"toy_p_max": "half"})
    assert "toy_p_min_fraction" in fractions() and is_chain_setting("toy_p_max")


def test_without_the_registration_the_settings_are_unknown():
    with pytest.raises(ConfigError, match="unknown chain setting\\(s\\): toy_p_max"):
        ChainConfig.from_dict({"toy_p_max": 0.5})
    assert "toy" not in ChainConfig().prunes and "toy_p_max" not in ChainConfig().to_dict()
    assert not is_chain_setting("toy_p_max")


def test_the_plan_removes_the_registered_kind(toy_kind):
    model = toy_decoder(d=16, heads=4, layers=2)
    _MODEL[:] = [model]
    original = OriginalShape.of(model)
    assert original.toy == {("toy_ffn", 0): 32, ("toy_ffn", 1): 32}
    cfg = ChainConfig(p_min=0.0, p_max=0.0, rounds=1, plugin_settings=(("toy_p_max", 0.25), ("toy_p_min", 0.25)))
    plan = plan_round(model, StructureStats(HeadStats({})), cfg, 1, original)
    assert plan.removed() == {"heads": 0, "ffn_channels": 0, "layers": 0, "toy_channels": 16}
    norms = {b.layer: b.module[0].weight.detach().norm(dim=1) for b in _blocks(model)}
    lowest = sorted(((float(n), layer, c) for layer, v in norms.items() for c, n in enumerate(v)))[:16]
    assert {(layer, c) for _n, layer, c in lowest} == {(layer, c) for layer, cs in plan.toy["toy_ffn"].items() for c in cs}
    plan.apply(model)
    assert structure_counts(model)["toy_channels"] == 48
    assert structure_counts(model)["heads"] == 16  # nothing else moved


def test_the_shape_of_a_registered_kind_saves_and_reloads(toy_kind, tmp_path):
    model = toy_decoder(d=16, heads=4, layers=2)
    _remove(model, {"toy_ffn": {0: [1, 5, 30], 1: list(range(0, 32, 2))}})
    shape = shape_of(model)
    assert list(shape) == ["layer_map", "head_map", "ffn_map", "toy_map"]
    assert shape["toy_map"] == {"toy_ffn": [[c for c in range(32) if c not in (1, 5, 30)], list(range(1, 32, 2))]}
    save_pruned(model, tmp_path / "m", {"d": 16})
    loaded, config = load_pruned(tmp_path / "m", lambda cfg: toy_decoder(d=cfg["d"], heads=4, layers=2))
    assert _shape(loaded) == shape["toy_map"] and config["toy_map"] == shape["toy_map"]
    for (name, a), (_n, b) in zip(model.state_dict().items(), loaded.state_dict().items()):
        assert torch.equal(a, b), name
    assert head_map(loaded) == head_map(model)


def test_the_registry_and_the_chain_config_load_no_torch():
    """A chain config or a search space validates against the registry without importing torch."""
    code = ("import sys, raykd.structures.registry, raykd.method.config, raykd.search.space\n"
            "assert [k.name for k in raykd.structures.registry.structure_kinds()] == ['heads', 'ffn', 'layers']\n"
            "raykd.method.config.ChainConfig(ffn_p_max=0.5)\n"
            "assert 'torch' not in sys.modules, 'torch was imported'")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr

"""Adding an architecture family is one file with one registration (docs/structures.md, "How to add
a family"), checked on two families raykd did not cover before:

- OLMo (AllenAI), which raykd still does not ship: refused for every structure, then pruned
  (heads within K/V groups, FFN channels, layers, save/load of the uneven shape) once the family
  file below is imported, and refused again once it is unregistered;
- Gemma, whose file ships in `raykd/structures/families/gemma.py` as the worked example: pruned,
  and exported as a stock config that plain transformers loads.

Tiny random configs: nothing is downloaded."""

from __future__ import annotations

import contextlib
import copy
import importlib.util
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from tiny_llms import (
    TINY_SHAPE,
    from_base_config,
    left_padded_batch,
    logits_of,
    tiny_causal_lm,
)
from torch import nn
from transformers import AutoModelForCausalLM, GemmaConfig, OlmoConfig

from raykd.errors import RaykdInputError
from raykd.structures import (
    drop_layers,
    ffn_widths,
    find_attention_blocks,
    head_counts,
    layer_counts,
    prune_ffn,
    prune_heads,
    shape_of,
    zero_ffn,
    zero_heads,
)
from raykd.structures.coverage import STRUCTURES, UnsupportedModelError, check_supported
from raykd.structures.families import (
    Family,
    register_family,
    registered_families,
    unregister_family,
)
from raykd.structures.hf_export import export_hf, hf_shape
from raykd.structures.serialization import load_pruned, save_pruned

OLMO_FAMILY_FILE = '''\
"""OLMo (AllenAI): Llama's layout (q/k/v/o_proj, gate/up/down_proj, model.layers), so one call."""
from raykd.structures.families.llama import llama_layout
from raykd.structures.family import register_family

FAMILY = register_family(llama_layout("olmo", "OLMo", {"olmo": "Olmo"}))
'''

SHAPE = dict(TINY_SHAPE, pad_token_id=0, bos_token_id=1, eos_token_id=2)
CONFIGS = {"olmo": OlmoConfig, "gemma": GemmaConfig}


def _model(family: str, seed: int = 0) -> nn.Module:
    return tiny_causal_lm(CONFIGS[family](**SHAPE), seed)


def _batch() -> dict[str, torch.Tensor]:
    return left_padded_batch(SHAPE["vocab_size"], lowest_id=3)


_logits = logits_of


@contextlib.contextmanager
def _olmo_family_file(directory: Path) -> Iterator[Family]:
    """Write the OLMo family file and import it (it registers itself); unregister it afterwards."""
    path = directory / "olmo_family.py"
    path.write_text(OLMO_FAMILY_FILE)
    spec = importlib.util.spec_from_file_location("olmo_family", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    try:
        yield module.FAMILY
    finally:
        unregister_family("olmo")


@pytest.fixture
def olmo_family(tmp_path) -> Iterator[Family]:
    with _olmo_family_file(tmp_path) as family:
        yield family


def _assert_refused(model: nn.Module) -> None:
    expected = {
        "heads": r"OlmoAttention at 'model\.layers\.0\.self_attn' is an attention block of a family raykd has no adapter for",
        "ffn": r"OlmoMLP at 'model\.layers\.0\.mlp' is a feed-forward block of a family raykd has no adapter for",
        "layers": r"the layer stack 'model\.layers' holds OlmoDecoderLayer layers, a family raykd has no adapter for",
    }
    for structure, message in expected.items():
        with pytest.raises(UnsupportedModelError, match=message + r".*\(supported: .*Llama"):
            check_supported(model, [structure])
    with pytest.raises(RaykdInputError, match="has no attention heads raykd knows how to prune"):
        find_attention_blocks(model)


def test_olmo_is_refused_without_its_family_file_and_again_once_it_is_unregistered(tmp_path):
    model = _model("olmo")
    assert "olmo" not in [f.name for f in registered_families()]
    _assert_refused(model)
    with _olmo_family_file(tmp_path) as family:
        assert family.name == "olmo" and registered_families()[-1] is family
        check_supported(model, STRUCTURES)  # every structure is covered now
        assert head_counts(model) == {"decoder_self": [4, 4, 4]}
    _assert_refused(model)


def test_heads_within_groups_and_ffn_channels_of_the_new_family_prune_as_zeroing_does(olmo_family):
    model, batch = _model("olmo"), _batch()
    check_supported(model, STRUCTURES)
    spec_heads = {"decoder_self": {0: [1, 3], 1: [2, 3], 2: [0, 2]}}  # one of each group; a whole group
    spec_ffn = {"decoder_ffn": {0: [0, 5, 23], 2: list(range(12))}}
    zeroed, pruned = copy.deepcopy(model), copy.deepcopy(model)
    zero_heads(zeroed, spec_heads)
    zero_ffn(zeroed, spec_ffn)
    prune_heads(pruned, spec_heads)
    prune_ffn(pruned, spec_ffn)
    assert head_counts(pruned) == {"decoder_self": [2, 2, 2]}
    assert [b.num_kv_heads for b in find_attention_blocks(pruned)] == [2, 1, 2]
    assert ffn_widths(pruned) == {"decoder_ffn": [21, 24, 12]}
    assert torch.allclose(_logits(pruned, batch), _logits(zeroed, batch), atol=1e-5)
    assert not torch.allclose(_logits(pruned, batch), _logits(model, batch), atol=1e-3)


def test_layers_of_the_new_family_drop_renumber_and_round_trip_through_raykd(olmo_family, tmp_path):
    model, batch = _model("olmo"), _batch()
    base = model.config.to_dict()
    skipped = copy.deepcopy(model)
    handle = skipped.model.layers[0].register_forward_hook(lambda m, args, out: args[0])
    reference = _logits(skipped, batch)
    handle.remove()
    drop_layers(model, {"decoder_layers": [0]})
    assert layer_counts(model) == {"decoder_layers": 2} and model.config.num_hidden_layers == 2
    assert [layer.self_attn.layer_idx for layer in model.model.layers] == [0, 1]  # the family's renumber hook
    assert torch.allclose(_logits(model, batch), reference, atol=1e-5)
    prune_heads(model, {"decoder_self": {1: [0, 2]}})
    prune_ffn(model, {"decoder_ffn": {0: [1, 2, 3]}})
    cached = model.generate(**batch, max_new_tokens=6, do_sample=False, use_cache=True)
    uncached = model.generate(**batch, max_new_tokens=6, do_sample=False, use_cache=False)
    assert torch.equal(cached, uncached)

    save_pruned(model, tmp_path / "m", extra_config={"base_config": base})

    loaded, _config = load_pruned(tmp_path / "m", from_base_config)
    assert shape_of(loaded) == shape_of(model)
    assert shape_of(loaded)["layer_map"] == {"decoder_layers": [1, 2]}
    assert torch.allclose(_logits(loaded.eval(), batch), _logits(model, batch), atol=1e-6)


def test_gemma_ships_as_one_family_file_and_exports_as_a_stock_config(tmp_path):
    gemma = next(f for f in registered_families() if f.name == "gemma")
    assert set(gemma.structures) == {"heads", "ffn", "layers"} and gemma.stock_config is not None
    model, batch = _model("gemma"), _batch()
    check_supported(model, STRUCTURES)
    zeroed = copy.deepcopy(model)
    zero_heads(zeroed, {"decoder_self": {i: [0, 2] for i in range(3)}})
    prune_heads(model, {"decoder_self": {i: [0, 2] for i in range(3)}})  # one head per group everywhere
    prune_ffn(model, {"decoder_ffn": {i: list(range(0, 24, 3)) for i in range(3)}})
    zero_ffn(zeroed, {"decoder_ffn": {i: list(range(0, 24, 3)) for i in range(3)}})
    assert torch.allclose(_logits(model, batch), _logits(zeroed, batch), atol=1e-5)
    drop_layers(model, {"decoder_layers": [1]})
    shape = hf_shape(model)
    assert (shape["num_attention_heads"], shape["num_key_value_heads"], shape["intermediate_size"],
            shape["num_hidden_layers"]) == (2, 2, 16, 2)
    export_hf(model, tmp_path / "hf")
    stock = AutoModelForCausalLM.from_pretrained(tmp_path / "hf").eval()
    assert stock.config.raykd_export["layer_map"] == [0, 2]
    assert torch.allclose(_logits(stock, batch), _logits(model, batch), atol=1e-5)


def test_a_family_must_name_adapters_and_a_name_registers_once():
    with pytest.raises(ValueError, match="is not an adapter"):
        Family(name="broken", supports="Broken", structures={"heads": (object(),)})
    with pytest.raises(ValueError, match="short identifier"):
        Family(name="two words", supports="x")
    llama = next(f for f in registered_families() if f.name == "llama")
    with pytest.raises(ValueError, match="a family named 'llama' is already registered"):
        register_family(llama)

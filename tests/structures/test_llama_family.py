"""Llama-family decoder-only LLMs with grouped-query attention (Llama, Mistral, Qwen2, Qwen3):
every structure removed physically equals its zeroed (or skipped) baseline, K/V groups stay even
or the request is refused by name, generation with a KV cache stays right after layers go, uneven
shapes round-trip through raykd, uniform ones export as stock configs that plain transformers
loads and that generate raykd's tokens, and architectures no adapter knows are refused loudly.
Tiny random configs: nothing is downloaded."""

from __future__ import annotations

import copy
import json
import subprocess
import sys

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
from transformers import (
    AutoModelForCausalLM,
    GPT2Config,
    GPT2LMHeadModel,
    LlamaConfig,
    MistralConfig,
    Qwen2Config,
    Qwen3Config,
)

from raykd.structures import (
    capture_attention,
    capture_hidden,
    drop_layers,
    ffn_widths,
    head_counts,
    layer_counts,
    prune_ffn,
    prune_heads,
    shape_of,
    zero_ffn,
    zero_heads,
)
from raykd.structures.coverage import UnsupportedModelError, check_supported
from raykd.structures.heads import blocks_by_kind
from raykd.structures.heads.llama import UnevenGroupsError
from raykd.structures.hf_export import NotExportableError, export_hf, hf_shape
from raykd.structures.serialization import load_pruned, save_pruned

SHAPE = TINY_SHAPE
FAMILIES = {
    "llama": lambda: LlamaConfig(**SHAPE),
    "mistral": lambda: MistralConfig(**SHAPE),
    "qwen2": lambda: Qwen2Config(**SHAPE),  # Q/K/V biases
    "qwen3": lambda: Qwen3Config(**SHAPE),  # q_norm / k_norm
}


def _model(family: str, seed: int = 0) -> nn.Module:
    return tiny_causal_lm(FAMILIES[family](), seed, random_biases=True)


def _batch() -> dict[str, torch.Tensor]:
    return left_padded_batch(SHAPE["vocab_size"])


_logits = logits_of


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_heads_within_groups_whole_groups_and_ffn_channels_removed_equal_zeroed(family):
    model, batch = _model(family), _batch()
    # layer 0: one head of each group; layer 1: all of group 1 (its K/V head goes); layer 2: one of each
    spec_heads = {"decoder_self": {0: [1, 3], 1: [2, 3], 2: [0, 2]}}
    spec_ffn = {"decoder_ffn": {0: [0, 5, 23], 2: list(range(12))}}
    zeroed, pruned = copy.deepcopy(model), copy.deepcopy(model)
    zero_heads(zeroed, spec_heads)
    zero_ffn(zeroed, spec_ffn)
    prune_heads(pruned, spec_heads)
    prune_ffn(pruned, spec_ffn)
    assert head_counts(pruned) == {"decoder_self": [2, 2, 2]}
    assert [b.num_kv_heads for b in blocks_by_kind(pruned)["decoder_self"]] == [2, 1, 2]
    assert ffn_widths(pruned) == {"decoder_ffn": [21, 24, 12]}
    assert torch.allclose(_logits(pruned, batch), _logits(zeroed, batch), atol=1e-5)
    assert not torch.allclose(_logits(pruned, batch), _logits(model, batch), atol=1e-3)


def test_uneven_groups_and_an_empty_block_are_refused_naming_the_groups():
    model = _model("llama")
    with pytest.raises(UnevenGroupsError, match=r"group 0: 1, group 1: 2"):
        prune_heads(model, {"decoder_self": {0: [0]}})
    with pytest.raises(UnevenGroupsError, match="drop the layer instead"):
        prune_heads(model, {"decoder_self": {0: [0, 1, 2, 3]}})
    assert head_counts(model) == {"decoder_self": [4, 4, 4]}  # nothing changed


def _skip_layer(model: nn.Module, position: int) -> list:
    layer = model.model.layers[position]
    return [layer.register_forward_hook(lambda m, args, out: args[0])]


@pytest.mark.parametrize("family", ["llama", "qwen3"])
def test_dropping_layers_equals_skipping_them_and_cached_generation_stays_right(family):
    model, batch = _model(family), _batch()
    skipped = copy.deepcopy(model)
    handles = _skip_layer(skipped, 0)
    reference = _logits(skipped, batch)
    for h in handles:
        h.remove()
    drop_layers(model, {"decoder_layers": [0]})
    assert layer_counts(model) == {"decoder_layers": 2}
    assert model.config.num_hidden_layers == 2
    assert len(getattr(model.config, "layer_types", None) or [0, 0]) == 2
    assert [layer.self_attn.layer_idx for layer in model.model.layers] == [0, 1]
    assert torch.allclose(_logits(model, batch), reference, atol=1e-5)
    prune_heads(model, {"decoder_self": {1: [0, 2]}})
    cached = model.generate(**batch, max_new_tokens=8, do_sample=False, use_cache=True)
    uncached = model.generate(**batch, max_new_tokens=8, do_sample=False, use_cache=False)
    assert torch.equal(cached, uncached)


def test_capture_records_one_causal_map_per_query_head_and_hidden_states_by_original_layer():
    model, batch = _model("qwen2"), _batch()
    prune_heads(model, {"decoder_self": {1: [2, 3]}})
    drop_layers(model, {"decoder_layers": [0]})
    with capture_attention(model) as cap, capture_hidden(model) as hid:
        out = _logits(model, batch)
    real = batch["attention_mask"].bool()
    # capturing does not change outputs at real positions (fully masked padding rows are kernel-defined)
    assert torch.allclose(out[real], _logits(model, batch)[real], atol=1e-5)
    maps = cap.maps["decoder_self"]
    assert [m.shape[1] for m in maps] == [2, 4]
    sums = maps[0].sum(-1)[real[:, None, :].expand_as(maps[0].sum(-1))]
    assert torch.allclose(sums, torch.ones_like(sums), atol=1e-5)
    assert float(torch.triu(maps[1][0], diagonal=1).abs().max()) == 0.0  # causal: no future keys
    assert float(maps[1][1, :, 3:, :3].abs().max()) == 0.0  # real rows never read padded keys
    assert sorted(hid.outputs) == [("decoder_layers", 1), ("decoder_layers", 2)]


@pytest.mark.parametrize("family", ["qwen2", "qwen3"])
def test_an_uneven_shape_round_trips_through_raykd_and_is_refused_as_a_stock_config(family, tmp_path):
    model, batch = _model(family), _batch()
    base = model.config.to_dict()
    prune_heads(model, {"decoder_self": {0: [0, 2], 2: [2, 3]}})
    prune_ffn(model, {"decoder_ffn": {1: [1, 2, 3]}})
    drop_layers(model, {"decoder_layers": [1]})
    save_pruned(model, tmp_path / "m", extra_config={"base_config": base})

    loaded, config = load_pruned(tmp_path / "m", from_base_config)
    assert shape_of(loaded) == shape_of(model)
    assert torch.allclose(_logits(loaded.eval(), batch), _logits(model, batch), atol=1e-6)
    with pytest.raises(NotExportableError, match=r"K/V heads per layer differ across layers \(\[2, 1\]\)"):
        hf_shape(loaded)


STOCK_GENERATE = r"""
import json, sys
import torch
from transformers import AutoModelForCausalLM
model = AutoModelForCausalLM.from_pretrained(sys.argv[1]).eval()
batch = {k: torch.tensor(v) for k, v in json.loads(open(sys.argv[2]).read()).items()}
tokens = model.generate(**batch, max_new_tokens=8, do_sample=False)
assert not any(name == "raykd" or name.startswith("raykd.") for name in sys.modules), "raykd was imported"
c = model.config
json.dump({"tokens": tokens.tolist(), "config": [c.num_attention_heads, c.num_key_value_heads, c.head_dim,
           c.intermediate_size, c.num_hidden_layers], "class": type(model).__name__}, open(sys.argv[3], "w"))
"""


@pytest.mark.parametrize("family", ["llama", "qwen3"])
def test_a_uniform_shape_exports_as_a_stock_config_that_generates_raykds_tokens(family, tmp_path):
    model, batch = _model(family), _batch()
    prune_heads(model, {"decoder_self": {i: [1, 3] for i in range(3)}})  # one head per group everywhere
    prune_ffn(model, {"decoder_ffn": {i: list(range(0, 24, 3)) for i in range(3)}})
    drop_layers(model, {"decoder_layers": [1]})
    assert hf_shape(model)["num_key_value_heads"] == 2
    export_hf(model, tmp_path / "hf")
    ours = model.generate(**batch, max_new_tokens=8, do_sample=False)
    (tmp_path / "batch.json").write_text(json.dumps({k: v.tolist() for k, v in batch.items()}))
    (tmp_path / "gen.py").write_text(STOCK_GENERATE)
    subprocess.run([sys.executable, "-I", str(tmp_path / "gen.py"), str(tmp_path / "hf"), str(tmp_path / "batch.json"),
                    str(tmp_path / "stock.json")], check=True, timeout=300)
    stock = json.loads((tmp_path / "stock.json").read_text())
    assert stock["config"] == [2, 2, 8, 16, 2] and stock["class"] == type(model).__name__
    assert stock["tokens"] == ours.tolist()


def test_whole_kv_groups_export_with_fewer_kv_heads(tmp_path):
    model = _model("mistral")
    prune_heads(model, {"decoder_self": {i: [0, 1] for i in range(3)}})  # group 0 everywhere
    shape = hf_shape(model)
    assert (shape["num_attention_heads"], shape["num_key_value_heads"], shape["head_dim"]) == (2, 1, 8)
    export_hf(model, tmp_path / "hf")
    stock = AutoModelForCausalLM.from_pretrained(tmp_path / "hf").eval()
    batch = _batch()
    assert torch.allclose(_logits(stock, batch), _logits(model, batch), atol=1e-5)


def test_an_architecture_no_adapter_knows_is_refused_naming_its_class():
    gpt2 = GPT2LMHeadModel(GPT2Config(n_embd=32, n_layer=2, n_head=4, vocab_size=50))
    with pytest.raises(UnsupportedModelError, match=r"GPT2Attention at 'transformer\.h\.0\.attn'.*supported: .*Llama"):
        check_supported(gpt2)
    check_supported(_model("qwen3"))  # every structure of a supported family is covered


def test_raykd_teacher_refuses_an_encoder_no_adapter_knows_in_one_line_and_writes_nothing(tmp_path, capsys):
    from raykd.cli import main
    from raykd.task.encoders import train_tiny_tokenizer

    source = tmp_path / "gpt2"
    tokenizer = train_tiny_tokenizer(["tom has 3 apples", "how many apples"])
    GPT2LMHeadModel(GPT2Config(n_embd=32, n_layer=2, n_head=4, vocab_size=len(tokenizer))).save_pretrained(source)
    tokenizer.save_pretrained(source)
    out = tmp_path / "teacher"
    capsys.readouterr()  # (save_pretrained's progress bars)
    code = main(["teacher", "--encoder", str(source), "--data", "synthetic:40", "--epochs", "1", "--out", str(out), "--quiet"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "GPT2Attention" in err[0] and "no adapter" in err[0], err
    assert not out.exists()

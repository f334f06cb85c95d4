import copy
import json

import pytest
import torch
from heads_fixtures import BERT_LIKE_SPEC, Seq2Seq, hf_inputs, seq2seq_inputs, tiny_hf
from safetensors.torch import save_file, save_model

from raykd.errors import ModelFormatError
from raykd.structures import (
    CONFIG_NAME,
    WEIGHTS_NAME,
    head_map,
    load_pruned,
    load_state_with_shape,
    prune_heads,
    read_pruned_config,
    save_pruned,
)

SPEC = {
    **BERT_LIKE_SPEC,
    "decoder_self": {0: [2], 1: [0, 1]},
    "decoder_cross": {0: [3, 0, 1], 1: [0, 1, 2, 3]},
}


def build(config):
    assert config["note"] == "seq2seq"
    return Seq2Seq()


@pytest.fixture
def pruned():
    torch.manual_seed(0)
    model = Seq2Seq().eval()
    with torch.no_grad():  # move weights away from the fresh init so a reload is a real test
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.1)
    prune_heads(model, SPEC)
    return model


def test_round_trip_uneven_heads(tmp_path, pruned):
    save_pruned(pruned, tmp_path / "m", {"note": "seq2seq"})
    config = json.loads((tmp_path / "m" / CONFIG_NAME).read_text())
    assert config["head_map"] == head_map(pruned) and config["note"] == "seq2seq"
    loaded, cfg = load_pruned(tmp_path / "m", build)
    assert cfg["note"] == "seq2seq"
    assert head_map(loaded) == head_map(pruned)
    loaded.eval()
    with torch.no_grad():
        assert torch.equal(loaded(**seq2seq_inputs()), pruned(**seq2seq_inputs()))
    # the other entry point: a caller-built model
    again = load_state_with_shape(Seq2Seq(), tmp_path / "m").eval()
    with torch.no_grad():
        assert torch.equal(again(**seq2seq_inputs()), pruned(**seq2seq_inputs()))


def test_tied_weights_round_trip(tmp_path):
    from transformers import BertConfig, BertForMaskedLM

    torch.manual_seed(0)
    cfg = BertConfig(hidden_size=64, num_hidden_layers=2, num_attention_heads=4, intermediate_size=128, vocab_size=100)
    model = BertForMaskedLM(cfg).eval()
    assert model.cls.predictions.decoder.weight is model.bert.embeddings.word_embeddings.weight
    prune_heads(model, {"encoder_self": {0: [0, 1, 2, 3], 1: [2]}})
    save_pruned(model, tmp_path, {})
    loaded = load_state_with_shape(BertForMaskedLM(cfg), tmp_path).eval()
    ids = hf_inputs()["input_ids"]
    with torch.no_grad():
        assert torch.equal(loaded(input_ids=ids).logits, model(input_ids=ids).logits)


def test_head_map_not_matching_weights_is_refused(tmp_path, pruned):
    d = save_pruned(pruned, tmp_path / "m", {"note": "seq2seq"})
    config = json.loads((d / CONFIG_NAME).read_text())
    config["head_map"]["encoder_self"][0] = [0, 1, 2, 3]  # weights have 3 heads there
    (d / CONFIG_NAME).write_text(json.dumps(config))
    with pytest.raises(ModelFormatError) as err:
        load_pruned(d, build)
    msg = str(err.value)
    assert "'encoder.encoder.layer.0.attention.self.query.weight' has shape [48, 64]" in msg
    assert "expects [64, 64]" in msg and "encoder_self layer 0" in msg


def test_weights_of_another_structure_are_refused(tmp_path, pruned):
    d = save_pruned(pruned, tmp_path / "m", {"note": "seq2seq"})
    save_model(Seq2Seq(), str(d / WEIGHTS_NAME))  # unpruned weights under the pruned head map
    with pytest.raises(ModelFormatError, match="has shape"):
        load_pruned(d, build)


def test_missing_and_unexpected_tensors_are_refused(tmp_path, pruned):
    d = save_pruned(pruned, tmp_path / "m", {"note": "seq2seq"})
    state = {k: v.contiguous() for k, v in pruned.state_dict().items()}
    missing = {k: v for k, v in state.items() if k != "bridge.bias"}
    save_file(missing, str(d / WEIGHTS_NAME))
    with pytest.raises(ModelFormatError, match="missing tensor 'bridge.bias'"):
        load_pruned(d, build)
    save_file({**state, "extra.weight": torch.zeros(2)}, str(d / WEIGHTS_NAME))
    with pytest.raises(ModelFormatError, match="'extra.weight', which the model does not have"):
        load_pruned(d, build)


def test_bad_directories(tmp_path, pruned):
    with pytest.raises(ModelFormatError, match="no config.json"):
        read_pruned_config(tmp_path)
    (tmp_path / CONFIG_NAME).write_text("{not json")
    with pytest.raises(ModelFormatError, match="not valid JSON"):
        read_pruned_config(tmp_path)
    (tmp_path / CONFIG_NAME).write_text(json.dumps({"note": "seq2seq"}))
    with pytest.raises(ModelFormatError, match="has no 'head_map'"):
        read_pruned_config(tmp_path)
    d = save_pruned(pruned, tmp_path / "m", {"note": "seq2seq"})
    (d / WEIGHTS_NAME).write_bytes(b"\x80\x04not safetensors")
    with pytest.raises(ModelFormatError, match="not a readable safetensors file"):
        load_pruned(d, build)
    (d / WEIGHTS_NAME).unlink()
    with pytest.raises(ModelFormatError, match="has no model.safetensors"):
        load_pruned(d, build)


def test_save_keeps_other_files_and_rejects_conflicting_head_map(tmp_path, pruned):
    (tmp_path / "tokenizer.json").write_text("{}")
    save_pruned(pruned, tmp_path, {"note": "seq2seq"})
    assert (tmp_path / "tokenizer.json").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.json", "model.safetensors", "tokenizer.json"]
    with pytest.raises(ValueError, match="differs"):
        save_pruned(pruned, tmp_path, {"head_map": {"encoder_self": []}})


def test_loading_into_a_model_in_bf16_keeps_its_dtype(tmp_path):
    model = tiny_hf("bert")
    prune_heads(model, BERT_LIKE_SPEC)
    save_pruned(model, tmp_path)
    target = copy.deepcopy(tiny_hf("bert")).to(torch.bfloat16)
    load_state_with_shape(target, tmp_path)
    assert all(p.dtype == torch.bfloat16 for p in target.parameters())
    assert head_map(target) == head_map(model)

"""Hidden-size (embedding-channel) pruning: BERT family, Llama family, raykd's solver.

What is exact: the pruned model equals the unpruned one whose norms over the hidden dimension take
their statistics over the kept channels only (and output 0 elsewhere), with square consumers (a
pooler) zeroed on the pruned channels (`masked_hidden`). Zeroing the pruned channels is exact only
with RMSNorm at eps = 0 and the norm weights rescaled by sqrt(H / H'); with LayerNorm it is not
(its mean changes): both are checked below.
"""

from __future__ import annotations

import copy
import math

import pytest
import torch
from torch import nn

from raykd.errors import ModelFormatError, RaykdInputError
from raykd.structures.coverage import UnsupportedModelError
from raykd.structures.hidden import (
    HiddenSpecError,
    apply_hidden_map,
    find_hidden,
    hidden_map,
    hidden_width,
    masked_hidden,
    prune_hidden,
    register_hidden_structure,
)

ATOL = 1e-5
H = 32
KEEP = [0, 2, 3, 5, 8, 9, 11, 12, 14, 17, 18, 20, 23, 24, 26, 27, 29, 31]  # 18 of 32


def _bert_cfg(**kw):
    from transformers import BertConfig

    base = {"vocab_size": 120, "hidden_size": H, "num_hidden_layers": 2, "num_attention_heads": 4, "intermediate_size": 48,
            "max_position_embeddings": 64, "hidden_dropout_prob": 0.0, "attention_probs_dropout_prob": 0.0}
    return BertConfig(**{**base, **kw})


def _roberta_cfg():
    from transformers import RobertaConfig

    return RobertaConfig(vocab_size=120, hidden_size=H, num_hidden_layers=2, num_attention_heads=4, intermediate_size=48,
                         max_position_embeddings=64, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)


def _llama_cfg(cls_name: str = "LlamaConfig", **kw):
    import transformers

    base = {"vocab_size": 120, "hidden_size": H, "intermediate_size": 48, "num_hidden_layers": 2, "num_attention_heads": 4,
            "num_key_value_heads": 2, "max_position_embeddings": 64, "tie_word_embeddings": True}
    return getattr(transformers, cls_name)(**{**base, **kw})


def _spread(model: nn.Module, seed: int = 0) -> nn.Module:
    """Perturb every parameter (norm weights and biases too) so that no channel is trivial."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn(p.shape, generator=g) * 0.2)
    return model.eval()


def _build(name: str) -> nn.Module:
    import transformers as tf

    torch.manual_seed(0)
    models = {
        "bert": lambda: tf.BertModel(_bert_cfg()),
        "bert-cls": lambda: tf.BertForSequenceClassification(_bert_cfg(num_labels=3)),
        "roberta-mlm": lambda: tf.RobertaForMaskedLM(_roberta_cfg()),
        "roberta-cls": lambda: tf.RobertaForSequenceClassification(_roberta_cfg()),
        "llama-tied": lambda: tf.LlamaForCausalLM(_llama_cfg()),
        "qwen3-untied": lambda: tf.Qwen3ForCausalLM(_llama_cfg("Qwen3Config", head_dim=8, tie_word_embeddings=False)),
        "mistral": lambda: tf.MistralForCausalLM(_llama_cfg("MistralConfig")),
    }
    return _spread(models[name]())


def _batch() -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(3)
    ids = torch.randint(1, 120, (3, 11), generator=g)
    mask = torch.ones_like(ids)
    mask[1, 7:] = 0
    return {"input_ids": ids, "attention_mask": mask}


def _out(model: nn.Module) -> torch.Tensor:
    """Everything the model outputs on the hidden width or beyond it, flattened."""
    with torch.no_grad():
        out = model(**_batch())
    if getattr(out, "logits", None) is not None:
        return out.logits
    return torch.cat([out.last_hidden_state.flatten(), out.pooler_output.flatten()])


def _out_kept(model: nn.Module, keep: list[int]) -> torch.Tensor:
    """The unpruned model's outputs restricted to the kept channels (hidden-width outputs)."""
    with torch.no_grad():
        out = model(**_batch())
    if getattr(out, "logits", None) is not None:
        return out.logits
    return torch.cat([out.last_hidden_state[..., keep].flatten(), out.pooler_output[..., keep].flatten()])


# -- surgery equals the exact reference ----------------------------------------------------------

@pytest.mark.parametrize("name", ["bert", "bert-cls", "roberta-mlm", "roberta-cls", "llama-tied", "qwen3-untied", "mistral"])
def test_pruned_model_equals_the_unpruned_one_with_norms_over_the_kept_channels(name):
    model = _build(name)
    with masked_hidden(model, KEEP):
        reference = _out_kept(model, KEEP)
    full = _out_kept(model, KEEP)
    pruned = copy.deepcopy(model)
    prune_hidden(pruned, KEEP)
    got = _out(pruned)
    torch.testing.assert_close(got, reference, atol=ATOL, rtol=ATOL)
    assert (got - full).abs().max() > 1e-3  # the norms' statistics matter: the reference is not the unpruned model
    assert pruned.config.hidden_size == len(KEEP) and hidden_width(pruned) == len(KEEP)

def _zero_channels(model, drop, *, biases_and_norms: bool = False):
    """A copy of `model` whose hidden channels `drop` are zero in every embedding and every writer to
    the residual stream (and, for LayerNorm models, in the writers' biases and the norms' weights and biases)."""
    zeroed = copy.deepcopy(model)
    own = find_hidden(zeroed)
    with torch.no_grad():
        for emb in own.embeds:
            emb.weight[:, drop] = 0
        for lin in own.writes:
            lin.weight[drop] = 0
            if biases_and_norms:
                lin.bias[drop] = 0
        if biases_and_norms:
            for norm in own.norms:
                norm.weight[drop] = 0
                norm.bias[drop] = 0
    return zeroed



def test_repeated_pruning_composes_original_ids_and_equals_one_cut():
    model = _build("llama-tied")
    twice = copy.deepcopy(model)
    prune_hidden(twice, list(range(0, H, 2)))  # original ids 0, 2, ..., 30
    prune_hidden(twice, [1, 2, 5, 9, 15])  # positions -> original ids 2, 4, 10, 18, 30
    assert hidden_map(twice) == {"decoder_hidden": {"width": H, "kept": [2, 4, 10, 18, 30]}}
    once = copy.deepcopy(model)
    prune_hidden(once, [2, 4, 10, 18, 30])
    torch.testing.assert_close(_out(twice), _out(once), atol=0, rtol=0)


def test_llama_zeroed_channels_equal_pruned_only_with_rmsnorm_eps_0_and_rescaled_weights():
    """What zeroing can and cannot stand in for: RMS over H channels of which H - H' are 0 is
    sqrt(H'/H) times the RMS over the H' kept, so with eps = 0 a rescale by sqrt(H/H') makes
    pruning exactly equal to zeroing; a BERT LayerNorm's mean has no such fix."""
    import transformers as tf

    torch.manual_seed(0)
    model = _spread(tf.LlamaForCausalLM(_llama_cfg(rms_norm_eps=0.0)))
    drop = torch.tensor(sorted(set(range(H)) - set(KEEP)))
    zeroed = _zero_channels(model, drop)
    pruned = copy.deepcopy(model)
    prune_hidden(pruned, KEEP)
    assert (_out(pruned) - _out(zeroed)).abs().max() > 1e-3  # without the rescale they differ
    with torch.no_grad():
        for norm in find_hidden(pruned).norms:
            norm.weight.mul_(math.sqrt(H / len(KEEP)))
    torch.testing.assert_close(_out(pruned), _out(zeroed), atol=ATOL, rtol=ATOL)

    bert = _build("bert")
    zeroed = _zero_channels(bert, drop, biases_and_norms=True)
    pruned = copy.deepcopy(bert)
    prune_hidden(pruned, KEEP)
    assert (_out(pruned) - _out_kept(zeroed, KEEP)).abs().max() > 1e-3  # LayerNorm: zeroing is not pruning


# -- shapes and parameter counts -------------------------------------------------------------------

def test_bert_shapes_after_pruning():
    model = _build("bert-cls")
    n = len(KEEP)
    prune_hidden(model, KEEP)
    bert = model.bert
    assert bert.embeddings.word_embeddings.weight.shape == (120, n)
    assert bert.embeddings.position_embeddings.weight.shape == (64, n)
    assert bert.embeddings.token_type_embeddings.weight.shape == (2, n)
    assert bert.embeddings.LayerNorm.weight.shape == (n,) and bert.embeddings.LayerNorm.normalized_shape == (n,)
    for layer in bert.encoder.layer:
        for lin in (layer.attention.self.query, layer.attention.self.key, layer.attention.self.value):
            assert lin.weight.shape == (H, n) and lin.in_features == n  # heads x head width stays H
        assert layer.attention.output.dense.weight.shape == (n, H) and layer.attention.output.dense.bias.shape == (n,)
        assert layer.intermediate.dense.weight.shape == (48, n)
        assert layer.output.dense.weight.shape == (n, 48) and layer.output.dense.bias.shape == (n,)
        assert layer.attention.output.LayerNorm.bias.shape == (n,) and layer.output.LayerNorm.weight.shape == (n,)
    assert bert.pooler.dense.weight.shape == (n, n) and bert.pooler.dense.bias.shape == (n,)
    assert model.classifier.weight.shape == (3, n)
    assert hidden_map(model) == {"encoder_hidden": {"width": H, "kept": KEEP}}


def test_llama_shapes_keep_tied_embeddings_tied():
    model = _build("llama-tied")
    n = len(KEEP)
    prune_hidden(model, KEEP)
    m = model.model
    assert m.embed_tokens.weight.shape == (120, n) and model.lm_head.weight is m.embed_tokens.weight
    for layer in m.layers:
        at, mlp = layer.self_attn, layer.mlp
        assert at.q_proj.weight.shape == (32, n) and at.k_proj.weight.shape == (16, n) and at.v_proj.weight.shape == (16, n)
        assert at.o_proj.weight.shape == (n, 32)
        assert mlp.gate_proj.weight.shape == (48, n) and mlp.up_proj.weight.shape == (48, n)
        assert mlp.down_proj.weight.shape == (n, 48)
        assert layer.input_layernorm.weight.shape == (n,) and layer.post_attention_layernorm.weight.shape == (n,)
    assert m.norm.weight.shape == (n,) and model.config.head_dim == 8


def _bert_params(h: int, cfg, pooler: bool = True) -> int:
    v, p, t, i, a, L = cfg.vocab_size, cfg.max_position_embeddings, cfg.type_vocab_size, cfg.intermediate_size, cfg.hidden_size, cfg.num_hidden_layers
    layer = 3 * (h * a + a) + (a * h + h) + 2 * h + (h * i + i) + (i * h + h) + 2 * h
    return (v + p + t) * h + 2 * h + L * layer + ((h * h + h) if pooler else 0)


def _llama_params(h: int, cfg) -> int:
    v, i, L, d = cfg.vocab_size, cfg.intermediate_size, cfg.num_hidden_layers, cfg.head_dim
    q, kv = cfg.num_attention_heads * d, cfg.num_key_value_heads * d
    layer = h * q + 2 * h * kv + q * h + 3 * h * i + 2 * h
    return v * h + L * layer + h + (0 if cfg.tie_word_embeddings else v * h)


@pytest.mark.parametrize("name", ["bert", "llama-tied", "qwen3-untied"])
def test_param_count_equals_the_formula(name):
    from raykd.measure import count_params

    model = _build(name)
    cfg = copy.deepcopy(model.config)
    qk_norms = cfg.num_hidden_layers * 2 * cfg.head_dim if name == "qwen3-untied" else 0  # one head's width each

    def formula(h: int) -> int:
        return _bert_params(h, cfg) if name == "bert" else _llama_params(h, cfg) + qk_norms
    assert count_params(model) == formula(H)
    for n in (len(KEEP), 1):
        pruned = copy.deepcopy(model)
        prune_hidden(pruned, KEEP[:n])
        assert count_params(pruned) == formula(n)


# -- bad input -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("keep, message", [
    ([], "keep at least one"),
    ([1, 2, 2], "repeat"),
    ([0, H], "out of range"),
    ([-1, 3], "out of range"),
    ([0.5, 1], "integer positions"),
    (None, "list of positions"),
])
def test_bad_keep_ids_are_one_line_errors_and_change_nothing(keep, message):
    model = _build("bert")
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(HiddenSpecError, match=message) as info:
        prune_hidden(model, keep)
    assert isinstance(info.value, RaykdInputError) and "\n" not in str(info.value)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert hidden_map(model)["encoder_hidden"]["kept"] == list(range(H))


def test_unsupported_families_and_structures_are_refused_in_one_line():
    import transformers as tf

    cases = [
        (tf.GPT2Model(tf.GPT2Config(n_embd=32, n_layer=1, n_head=4, vocab_size=50)), "no BERT-family or Llama-family"),
        (tf.BertModel(_bert_cfg(is_decoder=True, add_cross_attention=True)), "cross-attention"),
        (tf.ElectraModel(tf.ElectraConfig(vocab_size=50, embedding_size=16, hidden_size=32, num_hidden_layers=1,
                                          num_attention_heads=4, intermediate_size=48)), "embeddings_project"),
        (nn.Sequential(tf.BertModel(_bert_cfg()), nn.Linear(H, 2)), "Linear at '1'"),
    ]
    for model, message in cases:
        with pytest.raises(UnsupportedModelError, match=message) as info:
            prune_hidden(model, [0])
        assert "\n" not in str(info.value) and isinstance(info.value, RaykdInputError)
        assert hidden_map(model) == {}  # nothing of it can be pruned


# -- maps, save / load, registry -------------------------------------------------------------------------

def test_apply_hidden_map_rebuilds_the_shape_and_refuses_a_map_that_does_not_fit():
    model = _build("bert-cls")
    prune_hidden(model, KEEP)
    fresh = apply_hidden_map(_build("bert-cls"), hidden_map(model))
    fresh.load_state_dict(model.state_dict(), strict=True)
    torch.testing.assert_close(_out(fresh), _out(model), atol=0, rtol=0)
    bad = [
        ({"decoder_hidden": {"width": H, "kept": KEEP}}, "decoder_hidden"),
        ({"encoder_hidden": {"width": 64, "kept": KEEP}}, "64 channels wide"),
        ({"encoder_hidden": {"width": H, "kept": [0, 40]}}, "does not have"),
        ({"encoder_hidden": {"width": H, "kept": [3, 1]}}, "out of order"),
        ({"encoder_hidden": [0, 1]}, "width"),
        ([0, 1], "mapping"),
    ]
    for kept, message in bad:
        with pytest.raises(ModelFormatError, match=message):
            apply_hidden_map(_build("bert-cls"), kept)


@pytest.fixture
def hidden_registered():
    from raykd.structures import registry

    kind = register_hidden_structure()
    assert register_hidden_structure() is kind  # idempotent
    yield kind
    registry.unregister_structure("hidden")


@pytest.mark.parametrize("name", ["bert-cls", "llama-tied"])
def test_save_and_load_round_trip_through_the_registered_kind(name, tmp_path, hidden_registered):
    from raykd.structures import save_pruned, structure_counts
    from raykd.structures.serialization import load_pruned

    model = _build(name)
    prune_hidden(model, KEEP)
    save_pruned(model, tmp_path / "m", {"note": "hidden"})
    fresh_config = copy.deepcopy(_build(name).config)  # the unpruned structure: the map shrinks it
    loaded, config = load_pruned(tmp_path / "m", lambda _c: type(model)(fresh_config).eval())
    assert config["hidden_map"] == hidden_map(model) and structure_counts(loaded)["hidden_channels"] == len(KEEP)
    torch.testing.assert_close(_out(loaded), _out(model), atol=0, rtol=0)
    if name == "llama-tied":
        assert loaded.lm_head.weight is loaded.model.embed_tokens.weight
    # a kind's own `remove`: positions now
    hidden_registered.remove(loaded, {"decoder_hidden" if name == "llama-tied" else "encoder_hidden": {0: [0, 1]}})
    assert hidden_width(loaded) == len(KEEP) - 2


@pytest.fixture(scope="module")
def solver_and_batch(synthetic_splits):
    from raykd.task.mwp import MWPTask
    from raykd.task.teacher import SolverSpec, build_solver_from_spec

    model, tok = build_solver_from_spec(SolverSpec(preset="tiny"), synthetic_splits["train"], seed=0)
    _spread(model)
    return model.eval(), next(iter(MWPTask(tok, model.vocab, synthetic_splits).batches("valid", 6))), tok


def test_solver_hidden_pruning_is_exact_decodes_and_round_trips(solver_and_batch, tmp_path, hidden_registered):
    from raykd.task.decoding import greedy_decode
    from raykd.task.io import load_solver, save_solver

    solver, batch, tok = solver_and_batch
    width = solver.encoder.config.hidden_size
    assert isinstance(solver.memory_proj, nn.Identity)  # the decoder reads the encoder states directly
    keep = list(range(0, width, 4)) + list(range(1, width, 4))
    with torch.no_grad(), masked_hidden(solver, keep):
        reference = solver(**batch)
    model = copy.deepcopy(solver)
    prune_hidden(model, keep)
    with torch.no_grad():
        got = model(**batch)
        enc = model.encode(batch["input_ids"], batch["attention_mask"], batch["number_positions"], batch["number_mask"])
        assert len(greedy_decode(model, enc, 8)) == batch["input_ids"].shape[0]  # cached decoding runs
    torch.testing.assert_close(got, reference, atol=ATOL, rtol=ATOL)
    layer = model.layers[0]
    assert layer.cross_attn.k.in_features == len(keep) and layer.self_attn.k.in_features == width
    saved = save_solver(model, tok, tmp_path / "solver")
    loaded, _, config = load_solver(saved)
    assert config["hidden_map"]["encoder_hidden"]["kept"] == sorted(keep)
    with torch.no_grad():
        torch.testing.assert_close(loaded(**batch), got, atol=0, rtol=0)


# -- importance -----------------------------------------------------------------------------------------

def test_importance_ranks_a_channel_with_larger_activations_first():
    from raykd.method.importance.hidden import (
        collect_hidden_stats,
        hidden_scores,
        keep_most_important,
    )

    for name in ("bert", "llama-tied"):
        model = _build(name)
        batches = [_batch()]
        c = int(hidden_scores(model, batches, at="output").argmin())  # the least important channel ...
        assert int(hidden_scores(model, batches, at="input").argmax()) != c
        own = find_hidden(model)
        boosted = copy.deepcopy(model)
        with torch.no_grad():  # larger norm outputs at c: every stream norm's weight
            for norm in find_hidden(boosted).stream_norms:
                norm.weight[c] *= 20
        scores = hidden_scores(boosted, batches, at="output")
        assert int(scores.argmax()) == c and scores.shape == (own.width,)
        assert c in keep_most_important(scores, 4) and len(keep_most_important(scores, 4)) == 4
        fed = copy.deepcopy(model)
        with torch.no_grad():  # larger inputs at c: the embeddings' column
            find_hidden(fed).embeds[0].weight[:, c] *= 50
        assert int(hidden_scores(fed, batches, at="input").argmax()) == c
        stats = collect_hidden_stats(model, batches)
        assert stats.tokens == int(_batch()["attention_mask"].sum()) and stats.channel_ids == list(range(H))


def test_importance_leaves_padding_out_and_refuses_no_data():
    from raykd.method.importance.hidden import hidden_scores

    model = _build("bert")
    ids = _batch()["input_ids"][:1, :7]
    padded = {"input_ids": torch.cat([ids, torch.full((1, 4), 7)], 1),
              "attention_mask": torch.cat([torch.ones(1, 7, dtype=torch.long), torch.zeros(1, 4, dtype=torch.long)], 1)}
    plain = {"input_ids": ids, "attention_mask": torch.ones(1, 7, dtype=torch.long)}
    torch.testing.assert_close(hidden_scores(model, [padded]), hidden_scores(model, [plain]), atol=1e-6, rtol=1e-6)
    with pytest.raises(ValueError, match="calibration"):
        hidden_scores(model, [])


# -- stock export ---------------------------------------------------------------------------------------

def test_llama_with_pruned_hidden_size_exports_a_stock_config(tmp_path):
    from transformers import AutoConfig, AutoModelForCausalLM

    from raykd.structures.hf_export import export_hf

    model = _build("llama-tied")
    keep = KEEP[:16]  # 16 channels: divisible by the 4 query heads, as transformers' config validation requires
    prune_hidden(model, keep)
    export_hf(model, tmp_path / "hf")
    stock = AutoConfig.from_pretrained(tmp_path / "hf")
    assert stock.hidden_size == 16 and stock.head_dim == 8 and stock.intermediate_size == 48
    loaded = AutoModelForCausalLM.from_pretrained(tmp_path / "hf").eval()
    torch.testing.assert_close(_out(loaded), _out(model), atol=ATOL, rtol=ATOL)


def test_bert_with_pruned_hidden_size_exports_only_with_heads_cut_to_match(tmp_path):
    from transformers import AutoModel

    from raykd.structures import prune_heads
    from raykd.structures.hf_export import NotExportableError, export_hf

    model = _build("bert")
    prune_hidden(model, list(range(0, H, 2)))  # 16 channels; attention keeps 4 heads x 8 = 32
    with pytest.raises(NotExportableError, match="hidden size was pruned to 16") as info:
        export_hf(model, tmp_path / "refused")
    assert "\n" not in str(info.value) and not (tmp_path / "refused").exists()
    prune_heads(model, {"encoder_self": {0: [0, 3], 1: [1, 2]}})  # 2 heads x 8 = 16 = hidden_size
    export_hf(model, tmp_path / "hf")
    loaded = AutoModel.from_pretrained(tmp_path / "hf").eval()
    assert loaded.config.hidden_size == 16 and loaded.config.num_attention_heads == 2
    torch.testing.assert_close(_out(loaded), _out(model), atol=ATOL, rtol=ATOL)

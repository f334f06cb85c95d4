import json

import pytest
import torch

from raykd.data import is_well_formed_prefix
from raykd.errors import ModelFormatError
from raykd.task.io import load_solver, save_solver
from raykd.task.mwp import MWPTask
from raykd.task.teacher import SolverSpec, build_solver_from_spec
from raykd.task.vocab import OutputVocab


def test_vocab_layout_and_round_trip(synthetic_splits):
    vocab = OutputVocab.from_problems(synthetic_splits["train"])
    assert vocab.tokens[:2] == ("[PAD]", "[BOS]")
    assert list(vocab.operator_ids) == [2, 3, 4, 5, 6]
    assert all(vocab.tokens[i].startswith("N") for i in range(vocab.num_fixed, len(vocab)))
    eq = synthetic_splits["train"][0].equation
    assert vocab.decode(vocab.encode(eq)) == list(eq)
    assert OutputVocab.from_dict(vocab.to_dict()) == vocab
    with pytest.raises(KeyError, match="not in the output vocabulary"):
        vocab.encode(["N99"])


@pytest.fixture(scope="module")
def fresh(synthetic_splits):
    torch.manual_seed(0)
    model, tok = build_solver_from_spec(SolverSpec(preset="tiny"), synthetic_splits["train"])
    return model, tok, MWPTask(tok, model.vocab, synthetic_splits, max_output_len=12)


@pytest.mark.parametrize("beam", [1, 3])
def test_constrained_decoding_always_gives_well_formed_expressions(fresh, beam):
    model, _, task = fresh
    preds = task.predict(model, "valid", beam_size=beam)
    assert len(preds) == len(task.splits["valid"])
    for p in preds:
        assert 1 <= len(p.tokens) <= task.max_output_len
        assert is_well_formed_prefix(p.tokens), p.tokens
        slots = [int(t[1:]) for t in p.tokens if t.startswith("N")]
        assert all(s < len(p.problem.numbers) for s in slots), (p.tokens, p.problem.numbers)


def test_real_training_steps_reduce_the_task_loss(synthetic_splits):
    torch.manual_seed(0)
    model, tok = build_solver_from_spec(SolverSpec(preset="tiny"), synthetic_splits["train"])
    task = MWPTask(tok, model.vocab, synthetic_splits)
    batch = next(iter(task.batches("train", 32)))
    opt = torch.optim.AdamW(model.parameters(), lr=2e-3)
    model.train()
    first = float(task.outputs(model, batch).loss)
    for _ in range(15):
        loss = task.outputs(model, batch).loss
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert float(task.outputs(model, batch).loss) < 0.5 * first


def test_trained_teacher_beats_the_trivial_baseline(tiny_teacher_dir, synthetic_splits):
    model, tok, config = load_solver(tiny_teacher_dir)
    task = MWPTask(tok, model.vocab, synthetic_splits)
    metrics = task.evaluate(model, "valid")
    # trivial baseline: always answer with the most frequent gold equation of the train split
    from collections import Counter

    from raykd.data import prediction_correct

    common = Counter(p.equation for p in synthetic_splits["train"]).most_common(1)[0][0]
    valid = synthetic_splits["valid"]
    trivial = sum(prediction_correct(p, common) for p in valid) / len(valid)
    assert metrics["accuracy"] > trivial + 0.15, (metrics, trivial)
    assert set(metrics["by_complexity"]) == {"simple", "medium", "complex"}
    assert config["training"]["fit"]["epochs"] == 12


def test_save_load_round_trip_gives_identical_outputs(fresh, tmp_path):
    model, tok, task = fresh
    model.eval()
    batch = next(iter(task.batches("valid", 8)))
    with torch.no_grad():
        before = model(**batch)
    save_solver(model, tok, tmp_path / "m")
    loaded, _, config = load_solver(tmp_path / "m")
    with torch.no_grad():
        after = loaded(**batch)
    assert torch.equal(before, after)
    assert config["model_kind"] == "raykd-mwp-solver"
    assert sorted(p.name for p in (tmp_path / "m").iterdir()) == sorted(
        ["config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"]
    )


def test_loading_refuses_weights_that_do_not_match_the_head_map(fresh, tmp_path):
    model, tok, _ = fresh
    save_solver(model, tok, tmp_path / "m")
    cfg_path = tmp_path / "m" / "config.json"
    cfg = json.loads(cfg_path.read_text())
    cfg["head_map"]["encoder_self"][0] = cfg["head_map"]["encoder_self"][0][:-1]  # claims one head fewer
    cfg_path.write_text(json.dumps(cfg))
    with pytest.raises(ModelFormatError, match="head"):
        load_solver(tmp_path / "m")


def test_loading_a_directory_that_is_not_a_solver(tmp_path):
    with pytest.raises(ModelFormatError, match="not a raykd model directory"):
        load_solver(tmp_path)
    (tmp_path / "config.json").write_text("{not json")
    with pytest.raises(ModelFormatError, match="not valid JSON"):
        load_solver(tmp_path)


def test_tiny_preset_encoder_shape_is_configurable_and_survives_save_load(synthetic_splits, tmp_path):
    from raykd.structures import head_counts

    model, tok = build_solver_from_spec(SolverSpec(preset="tiny", encoder_layers=3, encoder_heads=8, decoder_heads=8),
                                        synthetic_splits["train"])
    counts = head_counts(model)
    assert counts["encoder_self"] == [8, 8, 8]
    assert {k: v for k, v in counts.items() if k != "encoder_self"} == {"decoder_self": [8, 8], "decoder_cross": [8, 8]}
    save_solver(model, tok, tmp_path / "s")
    assert head_counts(load_solver(tmp_path / "s")[0]) == counts


@pytest.mark.parametrize("spec, message", [
    (dict(preset="tiny", encoder_heads=12), "must divide the tiny hidden size 128"),
    (dict(encoder="minilm", encoder_layers=3), "tiny preset only"),
])
def test_bad_tiny_preset_shapes_are_refused(spec, message):
    with pytest.raises(ValueError, match=message):
        SolverSpec(**spec)

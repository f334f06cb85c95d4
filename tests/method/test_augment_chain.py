"""The chain's `augment: K` lever on a real tiny teacher: off, the chain trains on the task itself;
on, each round trains on the originals + K variants of each, and is evaluated on the original splits."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import pytest
import torch

from raykd.errors import ConfigError
from raykd.method.chain import Chain
from raykd.method.config import ChainConfig
from raykd.method.round_cost import make_measure
from raykd.task.io import SolverIO, load_solver
from raykd.task.mwp import MWPTask

ONE_ROUND = {"rounds": 1, "p_min": 0.2, "p_max": 0.2, "epochs_per_round": 1, "lr": 1e-3, "calib_batches": 2,
             "latency_batch": 4, "latency_repeats": 1, "patience": 2, "batch_size": 32}
TIMING = ("_s", "_ms", "latency", "speedup")  # what a rerun may measure differently


def _run(teacher_dir, splits, out, **changes):
    teacher, tok, _ = load_solver(teacher_dir)
    task = MWPTask(tok, teacher.vocab, splits)
    cfg = ChainConfig(**{**ONE_ROUND, **changes})
    chain = Chain(task, teacher, cfg, SolverIO(tok), out, make_measure(task, repeats=cfg.latency_repeats), progress=False,
                  log=lambda _m: None)
    return chain.run(), task


@pytest.fixture(scope="module")
def small_splits():
    from raykd.data import load_splits

    return load_splits("synthetic:150:7")


@pytest.fixture(scope="module")
def small_teacher_dir(small_splits, tmp_path_factory):
    """A tiny-preset solver, untrained: the lever's plumbing does not need a good teacher, and the
    machine these tests share is small."""
    from raykd.task.io import save_solver
    from raykd.task.teacher import SolverSpec, build_solver_from_spec

    model, tok = build_solver_from_spec(SolverSpec(preset="tiny"), small_splits["train"], seed=0)
    return save_solver(model, tok, tmp_path_factory.mktemp("augment-teacher") / "tiny")


def _untimed(record):
    return {k: v for k, v in record.items() if not any(t in k for t in TIMING)}


@pytest.fixture(scope="module")
def runs(small_teacher_dir, small_splits, tmp_path_factory):
    base = tmp_path_factory.mktemp("augment-chain")
    return {name: _run(small_teacher_dir, small_splits, base / name, **changes)
            for name, changes in {"default": {}, "off": {"augment": 0}, "on": {"augment": 2}}.items()}


def test_augment_off_is_the_chain_without_the_lever_bit_for_bit(runs):
    (default, task), (off, _) = runs["default"], runs["off"]
    a, b = default.model.state_dict(), off.model.state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert [_untimed(r) for r in default.records] == [_untimed(r) for r in off.records]
    rec = off.records[0]
    assert "augmentation" not in rec and "train_examples_augmented" not in rec
    assert rec["train_steps"] == math.ceil(task.num_examples("train") / ONE_ROUND["batch_size"])  # the task's own problems


def test_augment_trains_each_round_on_the_variants_and_evaluates_on_the_original_splits(runs, small_splits):
    (off, _), (on, task) = runs["off"], runs["on"]
    rec = on.records[0]
    originals = task.num_examples("train")
    assert task.splits["train"] is small_splits["train"]  # the chain's task is left as it was
    assert 2.5 * originals <= rec["train_examples_augmented"] <= 3 * originals
    assert rec["augmentation"]["k"] == 2 and rec["augmentation"]["originals"] == len(small_splits["train"])
    assert rec["train_steps"] == math.ceil(rec["train_examples_augmented"] / ONE_ROUND["batch_size"])
    # evaluation, its pairing with the teacher and the held-out split: the original problems only
    assert rec["accuracy_n"] == on.teacher_metrics["valid"]["n"] == off.records[0]["accuracy_n"]
    assert rec["test_accuracy_n"] == len(small_splits["test"])
    a, b = off.model.state_dict(), on.model.state_dict()
    assert any(not torch.equal(a[k], b[k]) for k in a)  # it trained on other data


def test_a_chain_never_resumes_with_another_augment(runs, small_teacher_dir, small_splits):
    from raykd.resume import ResumeMismatch

    with pytest.raises(ResumeMismatch, match=r"config\.augment: 2 -> 0"):
        _run(small_teacher_dir, small_splits, runs["on"][0].out_dir, augment=0)


def test_a_task_that_cannot_augment_is_a_config_error_before_anything_is_written(tmp_path):
    from transformers import AutoModelForCausalLM, LlamaConfig

    from raykd.task.hf_io import CausalLMIO

    sys.path.insert(0, str(Path(__file__).parent))
    from lm_task import RepeatLMTask

    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(LlamaConfig(
        vocab_size=24, hidden_size=32, intermediate_size=32, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2, head_dim=8, max_position_embeddings=32))
    chain = Chain(RepeatLMTask(24), model, ChainConfig(rounds=1, augment=1), CausalLMIO(model.config.to_dict()),
                  tmp_path / "chain", measure=lambda ref, m, b: {}, progress=False, log=lambda _m: None)
    with pytest.raises(ConfigError, match=r"^task RepeatLMTask cannot augment its training data: set augment: 0$"):
        chain.run()
    assert not (tmp_path / "chain").exists()


@pytest.mark.parametrize("value", [-1, 33, 1.5, "2"])
def test_augment_must_be_a_small_whole_number(value):
    with pytest.raises(ConfigError, match="augment"):
        ChainConfig.from_dict({"augment": value})
    assert ChainConfig.from_dict({"augment": 4}).augment == 4 and ChainConfig().augment == 0

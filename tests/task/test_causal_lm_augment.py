"""The causal-LM task's augmented transfer set (`CausalLMTask.augmented`, `augment_labels`):
variants come from "train" only and never repeat a held-out text; their gold targets (expression or
derived trace) reach their own answers; with a teacher, what it writes for a variant becomes that
variant's target only where it reaches the gold answer (`teacher_targets`), and the chain passes its
teacher when `augment_labels: teacher`. Real parts: raykd's WordPiece tokenizer, tiny random Llamas,
one of them fitted to write a chosen trace for one variant and a wrong one for another."""

from __future__ import annotations

import pytest
import torch
from trace_models import tiny_llama, trace_tokenizer

from raykd.data import load_splits
from raykd.data.numbers import format_number
from raykd.errors import ConfigError
from raykd.method.chain import Chain
from raykd.method.config import ChainConfig
from raykd.method.round_cost import make_measure
from raykd.task.causal_lm import (
    CausalLMTask,
    generated_value,
    target_expression,
    teacher_targets,
    trace_value,
)
from raykd.task.hf_io import CausalLMIO
from raykd.task.io import SolverIO, load_solver
from raykd.task.mwp import MWPTask
from raykd.traces.derive import derive_trace
from raykd.traces.format import Trace

WRONG = Trace(("We guess the answer.",), "999").render()
PREFACE = "We read the problem once more."


@pytest.fixture(scope="module")
def splits():
    return load_splits("synthetic:40", seed=0)


@pytest.fixture(scope="module")
def tokenizer(splits):
    return trace_tokenizer(splits, [WRONG, PREFACE])


def _variants(task: CausalLMTask) -> list:
    return [p for p in task.splits["train"] if "~aug" in p.id]


@pytest.mark.parametrize("output", ["expression", "trace"])
def test_variants_come_from_train_only_and_their_gold_targets_reach_their_answers(splits, tokenizer, output):
    task = CausalLMTask(tokenizer, splits, output=output, max_target_len=400)
    aug = task.augmented(2, seed=0)
    variants = _variants(aug)
    originals = list(splits["train"])
    assert aug.splits["train"][: len(originals)] == originals and len(variants) >= len(originals)
    assert {p.id.split("~aug")[0] for p in variants} <= {p.id for p in originals}  # from train only
    held_out = {p.text for name in ("valid", "test") for p in splits[name]}
    assert not {p.text for p in variants} & held_out
    assert all(aug.splits[name] is task.splits[name] for name in ("valid", "test"))
    assert aug.augmentation == {"k": 2, "seed": 0, "originals": len(originals), "variants": len(variants),
                                "short": aug.augmentation["short"], "labels": "gold"}
    for p in variants:
        text = aug.target_text(p)
        value = generated_value(p, text) if output == "expression" else trace_value(p, text)
        assert value == pytest.approx(p.answer), (p.id, text)
        if output == "expression":
            assert text == " " + target_expression(p)
    assert len(aug.encoded("train")) == len(aug.splits["train"])  # every variant encodes within the limits
    assert task.augmented(2, seed=0).splits["train"] == aug.splits["train"]  # deterministic per seed
    assert task.augmented(2, seed=1).splits["train"] != aug.splits["train"]


def test_teacher_targets_keep_only_what_reaches_the_gold_answer(splits):
    p, q, r = list(splits["train"][:3])
    gold = target_expression(p)
    expressions = teacher_targets([
        (p, f" ({gold}) = {format_number(p.answer)}\nmore", True),  # right: kept, left of "=" and first line only
        (q, f"The answer is {format_number(q.answer)}.", True),  # right only by the last-number fallback: not kept
        (r, "1 + 1", False),  # wrong
    ], trace=False)
    assert expressions == {p.id: f"({gold})"}
    right = derive_trace(p).render()
    traces = teacher_targets([(p, right + "\nThen some more words.", True), (q, WRONG, False)], trace=True)
    assert traces == {p.id: right.strip()}


def test_a_teacher_labels_the_variants_it_gets_right_and_the_rest_keep_gold_traces(splits, tokenizer):
    task = CausalLMTask(tokenizer, splits, output="trace", max_target_len=400, max_new_tokens=120)
    gold = task.augmented(1, seed=0)
    v0, v1 = _variants(gold)[:2]
    chosen = PREFACE + "\n" + derive_trace(v0).render()
    assert trace_value(v0, chosen) == pytest.approx(v0.answer)
    fit = CausalLMTask(tokenizer, {"train": [v0, v1]}, output="trace", traces={v0.id: chosen, v1.id: WRONG},
                       max_target_len=400, max_new_tokens=120)
    teacher = tiny_llama(len(tokenizer))
    batch = next(fit.batches("train", 2))
    optimiser = torch.optim.Adam(teacher.parameters(), lr=3e-3)
    for _ in range(300):
        optimiser.zero_grad()
        loss = fit.outputs(teacher, batch).loss
        loss.backward()
        optimiser.step()
        if loss.item() < 0.01:
            break
    teacher.eval()
    aug = task.augmented(1, seed=0, teacher=teacher)
    assert aug.splits["train"] == gold.splits["train"]  # the same variants; only their targets differ
    info = aug.augmentation
    assert info["labels"] == "teacher" and info["teacher_labelled"] + info["gold_labelled"] == info["variants"]
    written = aug.traces[v0.id]  # the teacher's own wording, as its (uncased) tokenizer decodes it
    assert written.lower().startswith(PREFACE.lower().rstrip(".")) and aug.target_text(v0) == written
    assert trace_value(v0, written) == pytest.approx(v0.answer) and written != gold.target_text(v0)
    assert v1.id not in aug.traces and aug.target_text(v1) == gold.target_text(v1)  # wrong: gold-derived
    assert task.traces is None  # the original task is left as it was


def test_the_chain_passes_its_teacher_and_the_mwp_solver_refuses_teacher_labels(splits, tokenizer, tmp_path,
                                                                                tiny_teacher_dir, synthetic_splits):
    with pytest.raises(ConfigError, match=r"augment_labels must be one of \('gold', 'teacher'\), got 'student'"):
        ChainConfig(augment=1, augment_labels="student")
    task = CausalLMTask(tokenizer, splits, max_target_len=48, max_new_tokens=8)
    model = tiny_llama(len(tokenizer)).eval()
    cfg = ChainConfig(p_min=0.25, p_max=0.25, rounds=1, epochs_per_round=1, steps_per_round=1, batch_size=8, lr=1e-3,
                      calib_batches=1, calib_batch_size=8, latency_batch=2, latency_repeats=1, augment=1,
                      augment_labels="teacher")
    measure = make_measure(task, repeats=1, warmup=0, threads=1)
    chain = Chain(task, model, cfg, CausalLMIO(model.config.to_dict(), tokenizer), tmp_path / "chain", measure,
                  progress=False, log=lambda _m: None)
    trained_on = chain._training_task()
    assert trained_on.augmentation["labels"] == "teacher"
    assert trained_on.augmentation["teacher_labelled"] + trained_on.augmentation["gold_labelled"] == \
        trained_on.augmentation["variants"] > 0

    solver_model, solver_tokenizer, _ = load_solver(tiny_teacher_dir)  # the solver: its distillation follows the teacher
    solver_task = MWPTask(solver_tokenizer, solver_model.vocab, synthetic_splits)
    solver = Chain(solver_task, solver_model, cfg, SolverIO(solver_tokenizer), tmp_path / "c2",
                   measure, progress=False, log=lambda _m: None)
    with pytest.raises(ConfigError, match="labels its variants with the gold answer only"):
        solver._training_task()

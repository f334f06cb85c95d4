"""A fit killed mid-way resumes from its checkpoint to exactly the weights, metrics and history an
uninterrupted fit reaches (`raykd.fit_checkpoint`): mid-epoch, at an epoch's end, after early
stopping; and a checkpoint of another training is refused in one line."""

from __future__ import annotations

import json

import pytest
import torch

from raykd.data import load_splits
from raykd.errors import ConfigError
from raykd.fit_checkpoint import FitCheckpoint
from raykd.task.mwp import MWPTask
from raykd.task.teacher import SolverSpec, build_solver_from_spec
from raykd.training import FitConfig, fit, task_loss

SPLITS = load_splits("synthetic:80:5")
# 64 train problems, batch 16: 4 steps an epoch; dropout on, so the RNG must be restored too
CONFIG = FitConfig(epochs=3, batch_size=16, lr=2e-3, patience=5, seed=3)


class Killed(Exception):
    """Stands in for a process killed after `after` optimiser steps."""


def _fresh() -> tuple[torch.nn.Module, MWPTask]:
    model, tokenizer = build_solver_from_spec(SolverSpec(preset="tiny"), SPLITS["train"], seed=0)
    return model, MWPTask(tokenizer, model.vocab, SPLITS)


def _killed_after(task: MWPTask, after: int):
    inner, calls = task_loss(task), [0]

    def loss(model, batch):
        calls[0] += 1
        if calls[0] > after:
            raise Killed
        return inner(model, batch)

    return loss


def _run(config: FitConfig, checkpoint: FitCheckpoint | None = None, kill_after: int | None = None):
    torch.manual_seed(0)
    model, task = _fresh()
    loss = _killed_after(task, kill_after) if kill_after is not None else None
    result = fit(model, task, config, loss_fn=loss, progress=False, checkpoint=checkpoint)
    return model, result


_WHOLE: list = []


def _uninterrupted():
    """The reference fit of CONFIG, run once per session (it is deterministic)."""
    if not _WHOLE:
        _WHOLE.append(_run(CONFIG))
    return _WHOLE[0]


def _same(a, b) -> None:
    (ma, ra), (mb, rb) = a, b
    assert ra.steps == rb.steps and ra.stopped == rb.stopped and ra.train_examples == rb.train_examples
    assert ra.best_metrics == rb.best_metrics
    assert [{k: v for k, v in h.items()} for h in ra.history] == rb.history
    sa, sb = ma.state_dict(), mb.state_dict()
    assert sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


@pytest.mark.parametrize("every, kill_after", [(3, 7), (4, 8), (5, 11)])
def test_a_killed_fit_resumes_to_the_uninterrupted_weights(tmp_path, every, kill_after):
    """Killed mid-epoch 2 (checkpoint at step 6), right after an epoch's evaluation (8), and in the
    last epoch (10): the resumed fit ends bit-identical to one never interrupted."""
    whole = _uninterrupted()
    ck = FitCheckpoint(tmp_path / "ck", every=every)
    with pytest.raises(Killed):
        _run(CONFIG, ck, kill_after=kill_after)
    saved = json.loads((ck.directory / "state.json").read_text())["loop"]
    assert 0 < saved["step"] <= kill_after and saved["step"] < whole[1].steps
    assert list(tmp_path.iterdir()) == [ck.directory]  # no half-written checkpoint left beside it
    _same(_run(CONFIG, ck), whole)


def test_without_a_checkpoint_fit_is_unchanged_and_writes_nothing(tmp_path):
    ck = FitCheckpoint(tmp_path / "ck", every=4)
    _same(_run(CONFIG, ck), _uninterrupted())


def test_a_fit_that_stopped_early_does_not_train_on_when_resumed(tmp_path):
    """patience 1 with a learning rate too high to improve: early stopping ends the fit; its last
    checkpoint says so, and resuming it gives the same result without another step."""
    config = FitConfig(epochs=6, batch_size=16, lr=0.5, patience=1, seed=3)
    whole = _run(config)
    assert whole[1].stopped == "early-stopping"
    ck = FitCheckpoint(tmp_path / "ck", every=100)
    first = _run(config, ck)
    assert json.loads((ck.directory / "state.json").read_text())["loop"]["stopped"] == "early-stopping"
    _same(first, whole)
    _same(_run(config, ck, kill_after=0), whole)  # resumed: no loss is computed at all


def test_a_checkpoint_of_another_training_is_refused(tmp_path):
    ck = FitCheckpoint(tmp_path / "ck", every=3)
    with pytest.raises(Killed):
        _run(CONFIG, ck, kill_after=4)
    other = FitConfig(epochs=3, batch_size=16, lr=1e-3, patience=5, seed=3)
    with pytest.raises(ConfigError, match=r"written by another training .*delete it to start over"):
        _run(other, ck)
    (ck.directory / "state.json").write_text("{")
    with pytest.raises(ConfigError, match="is damaged"):
        _run(CONFIG, ck)


@pytest.mark.parametrize("every", [0, -1, 2.5])
def test_checkpoint_every_must_be_a_positive_step_count(tmp_path, every):
    with pytest.raises(ConfigError, match="every must be an integer >= 1"):
        FitCheckpoint(tmp_path, every=every)

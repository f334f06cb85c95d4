"""Recovery levers of the chain, each with an off switch: a final recovery phase (`final_epochs`),
the per-round restarting schedule (`warmup_ratio`), width before depth (`layer_start_round`) and
ModelOpt's step cap (`max_step_ratio`). Off, the chain is today's; on, each does what it says."""

from __future__ import annotations

import copy
import json

import pytest

from raykd.errors import ConfigError
from raykd.method.chain import Chain, distillation_loss, last_complete_round
from raykd.method.config import ChainConfig
from raykd.method.round_cost import make_measure
from raykd.method.plan import round_ratios
from raykd.method.schedule import fewest_rounds, pruning_ratio, ratios, step_fractions
from raykd.resume import model_digest
from raykd.stats import accuracy_fields
from raykd.task.io import SolverIO, load_solver
from raykd.task.mwp import MWPTask
from raykd.training import FitConfig, fit

FAST = dict(rounds=2, p_min=0.1, p_max=0.3, epochs_per_round=1, steps_per_round=6, lr=1e-3, calib_batches=2,
            calib_batch_size=16, latency_batch=4, latency_repeats=1, patience=2, eval_every=3)
TIMINGS = ("_s", "_ms")


def _chain(teacher_dir, splits, out, **changes):
    teacher, tok, _ = load_solver(teacher_dir)
    task = MWPTask(tok, teacher.vocab, splits)
    cfg = ChainConfig(**{**FAST, **changes})
    return Chain(task, teacher, cfg, SolverIO(tok), out, make_measure(task, repeats=1), progress=False, log=lambda _m: None)


def _untimed(record: dict) -> dict:
    """A record as state.json stores it, less what a clock decides (timings, latency, speed-up)."""
    record = json.loads(json.dumps(record, default=float))
    return {k: v for k, v in record.items() if not k.endswith(TIMINGS) and "speedup" not in k and "latency" not in k}


@pytest.fixture(scope="module")
def plain(tiny_teacher_dir, synthetic_splits, tmp_path_factory):
    """Today's chain: every lever at its default (off)."""
    return _chain(tiny_teacher_dir, synthetic_splits, tmp_path_factory.mktemp("plain") / "c").run()


# --- off switches ---------------------------------------------------------------------------------

def test_the_off_switches_are_the_defaults_and_add_nothing_to_the_records(plain):
    off = ChainConfig(final_epochs=0, final_teacher="original", warmup_ratio=0.1, layer_start_round=1, max_step_ratio=0.0,
                      layer_importance="influence")
    assert off == ChainConfig()
    assert FitConfig().warmup_ratio == ChainConfig().warmup_ratio  # the schedule every round used before
    new = {"accuracy_before_final", "final_epochs", "final_teacher", "final_train_steps", "final_train_s", "final_stopped",
           "final_kept"}
    assert all(not new & set(r) for r in plain.records)


@pytest.mark.parametrize("rounds, lo, hi, n", [(3, 0.1, 0.25, 1.0), (4, 0.0, 0.5, 2.0), (1, 0.2, 0.4, 0.5), (5, 0.0, 0.33, 1.0)])
def test_layers_from_round_one_follow_exactly_the_old_schedule(rounds, lo, hi, n):
    cfg = ChainConfig(rounds=rounds, p_min=lo, p_max=hi, ffn_p_min=lo, ffn_p_max=hi, layer_p_min=lo, layer_p_max=hi, n=n)
    for r in range(1, rounds + 1):
        old = pruning_ratio(r, rounds, lo, hi, n)
        assert round_ratios(cfg, r) == {"heads": old, "ffn": old, "layers": old}  # the same floats, bit for bit


def test_the_plain_chain_checkpoints_its_last_round_as_before(plain):
    state = json.loads((plain.out_dir / "round-02" / "state.json").read_text())
    assert state["done"] is True and [r["round"] for r in state["records"]] == [1, 2]
    assert [_untimed(r) for r in state["records"]] == [_untimed(r) for r in plain.records]


# --- final recovery phase ---------------------------------------------------------------------------

class _Crash(Exception):
    pass


def test_a_final_phase_continues_the_last_student_from_its_own_fresh_fit(plain, tiny_teacher_dir, synthetic_splits, tmp_path):
    chain = _chain(tiny_teacher_dir, synthetic_splits, tmp_path / "c", final_epochs=1)
    result = chain.run()
    first, last = result.records
    before, plain_last = _untimed(plain.records[0]), _untimed(plain.records[1])
    assert _untimed(first) == before  # round 1 is untouched
    # the last round itself is today's round: same pruning, same training, the accuracy kept as before
    for key in ("train_steps", "stopped", "heads_kept", "ffn_kept", "layers_kept", "heads_total"):
        assert last[key] == plain_last[key]
    assert last["accuracy_before_final"] == plain_last["accuracy"]
    assert last["final_epochs"] == 1 and last["final_teacher"] == "original"
    assert last["final_train_steps"] >= 1 and last["final_stopped"] in ("epochs", "early-stopping")
    # the phase is a fresh fit of the plain chain's last student against the unpruned teacher
    teacher, tok, _ = load_solver(tiny_teacher_dir)
    task = MWPTask(tok, teacher.vocab, synthetic_splits)
    student = copy.deepcopy(plain.model)
    for p in student.parameters():
        p.requires_grad_(True)
    cfg = chain.config
    by_hand = fit(student, task, FitConfig(epochs=1, batch_size=cfg.batch_size, lr=cfg.lr, weight_decay=cfg.weight_decay,
                                           warmup_ratio=cfg.warmup_ratio, patience=cfg.patience, eval_every=cfg.eval_every,
                                           seed=cfg.seed + cfg.rounds + 1),
                  loss_fn=distillation_loss(teacher, task, cfg), progress=False)
    assert last["final_train_steps"] == by_hand.steps and last["final_stopped"] == by_hand.stopped
    improved = by_hand.best_metrics["accuracy"] > plain_last["accuracy"]
    assert last["final_kept"] == ("after" if improved else "before")
    kept = student if improved else plain.model
    assert model_digest(result.model) == model_digest(kept)
    # the record's accuracy fields are the kept model's, recomputed like the chain's, test split included
    valid, test = task.evaluate(kept, "valid"), task.evaluate(kept, "test")
    assert last["accuracy"] == valid["accuracy"]
    for key, value in accuracy_fields("accuracy", valid, result.teacher_metrics["valid"]).items():
        assert last[key] == value, key
    assert last["test_accuracy"] == test["accuracy"]
    for key, value in accuracy_fields("test_accuracy", test, result.teacher_metrics["test"]).items():
        assert last[key] == value, key
    # the checkpoint of the last round is the model after the phase, and its state says so
    reloaded, _, _ = load_solver(tmp_path / "c" / "round-02")
    assert model_digest(reloaded) == model_digest(result.model)
    r, state = last_complete_round(tmp_path / "c")
    assert r == 2 and state["done"] and state["records"][-1]["final_train_steps"] == last["final_train_steps"]


def test_a_final_phase_from_the_previous_teacher_and_a_resumed_chain_agree_with_an_uninterrupted_one(
        tiny_teacher_dir, synthetic_splits, tmp_path):
    whole = _chain(tiny_teacher_dir, synthetic_splits, tmp_path / "whole", final_epochs=1, final_teacher="previous").run()
    assert whole.records[-1]["final_teacher"] == "previous"
    out = tmp_path / "cut"
    first = _chain(tiny_teacher_dir, synthetic_splits, out, final_epochs=1, final_teacher="previous")

    def crash(record, _directory):
        if record["round"] == 1:
            raise _Crash

    first.on_round = crash
    with pytest.raises(_Crash):
        first.run()
    assert last_complete_round(out)[0] == 1
    resumed = _chain(tiny_teacher_dir, synthetic_splits, out, final_epochs=1, final_teacher="previous").run()
    assert resumed.resumed_from == 1
    assert [_untimed(r) for r in resumed.records] == [_untimed(r) for r in whole.records]
    assert model_digest(resumed.model) == model_digest(whole.model)
    # a finished chain re-run does nothing more: the phase is not run twice
    again = _chain(tiny_teacher_dir, synthetic_splits, out, final_epochs=1, final_teacher="previous").run()
    assert again.resumed_from == 2 and again.records == resumed.records


def test_the_warmup_ratio_reaches_every_rounds_schedule(tiny_teacher_dir, synthetic_splits, tmp_path):
    other = _chain(tiny_teacher_dir, synthetic_splits, tmp_path / "c", rounds=1, warmup_ratio=0.5).run()
    same = _chain(tiny_teacher_dir, synthetic_splits, tmp_path / "d", rounds=1).run()
    assert model_digest(other.model) != model_digest(same.model)


# --- width before depth, step cap -------------------------------------------------------------------

def test_layers_start_at_their_round_and_reach_their_final_ratio_at_the_last():
    cfg = ChainConfig(rounds=3, p_min=0.1, p_max=0.3, layer_p_max=0.5, layer_start_round=2)
    assert [round_ratios(cfg, r)["layers"] for r in (1, 2, 3)] == [0.0, pytest.approx(0.25), pytest.approx(0.5)]
    assert [round_ratios(cfg, r)["heads"] for r in (1, 2, 3)] == ratios(3, 0.1, 0.3, 1.0)  # width as before
    last = ChainConfig(rounds=3, layer_p_max=0.5, layer_start_round=3)
    assert [round_ratios(last, r)["layers"] for r in (1, 2, 3)] == [0.0, 0.0, 0.5]


def test_a_width_first_chain_drops_layers_only_from_its_layer_round(tiny_teacher_dir, synthetic_splits, tmp_path):
    result = _chain(tiny_teacher_dir, synthetic_splits, tmp_path / "c", ffn_p_max=0.25, layer_p_max=0.5,
                    layer_start_round=2).run()
    first, last = result.records
    assert first["layers_removed_now"] == 0 and first["ffn_removed_now"] > 0 and first["heads_removed_now"] > 0
    assert last["layers_removed_now"] == 2 and last["layers_kept"] == {"encoder_layers": 1, "decoder_layers": 1}


@pytest.mark.parametrize("changes, message", [
    ({"layer_start_round": 0}, r"layer_start_round must be in 1\.\.rounds \(3\), got 0"),
    ({"layer_start_round": 4}, r"layer_start_round must be in 1\.\.rounds \(3\), got 4"),
    ({"warmup_ratio": 1.0}, r"warmup_ratio must be in \[0, 1\)"),
    ({"warmup_ratio": -0.1}, r"warmup_ratio must be in \[0, 1\)"),
    ({"final_epochs": -1}, "final_epochs must be >= 0"),
    ({"final_teacher": "best"}, "final_teacher must be one of"),
    ({"max_step_ratio": 1.5}, r"max_step_ratio must be in \[0, 1\]"),
    ({"layer_importance": "skip"}, "layer_importance must be one of"),
    # heads 0.1 -> 0.5 over 2 rounds: round 2 removes 0.2 / 0.7 = 28.6% of what is left, round 1 30%
    ({"rounds": 2, "p_min": 0.1, "p_max": 0.5, "max_step_ratio": 0.28}, r"heads: round 1 removes 30\.0% "),
    ({"rounds": 3, "p_max": 0.25, "layer_p_max": 0.5, "layer_start_round": 3, "max_step_ratio": 0.3},
     r"layers: round 3 removes 50\.0% of what remains, more than max_step_ratio 0\.3"),
])
def test_impossible_recovery_settings_are_one_line_config_errors(changes, message):
    with pytest.raises(ConfigError, match=message) as info:
        ChainConfig(**changes)
    assert "\n" not in str(info.value)


def test_a_step_cap_accepts_schedules_with_enough_rounds():
    for p_max in (0.25, 0.5, 0.75):
        rounds = fewest_rounds(p_max, 0.3)
        ChainConfig(rounds=rounds, p_min=0.0, p_max=p_max, ffn_p_max=p_max, max_step_ratio=0.3)  # accepted
        assert max(step_fractions(ratios(rounds, 0.0, p_max, 1.0))) <= 0.3 + 1e-9
        if rounds > 1:
            with pytest.raises(ConfigError, match="heads: round"):
                ChainConfig(rounds=rounds - 1, p_min=0.0, p_max=p_max, max_step_ratio=0.3)
    assert step_fractions([0.25, 0.5]) == [0.25, pytest.approx(1 / 3)]

"""The recursive chain on a real tiny teacher: it shrinks the model, keeps accuracy, resumes."""

import json
from collections import Counter

import pytest
import torch

from raykd.data import prediction_correct
from raykd.errors import ConfigError
from raykd.structures import head_counts, total_heads
from raykd.method.chain import Chain, last_complete_round
from raykd.method.config import ChainConfig
from raykd.method.round_cost import make_measure
from raykd.task.io import SolverIO, load_solver
from raykd.task.mwp import MWPTask

FAST = dict(rounds=2, p_min=0.1, p_max=0.3, epochs_per_round=2, lr=1e-3, calib_batches=2, latency_batch=4,
            latency_repeats=2, patience=2)


def _chain(teacher_dir, splits, out, **changes):
    teacher, tok, _ = load_solver(teacher_dir)
    task = MWPTask(tok, teacher.vocab, splits)
    cfg = ChainConfig(**{**FAST, **changes})
    return Chain(task, teacher, cfg, SolverIO(tok), out, make_measure(task, repeats=cfg.latency_repeats), progress=False,
                 log=lambda _m: None), task


def test_two_round_chain_shrinks_the_model_and_keeps_accuracy(tiny_teacher_dir, synthetic_splits, tmp_path):
    chain, task = _chain(tiny_teacher_dir, synthetic_splits, tmp_path / "chain")
    result = chain.run()
    recs = result.records
    assert [r["round"] for r in recs] == [1, 2]
    original = recs[0]["heads_original"]
    # floor(p_t * h) removed in all after round t, per kind
    teacher, _, _ = load_solver(tiny_teacher_dir)
    counts0 = {k: sum(v) for k, v in head_counts(teacher).items()}
    expected_gone = sum(int(0.3 * n + 1e-9) for n in counts0.values())
    assert total_heads(result.model) == original - expected_gone == recs[-1]["heads_total"]
    assert recs[0]["heads_total"] > recs[1]["heads_total"]
    assert recs[-1]["params"] < recs[-1]["params_reference"]
    assert recs[-1]["flops"] < recs[-1]["flops_reference"] and recs[-1]["ideal_speedup"] > 1.0
    # no latency table given: the speed axis is the side-by-side measurement, and says so
    assert recs[-1]["speedup_source"] == "measured" and recs[-1]["speedup"] == recs[-1]["measured_speedup"]
    assert recs[-1]["speedup"] == pytest.approx(recs[-1]["latency_reference_ms"] / recs[-1]["latency_ms"])
    # every accuracy comes with its n, a 95% Wilson interval and a paired test against the teacher
    teacher_valid = result.teacher_metrics["valid"]
    for rec in recs:
        n = rec["accuracy_n"]
        assert n == teacher_valid["n"] == task.num_examples("valid") or n == len(synthetic_splits["valid"])
        assert rec["accuracy_ci_low"] <= rec["accuracy"] <= rec["accuracy_ci_high"]
        assert 0 <= rec["accuracy_p_vs_teacher"] <= 1
        assert rec["accuracy_gained"] - rec["accuracy_lost"] == round((rec["accuracy"] - teacher_valid["accuracy"]) * n)
        assert rec["test_accuracy_n"] == len(synthetic_splits["test"]) and "test_accuracy_p_vs_teacher" in rec
        # and the paired difference (student - teacher) with its Newcombe interval
        assert rec["accuracy_diff"] == pytest.approx(rec["accuracy"] - teacher_valid["accuracy"])
        assert rec["accuracy_diff_low"] <= rec["accuracy_diff"] <= rec["accuracy_diff_high"]
        assert "test_accuracy_diff_low" in rec
    common = Counter(p.equation for p in synthetic_splits["train"]).most_common(1)[0][0]
    trivial = sum(prediction_correct(p, common) for p in synthetic_splits["valid"]) / len(synthetic_splits["valid"])
    assert task.evaluate(result.model, "valid")["accuracy"] > trivial
    # each round is a loadable checkpoint of the pruned model
    reloaded, _, cfg = load_solver(tmp_path / "chain" / "round-02")
    assert head_counts(reloaded) == head_counts(result.model)
    assert cfg["chain_round"] == 2
    state = json.loads((tmp_path / "chain" / "round-02" / "state.json").read_text())
    assert state["done"] is True and len(state["records"]) == 2


class _Crash(Exception):
    pass


def _crash_after_round_1(record, _directory):
    if record["round"] == 1:
        raise _Crash


def test_chain_resumes_after_its_last_complete_round(tiny_teacher_dir, synthetic_splits, tmp_path):
    out = tmp_path / "chain"
    first, _ = _chain(tiny_teacher_dir, synthetic_splits, out, rounds=2, p_max=0.2)
    first.on_round = _crash_after_round_1  # the run dies right after round 1 was checkpointed
    with pytest.raises(_Crash):
        first.run()
    assert last_complete_round(out)[0] == 1 and not (out / "round-02").exists()
    second, _ = _chain(tiny_teacher_dir, synthetic_splits, out, rounds=2, p_max=0.2)
    result = second.run()
    assert result.resumed_from == 1
    assert [r["round"] for r in result.records] == [1, 2]
    assert last_complete_round(out)[0] == 2
    # a finished chain re-run does no work and returns the same records
    seen = []
    third, _ = _chain(tiny_teacher_dir, synthetic_splits, out, rounds=2, p_max=0.2)
    third.on_round = lambda rec, _d: seen.append(rec["round"])
    again = third.run()
    assert again.records == result.records and seen == [2]


def test_a_chain_never_resumes_under_other_settings_teacher_or_data(tiny_teacher_dir, synthetic_splits, tmp_path):
    from raykd.data import load_splits
    from raykd.resume import ResumeMismatch

    out = tmp_path / "chain"
    first, _ = _chain(tiny_teacher_dir, synthetic_splits, out, rounds=1, p_min=0.2, p_max=0.2, epochs_per_round=1)
    first.run()
    before = (out / "round-01" / "state.json").read_bytes()
    # other settings: the differing keys are named, old and new value
    other, _ = _chain(tiny_teacher_dir, synthetic_splits, out, rounds=1, p_min=0.2, p_max=0.5, alpha=0.0, epochs_per_round=1)
    with pytest.raises(ResumeMismatch, match=r"config\.alpha: 0\.5 -> 0\.0; config\.p_max: 0\.2 -> 0\.5"):
        other.run()
    # other data (same spec shape, other seed)
    other, _ = _chain(tiny_teacher_dir, load_splits("synthetic:400:8"), out, rounds=1, p_min=0.2, p_max=0.2, epochs_per_round=1)
    with pytest.raises(ResumeMismatch, match=r"\bdata: "):
        other.run()
    # another teacher: the same structure with one weight changed
    other, _ = _chain(tiny_teacher_dir, synthetic_splits, out, rounds=1, p_min=0.2, p_max=0.2, epochs_per_round=1)
    with torch.no_grad():
        next(other.teacher.parameters()).view(-1)[0] += 1.0
    with pytest.raises(ResumeMismatch, match=r"\bteacher: "):
        other.run()
    assert (out / "round-01" / "state.json").read_bytes() == before  # nothing was touched
    assert sorted(p.name for p in out.iterdir()) == ["round-01"]


def test_a_chain_stored_before_fingerprints_still_resumes_when_its_config_matches(tiny_teacher_dir, synthetic_splits, tmp_path):
    from raykd.resume import ResumeMismatch

    out = tmp_path / "chain"
    first, _ = _chain(tiny_teacher_dir, synthetic_splits, out, rounds=1, p_min=0.2, p_max=0.2, epochs_per_round=1)
    records = first.run().records
    state_path = out / "round-01" / "state.json"
    state = json.loads(state_path.read_text())
    del state["fingerprint"]  # as written by raykd before this change
    state_path.write_text(json.dumps(state))
    same, _ = _chain(tiny_teacher_dir, synthetic_splits, out, rounds=1, p_min=0.2, p_max=0.2, epochs_per_round=1)
    assert same.run().records == records
    other, _ = _chain(tiny_teacher_dir, synthetic_splits, out, rounds=1, p_min=0.2, p_max=0.25, epochs_per_round=1)
    with pytest.raises(ResumeMismatch, match="p_max"):
        other.run()


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"p_max": 1.0}, "p_max"),
        ({"p_min": 0.5, "p_max": 0.2}, "p_min"),
        ({"alpha": 1.5}, "alpha"),
        ({"rounds": 0}, "rounds"),
        ({"tau": 0.0}, "tau"),
        ({"lambda1": 0.0, "lambda2": 0.0}, "all be 0"),
        ({"lambda1": 0.0, "lambda2": 0.0, "lambda3": 0.5, "distill_hidden": False}, "no term left"),
        ({"ffn_p_max": 1.0}, "ffn_p_max"),
        ({"layer_p_min": 0.6, "layer_p_max": 0.5}, "layer_p_min"),
        ({"ffn_alpha": -0.1}, "ffn_alpha"),
        ({"min_ffn_per_block": -1}, "min_ffn_per_block"),
        ({"layer_importance": "magic"}, "layer_importance"),
        ({"uniform_shape": True, "ranking": "global"}, "uniform_shape"),
        ({"lambda3": -1.0}, "lambda3"),
        ({"importance": "magic"}, "importance"),
        ({"ranking": "local"}, "ranking"),
        ({"n": -1.0}, "exponent"),
    ],
)
def test_chain_config_rejects_impossible_settings(changes, message):
    with pytest.raises(ConfigError, match=message):
        ChainConfig(**changes)


def test_chain_config_from_yaml_errors(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("alpha: [0.5\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        ChainConfig.from_yaml(bad)
    bad.write_text("alpha: 0.5\nalhpa: 0.3\n")
    with pytest.raises(ConfigError, match="unknown chain setting.*alhpa"):
        ChainConfig.from_yaml(bad)
    bad.write_text("rounds: two\n")
    with pytest.raises(ConfigError, match="rounds must be an integer"):
        ChainConfig.from_yaml(bad)
    with pytest.raises(ConfigError, match="does not exist"):
        ChainConfig.from_yaml(tmp_path / "missing.yaml")


def test_more_heads_than_exist_is_a_config_error(tiny_teacher_dir, synthetic_splits, tmp_path):
    # a floor of 4 heads per block on 4-head blocks leaves nothing to prune
    chain, _ = _chain(tiny_teacher_dir, synthetic_splits, tmp_path / "c", min_heads_per_block=4, rounds=1)
    with pytest.raises(ConfigError, match="cannot remove"):
        chain.run()


def test_a_task_without_test_split_records_no_test_accuracy(tiny_teacher_dir, synthetic_splits, tmp_path):
    splits = {k: v for k, v in synthetic_splits.items() if k != "test"}
    records = _chain(tiny_teacher_dir, splits, tmp_path / "c", rounds=1, epochs_per_round=1, steps_per_round=2)[0].run().records
    assert records[0]["test_accuracy"] is None and "test_accuracy_n" not in records[0]
    assert records[0]["accuracy_n"] == len(splits["valid"]) and 0 <= records[0]["accuracy"] <= 1
    with_test = _chain(tiny_teacher_dir, synthetic_splits, tmp_path / "d", rounds=1, epochs_per_round=1, steps_per_round=2)[0].run()
    assert isinstance(with_test.records[0]["test_accuracy"], float)
    # a sweep scores on valid and reports test: test_every_round=False evaluates test after the last round only
    final_only = _chain(tiny_teacher_dir, synthetic_splits, tmp_path / "e", rounds=2, epochs_per_round=1, steps_per_round=2,
                        test_every_round=False)[0].run().records
    assert final_only[0]["test_accuracy"] is None and isinstance(final_only[1]["test_accuracy"], float)


class _Resumed(Exception):
    pass


def _stop_on_resume(message):
    if message.startswith("resuming"):
        raise _Resumed


class _RecordingIO:
    """The task's real IO, keeping every model it loads (to see where the chain put it)."""

    def __init__(self, io):
        self.io, self.loaded = io, []

    def save(self, model, directory, extra):
        self.io.save(model, directory, extra)

    def load(self, directory):
        self.loaded.append(self.io.load(directory))
        return self.loaded[-1]


def test_a_resumed_chain_puts_its_rounds_where_the_teacher_is(tiny_teacher_dir, synthetic_splits, tmp_path):
    """`io.load` reads a round onto the CPU; a resumed chain must move it to the teacher's (the
    trial's) device, mid-chain and when the chain is already done. No GPU here: the resumed
    chains' teacher sits on `meta` (shapes, no data), a device that the CPU-loaded round does not
    reach by accident. Its fingerprint is the stored one (a meta model has no bytes to digest)."""
    out = tmp_path / "chain"
    steps = dict(rounds=2, p_max=0.2, epochs_per_round=1, steps_per_round=2)
    first, task = _chain(tiny_teacher_dir, synthetic_splits, out, **steps)
    first.on_round = _crash_after_round_1
    with pytest.raises(_Crash):
        first.run()
    fingerprint, metrics = first.fingerprint(), first.teacher_metrics

    class _MetaTeacherChain(Chain):
        def fingerprint(self):
            return fingerprint

    def on_meta(log):
        teacher, tok, _ = load_solver(tiny_teacher_dir)
        io = _RecordingIO(SolverIO(tok))
        chain = _MetaTeacherChain(task, teacher.to("meta"), first.config, io, out, first.measure, teacher_metrics=metrics,
                                  progress=False, log=log)
        return chain, io

    mid, io = on_meta(_stop_on_resume)
    with pytest.raises(_Resumed):  # stopped right after round 1 was loaded to continue from
        mid.run()
    assert {p.device.type for p in io.loaded[-1].parameters()} == {"meta"}
    again, _ = _chain(tiny_teacher_dir, synthetic_splits, out, **steps)
    assert again.run().resumed_from == 1  # on the CPU: the chain finishes
    done, _ = on_meta(lambda _m: None)
    result = done.run()  # a finished chain returns its last round's model
    assert result.resumed_from == 2 and {p.device.type for p in result.model.parameters()} == {"meta"}

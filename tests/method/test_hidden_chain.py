"""The "hidden" structure kind (embedding channels) through the real chain, opted into by its two
registrations: a tiny solver's encoder loses the scheduled hidden channels, the lowest-scored by
activation magnitude, the record carries the kind's keys, and a round's checkpoint reloads to the
same outputs. Without the registrations, `hidden_p_max` is not a chain setting."""

from __future__ import annotations

import json

import pytest
import torch

from raykd.errors import ConfigError
from raykd.method.chain import STATE_NAME, Chain, round_dir
from raykd.method.config import ChainConfig
from raykd.method.importance import StructureStats, collect_stats
from raykd.method.importance.hidden import (
    collect_hidden_stats,
    register_hidden_importance,
)
from raykd.method.importance.registry import importance_of
from raykd.method.plan import round_ratios
from raykd.method.round_cost import make_measure
from raykd.method.schedule import units_removed_by
from raykd.structures import structure_counts
from raykd.structures.hidden import find_hidden, hidden_map
from raykd.structures.registry import structure_names
from raykd.task.io import SolverIO, load_solver
from raykd.task.mwp import MWPTask

FAST = dict(rounds=2, p_min=0.0, p_max=0.0, epochs_per_round=1, steps_per_round=3, lr=1e-3, calib_batches=2,
            calib_batch_size=16, latency_batch=4, latency_repeats=1, patience=1, test_every_round=False)
P_MAX = 0.25


def test_the_importance_registration_is_idempotent(hidden_kind):
    assert register_hidden_importance() is importance_of("hidden")


def test_without_the_registration_hidden_p_max_is_refused():
    assert "hidden" not in structure_names()
    with pytest.raises(ConfigError, match=r"^unknown chain setting\(s\): hidden_p_max$"):
        ChainConfig.from_dict({"hidden_p_max": P_MAX})


def test_the_hidden_state_term_is_refused_with_hidden_pruning(hidden_kind):
    """lambda3 compares teacher and student hidden states, which hidden pruning makes of different
    widths: one line, not a shape error mid-round."""
    with pytest.raises(ConfigError, match=r"^lambda3 \(the hidden-state term\) .* set lambda3: 0 or hidden_p_max: 0$"):
        ChainConfig.from_dict({"hidden_p_max": P_MAX, "lambda3": 1.0})
    assert ChainConfig.from_dict({"hidden_p_max": P_MAX, "lambda3": 1.0, "distill_hidden": False}).lambda3 == 1.0
    assert ChainConfig.from_dict({"ffn_p_max": P_MAX, "lambda3": 1.0}).lambda3 == 1.0


def test_the_chain_prunes_hidden_channels(hidden_kind, quick_teacher_dir, synthetic_splits, tmp_path):
    teacher, tok, _ = load_solver(quick_teacher_dir)
    task = MWPTask(tok, teacher.vocab, synthetic_splits)
    width = find_hidden(teacher).width
    cfg = ChainConfig.from_dict({**FAST, "hidden_p_min": P_MAX / 2, "hidden_p_max": P_MAX})
    assert cfg.prunes == {"heads": False, "ffn": False, "layers": False, "hidden": True}

    # what round 1 will rank: the teacher's activation magnitude on the same calibration batches
    stats = collect_stats(teacher, task, batches=2, batch_size=16, ffn=False, layers=False, kinds=["hidden"])
    direct = collect_hidden_stats(teacher, [b for _, b in zip(range(2), task.batches("train", 16))], forward=task.outputs)
    assert torch.allclose(stats.extra["hidden"].activation, direct.activation)
    again = StructureStats.from_json(stats.to_json())  # the shared statistics file round-trips the kind
    assert again.extra["hidden"].channel_ids == list(range(width)) and again.fits(teacher, ffn=False, layers=False,
                                                                                  taylor=False, kinds=["hidden"])
    gone_1 = units_removed_by(round_ratios(cfg, 1)["hidden"], width)  # Eq. 5, round 1 of 2
    assert 0 < gone_1 < units_removed_by(P_MAX, width)
    lowest = sorted(range(width), key=lambda c: (float(stats.extra["hidden"].activation[c]), c))[:gone_1]

    heads_before = structure_counts(teacher)["heads"]
    chain = Chain(task, teacher, cfg, SolverIO(tok), tmp_path / "chain", make_measure(task, repeats=1), progress=False,
                  log=lambda _m: None)
    result = chain.run()
    r1, r2 = result.records
    assert r1["hidden_removed_now"] == gone_1 and r2["hidden_removed_now"] == units_removed_by(P_MAX, width) - gone_1
    assert r2["hidden_channels_original"] == width and r2["hidden_channels_total"] == width - units_removed_by(P_MAX, width)
    assert r2["hidden_kept"] == {"encoder_hidden": [r2["hidden_channels_total"]]}
    assert r2["heads_removed_now"] == r2["ffn_removed_now"] == r2["layers_removed_now"] == 0
    assert structure_counts(result.model)["heads"] == heads_before  # nothing else moved
    own = find_hidden(result.model)
    assert own.width == r2["hidden_channels_total"] and result.model.encoder.config.hidden_size == own.width

    # round 1 removed exactly the lowest-scored channels of the teacher
    round1, _tok, config1 = load_solver(round_dir(tmp_path / "chain", 1))
    kept1 = hidden_map(round1)["encoder_hidden"]["kept"]
    assert sorted(set(range(width)) - set(kept1)) == sorted(lowest)
    assert config1["hidden_map"] == hidden_map(round1)

    # the last round's checkpoint reloads (as a resume does) to the same model and outputs
    loaded = SolverIO(tok).load(round_dir(tmp_path / "chain", 2))  # what `Chain` resumes from
    config2 = load_solver(round_dir(tmp_path / "chain", 2))[2]
    assert config2["hidden_map"] == hidden_map(result.model) == hidden_map(loaded)
    batch = next(iter(task.batches("valid", 8)))
    with torch.no_grad():
        a = task.outputs(result.model.eval(), batch).logits
        b = task.outputs(loaded.eval(), batch).logits
    assert torch.equal(a, b)
    state = json.loads((round_dir(tmp_path / "chain", 2) / STATE_NAME).read_text())
    assert state["done"] and state["config"]["hidden_p_max"] == P_MAX

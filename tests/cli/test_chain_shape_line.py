"""The chain's round line names every registered structure kind from the registry, so a plug-in
kind (here the hidden size) shows up without the CLI naming it."""

from __future__ import annotations

from raykd.cli.chain import round_line

RECORD = {"round": 2, "ratio": 0.25, "accuracy": 0.75, "speedup": 1.5, "ideal_speedup": 1.6,
          "heads_total": 36, "heads_original": 48}


def test_the_round_line_counts_each_kind_the_record_has():
    rec = {**RECORD, "structures": {"layers": 5, "heads": 36, "ffn_channels": 900},
           "structures_original": {"layers": 6, "heads": 48, "ffn_channels": 1200}}
    assert round_line(rec) == ("round 2: ratio 0.250, heads 36/48, FFN channels 900/1200, layers 5/6, "
                               "accuracy 0.750, speedup 1.500x (ideal 1.600x)")


def test_a_registered_plugin_kind_is_shown(hidden_kind):
    rec = {**RECORD, "structures": {"layers": 6, "heads": 48, "ffn_channels": 1200, "hidden_channels": 288},
           "structures_original": {"layers": 6, "heads": 48, "ffn_channels": 1200, "hidden_channels": 384}}
    assert round_line(rec).endswith("layers 6/6, hidden channels 288/384, accuracy 0.750, speedup 1.500x (ideal 1.600x)")


def test_a_record_without_structure_counts_shows_heads():
    assert "heads 36/48, accuracy" in round_line(RECORD)

"""The latency table: a deterministic speed figure per shape, that ranks shapes as timing does."""

from __future__ import annotations

import copy
import json

import pytest

from raykd.errors import ConfigError
from raykd.measure import compare_latency
from raykd.measure.latency import (
    LatencyTable,
    build_latency_table,
    table_key,
    uniform_variant,
)
from raykd.method.round_cost import make_measure
from raykd.structures import head_counts, prune_heads
from raykd.task.features import synthetic_batch
from raykd.task.io import load_solver
from raykd.task.mwp import MWPTask


@pytest.fixture(scope="module")
def table(teacher_task_batch):
    teacher, task, batch = teacher_task_batch
    return build_latency_table(task, teacher, batch, rounds=4, warmup=1, threads=1)


def test_the_same_shape_gets_the_same_speedup_to_the_last_digit(teacher_task_batch, table, tmp_path):
    teacher, task, batch = teacher_task_batch
    a, b = copy.deepcopy(teacher), copy.deepcopy(teacher)
    prune_heads(a, {"encoder_self": {0: [0, 1]}, "decoder_cross": {1: [3]}})
    prune_heads(b, {"encoder_self": {0: [2, 3]}, "decoder_cross": {1: [0]}})  # other heads, same counts
    assert head_counts(a) == head_counts(b)
    assert table.predicted_speedup(head_counts(a)) == table.predicted_speedup(head_counts(b))
    assert table.predicted_speedup(head_counts(teacher)) == 1.0  # no pruning is exactly 1.0x, never 0.95x
    path = tmp_path / "latency_table.json"
    table.save(path)
    again = LatencyTable.load(path)  # a resumed sweep reads the same table: the same figures
    assert again == table and again.predicted_speedup(head_counts(a)) == table.predicted_speedup(head_counts(a))
    # the built-in kinds' table is the file format 3 always wrote (users' cached tables stay readable, and alike)
    assert set(json.loads(path.read_text())) == {"format", "key", "dense_ms", "layers", "heads", "saving_ms", "meta", "ffn_width",
                                                 "ffn_grid", "ffn_saving_ms", "stacks", "layer_ms", "scale"}
    fewer = copy.deepcopy(a)
    prune_heads(fewer, {"encoder_self": {1: [0]}})
    assert table.predicted_speedup(head_counts(fewer)) >= table.predicted_speedup(head_counts(a))


def test_the_chain_measure_reports_predicted_and_measured_speed(teacher_task_batch, table):
    teacher, task, batch = teacher_task_batch
    student = uniform_variant(teacher, "encoder_self", 2)
    rec = make_measure(task, repeats=2, warmup=0, threads=1, table=table)(teacher, student, batch)
    assert rec["speedup_source"] == "latency table" and rec["speedup"] == table.predicted_speedup(head_counts(student))
    assert rec["measured_speedup"] > 0
    measured = make_measure(task, repeats=2, warmup=0, threads=2)(teacher, student, batch)  # no table: timed
    assert measured["speedup_source"] == "measured" and measured["speedup"] == measured["measured_speedup"]


def test_a_table_timed_under_other_conditions_is_refused_not_swapped_for_timing(teacher_task_batch, table):
    """Other threads (or batch, workload, device): the table's figures do not apply, and a quiet
    switch to the measured ratio would mix predicted and measured speeds on one front (issue 35)."""
    from raykd.method.round_cost import TableMismatchError

    teacher, task, batch = teacher_task_batch
    student = uniform_variant(teacher, "encoder_self", 2)
    with pytest.raises(TableMismatchError, match=r"threads 1 vs 2"):
        make_measure(task, repeats=2, warmup=0, threads=2, table=table)(teacher, student, batch)
    wider = next(iter(task.batches("valid", 8)))
    with pytest.raises(TableMismatchError, match=r"batch_shape"):
        make_measure(task, repeats=2, warmup=0, threads=1, table=table)(teacher, student, wider)


def test_a_table_refuses_shapes_it_does_not_describe(table):
    counts = {kind: [h] * table.layers[kind] for kind, h in table.heads.items()}
    with pytest.raises(Exception, match="outside"):
        table.predict_ms({**counts, "encoder_self": [99] * table.layers["encoder_self"]})
    with pytest.raises(Exception, match="layers"):
        table.predict_ms({**counts, "encoder_self": [1]})


def test_the_predictor_ranks_blocks_of_very_different_cost_as_timing_does(tiny_teacher_dir):
    """Long inputs (256 tokens) and a 2-token decoder: the encoder's heads cost far more than the
    decoder's self-attention heads, and the table must say so, as a side-by-side timing does."""
    teacher, tok, _ = load_solver(tiny_teacher_dir)
    task = MWPTask(tok, teacher.vocab, {})
    batch = synthetic_batch(teacher.vocab, tok, 4, 256, 2)
    table = build_latency_table(task, teacher, batch, rounds=6, warmup=1, threads=1)
    assert table.saving_ms["encoder_self"][0] > table.saving_ms["decoder_self"][0]
    no_encoder_heads = uniform_variant(teacher, "encoder_self", 0)
    no_decoder_self = uniform_variant(teacher, "decoder_self", 0)
    predicted = [table.predicted_speedup(head_counts(m)) for m in (no_encoder_heads, no_decoder_self)]
    lat = compare_latency({"dense": lambda: task.run(teacher, batch), "enc": lambda: task.run(no_encoder_heads, batch),
                           "dec": lambda: task.run(no_decoder_self, batch)}, rounds=6, warmup=1, num_threads=1)
    assert predicted[0] > predicted[1] and lat.speedup["enc"] > lat.speedup["dec"]
    assert table.key == table_key(teacher, batch, 1, "decode")


class _BusyMachineTask(MWPTask):
    """The MWP task on a machine where something else runs while `slowed` models are timed (a
    sleep after the real work): what per-trial timing on a shared node does to a trial."""

    slowed: set[int] = set()

    def run(self, model, batch, workload="default"):
        out = super().run(model, batch, workload)
        if id(model) in self.slowed:
            import time

            time.sleep(0.05)
        return out


def test_noise_in_a_trials_timing_cannot_displace_a_faster_model_of_the_same_accuracy(teacher_task_batch, table):
    import pandas as pd

    from raykd.results.pareto import pareto_mask

    teacher, task, batch = teacher_task_batch
    busy = _BusyMachineTask(task.tokenizer, task.vocab, task.splits)
    from raykd.measure.latency import depth_variant

    faster = depth_variant(teacher, "decoder_layers", 1)  # genuinely faster (a decoder layer runs every step) ...
    busy.slowed = {id(faster)}  # ... but timed while the node was busy
    unpruned = copy.deepcopy(teacher).eval()
    objectives = [("accuracy", "max"), ("speedup", "max")]
    rows = {}
    for source, tbl in (("table", table), ("measured", None)):
        measure = make_measure(busy, repeats=3, warmup=1, threads=1, table=tbl)
        fast, same = measure(teacher, faster, batch), measure(teacher, unpruned, batch)
        assert fast["measured_speedup"] < 0.95  # the noise is real: it timed slower than the teacher
        df = pd.DataFrame([{"trial_id": "faster", "status": "complete", "accuracy": 0.8, "speedup": fast["speedup"]},
                           {"trial_id": "unpruned", "status": "complete", "accuracy": 0.8, "speedup": same["speedup"]}])
        rows[source] = list(df["trial_id"][pareto_mask(df, objectives)])
        if source == "table":
            assert same["speedup"] == 1.0 and fast["speedup"] == table.predicted_speedup_of(faster) > 1.0
    assert rows["table"] == ["faster"]
    assert rows["measured"] == ["unpruned"]  # per-trial timing lets the noise decide, as issue 11 found


def test_the_table_covers_ffn_widths_and_dropped_layers(teacher_task_batch, table, tmp_path):
    from raykd.measure.latency import depth_variant, ffn_variant
    from raykd.structures import ffn_widths, layer_counts

    teacher, task, batch = teacher_task_batch
    assert set(table.ffn_grid) == {"encoder_ffn", "decoder_ffn"} and set(table.layer_ms) == {"encoder_layers", "decoder_layers"}
    for kind, grid in table.ffn_grid.items():
        w = ffn_widths(teacher)[kind][0]
        assert grid == [0, w // 4, w // 2, 3 * w // 4, w] and table.ffn_saving_ms[kind][-1] == 0.0
        assert table.ffn_saving_ms[kind] == sorted(table.ffn_saving_ms[kind], reverse=True)  # wider never saves more
    shallow = depth_variant(teacher, "decoder_layers", 1)
    dense = table.dense_ms
    scale = {c: table.scale.get(c, 1.0) for c in ("heads", "ffn", "layers")}  # the calibration's fitted factors
    assert table.predicted_speedup_of(shallow) == pytest.approx(dense / (dense - scale["layers"] * table.layer_ms["decoder_layers"]), rel=1e-12)
    kind, grid = "decoder_ffn", table.ffn_grid["decoder_ffn"]
    mid = (grid[1] + grid[2]) // 2
    narrow = ffn_variant(teacher, kind, mid)
    layers = layer_counts(teacher)["decoder_layers"]
    s = table.ffn_saving_ms[kind]
    expected = s[1] + (s[2] - s[1]) * (mid - grid[1]) / (grid[2] - grid[1])
    assert table.predict_ms(head_counts(narrow), ffn_widths(narrow)) == pytest.approx(dense - scale["ffn"] * layers * expected, rel=1e-12)
    # a heads-only table of an older sweep still loads, and says it cannot price what it never timed
    old = {**table.to_dict(), "format": "raykd-latency-table-1"}
    for key in ("ffn_width", "ffn_grid", "ffn_saving_ms", "stacks", "layer_ms"):
        old.pop(key)
    heads_only = LatencyTable.from_dict(old)
    assert heads_only.heads_only and not table.heads_only
    assert heads_only.predicted_speedup(head_counts(teacher)) == 1.0
    with pytest.raises(ConfigError, match="encoder_ffn widths"):
        heads_only.predicted_speedup(head_counts(narrow), ffn_widths(narrow))
    with pytest.raises(ConfigError, match="heads-only table"):
        heads_only.predicted_speedup_of(narrow)
    with pytest.raises(ConfigError, match="heads-only table"):
        heads_only.predicted_speedup(head_counts(shallow), layers=layer_counts(shallow))


def test_a_model_with_layers_and_channels_removed_is_measured_faster_than_its_teacher(teacher_task_batch):
    """Side by side, interleaved: half the layers and half the FFN of each remaining one are a
    large cut (the table predicts well above 1.3x); 1.1x leaves room for a noisy machine."""
    from raykd.structures import drop_layers, prune_ffn

    teacher, task, batch = teacher_task_batch
    small = copy.deepcopy(teacher)
    drop_layers(small, {"encoder_layers": [0], "decoder_layers": [0]})
    prune_ffn(small, {"encoder_ffn": {0: list(range(128))}, "decoder_ffn": {0: list(range(256))}})
    lat = compare_latency({"teacher": lambda: task.run(teacher, batch), "small": lambda: task.run(small.eval(), batch)},
                          warmup=2, rounds=12, num_threads=1, reference="teacher")
    assert lat.paired_speedup["small"] > 1.1, lat.paired_speedup


def test_the_calibration_fit_recovers_known_factors_and_refuses_what_it_cannot_fit():
    from raykd.measure.latency import fit_scale

    rows = [{"heads": 3.0, "ffn": 1.0, "layers": 0.0}, {"heads": 1.0, "ffn": 4.0, "layers": 5.0},
            {"heads": 2.0, "ffn": 2.0, "layers": 10.0}, {"heads": 6.0, "ffn": 0.5, "layers": 5.0}]
    measured = [0.8 * r["heads"] + 1.0 * r["ffn"] + 0.9 * r["layers"] for r in rows]
    assert fit_scale(rows, measured) == pytest.approx({"heads": 0.8, "ffn": 1.0, "layers": 0.9}, abs=1e-9)
    # a structure type no shape saved on gets no factor (it stays 1.0): only heads and ffn are fitted
    no_layers = [{**r, "layers": 0.0} for r in rows]
    fitted = fit_scale(no_layers, [0.8 * r["heads"] + 1.0 * r["ffn"] for r in rows])
    assert set(fitted) == {"heads", "ffn"} and fitted["heads"] == pytest.approx(0.8, abs=1e-9)
    # one factor by hand: least squares through the origin is sum(x*y) / sum(x*x)
    heads_only = [{"heads": x} for x in (10.0, 20.0, 5.0)]
    assert fit_scale(heads_only, [9.0, 19.0, 5.5]) == pytest.approx({"heads": (90 + 380 + 27.5) / (100 + 400 + 25)}, abs=1e-12)
    assert fit_scale(rows[:3], measured[:3]) == {}  # 3 shapes, 3 factors: not fitted, the table stays additive
    # a factor of 0 (ffn "saves nothing") would make a narrower model no faster: not fitted
    assert fit_scale(rows, [0.8 * r["heads"] + 0.9 * r["layers"] - 0.5 * r["ffn"] for r in rows]) == {}


def test_the_table_is_calibrated_on_mixed_shapes_and_says_how_well_it_predicts_them(teacher_task_batch, table):
    from raykd.measure.latency import CALIBRATION_SHAPES, calibration_summary

    report = table.meta["calibration"]
    assert CALIBRATION_SHAPES == 16  # the default (BENCHMARKS.md 18c: 8 shapes fitted unrepeatable factors)
    assert report["shapes"] == 16 and [r["shape"] for r in report["rows"]] == [f"mixed/{i}" for i in range(16)]
    assert set(table.scale) <= {"heads", "ffn", "layers"} and table.scale == report["scale"]
    for row in report["rows"]:  # every row says what it measured and what the fit, with and without it, predicts
        assert row["measured"] > 0 and row["additive"] >= 1.0 and row["held_out"] > 0
        comps = row["components_ms"]
        calibrated = table.dense_ms / (table.dense_ms - sum(table.scale.get(c, 1.0) * v for c, v in comps.items()))
        assert row["calibrated"] == pytest.approx(calibrated, abs=1e-4)
    if table.scale:  # (a 4-round table on a busy test box may not fit; then it says why, below)
        assert 0 <= report["held_out_median_error"] <= report["held_out_max_error"]
        assert calibration_summary(table).startswith("latency table: calibrated on 16 mixed shapes (")
    else:
        assert calibration_summary(table).startswith("latency table: additive (not fitted")
    # calibration 0: the additive table of format 2, and the summary says so
    teacher, task, batch = teacher_task_batch
    additive = build_latency_table(task, teacher, batch, rounds=2, warmup=0, threads=1, calibration=0)
    assert additive.scale == {} and "additive (not fitted: 0 calibration shape(s)" in calibration_summary(additive)


def test_an_uncalibrated_table_of_an_older_sweep_predicts_what_it_always_did(table):
    """A resumed sweep keeps the table in its teacher directory; a format-2 table (no factors)
    must give its trials' figures to the last bit: dense minus layer, head and FFN savings, in that order."""
    old = {**table.to_dict(), "format": "raykd-latency-table-2"}
    old.pop("scale")
    format2 = LatencyTable.from_dict(old)
    assert format2.scale == {}
    counts = {kind: [max(0, h - 1)] * table.layers[kind] for kind, h in table.heads.items()}
    widths = {kind: [w // 3] * table.stacks[kind.replace("_ffn", "_layers")] for kind, w in table.ffn_width.items()}
    total = format2.dense_ms - 0.0
    for kind, per_layer in counts.items():
        for k in per_layer:
            total -= format2.saving_ms[kind][k]
    for kind, ws in widths.items():
        total -= sum(format2._ffn_saving(kind, w) for w in ws)
    assert format2.predict_ms(counts, widths) == total  # exactly, not approximately
    if table.scale:
        assert table.predict_ms(counts, widths) != total  # the calibrated table prices it differently


def test_mixed_calibration_shapes_are_the_same_on_every_machine(teacher_task_batch):
    import random

    from raykd.measure.latency import mixed_variant
    from raykd.structures import ffn_widths, layer_counts

    teacher = teacher_task_batch[0]
    shape = lambda m: (head_counts(m), ffn_widths(m), layer_counts(m))
    first = [shape(mixed_variant(teacher, rng)) for rng in [random.Random(0)] for _ in range(4)]
    again = [shape(mixed_variant(teacher, rng)) for rng in [random.Random(0)] for _ in range(4)]
    assert first == again and len({repr(s) for s in first}) > 1  # seeded, and not one shape four times
    assert any(s != shape(teacher) for s in first)

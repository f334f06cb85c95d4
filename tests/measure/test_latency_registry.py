"""The latency table iterates over registered kinds: a plug-in kind's variants are timed with the
built-in ones, its entry is saved and priced, and the hidden-size kind, once registered with
`register_hidden_latency()`, prices a hidden-narrowed model."""

from __future__ import annotations

import copy
import json
import math
import random

import pytest

from raykd.errors import ConfigError
from raykd.measure.latency import (
    KindLatency,
    LatencyTable,
    build_latency_table,
    cache_path,
    ffn_variant,
    latency_names,
    mixed_variant,
    register_latency,
    shape_sizes,
    unregister_latency,
)
from raykd.measure.latency.hidden import (
    hidden_grid,
    hidden_shape,
    register_hidden_latency,
)
from raykd.structures import ffn_widths
from raykd.structures.hidden import find_hidden, prune_hidden
from raykd.structures.registry import (
    StructureKind,
    register_structure,
    structure_names,
    unregister_structure,
)
from raykd.task.features import synthetic_batch
from raykd.task.io import load_solver
from raykd.task.mwp import MWPTask

TOY_FFN = "encoder_ffn"


def _toy_sizes(model):
    return sum(ffn_widths(model).get(TOY_FFN, []))


def _toy_fit(dense, variant_ms, dense_ms):
    return {"channels": _toy_sizes(dense), "half_ms": dense_ms - variant_ms["toy/half"]}, {"toy": "the encoder FFNs at half width"}


def _toy_price(table, present, dropped):
    entry = table.kinds["toy"]
    return [] if present is None else [entry["half_ms"] * (entry["channels"] - present) / (entry["channels"] / 2)]


TOY_LATENCY = KindLatency(
    "toy", check=lambda dense: None, fit=_toy_fit, price=_toy_price, mix=lambda variant, rng, level: None,
    variants=lambda dense: {"toy/half": ffn_variant(dense, TOY_FFN, ffn_widths(dense)[TOY_FFN][0] // 2)}, sizes=_toy_sizes)


@pytest.fixture
def toy_kind():
    """A plug-in kind: its structure (the encoder's FFN channels counted as one number) and its latency."""
    register_structure(StructureKind(
        name="toy", unit="toy channels", count_key="toy_channels", shape_key="toy_map", p_min="toy_p_min",
        p_max="toy_p_max", sizes=lambda m: {TOY_FFN: [_toy_sizes(m)]}, shape_of=lambda m: {},
        apply_shape=lambda m, kept: m, remove=lambda m, sel: None, blocks=lambda m: [], block_size=lambda b: 0))
    try:
        yield register_latency(TOY_LATENCY)
    finally:
        if "toy" in latency_names():
            unregister_latency("toy")
        unregister_structure("toy")


@pytest.fixture
def hidden_latency():
    register_hidden_latency()
    assert register_hidden_latency() is register_hidden_latency()  # idempotent
    try:
        yield
    finally:
        unregister_latency("hidden")
        unregister_structure("hidden")


@pytest.fixture(scope="module")
def solver(tiny_teacher_dir, synthetic_splits):
    teacher, tok, _ = load_solver(tiny_teacher_dir)
    return teacher, MWPTask(tok, teacher.vocab, synthetic_splits), tok


def test_a_registered_kinds_variants_are_timed_saved_and_priced(toy_kind, solver, tmp_path):
    teacher, task, _ = solver
    batch = next(iter(task.batches("valid", 4)))
    assert latency_names() == ("heads", "ffn", "layers", "toy")
    table = build_latency_table(task, teacher, batch, rounds=2, warmup=0, threads=1, calibration=6)
    assert "toy/half" in table.meta["variant_median_ms"] and table.meta["toy"] == "the encoder FFNs at half width"
    assert set(table.kinds) == {"toy"} and table.kinds["toy"]["channels"] == _toy_sizes(teacher)
    assert all("toy" in row["components_ms"] for row in table.meta["calibration"]["rows"])  # a calibration component
    path = tmp_path / "table.json"
    table.save(path)
    assert "toy" in json.loads(path.read_text())["kinds"] and LatencyTable.load(path) == table
    assert table.predicted_speedup_of(teacher) == 1.0
    narrow = ffn_variant(teacher, TOY_FFN, ffn_widths(teacher)[TOY_FFN][0] // 2)
    toy_ms = table.savings_of_shape(shape_sizes(narrow))["toy"]
    assert toy_ms == table.kinds["toy"]["half_ms"]  # priced by the kind's own function, at the width it timed
    builtin = shape_sizes(narrow)
    assert table.predicted_speedup_of(narrow) != table.predicted_speedup(builtin["heads"], builtin["ffn"], builtin["layers"])  # toy counted
    unregister_latency("toy")
    with pytest.raises(ConfigError, match=r"prices structure kind\(s\) \['toy'\], which are not registered"):
        table.predicted_speedup_of(narrow)


def test_registration_is_keyed_by_a_registered_structure_kind(toy_kind):
    with pytest.raises(ValueError, match="already registered"):
        register_latency(TOY_LATENCY)
    with pytest.raises(ValueError, match="no structure kind 'nothing' is registered"):
        register_latency(KindLatency("nothing", check=lambda d: None, variants=lambda d: {}, fit=_toy_fit,
                                     price=_toy_price, mix=lambda v, r, lv: None))
    with pytest.raises(KeyError):
        unregister_latency("nothing")


def test_the_cache_keeps_tables_of_other_kinds_apart(toy_kind, solver):
    teacher, task, _ = solver
    batch = next(iter(task.batches("valid", 4)))
    args = {"threads": 1, "workload": "decode", "rounds": 2, "warmup": 0}
    with_toy = cache_path(teacher, batch, **args)
    unregister_latency("toy")
    assert cache_path(teacher, batch, **args) != with_toy


def test_a_table_with_hidden_registered_prices_a_hidden_narrowed_model(hidden_latency, solver):
    """Long inputs (256 tokens) make the encoder, whose width the hidden size is, most of the time."""
    teacher, task, tok = solver
    batch = synthetic_batch(teacher.vocab, tok, 4, 256, 2)
    width = find_hidden(teacher).width
    table = build_latency_table(task, teacher, batch, rounds=4, warmup=1, threads=1, calibration=6)
    entry = table.kinds["hidden"]
    assert entry["grid"] == {"encoder_hidden": hidden_grid(width)} == {"encoder_hidden": [1, width // 4, width // 2, 3 * width // 4, width]}
    assert {f"encoder_hidden/h{w}" for w in hidden_grid(width)[:-1]} <= set(table.meta["variant_median_ms"])
    assert entry["saving_ms"]["encoder_hidden"][-1] == 0.0 and entry["saving_ms"]["encoder_hidden"][0] > 0
    assert table.predicted_speedup_of(teacher) == 1.0
    speedups = {}
    for keep in (width // 2, width // 8):
        narrow = copy.deepcopy(teacher)
        prune_hidden(narrow, range(keep))
        speedups[keep] = table.predicted_speedup_of(narrow)
        assert math.isfinite(speedups[keep]) and speedups[keep] > 1.0, speedups
    assert speedups[width // 8] > speedups[width // 2]  # narrower is priced faster
    # the same table read back prices the same; a table timed without the kind cannot price a narrowed model
    assert LatencyTable.from_dict(json.loads(json.dumps(table.to_dict()))).predicted_speedup_of(narrow) == speedups[width // 8]
    without = LatencyTable.from_dict({**table.to_dict(), "kinds": {}})
    assert without.predicted_speedup_of(teacher) == 1.0
    with pytest.raises(ConfigError, match="does not cover encoder_hidden widths"):
        without.predicted_speedup_of(narrow)


def test_mixed_shapes_narrow_the_hidden_size_once_it_is_registered(hidden_latency, solver):
    teacher = solver[0]
    width = find_hidden(teacher).width
    shapes = [hidden_shape(mixed_variant(teacher, rng)) for rng in [random.Random(0)] for _ in range(6)]
    again = [hidden_shape(mixed_variant(teacher, rng)) for rng in [random.Random(0)] for _ in range(6)]
    assert shapes == again and any(s["encoder_hidden"]["kept"] < width for s in shapes)
    assert "hidden" in structure_names()

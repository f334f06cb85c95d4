"""Measured latency: timing (`timing`), and the per-device latency table built on it.

- `timing`: `measure_latency`, `compare_latency` (interleaved, in one process), `peak_memory`;
- `registry`: what the table does with each structure kind (`KindLatency`), registered by kind
  name; `kinds` registers heads, FFN channels and layers, `hidden.register_hidden_latency()` the
  hidden size on request;
- `variants`: the copies of the dense model a table times (uniform per kind, and mixed);
- `build`: timing a table in one interleaved comparison; `calibration`: one fitted factor per kind;
- `predictor`: `LatencyTable`, predicted speedup as a pure function of a model's shape;
- `cache`: the per-machine cache of tables and when a cached one may be reused.

Only torch, raykd.structures and the task interface: no Ray, no method (docs/architecture.md).
"""

from raykd.measure.latency.timing import LatencyComparison, LatencyStats, compare_latency, measure_latency, peak_memory
from raykd.measure.latency.registry import (
    KindLatency,
    latency_kinds,
    latency_names,
    latency_of,
    register_latency,
    unregister_latency,
)
from raykd.measure.latency.variants import depth_variant, ffn_variant, kept_head_ids, mixed_variant, uniform_variant
from raykd.measure.latency.predictor import (
    FORMAT,
    READABLE_FORMATS,
    TABLE_NAME,
    LatencyTable,
    interpolated_saving,
    shape_sizes,
    table_key,
)
from raykd.measure.latency.kinds import FFN_GRID, non_increasing  # registers the built-in kinds
from raykd.measure.latency.calibration import (
    CALIBRATION_SHAPES,
    COMPONENTS,
    FACTOR_WARN,
    calibrate,
    calibration_summary,
    fit_scale,
    speedup_from_savings,
)
from raykd.measure.latency.build import build_latency_table
from raykd.measure.latency.cache import (
    BUSIER_NOW,
    BUSIER_THEN,
    CACHE_ENV,
    REUSE_CHECK_ROUNDS,
    architecture_digest,
    cache_path,
    cache_root,
    cached_latency_table,
    dense_now_ms,
    machine_identity,
    reuse_verdict,
)

__all__ = [
    "BUSIER_NOW", "BUSIER_THEN", "CACHE_ENV", "CALIBRATION_SHAPES", "COMPONENTS", "FACTOR_WARN", "FFN_GRID", "FORMAT",
    "READABLE_FORMATS", "REUSE_CHECK_ROUNDS", "TABLE_NAME", "KindLatency", "LatencyComparison", "LatencyStats",
    "LatencyTable", "architecture_digest", "build_latency_table", "cache_path", "cache_root", "cached_latency_table",
    "calibrate", "calibration_summary", "compare_latency", "dense_now_ms", "depth_variant", "ffn_variant",
    "fit_scale", "interpolated_saving", "kept_head_ids", "latency_kinds", "latency_names", "latency_of",
    "machine_identity", "measure_latency", "mixed_variant", "non_increasing", "peak_memory", "register_latency",
    "reuse_verdict", "shape_sizes", "speedup_from_savings", "table_key", "uniform_variant", "unregister_latency",
]

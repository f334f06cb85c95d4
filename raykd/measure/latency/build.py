"""Timing a latency table: every kind's uniform variants and the mixed shapes, in one comparison.

Timing every trial's student once, on whatever else the node is doing, makes the speed axis of a
front mostly noise (identical shapes scattered 1.48-1.52x; a no-pruning model timed at 0.945x).
Here the cost of each *shape* is measured once per sweep, in one interleaved comparison, and every
model is then scored by lookup (in the spirit of Once-for-All's latency lookup tables): the dense
teacher, every registered kind's uniform variants (`raykd.measure.latency.kinds`: heads, FFN
widths, depth; plug-in kinds their own) and `calibration` mixed shapes are timed together in one
`compare_latency` call (round-robin, rotating order, same batch, same process, many rounds). A
variant's latency is the dense median over its paired ratio (the median over rounds of dense /
variant, timed adjacently), so drift between rounds cancels; the dense model's own median is the
calibration that covers everything the kinds do not (embeddings, the output layer). Each kind turns
its variants' timings into its entry of the table; the mixed shapes fit one factor per kind
(`raykd.measure.latency.calibration`).

The workload is the chain's `latency_workload` (MWP default: encoding + cached constrained
decoding of the batch, see `raykd.task.mwp.WORKLOADS`). Additivity across layers and kinds is the
model's assumption; `bench/latency_predictor.py` measures how far it holds.
"""

from __future__ import annotations

import dataclasses
import random
import time
from typing import Any

from torch import nn

from raykd.measure.latency.calibration import CALIBRATION_SHAPES, calibrate
from raykd.measure.latency.predictor import LatencyTable, table_key
from raykd.measure.latency.registry import latency_kinds
from raykd.measure.latency.timing import compare_latency
from raykd.measure.latency.variants import mixed_variant
from raykd.task_interface import Batch, Task, resolve_workload

HOW = ("one compare_latency call over the dense model, every uniform (kind, kept heads) variant, every "
       "uniform FFN width on a grid of quarters and one variant per stack with half its layers dropped: "
       "round-robin, rotating order, same batch; variant latency = dense median / paired ratio (median "
       "over rounds of dense/variant); per-layer saving = (dense - variant) / layers changed, made "
       "non-increasing in kept heads and width; one factor per component (heads, ffn, layers) fitted to "
       "the measured savings of the mixed shapes timed in the same call")


def build_latency_table(task: Task, dense: nn.Module, batch: Batch, *, rounds: int = 30, warmup: int = 3,
                        threads: int | None = None, workload: str = "default",
                        calibration: int = CALIBRATION_SHAPES) -> LatencyTable:
    """Time the dense model, every registered kind's uniform variants and `calibration` mixed
    shapes together; see the module doc. ConfigError for a model pruned unevenly already."""
    workload = resolve_workload(task, workload)
    kinds = latency_kinds()
    for kind in kinds:
        kind.check(dense)
    device = next(dense.parameters()).device
    batch = {k: v.to(device) for k, v in batch.items()}
    dense = dense.eval()
    variants = {"dense": dense}
    for kind in kinds:
        for name, variant in kind.variants(dense).items():
            if name in variants:
                raise ValueError(f"latency variant {name!r} of kind {kind.name!r} is named twice")
            if variant is not None:  # None: a shape its blocks cannot have (the kind's fit says so)
                variants[name] = variant
    rng = random.Random(0)  # the same shapes on every machine: a table is a function of its timings
    mixed = {f"mixed/{i}": mixed_variant(dense, rng) for i in range(calibration)}
    variants.update(mixed)
    t0 = time.perf_counter()
    lat = compare_latency({name: (lambda m=m: task.run(m, batch, workload)) for name, m in variants.items()},
                          warmup=warmup, rounds=rounds, device=device, num_threads=threads, reference="dense")
    dense_ms = lat.stats["dense"].median_ms
    # a variant's latency from its paired ratio (median over rounds of dense / variant, the two
    # calls adjacent in time): drift between rounds cancels, which medians taken apart do not
    variant_ms = {name: dense_ms / lat.paired_speedup[name] for name in variants}
    fields: dict[str, Any] = {}
    plugins: dict[str, Any] = {}
    notes: dict[str, Any] = {}
    for kind in kinds:
        entry, note = kind.fit(dense, variant_ms, dense_ms)
        if kind.fields:
            fields.update({f: entry[f] for f in kind.fields})
        else:
            plugins[kind.name] = entry
        notes.update(note)
    key = table_key(dense, batch, threads, workload)
    additive = LatencyTable(key, dense_ms, **fields, kinds=plugins)
    scale, calibration_report = calibrate(additive, mixed, variant_ms)
    meta = {"how": HOW, "format": 3, "calibration": calibration_report, **notes,
            "workload": task.workloads[workload], "rounds": rounds, "warmup": warmup, "variants": len(variants),
            "wall_s": round(time.perf_counter() - t0, 2), "date": time.strftime("%Y-%m-%d %H:%M"),
            "variant_median_ms": {n: s.median_ms for n, s in lat.stats.items()}}
    return dataclasses.replace(additive, meta=meta, scale=scale)

"""A per-device latency table: predicted speedup as a deterministic function of a model's shape.

Timing every trial's student once, on whatever else the node is doing, makes the speed axis of a
front mostly noise (identical shapes scattered 1.48-1.52x; a no-pruning model timed at 0.945x).
Here the cost of each *shape* is measured once per sweep, in one interleaved comparison, and
every model is then scored by lookup (in the spirit of Once-for-All's latency lookup tables):

- For each attention kind and each kept-head count k < H, a copy of the dense teacher with every
  layer of that kind pruned to k heads is timed together with the dense teacher (one
  `compare_latency` call: round-robin, rotating order, same batch, same process, many rounds).
  A variant's latency is the dense median over its paired ratio (the median over rounds of
  dense / variant, timed adjacently), so drift between rounds cancels. The per-layer saving of a
  layer with k heads is (dense - variant) / layers of that kind; the dense model's own median is
  the calibration that covers everything the heads do not (embeddings, FFNs, the output layer). Savings are made non-increasing in k (a layer with more
  heads never costs less), which removes sub-noise inversions between neighbouring counts.
- FFN widths: for each FFN kind and each width on a grid of quarters (0, W/4, W/2, 3W/4), a copy
  with every layer of that kind cut to that width, timed in the same call; the per-layer saving at
  any width is interpolated linearly between grid points (and made non-increasing in width).
- Depth: for each layer stack of L > 1 layers, a copy with d = max(1, L // 2) layers dropped; the
  cost of one layer is (dense - variant) / d (a dropped layer saves all of it, heads and FFN
  included, so its heads and channels are not counted again).
- Calibration: savings measured one structure type at a time do not quite add up when a model
  cuts heads, FFN channels and layers together (tiny solver, decode: every mixed shape
  over-predicted, median 7-9%, up to 27%). So the same call also times `calibration` mixed
  shapes (seeded random per-layer head counts, FFN widths and dropped layers, drawn like the
  shapes a chain makes), and one non-negative factor per structure type (heads, ffn, layers) is
  fitted by least squares (scipy's `nnls`) to their measured savings: what a mixed shape saves
  on each type, as a share of what the uniform variants said. Per type rather than one factor
  for all: on the default sweep's own models, which mostly drop layers and cut few heads, one
  factor fitted to mixed shapes under-predicted by a median 8.4% and per-type factors by 5.4%
  (BENCHMARKS.md §18). The leave-one-out error on the calibration shapes (each predicted by a
  fit on the others) is stored: the table's own estimate, under the conditions it was timed in,
  of how well it predicts a shape it did not see.
- predicted latency = dense - sum over components of factor x savings (heads and FFN of every
  present layer, dropped layers x layer cost); predicted speedup = dense / predicted. A pure
  function of (table, shape): two models of the same shape get the same figure to the last
  digit, in every trial and after a resume; the dense shape gets 1.0.

The table is keyed by what it was measured under (workload, device, dtype, threads, batch shape,
torch); the workload is the chain's `latency_workload` (MWP default: encoding + cached
constrained decoding of the batch, see `raykd.task.mwp.WORKLOADS`);
`matches` tells a caller whether it applies. Additivity across layers and kinds is the model's
assumption; `bench/latency_predictor.py` measures how far it holds.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
import os
import platform
import random
import statistics
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Mapping

import torch
from torch import nn

from raykd.errors import ConfigError
from raykd.structures import STACK_OF, drop_layers, ffn_widths, head_counts, layer_counts, prune_ffn, prune_heads
from raykd.storage import write_bytes_atomic
from raykd.task_interface import Batch, Task, resolve_workload

TABLE_NAME = "latency_table.json"
FORMAT = "raykd-latency-table-3"
READABLE_FORMATS = ("raykd-latency-table-1", "raykd-latency-table-2", FORMAT)  # 1: heads only; 2: not calibrated
FFN_GRID = (0.0, 0.25, 0.5, 0.75)
COMPONENTS = ("heads", "ffn", "layers")
# 16, not 8: three tables of one teacher with 8 shapes each missed the sweep's re-timed models by up
# to 12.9%; four with 16 shapes by at most 3.3%, for 4 s more table time (BENCHMARKS.md §18c). The
# factors themselves still move (FFN 0.68-0.82 over those four): the predictions are what is stable
CALIBRATION_SHAPES = 16
FACTOR_WARN = (0.7, 1.3)  # a fitted factor outside this says the one-type-at-a-time savings are far off
# A cached table is checked before it is reused: the dense model is timed again (REUSE_CHECK_ROUNDS
# calls) and compared with the table's dense median. Two quiet sweeps on one box timed it 12%
# apart (57.5 vs 51.3 ms), so only a larger gap counts. Faster now by more than BUSIER_THEN: the
# table was timed on a busier machine and is measured again (and replaced); slower now by more
# than BUSIER_NOW: this machine is busy now, and the stored table, timed quietly, is kept.
REUSE_CHECK_ROUNDS = 10
BUSIER_THEN = 0.8
BUSIER_NOW = 1.25


def table_key(model: nn.Module, batch: Batch, threads: int | None, workload: str) -> dict[str, Any]:
    """What a table's figures depend on, besides the architecture (`workload`: resolved name)."""
    param = next(model.parameters())
    return {
        "workload": workload,
        "device": str(param.device), "dtype": str(param.dtype),
        "threads": (threads or torch.get_num_threads()) if param.device.type == "cpu" else None,
        "batch_shape": {k: list(v.shape) for k, v in sorted(batch.items())},
        "torch": torch.__version__,
    }


@dataclass(frozen=True)
class LatencyTable:
    key: dict[str, Any]
    dense_ms: float
    layers: dict[str, int]  # layers per attention kind
    heads: dict[str, int]  # heads per layer of the dense model, per kind
    saving_ms: dict[str, list[float]]  # per kind: per-layer saving with k kept heads, k = 0..H (saving[H] = 0)
    meta: dict[str, Any] = field(default_factory=dict)  # how it was measured
    ffn_width: dict[str, int] = field(default_factory=dict)  # dense FFN width per FFN kind
    ffn_grid: dict[str, list[int]] = field(default_factory=dict)  # per FFN kind: widths timed (ascending, ends at W)
    ffn_saving_ms: dict[str, list[float]] = field(default_factory=dict)  # per-layer saving at each grid width
    stacks: dict[str, int] = field(default_factory=dict)  # layers per stack of the dense model
    layer_ms: dict[str, float] = field(default_factory=dict)  # what dropping one layer of a stack saves
    scale: dict[str, float] = field(default_factory=dict)  # fitted factor per component (absent: 1.0, additive)

    def _ffn_saving(self, kind: str, width: int) -> float:
        grid, saving = self.ffn_grid[kind], self.ffn_saving_ms[kind]
        if not 0 <= width <= grid[-1]:
            raise ConfigError(f"{kind}: width {width} is outside the table's 0..{grid[-1]}")
        for i in range(len(grid) - 1):
            lo, hi = grid[i], grid[i + 1]
            if lo <= width <= hi:
                return saving[i] + (saving[i + 1] - saving[i]) * (width - lo) / (hi - lo)
        return saving[-1]

    def _terms(self, counts: Mapping[str, list[int]], ffn: Mapping[str, list[int]] | None,
               layers: Mapping[str, int] | None) -> list[tuple[str, float]]:
        """(component, ms saved) for every saving of the shape, in the order they are subtracted
        (the order of format 2, so an uncalibrated table predicts what it always did, to the bit)."""
        layers = dict(layers or {})
        for stack, n in layers.items():
            if stack not in self.stacks:
                raise ConfigError(f"latency table does not cover {stack} (a heads-only table of format 1?): re-time the table")
            if not 1 <= n <= self.stacks[stack]:
                raise ConfigError(f"{stack}: {n} layers is outside the table's 1..{self.stacks[stack]}")
            if n != self.stacks[stack] and stack not in self.layer_ms:
                raise ConfigError(f"latency table cannot price dropped {stack} (its model has one layer)")
        dropped = {stack: self.stacks[stack] - n for stack, n in layers.items() if stack in self.stacks}
        if set(counts) != set(self.layers):
            raise ConfigError(f"latency table is for attention kinds {sorted(self.layers)}, the model has {sorted(counts)}")
        out = [("layers", sum(d * self.layer_ms.get(stack, 0.0) for stack, d in dropped.items()))]
        for kind, per_layer in counts.items():
            expected = self.layers[kind] - dropped.get(STACK_OF.get(kind, ""), 0)
            if len(per_layer) != expected:
                raise ConfigError(f"latency table has {expected} {kind} layers (after dropped layers), the model {len(per_layer)}")
            for k in per_layer:
                if not 0 <= k <= self.heads[kind]:
                    raise ConfigError(f"{kind}: {k} heads is outside the table's 0..{self.heads[kind]}")
                out.append(("heads", self.saving_ms[kind][k]))
        for kind, widths in (ffn or {}).items():
            if kind not in self.ffn_grid:
                if kind in self.ffn_width and all(w == self.ffn_width[kind] for w in widths):
                    continue  # a width the table did not vary (e.g. 0-width dense FFN): nothing saved
                raise ConfigError(f"latency table does not cover {kind} widths (a heads-only table of format 1?): "
                                  f"re-time the table")
            expected = self.stacks.get(STACK_OF.get(kind, ""), len(widths)) - dropped.get(STACK_OF.get(kind, ""), 0)
            if len(widths) != expected:
                raise ConfigError(f"latency table has {expected} {kind} layers (after dropped layers), the model {len(widths)}")
            out.append(("ffn", sum(self._ffn_saving(kind, w) for w in widths)))
        return out

    def savings(self, counts: Mapping[str, list[int]], ffn: Mapping[str, list[int]] | None = None,
                layers: Mapping[str, int] | None = None) -> dict[str, float]:
        """The summed one-type-at-a-time savings (ms), per component (`COMPONENTS`), before the
        fitted factors, of a model with `counts` ({kind: kept heads per present layer}), `ffn`
        ({FFN kind: width per present layer}; None: dense) and `layers` ({stack: layers present};
        None: none dropped)."""
        out = dict.fromkeys(COMPONENTS, 0.0)
        for component, ms in self._terms(counts, ffn, layers):
            out[component] += ms
        return out

    def predict_ms(self, counts: Mapping[str, list[int]], ffn: Mapping[str, list[int]] | None = None,
                   layers: Mapping[str, int] | None = None) -> float:
        """Predicted latency: dense minus each component's savings times its fitted factor."""
        total = self.dense_ms
        for component, ms in self._terms(counts, ffn, layers):
            total -= self.scale.get(component, 1.0) * ms
        return total

    def predicted_speedup(self, counts: Mapping[str, list[int]], ffn: Mapping[str, list[int]] | None = None,
                          layers: Mapping[str, int] | None = None) -> float:
        return self.dense_ms / self.predict_ms(counts, ffn, layers)

    def predicted_speedup_of(self, model: nn.Module) -> float:
        """The prediction for `model`'s shape (heads, FFN widths and layers)."""
        return self.predicted_speedup(head_counts(model), ffn_widths(model), layer_counts(model))

    def matches(self, key: Mapping[str, Any]) -> bool:
        return dict(key) == self.key

    @property
    def heads_only(self) -> bool:
        """A format-1 table: it timed heads only (no FFN widths, no depth)."""
        return not self.ffn_width and not self.stacks

    def to_dict(self) -> dict[str, Any]:
        return {"format": FORMAT, **asdict(self)}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "LatencyTable":
        if d.get("format") not in READABLE_FORMATS:
            raise ConfigError(f"not a raykd latency table (format {d.get('format')!r})")
        floats = lambda m: {k: [float(x) for x in v] for k, v in m.items()}  # noqa: E731
        return cls(dict(d["key"]), float(d["dense_ms"]), dict(d["layers"]), dict(d["heads"]), floats(d["saving_ms"]),
                   dict(d.get("meta", {})), {k: int(v) for k, v in d.get("ffn_width", {}).items()},
                   {k: [int(x) for x in v] for k, v in d.get("ffn_grid", {}).items()}, floats(d.get("ffn_saving_ms", {})),
                   {k: int(v) for k, v in d.get("stacks", {}).items()}, {k: float(v) for k, v in d.get("layer_ms", {}).items()},
                   {k: float(v) for k, v in d.get("scale", {}).items()})

    def save(self, path: str | Path) -> None:
        write_bytes_atomic(path, json.dumps(self.to_dict(), indent=1, sort_keys=True).encode())

    @classmethod
    def load(cls, path: str | Path) -> "LatencyTable":
        try:
            return cls.from_dict(json.loads(Path(path).read_text()))
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ConfigError(f"{path} is not a readable latency table ({exc})") from None


def kept_head_ids(num_heads: int, num_kv_heads: int, kept: int) -> list[int] | None:
    """Which `kept` query heads a uniform variant keeps: the first ones for plain multi-head
    attention; for grouped-query attention `kept` / G heads of every K/V group (what
    within-groups pruning makes) when `kept` is a multiple of the G groups, else the first whole
    groups when it is a multiple of the group size; None when a GQA block cannot have `kept` heads."""
    if num_kv_heads >= num_heads:
        return list(range(kept))
    size = num_heads // num_kv_heads
    if kept and kept % num_kv_heads == 0:
        return [group * size + j for group in range(num_kv_heads) for j in range(kept // num_kv_heads)]
    if kept and kept % size == 0:
        return list(range(kept))
    return None


def uniform_variant(model: nn.Module, kind: str, kept: int) -> nn.Module | None:
    """A copy of `model` with every layer of `kind` pruned to `kept` heads (`kept_head_ids`);
    None when its blocks cannot have that many (a GQA count that would leave groups uneven)."""
    from raykd.structures.heads import blocks_by_kind

    blocks = blocks_by_kind(model)[kind]
    keep = [kept_head_ids(b.num_heads, b.num_kv_heads, kept) for b in blocks]
    if any(k is None for k in keep):
        return None
    variant = copy.deepcopy(model)
    prune_heads(variant, {kind: {layer: [h for h in range(b.num_heads) if h not in k]
                                 for layer, (b, k) in enumerate(zip(blocks, keep)) if kept < b.num_heads}})
    return variant.eval()


def ffn_variant(model: nn.Module, kind: str, width: int) -> nn.Module:
    """A copy of `model` with every FFN block of `kind` cut to its first `width` channels."""
    variant = copy.deepcopy(model)
    widths = ffn_widths(variant)[kind]
    prune_ffn(variant, {kind: {layer: list(range(width, w)) for layer, w in enumerate(widths) if width < w}})
    return variant.eval()


def depth_variant(model: nn.Module, stack: str, drop: int) -> nn.Module:
    """A copy of `model` with the last `drop` layers of `stack` dropped."""
    variant = copy.deepcopy(model)
    n = layer_counts(variant)[stack]
    drop_layers(variant, {stack: list(range(n - drop, n))})
    return variant.eval()


def mixed_variant(model: nn.Module, rng: random.Random) -> nn.Module:
    """A copy of `model` cut the way a chain cuts it: per layer a random number of heads of every
    kind (a count its block can have), a random FFN width, and a few whole layers dropped, at
    levels drawn independently per structure type (so the shapes spread over every mix)."""
    from raykd.structures.heads import blocks_by_kind

    variant = copy.deepcopy(model)
    head_level, ffn_level = rng.uniform(0.1, 0.8), rng.uniform(0.0, 0.8)
    heads: dict[str, dict[int, list[int]]] = {}
    for kind, blocks in blocks_by_kind(variant).items():
        heads[kind] = {}
        for layer, b in enumerate(blocks):
            buildable = [k for k in range(b.num_heads) if kept_head_ids(b.num_heads, b.num_kv_heads, k) is not None]
            want = b.num_heads * (1 - min(1.0, max(0.0, rng.gauss(head_level, 0.15))))
            kept = min(buildable + [b.num_heads], key=lambda k: (abs(k - want), k))
            if kept < b.num_heads:
                ids = kept_head_ids(b.num_heads, b.num_kv_heads, kept) or []
                heads[kind][layer] = [h for h in range(b.num_heads) if h not in ids]
    prune_heads(variant, heads)
    ffn = {kind: {layer: list(range(round(w * (1 - min(1.0, max(0.0, rng.gauss(ffn_level, 0.15))))), w))
                  for layer, w in enumerate(widths)} for kind, widths in ffn_widths(variant).items()}
    prune_ffn(variant, {kind: {layer: r for layer, r in spec.items() if r} for kind, spec in ffn.items()})
    drop = {stack: sorted(rng.sample(range(n), rng.randint(0, n // 2))) for stack, n in layer_counts(variant).items() if n > 1}
    drop_layers(variant, {stack: ids for stack, ids in drop.items() if ids})
    return variant.eval()


def fit_scale(components: list[dict[str, float]], measured: list[float]) -> dict[str, float]:
    """Non-negative least-squares factors (scipy's `nnls`) with measured_i ~ sum_c scale_c x
    components_i[c], over the components some shape saved on; {} (the table stays additive) when
    there are not more shapes than factors, or a factor comes out 0 (a structure type that saves
    nothing would make a smaller model no faster: the timings cannot be trusted to fit)."""
    import numpy as np
    from scipy.optimize import nnls

    used = [c for c in COMPONENTS if any(row.get(c, 0.0) > 0 for row in components)]
    if not used or len(measured) <= len(used):
        return {}
    x = np.array([[row.get(c, 0.0) for c in used] for row in components])
    factors, _ = nnls(x, np.array(measured, dtype=float))
    if not all(f > 0 for f in factors):
        return {}
    return {c: float(f) for c, f in zip(used, factors)}


def speedup_from_savings(dense_ms: float, savings: Mapping[str, float], scale: Mapping[str, float]) -> float:
    """dense / (dense - sum of each component's savings times its factor; 1.0 where absent)."""
    return dense_ms / (dense_ms - sum(scale.get(c, 1.0) * ms for c, ms in savings.items()))


def _calibrate(additive: "LatencyTable", shapes: dict[str, nn.Module], variant_ms: dict[str, float]) -> tuple[dict[str, float], dict[str, Any]]:
    """The fitted factors, and how well they predict: every calibration shape's measured speedup,
    the additive and calibrated predictions, and the leave-one-out error (each shape predicted by a
    fit on the others, additively where the others cannot be fitted) that tells a user what to
    expect on a shape the table has not seen."""
    names = list(shapes)
    comps = [additive.savings(head_counts(shapes[n]), ffn_widths(shapes[n]), layer_counts(shapes[n])) for n in names]
    measured = [additive.dense_ms - variant_ms[n] for n in names]
    scale = fit_scale(comps, measured)

    def speedup(factors: dict[str, float], comp: dict[str, float]) -> float:
        return speedup_from_savings(additive.dense_ms, comp, factors)

    rows, loo = [], []
    for i, n in enumerate(names):
        held_out = fit_scale(comps[:i] + comps[i + 1:], measured[:i] + measured[i + 1:]) if scale else {}
        actual = additive.dense_ms / variant_ms[n]
        row = {"shape": n, "measured": round(actual, 4), "additive": round(speedup({}, comps[i]), 4),
               "calibrated": round(speedup(scale, comps[i]), 4), "held_out": round(speedup(held_out, comps[i]), 4),
               "saved_ms": round(measured[i], 4), "components_ms": {c: round(v, 4) for c, v in comps[i].items()}}
        rows.append(row)
        loo.append(abs(row["held_out"] / actual - 1))
    report: dict[str, Any] = {
        "shapes": len(names), "scale": scale, "rows": rows,
        "additive_median_error": _median_error(rows, "additive"), "additive_max_error": _max_error(rows, "additive"),
        "held_out_median_error": round(statistics.median(loo), 4) if loo and scale else None,
        "held_out_max_error": round(max(loo), 4) if loo and scale else None,
    }
    if not scale:
        used = sum(1 for c in COMPONENTS if any(r[c] > 0 for r in comps))
        report["note"] = (f"not fitted: {len(names)} calibration shape(s) for {used} factor(s)" if len(names) <= used or not used
                          else "not fitted: a structure type's fitted factor was 0")
    off = {c: round(f, 3) for c, f in scale.items() if not FACTOR_WARN[0] <= f <= FACTOR_WARN[1]}
    if off:
        report["warning"] = (f"fitted factors {off} are outside {FACTOR_WARN[0]}-{FACTOR_WARN[1]}: the one-type-at-a-time "
                             f"savings are far from what mixed shapes save (seen on quiet machines too, BENCHMARKS.md §18b: "
                             f"the calibrated figures are still the table's best estimate)")
    return scale, report


def _median_error(rows: list[dict[str, Any]], key: str) -> float | None:
    return round(statistics.median(abs(r[key] / r["measured"] - 1) for r in rows), 4) if rows else None


def _max_error(rows: list[dict[str, Any]], key: str) -> float | None:
    return round(max(abs(r[key] / r["measured"] - 1) for r in rows), 4) if rows else None


def build_latency_table(task: Task, dense: nn.Module, batch: Batch, *, rounds: int = 30, warmup: int = 3,
                        threads: int | None = None, workload: str = "default",
                        calibration: int = CALIBRATION_SHAPES) -> LatencyTable:
    """Time the dense model, every uniform (kind, k) variant, FFN width and depth variant and
    `calibration` mixed shapes together; see the module doc."""
    from raykd.measure import compare_latency

    workload = resolve_workload(task, workload)
    counts = head_counts(dense)
    for kind, per_layer in counts.items():
        if len(set(per_layer)) != 1:
            raise ConfigError(f"a latency table needs the unpruned model: {kind} has uneven heads {per_layer}")
    heads = {kind: per_layer[0] for kind, per_layer in counts.items()}
    layers = {kind: len(per_layer) for kind, per_layer in counts.items()}
    widths = ffn_widths(dense)
    for kind, per_layer in widths.items():
        if len(set(per_layer)) != 1:
            raise ConfigError(f"a latency table needs the unpruned model: {kind} has uneven widths {per_layer}")
    ffn_width = {kind: per_layer[0] for kind, per_layer in widths.items()}
    ffn_grid = {kind: sorted({int(f * w) for f in FFN_GRID} | {w}) for kind, w in ffn_width.items() if w > 0}
    stacks = layer_counts(dense)
    depth_drop = {stack: max(1, n // 2) for stack, n in stacks.items() if n > 1}
    device = next(dense.parameters()).device
    batch = {k: v.to(device) for k, v in batch.items()}
    dense = dense.eval()
    variants = {"dense": dense}
    unbuildable: dict[str, list[int]] = {}
    for kind, h in heads.items():
        for k in range(h):
            variant = uniform_variant(dense, kind, k)
            if variant is None:
                unbuildable.setdefault(kind, []).append(k)
            else:
                variants[f"{kind}/{k}"] = variant
    for kind, grid in ffn_grid.items():
        for w in grid[:-1]:
            variants[f"{kind}/w{w}"] = ffn_variant(dense, kind, w)
    for stack, d in depth_drop.items():
        variants[f"{stack}/-{d}"] = depth_variant(dense, stack, d)
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
    saving: dict[str, list[float]] = {}
    for kind, h in heads.items():
        raw = [0.0] * (h + 1)
        for k in range(h - 1, -1, -1):  # a count no block can have: the saving of the next count that can exist
            name = f"{kind}/{k}"
            raw[k] = (dense_ms - variant_ms[name]) / layers[kind] if name in variants else raw[k + 1]
        saving[kind] = _non_increasing(raw)
    ffn_saving = {kind: _non_increasing([(dense_ms - variant_ms[f"{kind}/w{w}"]) / stacks[STACK_OF[kind]] for w in grid[:-1]] + [0.0])
                  for kind, grid in ffn_grid.items()}
    layer_ms = {stack: (dense_ms - variant_ms[f"{stack}/-{d}"]) / d for stack, d in depth_drop.items()}
    key = table_key(dense, batch, threads, workload)
    additive = LatencyTable(key, dense_ms, layers, heads, saving, {}, ffn_width, ffn_grid, ffn_saving, stacks, layer_ms)
    scale, calibration_report = _calibrate(additive, mixed, variant_ms)
    meta = {"how": ("one compare_latency call over the dense model, every uniform (kind, kept heads) variant, every "
                    "uniform FFN width on a grid of quarters and one variant per stack with half its layers dropped: "
                    "round-robin, rotating order, same batch; variant latency = dense median / paired ratio (median "
                    "over rounds of dense/variant); per-layer saving = (dense - variant) / layers changed, made "
                    "non-increasing in kept heads and width; one factor per component (heads, ffn, layers) fitted to "
                    "the measured savings of the mixed shapes timed in the same call"),
            "format": 3,
            "calibration": calibration_report,
            "gqa": ("grouped-query kinds time within-groups shapes (k/G heads per K/V group, every K/V head kept) where k "
                    "is a multiple of the G groups, else the first k/g whole groups; a count neither can make "
                    "(unbuildable) takes the saving of the next larger count"),
            "unbuildable": unbuildable,
            "workload": task.workloads[workload], "rounds": rounds, "warmup": warmup, "variants": len(variants), "wall_s": round(time.perf_counter() - t0, 2),
            "date": time.strftime("%Y-%m-%d %H:%M"),
            "variant_median_ms": {n: s.median_ms for n, s in lat.stats.items()}}
    return dataclasses.replace(additive, meta=meta, scale=scale)


def _non_increasing(raw: list[float]) -> list[float]:
    """A layer with more heads (or a wider FFN) never costs less: take the running max from the right."""
    out = list(raw)
    for i in range(len(out) - 2, -1, -1):
        out[i] = max(out[i], out[i + 1])
    return out


# --- a per-machine cache: the same machine, model shape and batch give the same table ----------
#
# A table re-measured for every sweep moves with the machine's state (two default sweeps on this
# box: dense 57.5 vs 51.3 ms, per-layer savings up to 25% apart), and so would every prediction,
# and with them the sampler's next configurations. Once-for-All builds its lookup tables once per
# device; raykd does the same: a table is cached per (machine, architecture, batch shape, workload,
# threads, rounds) and reused by later sweeps, each of which keeps its own copy beside its teacher.

CACHE_ENV = "RAYKD_CACHE"


def cache_root() -> Path:
    """$RAYKD_CACHE/latency_tables, default ~/.cache/raykd/latency_tables."""
    base = os.environ.get(CACHE_ENV) or str(Path.home() / ".cache" / "raykd")
    return Path(base) / "latency_tables"


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_identity(device: torch.device) -> dict[str, Any]:
    """What names this machine's hardware for a table (host, CPU model, GPU model)."""
    ident = {"host": platform.node(), "cpu": _cpu_model(), "cpus": os.cpu_count()}
    if device.type == "cuda":
        ident["gpu"] = torch.cuda.get_device_name(device)
    return ident


def architecture_digest(model: nn.Module) -> str:
    """SHA-256 of every tensor's name, shape and dtype: the architecture, not the weights."""
    parts = [(name, list(t.shape), str(t.dtype)) for name, t in model.state_dict().items()]
    return hashlib.sha256(json.dumps(parts).encode()).hexdigest()


def cache_path(dense: nn.Module, batch: Batch, *, threads: int | None, workload: str, rounds: int, warmup: int,
               calibration: int = CALIBRATION_SHAPES) -> Path:
    device = next(dense.parameters()).device
    key = {"table": table_key(dense, batch, threads, workload), "machine": machine_identity(device),
           "architecture": architecture_digest(dense), "rounds": rounds, "warmup": warmup, "format": FORMAT,
           "calibration": calibration}
    return cache_root() / f"{hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:32]}.json"


def dense_now_ms(task: Task, dense: nn.Module, batch: Batch, *, threads: int | None, workload: str,
                 rounds: int = REUSE_CHECK_ROUNDS) -> float:
    """The dense model's median latency now, timed as a table times it (same batch, workload and
    threads), for comparing a cached table's `dense_ms` with this machine's present state."""
    from raykd.measure import measure_latency

    device = next(dense.parameters()).device
    batch = {k: v.to(device) for k, v in batch.items()}
    dense = dense.eval()
    return measure_latency(lambda: task.run(dense, batch, workload), warmup=2, repeats=rounds, device=device,
                           num_threads=threads).median_ms


def reuse_verdict(then_ms: float, now_ms: float) -> str:
    """"rebuild" (the table was timed on a busier machine), "busy" (this machine is busier now:
    keep the table) or "ok", from the dense model's median latency then and now."""
    ratio = now_ms / then_ms
    return "rebuild" if ratio < BUSIER_THEN else "busy" if ratio > BUSIER_NOW else "ok"


def cached_latency_table(task: Task, dense: nn.Module, batch: Batch, *, rounds: int = 30, warmup: int = 3,
                         threads: int | None = None, workload: str = "default", use_cache: bool = True,
                         calibration: int = CALIBRATION_SHAPES, check_rounds: int = REUSE_CHECK_ROUNDS,
                         log: Any = print) -> LatencyTable:
    """The table this machine measured before for this architecture and batch, else a new one
    (then cached). An unreadable cache entry is measured again and replaced, saying so; so is one
    timed when the machine was busier than now (`reuse_verdict`; `check_rounds` 0: no check)."""
    workload = resolve_workload(task, workload)
    path = cache_path(dense, batch, threads=threads, workload=workload, rounds=rounds, warmup=warmup, calibration=calibration)
    if use_cache and path.is_file():
        try:
            table = LatencyTable.load(path)
        except ConfigError as exc:
            log(f"latency table: cache entry unusable, measuring again ({exc})")
        else:
            when = table.meta.get("date", "?")
            now = dense_now_ms(task, dense, batch, threads=threads, workload=workload, rounds=check_rounds) if check_rounds else None
            verdict = reuse_verdict(table.dense_ms, now) if now is not None else "ok"
            figures = "" if now is None else f" (dense model {table.dense_ms:.2f} ms then, {now:.2f} ms now)"
            if verdict == "rebuild":
                log(f"latency table: the one this machine measured on {when} was timed when it was busier{figures}: "
                    f"measuring again ({path})")
            else:
                log(f"latency table: reusing the one this machine measured on {when}{figures} ({path})")
                if verdict == "busy":
                    log(f"latency table: WARNING: this machine is {now / table.dense_ms - 1:.0%} slower than when the table "
                        "was timed: something else is running? The stored table is kept; measured figures "
                        "(measured_speedup, re-timing) are taken under the present load")
                log(calibration_summary(table))
                return table
    table = build_latency_table(task, dense, batch, rounds=rounds, warmup=warmup, threads=threads, workload=workload,
                                calibration=calibration)
    log(calibration_summary(table))
    if use_cache:
        path.parent.mkdir(parents=True, exist_ok=True)
        table.save(path)
    return table


def calibration_summary(table: LatencyTable) -> str:
    """One line: the fitted factors and the table's error on mixed shapes it was not fitted to."""
    report = table.meta.get("calibration")
    if not report:
        return "latency table: not calibrated (an older format: savings are summed as measured one type at a time)"
    if not report.get("scale"):
        return f"latency table: additive ({report.get('note', 'no calibration shapes')})"
    # a fixed order: a table read back from JSON (keys sorted) says the same line as when it was built
    order = sorted(report["scale"], key=lambda c: (COMPONENTS.index(c) if c in COMPONENTS else len(COMPONENTS), c))
    factors = ", ".join(f"{c} x{report['scale'][c]:.3f}" for c in order)
    line = (f"latency table: calibrated on {report['shapes']} mixed shapes ({factors}); error on a shape left out of the "
            f"fit: median {report['held_out_median_error']:.1%}, max {report['held_out_max_error']:.1%} "
            f"(additive: median {report['additive_median_error']:.1%}, max {report['additive_max_error']:.1%})")
    return line + (f"; WARNING: {report['warning']}" if report.get("warning") else "")

"""A per-device latency table: predicted speedup as a deterministic function of a model's shape.

Timing every trial's student once, on whatever else the node is doing, makes the speed axis of a
front mostly noise (identical shapes scattered 1.48-1.52x; a no-pruning model timed at 0.945x).
Here the cost of each *shape* is measured once per sweep, in one interleaved comparison, and
every model is then scored by lookup (in the spirit of Once-for-All's latency lookup tables):

- For each attention kind and each kept-head count k < H, a copy of the dense teacher with every
  layer of that kind pruned to k heads is timed together with the dense teacher (one
  `compare_latency` call: round-robin, rotating order, same batch, same process, many rounds).
  The per-layer saving of a layer with k heads is (dense - variant) / layers of that kind; the
  dense model's own median is the calibration that covers everything the heads do not
  (embeddings, FFNs, the output layer). Savings are made non-increasing in k (a layer with more
  heads never costs less), which removes sub-noise inversions between neighbouring counts.
- predicted latency = dense - sum over every layer of its saving; predicted speedup =
  dense / predicted. A pure function of (table, head counts): two models of the same shape get the
  same figure to the last digit, in every trial and after a resume; the dense shape gets 1.0.

The table is keyed by what it was measured under (device, dtype, threads, batch shape, torch);
`matches` tells a caller whether it applies. Additivity across layers and kinds is the model's
assumption; `bench/latency_predictor.py` measures how far it holds.
"""

from __future__ import annotations

import copy
import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Mapping

import torch
from torch import nn

from raykd.errors import ConfigError
from raykd.heads import head_counts, prune_heads
from raykd.storage import write_bytes_atomic
from raykd.task.base import Batch, Task

TABLE_NAME = "latency_table.json"
FORMAT = "raykd-latency-table-1"


def table_key(model: nn.Module, batch: Batch, threads: int | None) -> dict[str, Any]:
    """What a table's figures depend on, besides the architecture."""
    param = next(model.parameters())
    return {
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

    def predict_ms(self, counts: Mapping[str, list[int]]) -> float:
        """Predicted latency of a model with `counts` ({kind: kept heads per layer})."""
        if set(counts) != set(self.layers):
            raise ConfigError(f"latency table is for attention kinds {sorted(self.layers)}, the model has {sorted(counts)}")
        total = self.dense_ms
        for kind, per_layer in counts.items():
            if len(per_layer) != self.layers[kind]:
                raise ConfigError(f"latency table has {self.layers[kind]} {kind} layers, the model {len(per_layer)}")
            for k in per_layer:
                if not 0 <= k <= self.heads[kind]:
                    raise ConfigError(f"{kind}: {k} heads is outside the table's 0..{self.heads[kind]}")
                total -= self.saving_ms[kind][k]
        return total

    def predicted_speedup(self, counts: Mapping[str, list[int]]) -> float:
        return self.dense_ms / self.predict_ms(counts)

    def matches(self, key: Mapping[str, Any]) -> bool:
        return dict(key) == self.key

    def to_dict(self) -> dict[str, Any]:
        return {"format": FORMAT, **asdict(self)}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "LatencyTable":
        if d.get("format") != FORMAT:
            raise ConfigError(f"not a raykd latency table (format {d.get('format')!r})")
        return cls(dict(d["key"]), float(d["dense_ms"]), dict(d["layers"]), dict(d["heads"]),
                   {k: [float(x) for x in v] for k, v in d["saving_ms"].items()}, dict(d.get("meta", {})))

    def save(self, path: str | Path) -> None:
        write_bytes_atomic(path, json.dumps(self.to_dict(), indent=1, sort_keys=True).encode())

    @classmethod
    def load(cls, path: str | Path) -> "LatencyTable":
        try:
            return cls.from_dict(json.loads(Path(path).read_text()))
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ConfigError(f"{path} is not a readable latency table ({exc})") from None


def uniform_variant(model: nn.Module, kind: str, kept: int) -> nn.Module:
    """A copy of `model` with every layer of `kind` pruned to its first `kept` heads."""
    variant = copy.deepcopy(model)
    counts = head_counts(variant)[kind]
    prune_heads(variant, {kind: {layer: list(range(kept, h)) for layer, h in enumerate(counts) if kept < h}})
    return variant.eval()


def build_latency_table(task: Task, dense: nn.Module, batch: Batch, *, rounds: int = 30, warmup: int = 3,
                        threads: int | None = None) -> LatencyTable:
    """Time the dense model and every uniform (kind, k) variant together; see the module doc."""
    from raykd.measure import compare_latency

    counts = head_counts(dense)
    for kind, per_layer in counts.items():
        if len(set(per_layer)) != 1:
            raise ConfigError(f"a latency table needs the unpruned model: {kind} has uneven heads {per_layer}")
    heads = {kind: per_layer[0] for kind, per_layer in counts.items()}
    layers = {kind: len(per_layer) for kind, per_layer in counts.items()}
    device = next(dense.parameters()).device
    batch = {k: v.to(device) for k, v in batch.items()}
    dense = dense.eval()
    variants = {"dense": dense}
    for kind, h in heads.items():
        for k in range(h):
            variants[f"{kind}/{k}"] = uniform_variant(dense, kind, k)
    t0 = time.perf_counter()
    lat = compare_latency({name: (lambda m=m: task.run(m, batch)) for name, m in variants.items()},
                          warmup=warmup, rounds=rounds, device=device, num_threads=threads, reference="dense")
    dense_ms = lat.stats["dense"].median_ms
    saving: dict[str, list[float]] = {}
    for kind, h in heads.items():
        raw = [(dense_ms - lat.stats[f"{kind}/{k}"].median_ms) / layers[kind] for k in range(h)] + [0.0]
        for k in range(h - 1, -1, -1):  # a layer with fewer heads saves at least as much
            raw[k] = max(raw[k], raw[k + 1])
        saving[kind] = raw
    meta = {"how": ("one compare_latency call over the dense model and every uniform (kind, kept heads) variant: "
                    "round-robin, rotating order, same batch; medians; per-layer saving = (dense - variant) / layers, "
                    "made non-increasing in kept heads"),
            "rounds": rounds, "warmup": warmup, "variants": len(variants), "wall_s": round(time.perf_counter() - t0, 2),
            "date": time.strftime("%Y-%m-%d %H:%M"),
            "variant_median_ms": {n: s.median_ms for n, s in lat.stats.items()}}
    return LatencyTable(table_key(dense, batch, threads), dense_ms, layers, heads, saving, meta)

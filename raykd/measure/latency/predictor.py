"""A latency table and its prediction: predicted speedup as a deterministic function of a shape.

predicted latency = dense - sum over components of factor x savings, where every registered kind
(`raykd.measure.latency.registry`) prices its part of the shape (heads and FFN channels of every
present layer, dropped layers x layer cost, plug-in kinds' own terms); predicted speedup = dense /
predicted. A pure function of (table, shape): two models of the same shape get the same figure to
the last digit, in every trial and after a resume; the dense shape gets 1.0.

The table is keyed by what it was measured under (workload, device, dtype, threads, batch shape,
torch: `table_key`); `matches` tells a caller whether it applies. How it is timed:
`raykd.measure.latency.build`; its calibration: `raykd.measure.latency.calibration`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from raykd.errors import ConfigError
from raykd.measure.latency.registry import latency_kinds, latency_names, pricing_order
from raykd.storage import write_bytes_atomic
from raykd.task_interface import Batch

TABLE_NAME = "latency_table.json"
FORMAT = "raykd-latency-table-3"
READABLE_FORMATS = ("raykd-latency-table-1", "raykd-latency-table-2", FORMAT)  # 1: heads only; 2: not calibrated

Shape = Mapping[str, Any]
"""{structure kind name: the model's sizes in that kind} (`shape_sizes`); a kind left out is not priced."""


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


def shape_sizes(model: nn.Module) -> dict[str, Any]:
    """`model`'s shape in every registered kind: what the table prices."""
    return {kind.name: kind.sizes_of(model) for kind in latency_kinds()}


def interpolated_saving(grid: list[int], saving: list[float], width: int, what: str) -> float:
    """The saving at `width`, linear between the grid's widths (ConfigError outside the grid)."""
    if not grid[0] <= width <= grid[-1]:
        raise ConfigError(f"{what}: width {width} is outside the table's {grid[0]}..{grid[-1]}")
    for i in range(len(grid) - 1):
        lo, hi = grid[i], grid[i + 1]
        if lo <= width <= hi:
            return saving[i] + (saving[i + 1] - saving[i]) * (width - lo) / (hi - lo)
    return saving[-1]


@dataclass(frozen=True)
class LatencyTable:
    key: dict[str, Any]
    dense_ms: float
    layers: dict[str, int] = field(default_factory=dict)  # layers per attention kind
    heads: dict[str, int] = field(default_factory=dict)  # heads per layer of the dense model, per kind
    saving_ms: dict[str, list[float]] = field(default_factory=dict)  # per kind: per-layer saving with k kept heads, k = 0..H
    meta: dict[str, Any] = field(default_factory=dict)  # how it was measured
    ffn_width: dict[str, int] = field(default_factory=dict)  # dense FFN width per FFN kind
    ffn_grid: dict[str, list[int]] = field(default_factory=dict)  # per FFN kind: widths timed (ascending, ends at W)
    ffn_saving_ms: dict[str, list[float]] = field(default_factory=dict)  # per-layer saving at each grid width
    stacks: dict[str, int] = field(default_factory=dict)  # layers per stack of the dense model
    layer_ms: dict[str, float] = field(default_factory=dict)  # what dropping one layer of a stack saves
    scale: dict[str, float] = field(default_factory=dict)  # fitted factor per component (absent: 1.0, additive)
    kinds: dict[str, Any] = field(default_factory=dict)  # plug-in kinds' entries, by kind name (absent from a file without)

    def _ffn_saving(self, kind: str, width: int) -> float:
        grid, saving = self.ffn_grid[kind], self.ffn_saving_ms[kind]
        if not 0 <= width <= grid[-1]:
            raise ConfigError(f"{kind}: width {width} is outside the table's 0..{grid[-1]}")
        return interpolated_saving(grid, saving, width, kind)

    def _terms(self, shape: Shape) -> list[tuple[str, float]]:
        """(component, ms saved) for every saving of the shape, in the order they are subtracted:
        whole-layer kinds first, then the others in registration order (for the built-in kinds the
        order of format 2, so an uncalibrated table predicts what it always did, to the bit)."""
        unknown = sorted(set(self.kinds) - set(latency_names()))
        if unknown:
            raise ConfigError(f"the latency table prices structure kind(s) {unknown}, which are not registered here "
                              f"(raykd.measure.latency.registry): register them before using the table")
        kinds = pricing_order()
        dropped: dict[str, int] = {}
        for kind in kinds:
            if kind.dropped is not None:
                dropped.update(kind.dropped(self, shape.get(kind.name)))
        return [(kind.name, ms) for kind in kinds for ms in kind.price(self, shape.get(kind.name), dropped)]

    def savings_of_shape(self, shape: Shape) -> dict[str, float]:
        """The summed one-kind-at-a-time savings (ms) per registered kind, before the fitted factors."""
        out = dict.fromkeys(latency_names(), 0.0)
        for component, ms in self._terms(shape):
            out[component] += ms
        return out

    def predict_ms_of_shape(self, shape: Shape) -> float:
        """Predicted latency: dense minus each component's savings times its fitted factor."""
        total = self.dense_ms
        for component, ms in self._terms(shape):
            total -= self.scale.get(component, 1.0) * ms
        return total

    def speedup_of_shape(self, shape: Shape) -> float:
        return self.dense_ms / self.predict_ms_of_shape(shape)

    # The built-in kinds' positional form (heads, FFN widths, layers), as callers have used it.
    @staticmethod
    def _builtin(counts: Mapping[str, list[int]], ffn: Mapping[str, list[int]] | None,
                 layers: Mapping[str, int] | None) -> dict[str, Any]:
        return {"heads": counts, "ffn": ffn, "layers": layers}

    def savings(self, counts: Mapping[str, list[int]], ffn: Mapping[str, list[int]] | None = None,
                layers: Mapping[str, int] | None = None) -> dict[str, float]:
        """`savings_of_shape` of a model with `counts` ({kind: kept heads per present layer}), `ffn`
        ({FFN kind: width per present layer}; None: dense) and `layers` ({stack: layers present};
        None: none dropped)."""
        return self.savings_of_shape(self._builtin(counts, ffn, layers))

    def predict_ms(self, counts: Mapping[str, list[int]], ffn: Mapping[str, list[int]] | None = None,
                   layers: Mapping[str, int] | None = None) -> float:
        return self.predict_ms_of_shape(self._builtin(counts, ffn, layers))

    def predicted_speedup(self, counts: Mapping[str, list[int]], ffn: Mapping[str, list[int]] | None = None,
                          layers: Mapping[str, int] | None = None) -> float:
        return self.dense_ms / self.predict_ms(counts, ffn, layers)

    def predicted_speedup_of(self, model: nn.Module) -> float:
        """The prediction for `model`'s shape in every registered kind."""
        return self.speedup_of_shape(shape_sizes(model))

    def matches(self, key: Mapping[str, Any]) -> bool:
        return dict(key) == self.key

    @property
    def heads_only(self) -> bool:
        """A format-1 table: it timed heads only (no FFN widths, no depth)."""
        return not self.ffn_width and not self.stacks

    def to_dict(self) -> dict[str, Any]:
        d = {"format": FORMAT, **asdict(self)}
        if not self.kinds:  # the file of a table with the built-in kinds only, as format 3 always wrote it
            del d["kinds"]
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> LatencyTable:
        if d.get("format") not in READABLE_FORMATS:
            raise ConfigError(f"not a raykd latency table (format {d.get('format')!r})")
        floats = lambda m: {k: [float(x) for x in v] for k, v in m.items()}
        return cls(dict(d["key"]), float(d["dense_ms"]), dict(d["layers"]), dict(d["heads"]), floats(d["saving_ms"]),
                   dict(d.get("meta", {})), {k: int(v) for k, v in d.get("ffn_width", {}).items()},
                   {k: [int(x) for x in v] for k, v in d.get("ffn_grid", {}).items()}, floats(d.get("ffn_saving_ms", {})),
                   {k: int(v) for k, v in d.get("stacks", {}).items()}, {k: float(v) for k, v in d.get("layer_ms", {}).items()},
                   {k: float(v) for k, v in d.get("scale", {}).items()}, dict(d.get("kinds", {})))

    def save(self, path: str | Path) -> None:
        write_bytes_atomic(path, json.dumps(self.to_dict(), indent=1, sort_keys=True).encode())

    @classmethod
    def load(cls, path: str | Path) -> LatencyTable:
        try:
            return cls.from_dict(json.loads(Path(path).read_text()))
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ConfigError(f"{path} is not a readable latency table ({exc})") from None


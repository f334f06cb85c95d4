"""The hidden-size kind's latency (embedding channels, `raykd.structures.hidden`), opted into.

Variants: for the model's hidden dimension of W channels, a copy cut to each width of the grid 1,
W/4, W/2, 3W/4 (the first channels kept: which ones does not change the cost). Narrowing the
hidden size narrows the whole model at once (embeddings, every projection's input or output, every
norm), so its saving is the whole model's, not a per-layer one: (dense - variant), made
non-increasing in width and interpolated linearly between grid widths; the grid starts at 1
channel, so every width a model can have is covered. Its calibration factor is fitted with the
other kinds' (mixed shapes narrow the hidden size too once this kind is registered). The saving is
timed at full depth: with layers dropped as well the additive sum over-counts, which is what the
fitted factors absorb.

Not registered at import, as the structure kind is not: `register_hidden_latency()` (which
registers the structure kind too) opts in; its table entry lives under `kinds["hidden"]` and its
tables are cached under their own key.
"""

from __future__ import annotations

import copy
import random
from collections.abc import Mapping
from typing import Any

from torch import nn

from raykd.errors import ConfigError
from raykd.measure.latency.kinds import non_increasing
from raykd.measure.latency.predictor import interpolated_saving
from raykd.measure.latency.registry import (
    KindLatency,
    latency_names,
    latency_of,
    register_latency,
)
from raykd.structures.hidden import hidden_map, prune_hidden, register_hidden_structure

NAME = "hidden"
HIDDEN_GRID = (0.25, 0.5, 0.75)


def hidden_shape(model: nn.Module) -> dict[str, dict[str, int]]:
    """{hidden kind: {"width": original channels, "kept": channels present}} ({} without a supported hidden dimension)."""
    return {kind: {"width": int(e["width"]), "kept": len(e["kept"])} for kind, e in hidden_map(model).items()}


def hidden_grid(width: int) -> list[int]:
    return sorted({1, width} | {int(f * width) for f in HIDDEN_GRID} - {0})


def _check(dense: nn.Module) -> None:
    for kind, s in hidden_shape(dense).items():
        if s["kept"] != s["width"]:
            raise ConfigError(f"a latency table needs the unpruned model: {kind} keeps {s['kept']} of {s['width']} channels")


def _narrowed(model: nn.Module, width: int) -> nn.Module:
    variant = copy.deepcopy(model)
    prune_hidden(variant, range(width))
    return variant.eval()


def _variants(dense: nn.Module) -> dict[str, nn.Module | None]:
    return {f"{kind}/h{w}": _narrowed(dense, w) for kind, s in hidden_shape(dense).items()
            for w in hidden_grid(s["width"])[:-1]}


def _fit(dense: nn.Module, variant_ms: Mapping[str, float], dense_ms: float) -> tuple[dict[str, Any], dict[str, Any]]:
    width = {kind: s["width"] for kind, s in hidden_shape(dense).items()}
    grid = {kind: hidden_grid(w) for kind, w in width.items()}
    saving = {kind: non_increasing([dense_ms - variant_ms[f"{kind}/h{w}"] for w in g[:-1]] + [0.0]) for kind, g in grid.items()}
    note = {"hidden": "hidden-size variants: the whole model cut to 1, W/4, W/2, 3W/4 hidden channels; saving = "
                      "dense - variant (the whole model's), non-increasing in width, linear between grid widths"}
    return {"width": width, "grid": grid, "saving_ms": saving}, note


def _price(table: Any, shape: Mapping[str, Mapping[str, int]] | None, dropped: Mapping[str, int]) -> list[float]:
    entry = table.kinds.get(NAME, {})
    out = []
    for kind, s in (shape or {}).items():
        if kind not in entry.get("grid", {}):
            if s["kept"] == s["width"]:
                continue  # not narrowed: nothing saved, whether the table timed it or not
            raise ConfigError(f"latency table does not cover {kind} widths (timed without the hidden kind registered): "
                              f"re-time the table after register_hidden_latency()")
        if s["width"] != entry["width"][kind]:
            raise ConfigError(f"latency table is for a {kind} of {entry['width'][kind]} channels, the model's has {s['width']}")
        out.append(interpolated_saving(entry["grid"][kind], entry["saving_ms"][kind], s["kept"], kind))
    return out


def _mix(variant: nn.Module, rng: random.Random, level: float) -> None:
    """The hidden size cut to a random width (the first channels kept)."""
    for s in hidden_shape(variant).values():
        keep = max(1, round(s["kept"] * (1 - min(0.9, max(0.0, rng.gauss(level, 0.1))))))
        if keep < s["kept"]:
            prune_hidden(variant, range(keep))


def register_hidden_latency() -> KindLatency:
    """Register the hidden kind's latency (and its structure kind, `register_hidden_structure`);
    idempotent. Undo with `unregister_latency("hidden")` (and `unregister_structure("hidden")`)."""
    register_hidden_structure()
    if NAME in latency_names():
        return latency_of(NAME)
    return register_latency(KindLatency(NAME, check=_check, variants=_variants, fit=_fit, price=_price, mix=_mix,
                                        draw_level=lambda rng: rng.uniform(0.0, 0.5), sizes=hidden_shape))

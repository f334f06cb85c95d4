"""The built-in kinds' latency: heads, FFN channels and layers, registered when the package loads.

- Heads: for each attention kind and each kept-head count k < H, a copy with every layer of that
  kind pruned to k heads. The per-layer saving of a layer with k heads is (dense - variant) /
  layers of that kind; savings are made non-increasing in k (a layer with more heads never costs
  less), which removes sub-noise inversions between neighbouring counts. Grouped-query kinds time
  within-groups shapes (`kept_head_ids`); a count no block can have takes the next larger count's saving.
- FFN widths: for each FFN kind and each width on a grid of quarters (0, W/4, W/2, 3W/4), a copy
  with every layer of that kind cut to that width; the per-layer saving at any width is
  interpolated linearly between grid points (and made non-increasing in width).
- Depth: for each layer stack of L > 1 layers, a copy with d = max(1, L // 2) layers dropped; the
  cost of one layer is (dense - variant) / d (a dropped layer saves all of it, heads and FFN
  included, so its heads and channels are not counted again).

Their entries are the top-level fields of table format 3 (`fields`), unchanged, so cached tables
stay valid. Mixed calibration shapes draw a head level and an FFN level first, then cut heads,
FFN widths and a few layers, in that order (the seeded shapes of format 3, to the draw).
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from typing import Any

from torch import nn

from raykd.errors import ConfigError
from raykd.measure.latency.registry import KindLatency, register_latency
from raykd.measure.latency.variants import (
    depth_variant,
    ffn_variant,
    kept_head_ids,
    uniform_variant,
)
from raykd.structures import (
    STACK_OF,
    drop_layers,
    ffn_widths,
    head_counts,
    layer_counts,
    prune_ffn,
    prune_heads,
)

FFN_GRID = (0.0, 0.25, 0.5, 0.75)
GQA_NOTE = ("grouped-query kinds time within-groups shapes (k/G heads per K/V group, every K/V head kept) where k "
            "is a multiple of the G groups, else the first k/g whole groups; a count neither can make "
            "(unbuildable) takes the saving of the next larger count")


def non_increasing(raw: list[float]) -> list[float]:
    """A layer with more heads (or a wider FFN) never costs less: take the running max from the right."""
    out = list(raw)
    for i in range(len(out) - 2, -1, -1):
        out[i] = max(out[i], out[i + 1])
    return out


def _clamped_gauss(rng: random.Random, level: float) -> float:
    return min(1.0, max(0.0, rng.gauss(level, 0.15)))


# -- heads -------------------------------------------------------------------------------------

def _even_heads(dense: nn.Module) -> dict[str, int]:
    counts = head_counts(dense)
    for kind, per_layer in counts.items():
        if len(set(per_layer)) != 1:
            raise ConfigError(f"a latency table needs the unpruned model: {kind} has uneven heads {per_layer}")
    return {kind: per_layer[0] for kind, per_layer in counts.items()}


def _head_variants(dense: nn.Module) -> dict[str, nn.Module | None]:
    return {f"{kind}/{k}": uniform_variant(dense, kind, k) for kind, h in _even_heads(dense).items() for k in range(h)}


def _head_fit(dense: nn.Module, variant_ms: Mapping[str, float], dense_ms: float) -> tuple[dict[str, Any], dict[str, Any]]:
    counts = head_counts(dense)
    heads = {kind: per_layer[0] for kind, per_layer in counts.items()}
    layers = {kind: len(per_layer) for kind, per_layer in counts.items()}
    saving: dict[str, list[float]] = {}
    unbuildable: dict[str, list[int]] = {}
    for kind, h in heads.items():
        raw = [0.0] * (h + 1)
        for k in range(h - 1, -1, -1):  # a count no block can have: the saving of the next count that can exist
            name = f"{kind}/{k}"
            raw[k] = (dense_ms - variant_ms[name]) / layers[kind] if name in variant_ms else raw[k + 1]
        saving[kind] = non_increasing(raw)
        missing = [k for k in range(h) if f"{kind}/{k}" not in variant_ms]
        if missing:
            unbuildable[kind] = missing
    return {"layers": layers, "heads": heads, "saving_ms": saving}, {"gqa": GQA_NOTE, "unbuildable": unbuildable}


def _head_price(table: Any, counts: Mapping[str, list[int]] | None, dropped: Mapping[str, int]) -> list[float]:
    counts = counts or {}
    if set(counts) != set(table.layers):
        raise ConfigError(f"latency table is for attention kinds {sorted(table.layers)}, the model has {sorted(counts)}")
    out = []
    for kind, per_layer in counts.items():
        expected = table.layers[kind] - dropped.get(STACK_OF.get(kind, ""), 0)
        if len(per_layer) != expected:
            raise ConfigError(f"latency table has {expected} {kind} layers (after dropped layers), the model {len(per_layer)}")
        for k in per_layer:
            if not 0 <= k <= table.heads[kind]:
                raise ConfigError(f"{kind}: {k} heads is outside the table's 0..{table.heads[kind]}")
            out.append(table.saving_ms[kind][k])
    return out


def _head_mix(variant: nn.Module, rng: random.Random, level: float) -> None:
    """Per layer a random number of heads of every kind (a count its block can have)."""
    from raykd.structures.heads import blocks_by_kind

    heads: dict[str, dict[int, list[int]]] = {}
    for kind, blocks in blocks_by_kind(variant).items():
        heads[kind] = {}
        for layer, b in enumerate(blocks):
            buildable = [k for k in range(b.num_heads) if kept_head_ids(b.num_heads, b.num_kv_heads, k) is not None]
            want = b.num_heads * (1 - _clamped_gauss(rng, level))
            kept = min(buildable + [b.num_heads], key=lambda k: (abs(k - want), k))
            if kept < b.num_heads:
                ids = kept_head_ids(b.num_heads, b.num_kv_heads, kept) or []
                heads[kind][layer] = [h for h in range(b.num_heads) if h not in ids]
    prune_heads(variant, heads)


# -- FFN channels ------------------------------------------------------------------------------

def _even_widths(dense: nn.Module) -> dict[str, int]:
    widths = ffn_widths(dense)
    for kind, per_layer in widths.items():
        if len(set(per_layer)) != 1:
            raise ConfigError(f"a latency table needs the unpruned model: {kind} has uneven widths {per_layer}")
    return {kind: per_layer[0] for kind, per_layer in widths.items()}


def _ffn_grid(ffn_width: Mapping[str, int]) -> dict[str, list[int]]:
    return {kind: sorted({int(f * w) for f in FFN_GRID} | {w}) for kind, w in ffn_width.items() if w > 0}


def _ffn_variants(dense: nn.Module) -> dict[str, nn.Module | None]:
    return {f"{kind}/w{w}": ffn_variant(dense, kind, w) for kind, grid in _ffn_grid(_even_widths(dense)).items()
            for w in grid[:-1]}


def _ffn_fit(dense: nn.Module, variant_ms: Mapping[str, float], dense_ms: float) -> tuple[dict[str, Any], dict[str, Any]]:
    ffn_width = {kind: per_layer[0] for kind, per_layer in ffn_widths(dense).items()}
    ffn_grid = _ffn_grid(ffn_width)
    stacks = layer_counts(dense)
    ffn_saving = {kind: non_increasing([(dense_ms - variant_ms[f"{kind}/w{w}"]) / stacks[STACK_OF[kind]]
                                        for w in grid[:-1]] + [0.0]) for kind, grid in ffn_grid.items()}
    return {"ffn_width": ffn_width, "ffn_grid": ffn_grid, "ffn_saving_ms": ffn_saving}, {}


def _ffn_price(table: Any, ffn: Mapping[str, list[int]] | None, dropped: Mapping[str, int]) -> list[float]:
    out = []
    for kind, widths in (ffn or {}).items():
        if kind not in table.ffn_grid:
            if kind in table.ffn_width and all(w == table.ffn_width[kind] for w in widths):
                continue  # a width the table did not vary (e.g. 0-width dense FFN): nothing saved
            raise ConfigError(f"latency table does not cover {kind} widths (a heads-only table of format 1?): "
                              f"re-time the table")
        expected = table.stacks.get(STACK_OF.get(kind, ""), len(widths)) - dropped.get(STACK_OF.get(kind, ""), 0)
        if len(widths) != expected:
            raise ConfigError(f"latency table has {expected} {kind} layers (after dropped layers), the model {len(widths)}")
        out.append(sum(table._ffn_saving(kind, w) for w in widths))
    return out


def _ffn_mix(variant: nn.Module, rng: random.Random, level: float) -> None:
    """A random FFN width per layer."""
    ffn = {kind: {layer: list(range(round(w * (1 - _clamped_gauss(rng, level))), w)) for layer, w in enumerate(widths)}
           for kind, widths in ffn_widths(variant).items()}
    prune_ffn(variant, {kind: {layer: r for layer, r in spec.items() if r} for kind, spec in ffn.items()})


# -- layers ------------------------------------------------------------------------------------

def _depth_drop(dense: nn.Module) -> dict[str, int]:
    return {stack: max(1, n // 2) for stack, n in layer_counts(dense).items() if n > 1}


def _layer_variants(dense: nn.Module) -> dict[str, nn.Module | None]:
    return {f"{stack}/-{d}": depth_variant(dense, stack, d) for stack, d in _depth_drop(dense).items()}


def _layer_fit(dense: nn.Module, variant_ms: Mapping[str, float], dense_ms: float) -> tuple[dict[str, Any], dict[str, Any]]:
    layer_ms = {stack: (dense_ms - variant_ms[f"{stack}/-{d}"]) / d for stack, d in _depth_drop(dense).items()}
    return {"stacks": layer_counts(dense), "layer_ms": layer_ms}, {}


def _layers_dropped(table: Any, layers: Mapping[str, int] | None) -> dict[str, int]:
    layers = dict(layers or {})
    for stack, n in layers.items():
        if stack not in table.stacks:
            raise ConfigError(f"latency table does not cover {stack} (a heads-only table of format 1?): re-time the table")
        if not 1 <= n <= table.stacks[stack]:
            raise ConfigError(f"{stack}: {n} layers is outside the table's 1..{table.stacks[stack]}")
        if n != table.stacks[stack] and stack not in table.layer_ms:
            raise ConfigError(f"latency table cannot price dropped {stack} (its model has one layer)")
    return {stack: table.stacks[stack] - n for stack, n in layers.items()}


def _layer_price(table: Any, layers: Mapping[str, int] | None, dropped: Mapping[str, int]) -> list[float]:
    return [sum(d * table.layer_ms.get(stack, 0.0) for stack, d in _layers_dropped(table, layers).items())]


def _layer_mix(variant: nn.Module, rng: random.Random, level: Any) -> None:
    """A few whole layers dropped (up to half of a stack)."""
    drop = {stack: sorted(rng.sample(range(n), rng.randint(0, n // 2))) for stack, n in layer_counts(variant).items() if n > 1}
    drop_layers(variant, {stack: ids for stack, ids in drop.items() if ids})


HEADS = register_latency(KindLatency(
    "heads", check=_even_heads, variants=_head_variants, fit=_head_fit, price=_head_price, mix=_head_mix,
    draw_level=lambda rng: rng.uniform(0.1, 0.8), fields=("layers", "heads", "saving_ms")))
FFN = register_latency(KindLatency(
    "ffn", check=_even_widths, variants=_ffn_variants, fit=_ffn_fit, price=_ffn_price, mix=_ffn_mix,
    draw_level=lambda rng: rng.uniform(0.0, 0.8), fields=("ffn_width", "ffn_grid", "ffn_saving_ms")))
LAYERS = register_latency(KindLatency(
    "layers", check=lambda dense: None, variants=_layer_variants, fit=_layer_fit, price=_layer_price, mix=_layer_mix,
    dropped=_layers_dropped, fields=("stacks", "layer_ms")))

BUILTIN: tuple[str, ...] = (HEADS.name, FFN.name, LAYERS.name)
"""The kinds a table of format 3 times: a table of these alone is the file, and the cache key, it always was."""

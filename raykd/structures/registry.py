"""The structure kinds raykd can remove, as registered plug-ins: heads, FFN channels, layers, ...

A `StructureKind` says, for one kind of prunable unit, everything the code downstream needs
without naming the kind: its chain settings (the Eq. 5 schedule pair, the per-block floor, the
round it starts at), the keys its figures are recorded under, how to count its units in a model,
how to describe its pruned shape as a map of original ids and rebuild it, how to remove a
selection, and (for units that live in blocks: heads, channels) how to list its blocks. Heads,
FFN channels and layers are registered at the bottom of this module; a new kind is one module
with one `register_structure(...)` call (docs/structures.md, "How to add a structure kind").

This module imports no torch (the built-in kinds reach their modules on first use), so a chain
config or a search space validates against the registry without loading torch.

The method's side of a kind (its importance scores) is registered in the method layer
(`raykd.method.importance.registry`), which structures may not import.

Two orders: `structure_kinds()` is registration order (heads, ffn, layers: schedules, ratios,
records); `shape_order()` puts whole-layer kinds first, because the other kinds are numbered over
the layers that remain (shape maps are applied, and totals reported, in that order).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import ModuleType
from typing import TYPE_CHECKING, Any

from raykd.registry import Refusal, Registry

if TYPE_CHECKING:
    from torch import nn

Selection = Mapping[str, Any]
"""What `remove` takes: {block kind: {layer position: [unit positions]}}, or for a whole-layer kind
{stack: [layer positions]} (positions in the model as it is now)."""


@dataclass(frozen=True)
class StructureKind:
    """One kind of prunable structure. Callables take the model (or one of its blocks)."""

    name: str  # "heads": schedules, ratios, `ChainConfig.prunes`, `check_supported`, `<name>_removed_now`, `<name>_kept`
    unit: str  # "heads", "FFN channels": in messages
    count_key: str  # "heads", "ffn_channels": `structure_counts`, `<count_key>_total`, `<count_key>_original`
    shape_key: str  # "head_map": its map of kept original ids in a saved model's config.json
    p_min: str  # the chain settings of its Eq. 5 schedule: the start ...
    p_max: str  # ... and the final ratio (0: this kind is not pruned)
    sizes: Callable[[nn.Module], dict[str, Any]]  # {block kind: [units per present layer]} ({stack: layers} for depth)
    shape_of: Callable[[nn.Module], dict[str, Any]]  # the JSON map of kept original ids
    apply_shape: Callable[[nn.Module, Mapping[str, Any]], nn.Module]  # shrink a fresh model to such a map
    remove: Callable[[nn.Module, Selection], Any]  # remove a selection physically (positions now)
    blocks: Callable[[nn.Module], list[Any]] | None = None  # width kinds: blocks with `.kind`, `.layer` (positions now)
    block_size: Callable[[Any], int] | None = None  # units a block has now
    block_floor: Callable[[Any], int] | None = None  # units an architecture needs a block to keep (Llama: 1 head)
    floor_field: str | None = None  # chain setting: units every block keeps (`min_heads_per_block`)
    start_round_field: str | None = None  # chain setting: the first round this kind is pruned in (1 when None)
    depth: bool = False  # a unit is a whole layer: planned first, removed last, its map applied first
    narrows_hidden_states: bool = False  # pruning it makes the student's hidden states narrower than the teacher's
    short: str = ""  # its mark in a compact shape ("4L·38H·3072F"); empty: " <name>" ("512 hidden")

    def __post_init__(self) -> None:
        if not self.name.isidentifier():
            raise ValueError(f"a structure kind's name must be an identifier, got {self.name!r}")
        if not self.depth and (self.blocks is None or self.block_size is None):
            raise ValueError(f"structure kind {self.name!r}: a kind of units within blocks needs `blocks` and `block_size`")

    def total(self, model: nn.Module) -> int:
        """How many units of this kind `model` has."""
        return sum(v if isinstance(v, int) else sum(v) for v in self.sizes(model).values())

    @property
    def removed_now_key(self) -> str:
        return f"{self.name}_removed_now"

    @property
    def kept_key(self) -> str:
        return f"{self.name}_kept"

    @property
    def total_key(self) -> str:
        return f"{self.count_key}_total"

    @property
    def original_key(self) -> str:
        return f"{self.count_key}_original"

    @property
    def forecast_key(self) -> str:
        """The forecast of its final count (`raykd.method.forecast`), a results column."""
        return f"forecast_{self.total_key}"

    @property
    def record_keys(self) -> tuple[str, ...]:
        """The chain record's keys for this kind (`raykd.method.chain`)."""
        return (self.removed_now_key, self.kept_key, self.total_key, self.original_key)


def _clash(kind: StructureKind, other: StructureKind) -> None:
    """ValueError when `kind` takes a name, schedule setting, count key or shape key of `other`."""
    clash = {"name": (kind.name, other.name), "count_key": (kind.count_key, other.count_key),
             "shape_key": (kind.shape_key, other.shape_key)}
    for what, (mine, theirs) in clash.items():
        if mine == theirs:
            raise ValueError(f"structure kind {kind.name!r}: {what} {mine!r} is already registered (by {other.name!r})")
    if {kind.p_min, kind.p_max} & {other.p_min, other.p_max}:
        raise ValueError(f"structure kind {kind.name!r}: a schedule setting of {other.name!r} "
                         f"({other.p_min}, {other.p_max}) is taken")


_KINDS: Registry[StructureKind] = Registry(
    "structure kind", clash=_clash,
    unknown=Refusal(ValueError, "unknown structure {name!r} (known: {known})"),
    missing=Refusal(KeyError, "no structure kind {name!r} is registered"),
    duplicate=Refusal(ValueError, "structure kind {name!r}: name {name!r} is already registered (by {name!r})"))


def register_structure(kind: StructureKind) -> StructureKind:
    """Add `kind` after the ones registered so far. ValueError for a name, schedule setting, count
    key or shape key another kind already uses."""
    return _KINDS.register(kind.name, kind)


def unregister_structure(name: str) -> None:
    """Remove a registered kind (tests and plug-ins that registered one for a while)."""
    _KINDS.unregister(name)


def structure_kinds() -> tuple[StructureKind, ...]:
    """Every registered kind, in registration order (heads, ffn, layers, then plug-ins)."""
    return _KINDS.values()


def structure_names() -> tuple[str, ...]:
    return _KINDS.names()


def structure_kind(name: str) -> StructureKind:
    """The kind called `name`; ValueError naming the known ones otherwise."""
    return _KINDS.get(name)


def shape_order() -> tuple[StructureKind, ...]:
    """Registered kinds with whole-layer kinds first (the order shape maps are applied in)."""
    return tuple(sorted(_KINDS.values(), key=lambda k: not k.depth))


# The built-in kinds, one registration each. Their modules are imported on first use: torch, and
# the family adapters, load only when a model is handled (see the module doc).
def _heads() -> ModuleType:
    from raykd.structures import heads  # deferred: torch

    return heads


def _ffn() -> ModuleType:
    from raykd.structures import ffn  # deferred: torch

    return ffn


def _layers() -> ModuleType:
    from raykd.structures import layers  # deferred: torch

    return layers


HEADS = register_structure(StructureKind(
    name="heads", unit="heads", short="H", count_key="heads", shape_key="head_map", p_min="p_min", p_max="p_max",
    sizes=lambda m: _heads().head_counts(m), shape_of=lambda m: _heads().head_map(m),
    apply_shape=lambda m, kept: _heads().apply_head_map(m, kept), remove=lambda m, sel: _heads().prune_heads(m, sel),
    blocks=lambda m: _heads().find_attention_blocks(m), block_size=lambda b: b.num_heads, block_floor=lambda b: b.min_heads,
    floor_field="min_heads_per_block"))

FFN = register_structure(StructureKind(
    name="ffn", unit="FFN channels", short="F", count_key="ffn_channels", shape_key="ffn_map", p_min="ffn_p_min", p_max="ffn_p_max",
    sizes=lambda m: _ffn().ffn_widths(m), shape_of=lambda m: _ffn().ffn_map(m),
    apply_shape=lambda m, kept: _ffn().apply_ffn_map(m, kept), remove=lambda m, sel: _ffn().prune_ffn(m, sel),
    blocks=lambda m: _ffn().find_ffn_blocks(m), block_size=lambda b: b.width, floor_field="min_ffn_per_block"))

LAYERS = register_structure(StructureKind(
    name="layers", unit="layers", short="L", count_key="layers", shape_key="layer_map", p_min="layer_p_min", p_max="layer_p_max",
    sizes=lambda m: _layers().layer_counts(m), shape_of=lambda m: _layers().layer_map(m),
    apply_shape=lambda m, kept: _layers().apply_layer_map(m, kept),
    remove=lambda m, sel: _layers().drop_layers(m, {k: v for k, v in sel.items() if v}),
    start_round_field="layer_start_round", depth=True))

"""The latency table's side of each structure kind: what it times, and how it prices a shape.

`raykd.structures.registry` says what a kind is (where its units live, how to count and remove
them); the structures layer may not import measurement, so what the latency table does with a kind
is registered here, under the same name (as `raykd.method.importance.registry` does for
importance). The table's builder (`raykd.measure.latency.build`), its mixed calibration shapes
(`raykd.measure.latency.variants.mixed_variant`) and its predictor
(`raykd.measure.latency.predictor`) iterate over this registry and never name a kind. Heads, FFN
channels and layers are registered by `raykd.measure.latency.kinds` when this package is imported;
the hidden-size kind by `register_hidden_latency()` (`raykd.measure.latency.hidden`), on request.

Each registered kind is one component of the calibration: one fitted factor per kind name.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from raykd.errors import ConfigError
from raykd.registry import Refusal, Registry
from raykd.structures.registry import structure_kind, structure_names

if TYPE_CHECKING:
    from torch import nn

Fit = Callable[["nn.Module", Mapping[str, float], float], "tuple[dict[str, Any], dict[str, Any]]"]
"""(dense model, ms of every timed variant by name, dense ms) -> (the kind's table entry, notes for the table's meta)."""
Price = Callable[[Any, Any, Mapping[str, int]], list[float]]
"""(table, the model's sizes in this kind or None, layers dropped per stack) -> ms saved, in the order subtracted."""


@dataclass(frozen=True)
class KindLatency:
    """What the latency table does with one structure kind.

    A kind's entry in a table is `fields` (built-in kinds: top-level fields of `LatencyTable`, as in
    table format 3, so users' cached tables stay valid) or, for a plug-in kind, `table.kinds[name]`
    (JSON values). Variant names start with the block kind they cut ("encoder_ffn/w64"), unique
    across kinds."""

    name: str  # the structure kind's name (`raykd.structures.registry`); also the calibration component
    check: Callable[[nn.Module], None]  # ConfigError unless the dense model is unpruned in this kind
    variants: Callable[[nn.Module], dict[str, nn.Module | None]]  # uniform variants to time (None: cannot be built)
    fit: Fit
    price: Price
    mix: Callable[[nn.Module, random.Random, Any], None]  # cut the kind in place, as a chain might (mixed shapes)
    draw_level: Callable[[random.Random], Any] | None = None  # drawn for a mixed shape before any kind is cut
    dropped: Callable[[Any, Any], dict[str, int]] | None = None  # whole-layer kinds: {stack: layers dropped}
    sizes: Callable[[nn.Module], Any] | None = None  # the model's shape in this kind (None: the structure kind's `sizes`)
    fields: tuple[str, ...] = ()  # the `LatencyTable` fields that hold a built-in kind's entry

    def sizes_of(self, model: nn.Module) -> Any:
        return (self.sizes or structure_kind(self.name).sizes)(model)

    @property
    def depth(self) -> bool:
        return self.dropped is not None


def _structure_known(entry: KindLatency) -> None:
    if entry.name not in structure_names():
        raise ValueError(f"no structure kind {entry.name!r} is registered (raykd.structures.registry): register it first")


_LATENCY: Registry[KindLatency] = Registry(
    "latency", check=_structure_known,
    unknown=Refusal(ConfigError, "structure kind {name!r} has no latency registered: a latency table cannot time or price it"),
    missing=Refusal(KeyError, "no latency is registered for structure kind {name!r}"),
    duplicate=Refusal(ValueError, "the latency of structure kind {name!r} is already registered"))


def register_latency(entry: KindLatency) -> KindLatency:
    """Register what the table does with kind `entry.name` (ValueError when it already is, or when
    no structure kind of that name is registered)."""
    return _LATENCY.register(entry.name, entry)


def unregister_latency(name: str) -> None:
    _LATENCY.unregister(name)


def latency_kinds() -> tuple[KindLatency, ...]:
    """Every registered kind, in registration order (the order variants are timed and mixed shapes drawn)."""
    return _LATENCY.values()


def latency_names() -> tuple[str, ...]:
    """The registered kinds' names: the calibration's components, in order."""
    return _LATENCY.names()


def latency_of(name: str) -> KindLatency:
    """What the table does with kind `name`; ConfigError when nothing registered it."""
    return _LATENCY.get(name)


def pricing_order() -> tuple[KindLatency, ...]:
    """Registered kinds with whole-layer kinds first: the other kinds are counted over the layers
    that remain (the order a shape's savings are subtracted in)."""
    return tuple(sorted(_LATENCY.values(), key=lambda k: not k.depth))


def component_order(names: Any) -> list[str]:
    """`names` in registration order; names no registered kind has come last, sorted."""
    names = set(names)
    known = [n for n in _LATENCY if n in names]
    return known + sorted(names - set(known))

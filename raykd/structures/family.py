"""What an architecture family registers, and the one registry every structure consults.

A family (BERT-style encoders, Llama-layout decoders, raykd's own decoder, ...) says in one
`Family` where each prunable structure lives in its models: for each structure name ("heads",
"ffn", "layers", or a kind added later) the adapters that find and reshape it, and the families'
human "supports" text that raykd names when it refuses a model. The families themselves are the
modules of `raykd.structures.families`, one file each (docs/structures.md, "How to add a family").

This module is the registry they fill and that `heads`, `ffn`, `layers`, `coverage` and
`hf_export` read. The family modules import those structure modules (for the adapter base
classes), so the structure modules reach the families only through this leaf, which imports
nothing of raykd but the foundation `raykd.registry` (the generic `Registry` it keeps the families
in, in order): the built-in family modules are loaded on first use of the registry, by name,
the way plug-ins are (`_load_builtin`). A module-level import of them here would be the cycle the
import-linter contract `acyclic` forbids; loading them by name keeps this module free of torch
and the structure modules free of any list of families.
"""

from __future__ import annotations

import dataclasses
import importlib
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from raykd.registry import Refusal, Registry

StockConfig = Callable[[Any], dict[str, Any]]  # (model) -> stock Transformers config fields
BUILTIN_FAMILIES = "raykd.structures.families"
"""The package whose modules are the built-in families (each registers itself on import)."""


@dataclass(frozen=True)
class Family:
    """One architecture family: where each structure lives in its models.

    `structures` maps a structure name to that family's adapters for it, asked in order: heads ->
    `raykd.structures.heads.HeadAdapter`s, ffn -> `raykd.structures.ffn.FFNAdapter`s, layers ->
    `raykd.structures.layers.LayerAdapter`s. Each adapter has `match(module)` and a `supports`
    text (what it recognises, for refusal messages). `stock_config` gives the stock Transformers
    config fields of a pruned model of the family (`raykd.structures.hf_export`), None when the
    family has no stock config.
    """

    name: str  # short and unique, e.g. "llama"
    supports: str  # the family as people name it, e.g. "Llama/Mistral/Qwen2/Qwen3/SmolLM2"
    structures: Mapping[str, tuple[Any, ...]] = field(default_factory=dict)
    stock_config: StockConfig | None = None

    def __post_init__(self) -> None:
        if not self.name or not self.name.replace("-", "_").isidentifier():
            raise ValueError(f"a family's name must be a short identifier, got {self.name!r}")
        if not isinstance(self.supports, str) or not self.supports.strip():
            raise ValueError(f"family {self.name!r}: `supports` must name what it covers")
        structures: dict[str, tuple[Any, ...]] = {}
        for structure, adapters in dict(self.structures).items():
            adapters = tuple(adapters)
            for adapter in adapters:
                if not callable(getattr(adapter, "match", None)) or not isinstance(getattr(adapter, "supports", None), str):
                    raise ValueError(f"family {self.name!r}, {structure}: {adapter!r} is not an adapter "
                                     f"(it needs a `match(module)` method and a `supports` text)")
            structures[structure] = adapters
        object.__setattr__(self, "structures", structures)

    def adapters(self, structure: str) -> tuple[Any, ...]:
        """This family's adapters for `structure` (empty when it has none)."""
        return self.structures.get(structure, ())


_FAMILIES: Registry[Family] = Registry(
    "family",
    unknown=Refusal(ValueError, "no family named {name!r} is registered (registered: {known})"),
    duplicate=Refusal(ValueError, "a family named {name!r} is already registered"))
_builtin_loaded = False
_loading = threading.RLock()  # another thread waits until every built-in family is registered


def _load_builtin() -> None:
    """Import the built-in family modules once, before the registry is first read or changed."""
    global _builtin_loaded
    with _loading:
        if not _builtin_loaded:
            _builtin_loaded = True  # first: the family modules call register_family while importing
            try:
                importlib.import_module(BUILTIN_FAMILIES)
            except BaseException:
                _builtin_loaded = False  # the next use raises again rather than reading a partial registry
                raise


def register_family(family: Family, *, first: bool = False) -> Family:
    """Add `family` (asked after those registered before it; `first`: before them). A name may be
    registered once."""
    _load_builtin()
    if not isinstance(family, Family):
        raise TypeError(f"register_family takes a Family, got {type(family).__name__}")
    return _FAMILIES.register(family.name, family, first=first)


def unregister_family(name: str) -> Family:
    """Remove the family called `name` and return it (tests, and plug-ins that replace one)."""
    _load_builtin()
    return _FAMILIES.unregister(name)


def add_adapters(name: str, structure: str, *adapters: Any) -> Family:
    """Give the registered family `name` adapters for one more `structure`: a structure kind that
    comes later registers where it lives in existing families from its own module."""
    _load_builtin()
    family = _FAMILIES.get(name)
    structures = {**family.structures, structure: (*family.adapters(structure), *adapters)}
    return _FAMILIES.replace(name, dataclasses.replace(family, structures=structures))


def registered_families() -> tuple[Family, ...]:
    """Every registered family, in the order they are asked."""
    _load_builtin()
    return _FAMILIES.values()


def adapters_for(structure: str) -> tuple[Any, ...]:
    """Every family's adapters for `structure`, family by family (the first that matches wins)."""
    _load_builtin()
    return tuple(adapter for family in _FAMILIES.values() for adapter in family.adapters(structure))


def family_of(model: Any, structure: str = "layers") -> Family | None:
    """The first family one of whose `structure` adapters matches a module of `model`."""
    modules = list(model.modules())
    for family in registered_families():
        if any(adapter.match(m) for adapter in family.adapters(structure) for m in modules):
            return family
    return None


# --- matching transformers classes by name (no transformers import needed) ------------------------


def transformers_classes(prefixes: Mapping[str, str], suffix: str) -> frozenset[tuple[str, str]]:
    """(module, class name) of each `<Prefix><suffix>` class of transformers, e.g. suffix "Layer";
    `prefixes` maps a transformers model module name to its class prefix ({"bert": "Bert"})."""
    return frozenset((f"transformers.models.{m}.modeling_{m}", f"{p}{suffix}") for m, p in prefixes.items())


def class_in(cls: type, names: frozenset[tuple[str, str]] | set[tuple[str, str]]) -> bool:
    """Whether `cls` or a base class is one of `names` (subclasses match too)."""
    return any((c.__module__, c.__name__) in names for c in cls.__mro__)

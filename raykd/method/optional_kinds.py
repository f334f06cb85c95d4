"""Optional structure kinds, activated by use: a config, a space or a saved model that names one
registers it, one that does not leaves raykd exactly as it is.

Why. Registering a structure kind changes what every run writes: its map in every saved shape, its
settings in every config and record, its variants in every latency table (and so the table cache's
key). A kind that not every user wants (today: "hidden", the embedding-channel width,
`raykd.structures.hidden`) is therefore not registered at import; it is registered, all its sides
at once (structure, importance, latency), by the first input that mentions it:

- a chain setting or space parameter of its own (`hidden_p_max`, `hidden_p_min`,
  `hidden_p_min_fraction`): `activate_for_settings`, called where chain settings and spaces are
  parsed (`raykd chain/cv/reproduce`'s config, `parse_space`, a trial's chain config on a Ray worker,
  which starts without the registration);
- its shape key in a saved model's config.json (`hidden_map`): `activate_for_model_dir`, called
  before a command loads a model, so a pruned model evaluates, exports and prunes further in a
  fresh process.

Only the fixed table below can activate code: a config or space chooses a kind by one of the exact
names listed here, never by an import path (data never picks code to import). A near miss
(`hidden_p_mx`) activates nothing and stays an unknown chain setting. Layer: `method`, the lowest
one that may import all three sides (the latency side lives in `measure`, importance in `method`).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

from raykd.errors import ConfigError
from raykd.structures.registry import structure_names


@dataclass(frozen=True)
class OptionalKind:
    """One structure kind that is registered only when an input names it."""

    name: str  # the structure kind's name (`raykd.structures.registry`)
    settings: frozenset[str]  # chain settings and space parameters that name it (exact names)
    shape_key: str  # its map in a saved model's config.json
    register: Callable[[], None]  # registers every side (idempotent)
    unregister: Callable[[], None]  # removes every side that is registered (tests; a plug-in done with it)

    def __post_init__(self) -> None:
        if not self.settings:
            raise ValueError(f"optional kind {self.name!r}: no setting names it")


def _register_hidden() -> None:
    # deferred: torch and transformers, only once an input names the hidden size
    from raykd.measure.latency.hidden import register_hidden_latency
    from raykd.method.importance.hidden import register_hidden_importance

    register_hidden_latency()  # registers the structure kind first, then its latency
    register_hidden_importance()


def _unregister_hidden() -> None:
    from raykd.measure.latency.registry import latency_names, unregister_latency
    from raykd.method.importance.registry import importance_of, unregister_importance
    from raykd.structures.registry import unregister_structure

    if "hidden" in latency_names():
        unregister_latency("hidden")
    try:
        importance_of("hidden")
    except ConfigError:  # its importance is not registered
        pass
    else:
        unregister_importance("hidden")
    if "hidden" in structure_names():
        unregister_structure("hidden")


OPTIONAL_KINDS: Mapping[str, OptionalKind] = MappingProxyType({
    "hidden": OptionalKind(
        "hidden", frozenset({"hidden_p_min", "hidden_p_max", "hidden_p_min_fraction"}), "hidden_map",
        _register_hidden, _unregister_hidden),
})
"""Every optional kind raykd has: fixed in code, never extended from data."""


def is_active(name: str) -> bool:
    """Whether optional kind `name` is registered (its structure side: the others follow it)."""
    return name in structure_names()


def activate(name: str) -> OptionalKind:
    """Register every side of optional kind `name` (idempotent). KeyError for a name not in the table."""
    kind = OPTIONAL_KINDS[name]
    kind.register()
    return kind


def deactivate(name: str) -> None:
    """Unregister every side of optional kind `name` that is registered (tests clean up with it)."""
    OPTIONAL_KINDS[name].unregister()


def kinds_named_by(settings: Iterable[Any]) -> tuple[str, ...]:
    """The optional kinds, in table order, that any of `settings` (names) names exactly."""
    given = {s for s in settings if isinstance(s, str)}
    return tuple(k.name for k in OPTIONAL_KINDS.values() if k.settings & given)


def activate_for_settings(settings: Iterable[Any]) -> tuple[str, ...]:
    """Activate the optional kinds that chain settings or space parameters (a mapping's keys, or
    names) name; returns their names (empty: nothing registered, nothing changed)."""
    names = kinds_named_by(settings)
    for name in names:
        activate(name)
    return names


def activate_for_shape(config: Mapping[str, Any]) -> tuple[str, ...]:
    """Activate the optional kinds whose shape map a saved model's config (config.json) holds."""
    names = tuple(k.name for k in OPTIONAL_KINDS.values() if config.get(k.shape_key))
    for name in names:
        activate(name)
    return names


def activate_for_model_dir(directory: str | Path) -> tuple[str, ...]:
    """`activate_for_shape` of the config.json in `directory`, before a loader builds the model. A
    missing or unreadable config activates nothing: the loader reports it, with its own words."""
    path = Path(directory) / "config.json"
    try:
        config = json.loads(path.read_text())
    except (OSError, ValueError, RecursionError):
        return ()
    return activate_for_shape(config) if isinstance(config, dict) else ()

"""Refuse a model raykd would prune only in part.

Adapters recognise the families they know; anything else is invisible to them, so without this
check an unknown attention block, MLP or layer stack would train fine and silently never be
pruned. `check_supported` looks for modules that *look like* a structure (by class name: an
`...Attention`/`...Attn` module, an `...MLP`/`...FeedForward`/`...FFN` module, a ModuleList of
`...Layer`/`...Block` modules) that no adapter covers (a module inside or around a matched block
counts as covered) and raises one `UnsupportedModelError` line naming the module's class, where it
is, and the supported families.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from torch import nn

from raykd.errors import RaykdInputError
from raykd.structures.registry import structure_names

STRUCTURES: tuple[str, ...] = structure_names()
"""The built-in kinds (heads, ffn, layers), fixed at import; a plug-in kind is checked by name too."""
_LOOKS_LIKE = {
    "heads": re.compile(r"(Attention|Attn)$"),
    "ffn": re.compile(r"(MLP|FeedForward|FFN|Intermediate)$"),
}
_LAYER_CLASS = re.compile(r"(Layer|Block)$")


class UnsupportedModelError(RaykdInputError):
    """A model with a structure of a family no adapter knows."""


def _covered(model: nn.Module, matched: Iterable[nn.Module]) -> set[int]:
    """Ids of every module inside a matched module, and of every module that contains one."""
    out: set[int] = set()
    matched = list(matched)
    for m in matched:
        out.update(id(sub) for sub in m.modules())
    inside = {id(m) for m in matched}
    for _name, module in model.named_modules():
        if any(id(sub) in inside for sub in module.modules()):
            out.add(id(module))
    return out


def _supported(structure: str) -> str:
    """What the registered families cover for `structure`, as their adapters say it."""
    from raykd.structures.family import adapters_for

    return "; ".join(a.supports for a in adapters_for(structure))


def check_supported(model: nn.Module, structures: Iterable[str] = STRUCTURES) -> None:
    """UnsupportedModelError when some module of a requested structure is of an unknown family."""
    from raykd.structures.ffn import find_ffn_blocks
    from raykd.structures.heads import registered_adapters
    from raykd.structures.layers import find_layer_stacks
    from raykd.structures.matching import match_modules

    wanted = list(structures)
    known = structure_names()
    unknown = sorted(set(wanted) - set(known))
    if unknown:
        raise ValueError(f"unknown structures {unknown} (known: {', '.join(known)})")
    matched = {
        "heads": [m for _k, _l, _n, m, _a in match_modules(model, registered_adapters())],
        "ffn": [b.module for b in find_ffn_blocks(model)],
    }
    for structure in ("heads", "ffn"):
        if structure not in wanted:
            continue
        covered = _covered(model, matched[structure])
        for name, module in model.named_modules():
            cls = type(module).__name__
            if _LOOKS_LIKE[structure].search(cls) and id(module) not in covered and any(True for _ in module.parameters()):
                raise UnsupportedModelError(
                    f"{cls} at {name!r} is {'an attention block' if structure == 'heads' else 'a feed-forward block'} "
                    f"of a family raykd has no adapter for, so it would never be pruned (supported: {_supported(structure)})")
    if "layers" in wanted:
        stacks = {id(s) for s in find_layer_stacks(model).values()}
        for name, module in model.named_modules():
            if isinstance(module, nn.ModuleList) and len(module) and id(module) not in stacks:
                classes = {type(m).__name__ for m in module}
                if len(classes) == 1 and _LAYER_CLASS.search(next(iter(classes))):
                    raise UnsupportedModelError(
                        f"the layer stack {name!r} holds {next(iter(classes))} layers, a family raykd has no adapter for "
                        f"(supported: {_supported('layers')})")

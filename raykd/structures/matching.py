"""The one way raykd finds structures: ask each adapter about each module, in module order."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator, Sequence
from typing import Any

from torch import nn


def match_modules(model: nn.Module, adapters: Sequence[Any]) -> Iterator[tuple[str, int, str, nn.Module, Any]]:
    """(kind, layer, name, module, adapter) for every module some adapter recognises (the first
    adapter that does wins); `layer` counts per kind from 0 in `model.named_modules()` order."""
    counters: dict[str, int] = defaultdict(int)
    for name, module in model.named_modules():
        for adapter in adapters:
            kind = adapter.match(module)
            if kind is not None:
                yield kind, counters[kind], name, module, adapter
                counters[kind] += 1
                break

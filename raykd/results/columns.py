"""The results columns each registered structure kind contributes, read from the registry.

A kind (`raykd.structures.registry.StructureKind`) is counted in a trial row by its final and
original totals (`<count_key>_total`, `<count_key>_original`), in a round of `rounds_json` by its
total, and before training by its forecast (`forecast_<count_key>_total`). Functions, not constants:
a kind registered after import (a plug-in, a test) joins at the next call. The built-in kinds give
exactly the names older sweeps hold (heads_total, ffn_channels_original, forecast_heads_total, ...),
so those load as they did.
"""

from __future__ import annotations

from raykd.structures.registry import shape_order, structure_kinds


def count_columns() -> tuple[str, ...]:
    """Every kind's final and original total (integers), in registration order."""
    return tuple(c for k in structure_kinds() for c in (k.total_key, k.original_key))


def total_columns() -> tuple[str, ...]:
    """Every kind's total, whole-layer kinds first (the order a compact shape reads: "4L·38H·3072F")."""
    return tuple(k.total_key for k in shape_order())


def original_columns() -> tuple[str, ...]:
    """Every kind's original total, in the order of `total_columns`."""
    return tuple(k.original_key for k in shape_order())


def forecast_columns() -> tuple[str, ...]:
    """Every kind's forecast final total (integers), in registration order."""
    return tuple(k.forecast_key for k in structure_kinds())


def kind_int_columns() -> tuple[str, ...]:
    """Every integer column the registered kinds contribute to a trial row."""
    return count_columns() + forecast_columns()


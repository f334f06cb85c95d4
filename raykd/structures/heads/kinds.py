"""The attention kinds raykd scores and prunes separately.

A model with N encoder layers and N decoder layers has 3N attention blocks: N of each kind. Layers
are numbered per kind, 0-based, in module order (`model.named_modules()`).
"""

from __future__ import annotations

from typing import Literal

Kind = Literal["encoder_self", "decoder_self", "decoder_cross"]

ENCODER_SELF: Kind = "encoder_self"
DECODER_SELF: Kind = "decoder_self"
DECODER_CROSS: Kind = "decoder_cross"

#: All kinds, in the canonical order used for reports and head maps.
KINDS: tuple[Kind, ...] = (ENCODER_SELF, DECODER_SELF, DECODER_CROSS)


def check_kind(kind: str) -> Kind:
    """`kind` itself if it is one of `KINDS`, else ValueError."""
    if kind not in KINDS:
        raise ValueError(f"unknown attention kind {kind!r} (known: {', '.join(KINDS)})")
    return kind  # type: ignore[return-value]

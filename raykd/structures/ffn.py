"""FFN channels: the intermediate units of every feed-forward block, removable per layer.

Channel c of a block owns row c (and bias entry c) of its input projections (hidden -> width: one
in BERT, gate and up in a SwiGLU MLP) and column c of its output projection (width -> hidden).
Everything between them is elementwise, so removing a channel is slicing them all, and the block then computes exactly what it computed with that column of
the second projection zeroed (`zero_ffn`, the baseline the equivalence tests compare against). A
block may lose every channel: it then yields the second projection's bias. The original indices
of the channels present are kept on the block (`channel_ids`) so a shape can be saved and a
student matched to its teacher.

Blocks are numbered per kind ("encoder_ffn", "decoder_ffn"), 0-based, in module order; after a
layer is dropped (`raykd.structures.layers`) the numbering is over the layers that remain.

Adapters (`FFNAdapter`) are registered by the architecture families (`raykd.structures.families`):
BERT-family layers (`*Layer.intermediate.dense` / `*Layer.output.dense`), Llama-layout gated MLPs
(`gate_proj`, `up_proj` -> `down_proj`) and raykd's `raykd.nn.FeedForward` (the solver's decoder).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import ClassVar

import torch
from torch import nn

from raykd.errors import ModelFormatError
from raykd.structures.family import adapters_for
from raykd.structures.heads.base import slice_linear
from raykd.structures.matching import match_modules

FFN_KINDS: tuple[str, ...] = ("encoder_ffn", "decoder_ffn")
CHANNEL_IDS = "channel_ids"

FFNSpec = Mapping[str, Mapping[int, Iterable[int]]]
FFNMap = dict[str, list[list[int]]]


class FFNAdapter(ABC):
    """One architecture family's feed-forward blocks (registered in its `Family`, under "ffn")."""

    family: ClassVar[str] = ""
    supports: ClassVar[str] = ""

    @abstractmethod
    def match(self, module: nn.Module) -> str | None:
        """The FFN kind if `module` owns a feed-forward block of this family, else None."""

    @abstractmethod
    def linears(self, module: nn.Module) -> tuple[nn.Linear, nn.Linear]:
        """(up: hidden -> width, down: width -> hidden)."""

    def inputs(self, module: nn.Module) -> tuple[nn.Linear, ...]:
        """Every hidden -> width projection (their rows are the channels): `up` alone by default,
        (gate, up) for a gated MLP."""
        return (self.linears(module)[0],)

    def set_width(self, module: nn.Module, width: int) -> None:
        """Update the module's own width bookkeeping after slicing (nothing by default)."""


@dataclass(frozen=True)
class FFNBlock:
    """One feed-forward block; the accessors read the live module (valid across pruning)."""

    kind: str
    layer: int
    name: str
    module: nn.Module = field(repr=False, compare=False)
    adapter: FFNAdapter = field(repr=False, compare=False)

    @property
    def up(self) -> nn.Linear:
        return self.adapter.linears(self.module)[0]

    @property
    def down(self) -> nn.Linear:
        return self.adapter.linears(self.module)[1]

    @property
    def inputs(self) -> tuple[nn.Linear, ...]:
        return self.adapter.inputs(self.module)

    @property
    def width(self) -> int:
        return int(self.up.out_features)

    @property
    def channel_ids(self) -> list[int]:
        ids = getattr(self.module, CHANNEL_IDS, None)
        return list(range(self.width)) if ids is None else [int(i) for i in ids]

    def channel_params(self, position: int) -> dict[str, torch.Tensor]:
        """Views of what channel `position` owns: "up" row, "up_bias", "down" column (and "gate",
        "gate_bias" in a gated MLP)."""
        if not 0 <= position < self.width:
            raise ValueError(f"channel {position} out of range (block has {self.width})")
        out = {"down": self.down.weight[:, position]}
        names = ("up",) if len(self.inputs) == 1 else ("gate", "up")
        for name, lin in zip(names, self.inputs):
            out[name] = lin.weight[position]
            if lin.bias is not None:
                out[f"{name}_bias"] = lin.bias[position]
        return out


def find_ffn_blocks(model: nn.Module) -> list[FFNBlock]:
    """Every feed-forward block raykd can prune, in module order, numbered per kind (may be [])."""
    return [FFNBlock(*found) for found in match_modules(model, adapters_for("ffn"))]


def ffn_blocks_by_kind(model: nn.Module) -> dict[str, list[FFNBlock]]:
    out: dict[str, list[FFNBlock]] = {}
    for block in find_ffn_blocks(model):
        out.setdefault(block.kind, []).append(block)
    return {k: out[k] for k in FFN_KINDS if k in out}


def ffn_widths(model: nn.Module) -> dict[str, list[int]]:
    """{kind: [channels per layer]}."""
    return {k: [b.width for b in bs] for k, bs in ffn_blocks_by_kind(model).items()}


def ffn_map(model: nn.Module) -> FFNMap:
    """{kind: [[original ids of the channels kept] per layer]} (JSON-serialisable)."""
    return {k: [b.channel_ids for b in bs] for k, bs in ffn_blocks_by_kind(model).items()}


def _keep(block: FFNBlock, keep: list[int]) -> None:
    """Keep channels at positions `keep` (sorted, unique): slice up's rows and down's columns."""
    ids = block.channel_ids
    index = torch.tensor(keep, dtype=torch.long)
    for lin in block.inputs:
        slice_linear(lin, index, dim=0)
    slice_linear(block.down, index, dim=1)
    block.adapter.set_width(block.module, len(keep))
    setattr(block.module, CHANNEL_IDS, [ids[i] for i in keep])


def _resolve(blocks: dict[str, list[FFNBlock]], spec: FFNSpec) -> dict[tuple[str, int], list[int]]:
    out: dict[tuple[str, int], list[int]] = {}
    for kind, layers in spec.items():
        if kind not in blocks:
            raise ValueError(f"model has no {kind} blocks (it has: {', '.join(blocks) or 'none'})")
        for layer, channels in layers.items():
            layer = int(layer)
            if not 0 <= layer < len(blocks[kind]):
                raise ValueError(f"{kind} layer {layer} out of range (model has {len(blocks[kind])})")
            width = blocks[kind][layer].width
            chosen = sorted({int(c) for c in channels})
            bad = [c for c in chosen if not 0 <= c < width]
            if bad:
                raise ValueError(f"{kind} layer {layer} has {width} channels; positions {bad[:5]} out of range")
            out[(kind, layer)] = sorted(set(chosen) | set(out.get((kind, layer), [])))
    return out


def prune_ffn(model: nn.Module, channels: FFNSpec) -> FFNMap:
    """Remove `channels` ({kind: {layer: positions}}) physically; return the new FFN map.
    New Parameters keep dtype, device and requires_grad (rebuild optimizers afterwards)."""
    blocks = ffn_blocks_by_kind(model)
    for (kind, layer), remove in _resolve(blocks, channels).items():
        if remove:
            block = blocks[kind][layer]
            drop = set(remove)
            _keep(block, [c for c in range(block.width) if c not in drop])
    return ffn_map(model)


def zero_ffn(model: nn.Module, channels: FFNSpec) -> None:
    """Zero the contribution of `channels` (their columns of the second projection) in place."""
    blocks = ffn_blocks_by_kind(model)
    for (kind, layer), zero in _resolve(blocks, channels).items():
        if zero:
            down = blocks[kind][layer].down
            with torch.no_grad():
                down.weight[:, torch.tensor(zero, dtype=torch.long, device=down.weight.device)] = 0


def apply_ffn_map(model: nn.Module, kept: Mapping[str, list[list[int]]]) -> nn.Module:
    """Shrink a freshly built `model` to the kept channel ids of `kept` (before loading weights).
    A kind the map does not name stays as built; ModelFormatError when the map does not fit."""
    blocks = ffn_blocks_by_kind(model)
    if not isinstance(kept, Mapping):
        raise ModelFormatError(f"FFN map must be a mapping kind -> layers, got {type(kept).__name__}")
    plan = []
    for kind, layers in kept.items():
        if kind not in blocks:
            raise ModelFormatError(f"FFN map names {kind} blocks, but the model has {sorted(blocks) or 'none'}")
        if not isinstance(layers, list) or len(layers) != len(blocks[kind]):
            raise ModelFormatError(f"FFN map has {len(layers) if isinstance(layers, list) else '?'} {kind} layers, "
                                   f"the model has {len(blocks[kind])}")
        for layer, (ids, block) in enumerate(zip(layers, blocks[kind])):
            present = {c: i for i, c in enumerate(block.channel_ids)}
            try:
                keep = [present[int(c)] for c in ids]
            except (KeyError, TypeError, ValueError):
                raise ModelFormatError(f"FFN map {kind} layer {layer} keeps channels the model's block "
                                       f"({block.width} channels) does not have") from None
            if keep != sorted(set(keep)):
                raise ModelFormatError(f"FFN map {kind} layer {layer}: channel ids repeat or are out of order")
            if len(keep) != block.width:
                plan.append((block, keep))
    for block, keep in plan:
        _keep(block, keep)
    return model

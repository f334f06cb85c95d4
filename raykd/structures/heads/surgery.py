"""Find attention blocks in any model and remove heads physically.

Heads are addressed per kind and per layer (0-based within the kind, module order). A head spec
is `{kind: {layer: heads}}`; by default the heads are *current positions* (0..num_heads-1 in the
block as it is now), with `by="original"` they are original head ids (`AttentionBlock.head_ids`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Literal

from torch import nn

from raykd.errors import ModelFormatError, RaykdInputError
from raykd.structures.heads.base import AttentionBlock, registered_adapters
from raykd.structures.heads.kinds import KINDS, check_kind

HeadSpec = Mapping[str, Mapping[int, Iterable[int]]]
HeadMap = dict[str, list[list[int]]]
By = Literal["position", "original"]


def find_attention_blocks(model: nn.Module) -> list[AttentionBlock]:
    """Every attention block raykd can prune, in module order, numbered per kind.

    Raises RaykdInputError when there is none.
    """
    from raykd.structures.matching import match_modules

    adapters = registered_adapters()
    blocks = [AttentionBlock(*found) for found in match_modules(model, adapters)]
    if not blocks:
        supported = "; ".join(a.supports for a in adapters)
        raise RaykdInputError(
            f"model {type(model).__name__} has no attention heads raykd knows how to prune (supported: {supported})"
        )
    return blocks


def blocks_by_kind(model: nn.Module | list[AttentionBlock]) -> dict[str, list[AttentionBlock]]:
    """`find_attention_blocks` grouped by kind (kinds present only, in `KINDS` order)."""
    blocks = model if isinstance(model, list) else find_attention_blocks(model)
    out: dict[str, list[AttentionBlock]] = {}
    for kind in KINDS:
        of_kind = [b for b in blocks if b.kind == kind]
        if of_kind:
            out[kind] = of_kind
    return out


def head_counts(model: nn.Module) -> dict[str, list[int]]:
    """{kind: [number of heads per layer]}."""
    return {k: [b.num_heads for b in bs] for k, bs in blocks_by_kind(model).items()}


def head_map(model: nn.Module) -> HeadMap:
    """{kind: [[original ids of the heads kept] per layer]} (JSON-serialisable)."""
    return {k: [b.head_ids for b in bs] for k, bs in blocks_by_kind(model).items()}


def total_heads(model: nn.Module) -> int:
    return sum(sum(c) for c in head_counts(model).values())


def head_positions(current_ids: Iterable[int], wanted_ids: Iterable[int]) -> list[int]:
    """Positions, in a block whose heads are `current_ids`, of the heads `wanted_ids`.

    Use it to match a pruned student to its teacher: `teacher_map[:, head_positions(teacher_ids,
    student_ids)]` has the teacher's maps for exactly the student's heads, in the student's order.
    """
    index = {h: i for i, h in enumerate(current_ids)}
    out = []
    for h in wanted_ids:
        if h not in index:
            raise ValueError(f"head {h} is not among the present heads {list(index)}")
        out.append(index[h])
    return out


def _resolve(blocks: dict[str, list[AttentionBlock]], heads: HeadSpec, by: By) -> dict[tuple[str, int], list[int]]:
    """{(kind, layer): sorted unique current positions} from a head spec; ValueError if invalid."""
    if by not in ("position", "original"):
        raise ValueError(f"by must be 'position' or 'original', got {by!r}")
    out: dict[tuple[str, int], list[int]] = {}
    for kind, layers in heads.items():
        check_kind(kind)
        if kind not in blocks:
            raise ValueError(f"model has no {kind} attention (it has: {', '.join(blocks) or 'none'})")
        for layer, hs in layers.items():
            layer = int(layer)
            if not 0 <= layer < len(blocks[kind]):
                raise ValueError(f"{kind} layer {layer} out of range (model has {len(blocks[kind])})")
            block = blocks[kind][layer]
            hs = [int(h) for h in hs]
            if by == "original":
                hs = head_positions(block.head_ids, hs)
            bad = [h for h in hs if not 0 <= h < block.num_heads]
            if bad:
                raise ValueError(f"{kind} layer {layer} has {block.num_heads} heads; positions {bad} out of range")
            out[(kind, layer)] = sorted(set(hs) | set(out.get((kind, layer), [])))
    return out


def prune_heads(model: nn.Module, heads: HeadSpec, *, by: By = "position") -> HeadMap:
    """Remove `heads` ({kind: {layer: heads}}) physically; return the new head map.

    Slices Q/K/V output rows (and biases) and O input columns; the other parameters are untouched.
    New Parameters keep dtype, device and requires_grad (rebuild optimizers afterwards). A block can
    lose all its heads (it then contributes only O's bias). Can be repeated.
    """
    blocks = blocks_by_kind(model)
    for (kind, layer), remove in _resolve(blocks, heads, by).items():
        if not remove:
            continue
        block = blocks[kind][layer]
        drop = set(remove)
        block.adapter.prune(block.module, [h for h in range(block.num_heads) if h not in drop])
    return head_map(model)


def zero_heads(model: nn.Module, heads: HeadSpec, *, by: By = "position") -> None:
    """Zero the contribution of `heads` (their O input columns) without changing the structure.

    A baseline for tests and ablations: the model then computes exactly what the model with those
    heads pruned computes (up to float rounding).
    """
    blocks = blocks_by_kind(model)
    for (kind, layer), zero in _resolve(blocks, heads, by).items():
        if zero:
            block = blocks[kind][layer]
            block.adapter.zero(block.module, zero)


def apply_head_map(model: nn.Module, head_map: Mapping[str, list[list[int]]]) -> nn.Module:
    """Shrink `model` so each block has exactly the kept original head ids in `head_map`.

    Used on a freshly built model before loading pruned weights. The model must have the same
    kinds and layer counts, and each recorded layer's ids must be a subsequence of the block's
    present ids. Raises ModelFormatError otherwise. Returns `model`.
    """
    blocks = blocks_by_kind(model)
    if not isinstance(head_map, Mapping):
        raise ModelFormatError(f"head map must be a mapping kind -> layers, got {type(head_map).__name__}")
    unknown = [k for k in head_map if k not in KINDS]
    if unknown:
        raise ModelFormatError(f"head map has unknown attention kinds {unknown} (known: {', '.join(KINDS)})")
    if set(head_map) != set(blocks):
        raise ModelFormatError(
            f"head map covers kinds {sorted(head_map)} but the model has {sorted(blocks)}"
        )
    plan = []
    for kind, layers in head_map.items():
        if len(layers) != len(blocks[kind]):
            raise ModelFormatError(f"head map has {len(layers)} {kind} layers, the model has {len(blocks[kind])}")
        for layer, (ids, block) in enumerate(zip(layers, blocks[kind])):
            try:
                ids = [int(i) for i in ids]
            except (TypeError, ValueError):
                raise ModelFormatError(f"head map {kind} layer {layer}: not a list of head ids: {ids!r}") from None
            present = block.head_ids
            try:
                keep = head_positions(present, ids)
            except ValueError:
                raise ModelFormatError(
                    f"head map {kind} layer {layer} keeps heads {ids}, but the model's block has heads {present}"
                ) from None
            if keep != sorted(set(keep)):
                raise ModelFormatError(f"head map {kind} layer {layer}: head ids {ids} repeat or are out of order")
            if len(keep) != len(present):
                plan.append((block, keep))
    for block, keep in plan:
        block.adapter.prune(block.module, keep)
    return model

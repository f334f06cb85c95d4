"""What raykd needs to know about one architecture's attention: the adapter interface.

An adapter recognises attention blocks of one architecture family among a model's modules and
answers, for a matched block: where its Q/K/V/O projections are, how many heads it has, how wide
they are, and how to update the module's own bookkeeping once the projections were sliced. The
slicing itself is generic (`HeadAdapter.prune`): head h (current position) owns rows
[h*d, (h+1)*d) of Q (and of K/V through `kv_heads_for`) and the same columns of O.

Grouped-query attention (Llama, Qwen: K/V have fewer heads than Q): an adapter overrides
`num_kv_heads` and `kv_heads_for` (which K/V heads survive when a set of query heads is kept, and
a refusal when the kept groups would be uneven) and updates the module's group bookkeeping in
`set_heads`; `raykd.structures.heads.llama` is the one that does. See docs/structures.md.

An adapter is registered by its architecture family (`raykd.structures.families`), with the
family's FFN and layer adapters.
"""

from __future__ import annotations

import contextlib
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import ClassVar, NamedTuple

import torch
from torch import nn

from raykd.structures.family import Family, adapters_for, register_family, registered_families
from raykd.structures.heads.kinds import Kind


class Projections(NamedTuple):
    """The four Linear layers of one attention block."""

    q: nn.Linear
    k: nn.Linear
    v: nn.Linear
    o: nn.Linear


# record(block, probabilities (B, heads, Lq, Lk)) is called once per forward call of a block.
Recorder = Callable[["AttentionBlock", torch.Tensor], None]


class HeadAdapter(ABC):
    """One architecture family. Subclass, implement the abstract methods, `register_adapter()`."""

    #: Short family name, e.g. "bert".
    family: ClassVar[str] = ""
    #: Human-readable list of what this adapter supports (used in error messages).
    supports: ClassVar[str] = ""
    #: The fewest query heads a block may keep: 0 where a block with none still runs (its
    #: attention removed cleanly), 1 where the architecture cannot (drop the layer instead).
    min_heads: ClassVar[int] = 0

    # --- recognition -------------------------------------------------------------------------
    @abstractmethod
    def match(self, module: nn.Module) -> Kind | None:
        """The attention kind if `module` is an attention block of this family, else None."""

    # --- layout ------------------------------------------------------------------------------
    @abstractmethod
    def projections(self, module: nn.Module) -> Projections:
        """The block's Q, K, V and O Linear layers."""

    @abstractmethod
    def num_heads(self, module: nn.Module) -> int:
        """Number of query heads currently present."""

    @abstractmethod
    def head_dim(self, module: nn.Module) -> int:
        """Width of one head (the same for Q, K and V)."""

    def num_kv_heads(self, module: nn.Module) -> int:
        """Number of key/value heads (== num_heads except for grouped-query attention)."""
        return self.num_heads(module)

    def head_ids(self, module: nn.Module) -> list[int]:
        """Original indices of the query heads still present, in their current order."""
        ids = getattr(module, "head_ids", None)
        return list(range(self.num_heads(module))) if ids is None else [int(i) for i in ids]

    def kv_heads_for(self, module: nn.Module, keep: Sequence[int]) -> list[int]:
        """Positions of the K/V heads to keep when query heads `keep` (positions) are kept.

        Plain multi-head attention: the same heads. A GQA adapter returns the groups that still
        have a query head (and must make sure the kept groups stay uniform, or refuse).
        """
        if self.num_kv_heads(module) != self.num_heads(module):
            raise NotImplementedError(f"{type(self).__name__} does not implement grouped-query pruning")
        return list(keep)

    def kv_head_of(self, module: nn.Module, position: int) -> int:
        """Position of the K/V head that query head `position` reads (itself without GQA)."""
        groups = self.num_heads(module) // max(self.num_kv_heads(module), 1)
        return position // max(groups, 1)

    @abstractmethod
    def set_heads(self, module: nn.Module, head_ids: list[int], num_kv_heads: int) -> None:
        """Update the module's bookkeeping (head counts, widths, head_ids) after slicing.

        Called with `head_ids == []` when every head was removed: the module must then still run
        and contribute exactly what O's bias contributes (see the adapter docs).
        """

    # --- attention capture -------------------------------------------------------------------
    @abstractmethod
    def capture(self, model: nn.Module, blocks: Sequence[AttentionBlock], record: Recorder) -> contextlib.AbstractContextManager:
        """A context in which every forward call of each block in `blocks` (blocks of `model`) calls
        `record(block, probs)` with its attention probabilities (B, heads, Lq, Lk), before dropout,
        still attached to the autograd graph. The model's outputs must not change (beyond float
        rounding from a different but mathematically equal kernel)."""

    # --- surgery (generic) ---------------------------------------------------------------------
    def prune(self, module: nn.Module, keep: Sequence[int]) -> None:
        """Keep only query heads at positions `keep` (sorted, unique); remove the rest physically."""
        keep = list(keep)
        ids = self.head_ids(module)
        proj = self.projections(module)
        d = self.head_dim(module)
        kv_keep = self.kv_heads_for(module, keep)
        q_rows = head_rows(keep, d, proj.q.weight.device)
        kv_rows = head_rows(kv_keep, d, proj.k.weight.device)
        slice_linear(proj.q, q_rows, dim=0)
        slice_linear(proj.k, kv_rows, dim=0)
        slice_linear(proj.v, kv_rows.to(proj.v.weight.device), dim=0)
        slice_linear(proj.o, q_rows.to(proj.o.weight.device), dim=1)
        self.set_heads(module, [ids[i] for i in keep], len(kv_keep))

    def zero(self, module: nn.Module, heads: Sequence[int]) -> None:
        """Zero the contribution of query heads at positions `heads` (their O input columns)."""
        o = self.projections(module).o
        cols = head_rows(heads, self.head_dim(module), o.weight.device)
        with torch.no_grad():
            o.weight[:, cols] = 0


@dataclass(frozen=True)
class AttentionBlock:
    """One attention block of a model: its kind, per-kind layer index, module path and module.

    The accessors read the live module, so a block stays valid across `prune_heads`.
    """

    kind: Kind
    layer: int
    name: str
    module: nn.Module = field(repr=False, compare=False)
    adapter: HeadAdapter = field(repr=False, compare=False)

    @property
    def projections(self) -> Projections:
        return self.adapter.projections(self.module)

    @property
    def q(self) -> nn.Linear:
        return self.projections.q

    @property
    def k(self) -> nn.Linear:
        return self.projections.k

    @property
    def v(self) -> nn.Linear:
        return self.projections.v

    @property
    def o(self) -> nn.Linear:
        return self.projections.o

    @property
    def num_heads(self) -> int:
        return self.adapter.num_heads(self.module)

    @property
    def num_kv_heads(self) -> int:
        return self.adapter.num_kv_heads(self.module)

    @property
    def min_heads(self) -> int:
        return self.adapter.min_heads

    @property
    def head_dim(self) -> int:
        return self.adapter.head_dim(self.module)

    @property
    def head_ids(self) -> list[int]:
        return self.adapter.head_ids(self.module)

    def head_params(self, position: int) -> dict[str, torch.Tensor]:
        """Views of the weights head `position` owns: "q", "k", "v" (head_dim, in_features) output
        rows and "o" (out_features, head_dim) input columns; biases as "q_bias" etc. when present.
        Under GQA, k/v are the shared K/V head the query head reads."""
        if not 0 <= position < self.num_heads:
            raise ValueError(f"head position {position} out of range (block has {self.num_heads})")
        d = self.head_dim
        q, k, v, o = self.projections
        kv = self.adapter.kv_head_of(self.module, position)
        rows = {"q": (q, position), "k": (k, kv), "v": (v, kv)}
        out: dict[str, torch.Tensor] = {}
        for key, (lin, h) in rows.items():
            out[key] = lin.weight[h * d : (h + 1) * d]
            if lin.bias is not None:
                out[f"{key}_bias"] = lin.bias[h * d : (h + 1) * d]
        out["o"] = o.weight[:, position * d : (position + 1) * d]
        return out


# --- registry ----------------------------------------------------------------------------------
# Head adapters are registered by their architecture families (`raykd.structures.families`).


def register_adapter(adapter: HeadAdapter, *, first: bool = False) -> HeadAdapter:
    """Register a family that has attention heads only (named after `adapter.family`, or its
    class); a family with FFN channels or layers too registers a `Family` instead."""
    name = adapter.family or type(adapter).__name__
    if not any(f.name == name for f in registered_families()):
        register_family(Family(name=name, supports=adapter.supports, structures={"heads": (adapter,)}), first=first)
    return adapter


def registered_adapters() -> tuple[HeadAdapter, ...]:
    """Every registered family's head adapters, in the order they are asked."""
    return adapters_for("heads")


# --- helpers shared by adapters -------------------------------------------------------------------


def head_rows(heads: Sequence[int], head_dim: int, device: torch.device | None = None) -> torch.Tensor:
    """Row (or column) indices owned by `heads`: [h*d, (h+1)*d) for each h, in order."""
    if not heads:
        return torch.zeros(0, dtype=torch.long, device=device)
    h = torch.as_tensor(list(heads), dtype=torch.long, device=device)
    return (h[:, None] * head_dim + torch.arange(head_dim, device=device)[None, :]).reshape(-1)


def slice_linear(linear: nn.Linear, index: torch.Tensor, dim: int) -> None:
    """Keep `index` along output rows (dim=0, bias too) or input columns (dim=1) of `linear`.

    New Parameters are created (contiguous; dtype, device and requires_grad preserved): an
    optimizer built before pruning must be rebuilt.
    """
    with torch.no_grad():
        w = linear.weight
        linear.weight = nn.Parameter(w.index_select(dim, index.to(w.device)).contiguous(), requires_grad=w.requires_grad)
        if dim == 0:
            if linear.bias is not None:
                b = linear.bias
                linear.bias = nn.Parameter(b.index_select(0, index.to(b.device)).contiguous(), requires_grad=b.requires_grad)
            linear.out_features = int(index.numel())
        else:
            linear.in_features = int(index.numel())


@contextlib.contextmanager
def hooks_removed(handles: list) -> Iterator[None]:
    """Yield, then remove every hook handle in `handles` (even on error)."""
    try:
        yield
    finally:
        for h in handles:
            h.remove()

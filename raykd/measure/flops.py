"""Analytic FLOPs of one forward pass, with per-layer head counts.

Counted (a multiply-add is 2 FLOPs; biases, softmax, LayerNorm, activations, dropout, embeddings
and residual adds are not counted; they are O(tokens·width), not O(tokens·width²)):

* every `nn.Linear` in the model: 2 · in_features · out_features per token it is applied to;
* every attention block: QKᵀ and AV, 2 · Lq · Lk · heads · head_dim each, per sequence
  (the full Lq × Lk square, also for causal self-attention: dense kernels compute it).

Tokens per Linear (per batch element): Q and O of a block see Lq tokens, K and V see Lk, where
encoder_self: Lq = Lk = seq_len; decoder_self: Lq = Lk = decoder_len; decoder_cross: Lq =
decoder_len, Lk = seq_len. Other Linears: a module path containing a `pooler` component sees 1
token; a Linear under the same parent as a decoder block (e.g. `decoder.layers.0.ffn.0` next to
`decoder.layers.0.self_attn`) sees decoder_len tokens; every other Linear sees seq_len tokens.
A task overrides this with `linear_tokens(name, module) -> tokens per sequence | None`.

Each module is counted once per forward pass (a Linear applied twice must be declared through
`linear_tokens`). Matches `torch.utils.flop_counter.FlopCounterMode` exactly on a BERT forward with
eager attention; with SDPA on CPU, FlopCounterMode does not see the attention products.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass

from torch import nn

from raykd.errors import RaykdInputError
from raykd.structures.heads.kinds import DECODER_CROSS, DECODER_SELF, ENCODER_SELF


@dataclass(frozen=True)
class BlockFlops:
    kind: str
    layer: int
    name: str
    num_heads: int
    head_dim: int
    q_len: int
    k_len: int
    projections: int  # Q, K, V, O Linears
    products: int  # QKᵀ and AV


@dataclass(frozen=True)
class FlopsReport:
    """FLOPs of one forward pass over `batch` sequences."""

    batch: int
    seq_len: int
    decoder_len: int | None
    attention_projections: int
    attention_products: int
    other_linear: int
    blocks: tuple[BlockFlops, ...]

    @property
    def attention(self) -> int:
        return self.attention_projections + self.attention_products

    @property
    def total(self) -> int:
        return self.attention + self.other_linear

    def __int__(self) -> int:
        return self.total

    def to_dict(self) -> dict:
        d = asdict(self)
        d["blocks"] = [asdict(b) for b in self.blocks]
        d["attention"] = self.attention
        d["total"] = self.total
        return d


def _lengths(kind: str, seq_len: int, decoder_len: int | None) -> tuple[int, int]:
    if kind == ENCODER_SELF:
        return seq_len, seq_len
    if decoder_len is None:
        raise ValueError(f"the model has {kind} attention: give decoder_len")
    if kind == DECODER_SELF:
        return decoder_len, decoder_len
    if kind == DECODER_CROSS:
        return decoder_len, seq_len
    raise ValueError(f"unknown attention kind {kind!r}")


def flops(
    model: nn.Module,
    batch: int,
    seq_len: int,
    *,
    decoder_len: int | None = None,
    linear_tokens: Callable[[str, nn.Linear], int | None] | None = None,
) -> FlopsReport:
    """Analytic FLOPs of one forward pass of `model` on `batch` sequences (see module doc).

    `seq_len` is the encoder (or only) sequence length, `decoder_len` the target length for
    models with decoder attention. `linear_tokens(name, linear)` may return the number of tokens
    per sequence a non-attention Linear sees (None: the default rule).
    """
    from raykd.structures import find_attention_blocks

    try:
        blocks = find_attention_blocks(model)
    except RaykdInputError:
        blocks = []
    roles: dict[int, tuple[int, str]] = {}
    decoder_prefixes = []
    for i, b in enumerate(blocks):
        for role, lin in zip("qkvo", b.projections):
            roles[id(lin)] = (i, role)
        if b.kind != ENCODER_SELF and "." in b.name:
            decoder_prefixes.append(b.name.rsplit(".", 1)[0] + ".")
    lens = [_lengths(b.kind, seq_len, decoder_len) for b in blocks]
    proj = [0] * len(blocks)
    other = 0
    for name, module in model.named_modules():
        if not isinstance(module, nn.Linear):
            continue
        per_token = 2 * module.in_features * module.out_features
        if id(module) in roles:
            i, role = roles[id(module)]
            lq, lk = lens[i]
            proj[i] += per_token * batch * (lq if role in "qo" else lk)
            continue
        tokens = linear_tokens(name, module) if linear_tokens is not None else None
        if tokens is None:
            if "pooler" in name.split("."):
                tokens = 1
            elif any(name.startswith(p) for p in decoder_prefixes):
                if decoder_len is None:
                    raise ValueError("the model has decoder attention: give decoder_len")
                tokens = decoder_len
            else:
                tokens = seq_len
        other += per_token * batch * int(tokens)
    per_block = []
    for i, b in enumerate(blocks):
        lq, lk = lens[i]
        h, d = b.num_heads, b.head_dim
        products = 2 * (2 * batch * lq * lk * h * d)
        per_block.append(BlockFlops(b.kind, b.layer, b.name, h, d, lq, lk, proj[i], products))
    return FlopsReport(
        batch=batch,
        seq_len=seq_len,
        decoder_len=decoder_len,
        attention_projections=sum(proj),
        attention_products=sum(b.products for b in per_block),
        other_linear=other,
        blocks=tuple(per_block),
    )


def ideal_speedup(flops_ref: int | FlopsReport, flops_pruned: int | FlopsReport) -> float:
    """The speedup if time were proportional to FLOPs: ref / pruned."""
    ref, pruned = int(flops_ref), int(flops_pruned)
    if pruned <= 0:
        raise ValueError(f"pruned FLOPs must be positive, got {pruned}")
    return ref / pruned

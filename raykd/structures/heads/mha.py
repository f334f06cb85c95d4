"""Head adapter for raykd's own `raykd.nn.MultiHeadAttention` (the solver's decoder; its family
is `raykd.structures.families.raykd_nn`).

Layout: `q`, `k`, `v`, `o` Linears, `num_heads` heads of `head_dim`, `head_ids`; the kind is the
module's `kind` attribute. The module already runs with zero heads (output = O's bias), so a fully
pruned block keeps its (empty) Linears and needs nothing special.

Capture: a forward pre-hook turns on `need_weights=True` (the module's explicit-softmax path, the
same maths as its SDPA path) and a forward hook records the probabilities and hands the caller
`None` as weights again if it had not asked for them. raykd/nn/attention.py is not modified.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence

from torch import nn

from raykd.structures.heads.base import AttentionBlock, HeadAdapter, Projections, Recorder, hooks_removed
from raykd.structures.heads.kinds import KINDS, Kind
from raykd.nn.attention import MultiHeadAttention


class RaykdMHAAdapter(HeadAdapter):
    family = "raykd-mha"
    supports = "raykd.nn.MultiHeadAttention"

    def match(self, module: nn.Module) -> Kind | None:
        if not isinstance(module, MultiHeadAttention):
            return None
        if module.kind not in KINDS:
            raise ValueError(f"MultiHeadAttention has unknown kind {module.kind!r} (known: {', '.join(KINDS)})")
        return module.kind  # type: ignore[return-value]

    def projections(self, module: nn.Module) -> Projections:
        return Projections(module.q, module.k, module.v, module.o)

    def num_heads(self, module: nn.Module) -> int:
        return int(module.num_heads)

    def head_dim(self, module: nn.Module) -> int:
        return int(module.head_dim)

    def set_heads(self, module: nn.Module, head_ids: list[int], num_kv_heads: int) -> None:
        module.num_heads = len(head_ids)
        module.head_ids = list(head_ids)

    def capture(self, model: nn.Module, blocks: Sequence[AttentionBlock], record: Recorder) -> contextlib.AbstractContextManager:
        handles = []
        asked: dict[int, list[bool]] = {}

        for block in blocks:
            module = block.module

            def pre(mod, args, kwargs, _asked=asked):
                _asked.setdefault(id(mod), []).append(bool(kwargs.get("need_weights", False)))
                return args, {**kwargs, "need_weights": True}

            def post(mod, args, kwargs, output, _block=block, _asked=asked):
                wanted = _asked[id(mod)].pop()
                out, probs = output
                record(_block, probs)
                return output if wanted else (out, None)

            handles.append(module.register_forward_pre_hook(pre, with_kwargs=True))
            handles.append(module.register_forward_hook(post, with_kwargs=True))
        return hooks_removed(handles)


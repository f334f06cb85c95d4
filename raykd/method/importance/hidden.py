"""Hidden-channel importance, as Minitron scores embedding channels: activation magnitude.

For each channel of the residual stream: the mean |activation| over the real (unpadded) tokens of
a calibration set, at every LayerNorm / RMSNorm over the stream (the embeddings' norm and both
norms of every layer, and a Llama model's final norm), summed over those norms. Minitron reads the
norms' outputs (F_emb(i) = sum over batch and sequence of LN(X)_i); `at="input"` reads what enters
them instead (the residual stream itself in a pre-norm Llama layer, the sum before the norm in a
post-norm BERT layer). Forward hooks only; the model is run in eval mode without gradients and put
back as it was. The lowest scores are pruned (`keep_most_important`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from itertools import islice
from typing import Any, Literal

import torch
from torch import nn

from raykd.structures.hidden import find_hidden

Forward = Callable[[nn.Module, Any], Any]


@dataclass
class HiddenStats:
    """Per present hidden channel (current order): its original id and its activation score."""

    kind: str
    channel_ids: list[int]
    activation: torch.Tensor  # (width,) float64: sum over the stream's norms of mean |activation|
    tokens: int  # real tokens seen per norm call summed over the batches (the first norm's count)


def _default_forward(model: nn.Module, batch: Any) -> Any:
    return model(**batch) if isinstance(batch, Mapping) else model(batch)


def collect_hidden_stats(model: nn.Module, batches: Iterable[Any], *, forward: Forward | None = None,
                         at: Literal["output", "input"] = "output") -> HiddenStats:
    """Run `batches` (dicts passed as keyword arguments unless `forward(model, batch)` is given)
    and measure each hidden channel's activation magnitude. Positions where the batch's
    `attention_mask` is 0 are left out."""
    if at not in ("output", "input"):
        raise ValueError(f"at must be 'output' or 'input', got {at!r}")
    own = find_hidden(model)
    width = own.width
    sums = [torch.zeros(width, dtype=torch.float64) for _ in own.stream_norms]
    counts = [0] * len(own.stream_norms)
    mask: list[torch.Tensor | None] = [None]

    def hook(i: int) -> Callable:
        def record(_m: nn.Module, args: tuple, out: torch.Tensor) -> None:
            x = (out if at == "output" else args[0]).detach()
            a = x.abs().to(torch.float64).reshape(-1, width)
            m = mask[0]
            if m is not None and m.numel() == a.shape[0]:
                w = m.reshape(-1).to(a.device, torch.float64)
                sums[i] += (a * w.unsqueeze(1)).sum(0).cpu()
                counts[i] += int(w.sum().item())
            else:
                sums[i] += a.sum(0).cpu()
                counts[i] += a.shape[0]
        return record

    handles = [norm.register_forward_hook(hook(i)) for i, norm in enumerate(own.stream_norms)]
    run = forward or _default_forward
    was_training = model.training
    n_batches = 0
    try:
        model.eval()
        with torch.no_grad():
            for batch in batches:
                mask[0] = batch.get("attention_mask") if isinstance(batch, Mapping) else None
                run(model, batch)
                n_batches += 1
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
    if n_batches == 0 or not any(counts):
        raise ValueError("no calibration tokens reached the model's norms: give at least one non-empty batch")
    score = sum(s / max(c, 1) for s, c in zip(sums, counts))
    return HiddenStats(own.kind, own.ids, score, counts[0])


def hidden_scores(model: nn.Module, batches: Iterable[Any], *, forward: Forward | None = None,
                  at: Literal["output", "input"] = "output") -> torch.Tensor:
    """(width,) importance of every present hidden channel, in current position order."""
    return collect_hidden_stats(model, batches, forward=forward, at=at).activation


def keep_most_important(scores: torch.Tensor, keep: int) -> list[int]:
    """Positions of the `keep` highest-scoring channels, in increasing order (what `prune_hidden`
    takes); ties go to the lower position."""
    if not 1 <= keep <= scores.numel():
        raise ValueError(f"keep must be in [1, {scores.numel()}], got {keep}")
    order = sorted(range(scores.numel()), key=lambda i: (-float(scores[i]), i))
    return sorted(order[:keep])


# -- the chain's side of the "hidden" structure kind ---------------------------------------------

def _stats_to_json(stats: HiddenStats) -> dict[str, Any]:
    return {"kind": stats.kind, "channel_ids": list(stats.channel_ids), "activation": stats.activation.tolist(),
            "tokens": stats.tokens}


def _stats_from_json(data: Mapping[str, Any]) -> HiddenStats:
    return HiddenStats(str(data["kind"]), [int(c) for c in data["channel_ids"]],
                       torch.tensor(data["activation"], dtype=torch.float64), int(data["tokens"]))


def _stats_fit(stats: HiddenStats, model: nn.Module) -> bool:
    """The statistics describe `model` as it is now: same hidden kind, same channels present."""
    from raykd.structures.coverage import UnsupportedModelError

    try:
        own = find_hidden(model)
    except UnsupportedModelError:  # no hidden dimension raykd can place
        return False
    return stats.kind == own.kind and stats.channel_ids == own.ids


def _collect(model: nn.Module, task: Any, *, split: str, batches: int, batch_size: int) -> HiddenStats:
    """Activation magnitude over the chain's calibration batches, run as the task runs its model."""
    calib = islice(task.batches(split, batch_size), batches)
    return collect_hidden_stats(model, calib, forward=task.outputs)


def _scores(stats: Any, config: Any, round_index: int) -> dict[tuple[str, int], torch.Tensor]:
    """{(hidden kind, 0): one score per present channel}: one block per model. `importance: random`
    is random here too (seed offset 700, as the other kinds' baselines have theirs); Taylor is not
    measured for hidden channels, so a Taylor chain that prunes them is refused."""
    from raykd.errors import ConfigError

    hidden: HiddenStats = stats.extra["hidden"]
    if config.importance == "random":
        gen = torch.Generator().manual_seed(config.seed * 1000 + 700 + round_index)
        return {(hidden.kind, 0): torch.rand(len(hidden.channel_ids), generator=gen, dtype=torch.float64)}
    if config.importance == "taylor":
        raise ConfigError("hidden-channel pruning has no Taylor importance: use importance 'combined' "
                          "(activation magnitude) or 'random'")
    return {(hidden.kind, 0): hidden.activation}


def register_hidden_importance() -> Any:
    """Register how the chain scores "hidden" channels (idempotent) and return the entry. Pairs with
    `raykd.structures.hidden.register_hidden_structure`; like it, not done at import (it would add
    the kind to every default config and record)."""
    from raykd.errors import ConfigError
    from raykd.method.importance.registry import KindImportance, importance_of, register_importance

    try:
        return importance_of("hidden")
    except ConfigError:
        pass
    return register_importance(KindImportance(
        "hidden", _scores, lambda s: "hidden" in s.extra,
        "hidden-channel pruning needs hidden statistics: collect them with collect_stats(..., kinds=['hidden'])",
        collect=_collect, to_json=_stats_to_json, from_json=_stats_from_json, fits=_stats_fit))

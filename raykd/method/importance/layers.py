"""Layer importance: Block Influence (ShortGPT, Men et al. 2024), the distillation-loss increase
when a layer is skipped, and a random baseline.

BI of a layer = 1 - cos(input, output) of its hidden states, averaged over the real positions of
the calibration set: a layer that barely turns the residual stream changes little when it goes.
The lowest BI is dropped first. Unlike heads and FFN scores it needs no normalisation: layers are
ranked within their stack (encoder layers among themselves, decoder layers among themselves).

Distillation-loss increase: KL(model's outputs || outputs with the layer skipped) at temperature tau,
averaged over the real output positions of the calibration set. Skipping makes the layer the
identity (its output is its input), which is what dropping it computes (`raykd.structures.layers`),
so it measures exactly what the chain's distillation KL starts from after the drop. It costs one
forward pass per layer per calibration batch, where Block Influence costs none beyond the pass.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Iterator

import torch
from torch import nn

from raykd.errors import ConfigError
from raykd.structures.keys import BlockPosition

if TYPE_CHECKING:
    from raykd.task_interface import Task


@dataclass
class LayerStats:
    layer_id: int  # original id
    influence: float
    distill_loss: float | None = None  # KL increase when skipped; None: not measured

    def to_row(self) -> dict[str, Any]:
        """JSON fields (distill_loss only when measured, so older files and readers see no change)."""
        return {k: v for k, v in vars(self).items() if not (k == "distill_loss" and v is None)}


def block_influence_sums(x: torch.Tensor, y: torch.Tensor, mask: torch.Tensor) -> tuple[float, int]:
    """(sum over real positions of 1 - cos(x, y), number of real positions); x, y (B, L, d)."""
    if x.shape != y.shape or x.shape[:2] != mask.shape:
        raise ValueError(f"layer input {tuple(x.shape)}, output {tuple(y.shape)} and mask {tuple(mask.shape)} do not line up")
    cos = torch.nn.functional.cosine_similarity(x.detach().float(), y.detach().float(), dim=-1)
    rows = mask.bool().to(cos.device)
    return float(((1 - cos) * rows).sum()), int(rows.sum())


def layer_scores(stats: dict[BlockPosition, LayerStats]) -> dict[BlockPosition, float]:
    return {k: s.influence for k, s in stats.items()}


def layer_random_scores(stats: dict[BlockPosition, LayerStats], seed: int) -> dict[BlockPosition, float]:
    g = torch.Generator().manual_seed(seed)
    return {k: float(torch.rand(1, generator=g)) for k in sorted(stats)}


def layer_distill_scores(stats: dict[BlockPosition, LayerStats]) -> dict[BlockPosition, float]:
    missing = sorted(k for k, s in stats.items() if s.distill_loss is None)
    if missing:
        raise ConfigError("layer_importance: distill-loss needs statistics collected with "
                          f"collect_stats(..., layer_distill=True); {missing[0][0]} layer {missing[0][1]} has none")
    return {k: float(s.distill_loss) for k, s in stats.items()}  # type: ignore[arg-type]


@contextlib.contextmanager
def skipped(layer: nn.Module) -> Iterator[None]:
    """While inside, `layer` computes the identity: its hidden-state output is its input (the rest
    of what it returns, e.g. attention weights or a cache, passes through). It still runs, so this
    works for any layer whose first input and first output are the hidden states (raykd's decoder,
    BERT-family and Llama-family layers) without renumbering anything."""

    def hook(_m: nn.Module, args: tuple, kwargs: dict, out: Any) -> Any:
        h = args[0] if args else kwargs["hidden_states"]
        if isinstance(out, tuple):
            return (h, *out[1:])
        if isinstance(out, list):
            return [h, *out[1:]]
        if not isinstance(out, torch.Tensor):
            raise TypeError(f"cannot skip {type(layer).__name__}: it returns {type(out).__name__}")
        return h

    handle = layer.register_forward_hook(hook, with_kwargs=True)
    try:
        yield
    finally:
        handle.remove()


def distill_loss_increase(model: nn.Module, task: "Task", *, split: str = "train", batches: int = 8, batch_size: int = 32,
                          tau: float = 1.0) -> dict[BlockPosition, float]:
    """{(stack kind, position): KL(outputs || outputs with that layer skipped)} at temperature tau
    (tau^2-scaled like the chain's response KL), averaged over the real output positions of the
    first `batches` batches of `split`. The model is left in eval mode."""
    from raykd.method.distill import response_kl
    from raykd.structures.layers import find_layer_stacks

    stacks = find_layer_stacks(model)
    sums: dict[BlockPosition, float] = {(k, pos): 0.0 for k, st in stacks.items() for pos in range(len(st))}
    positions = 0
    model.eval()
    with torch.inference_mode():
        for i, batch in enumerate(task.batches(split, batch_size)):
            if i >= batches:
                break
            full = task.outputs(model, batch)
            n = int(full.mask.sum())
            for kind, stack in stacks.items():
                for pos, layer in enumerate(stack):
                    with skipped(layer):
                        out = task.outputs(model, batch)
                    sums[(kind, pos)] += float(response_kl(full.logits, out.logits, full.mask, tau)) * n
            positions += n
    return {k: v / positions if positions else 0.0 for k, v in sums.items()}

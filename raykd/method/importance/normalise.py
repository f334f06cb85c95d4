"""Per-pool normalisation of importance statistics, so two of them share a scale before mixing."""

from __future__ import annotations

from typing import Literal

import torch

Normalisation = Literal["minmax", "zscore", "rank", "none"]
NORMALISATIONS: tuple[str, ...] = ("minmax", "zscore", "rank", "none")


def normalise(values: torch.Tensor, method: Normalisation) -> torch.Tensor:
    """Per-pool normalisation so w and H share a scale before they are mixed."""
    v = values.float()
    if method == "none" or v.numel() == 0:
        return v
    if method == "minmax":
        span = v.max() - v.min()
        return (v - v.min()) / span if span > 0 else torch.zeros_like(v)
    if method == "zscore":
        std = v.std(unbiased=False)
        return (v - v.mean()) / std if std > 0 else torch.zeros_like(v)
    if method == "rank":
        ranks = v.argsort().argsort().float()
        return ranks / max(1, v.numel() - 1)
    raise ValueError(f"unknown normalisation {method!r} (known: {', '.join(NORMALISATIONS)})")

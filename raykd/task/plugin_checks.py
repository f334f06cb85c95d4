"""Helpers the built-in task plug-ins share: teacher-settings checks and the problems' digest."""

from __future__ import annotations

from typing import Any, Iterable, Mapping

from raykd.data import load_splits
from raykd.errors import ConfigError
from raykd.resume import problems_digest

FIT_INTS = ("epochs", "batch_size", "patience", "max_steps")  # the training loop's integer settings


def check_teacher_keys(raw: Any, known: Iterable[str], *, example: str, ints: Iterable[str] = FIT_INTS,
                       numbers: Iterable[str] = ()) -> None:
    """ConfigError when `raw` is not a mapping (`example` shows one), has an unknown key, or a
    value of `ints` / `numbers` that is not a non-negative integer / number."""
    if not isinstance(raw, Mapping):
        raise ConfigError(f"teacher must be a mapping ({example})")
    known = tuple(known)
    unknown = set(raw) - set(known)
    if unknown:
        raise ConfigError(f"teacher has unknown key(s) {', '.join(sorted(unknown))} (known: {', '.join(known)})")
    for key in ints:
        if key in raw and (isinstance(raw[key], bool) or not isinstance(raw[key], int) or raw[key] < 0):
            raise ConfigError(f"teacher.{key} must be a non-negative integer")
    for key in numbers:
        if key in raw and (isinstance(raw[key], bool) or not isinstance(raw[key], (int, float)) or raw[key] < 0):
            raise ConfigError(f"teacher.{key} must be a non-negative number")


def problems_fingerprint(data: str, *, seed: int = 0) -> str:
    """The digest of a problems data spec's splits (`raykd.resume.problems_digest`), as the
    MWP and causal-LM tasks' `fingerprint()` computes it."""
    return problems_digest(load_splits(data, seed=seed))

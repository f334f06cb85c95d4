"""Errors of the analysis layer that more than one of its modules raises."""

from collections.abc import Iterable

from raykd.errors import RaykdInputError


class NoCompleteTrialError(RaykdInputError):
    """A sweep (or selection) with no complete trial: its front is empty."""


class UnknownObjective(RaykdInputError):
    def __init__(self, metric: str, known: Iterable[str], what: str) -> None:
        super().__init__(f"unknown objective metric {metric!r} (known {what}: {', '.join(known)})")

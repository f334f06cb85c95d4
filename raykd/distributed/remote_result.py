"""One place to collect what a Ray task that logs returns: its value, with its log lines replayed."""

from __future__ import annotations

from typing import Any, Callable

from raykd.errors import RaykdInputError


def get_logged(ref: Any, log: Callable[[str], None]) -> Any:
    """`ray.get` of a task returning (value, log lines): replays the lines through `log` and returns
    the value. A bad-input error raised inside the task is raised here as itself (one line, exit 2),
    not wrapped in Ray's RayTaskError."""
    import ray  # deferred: importing raykd.distributed must not start Ray's import

    try:
        value, lines = ray.get(ref)
    except ray.exceptions.RayTaskError as exc:
        if isinstance(exc.cause, RaykdInputError):
            raise exc.cause from None
        raise
    for line in lines:
        log(line)
    return value

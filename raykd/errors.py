"""User-facing errors.

Anything the user can fix (a bad path, a malformed file, an impossible ratio) raises
`RaykdInputError`; the CLI turns it into one line on stderr and exit code 2, with no traceback.

A message may quote the input it refuses, and input can be huge (a 600 MB alias-expanded YAML
value) or hold control characters (newlines, terminal escapes): `str()` of every such error is one
line of at most `MAX_MESSAGE` characters, so no command can echo more, whatever it quotes.
"""

import re
from typing import Any

MAX_MESSAGE = 600  # characters of one error line; the head and the tail of a longer one are kept
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def one_line(text: str, limit: int = MAX_MESSAGE) -> str:
    """`text` as one printable line of at most about `limit` characters: control characters shown
    escaped (a newline as \\n, ESC as \\x1b), a longer text cut in the middle with a note of its length."""
    text = _CONTROL.sub(lambda m: repr(m.group())[1:-1], text)
    if len(text) <= limit:
        return text
    head, tail = text[: limit * 2 // 3], text[-(limit // 4):]
    return f"{head} …({len(text):,} characters)… {tail}"


def shown(value: Any, limit: int = 160) -> str:
    """`value` (from input or a stored file) as a message quotes it: its repr, at most `limit`
    characters (a name or path from data can be of any length)."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 5] + "...'"


class RaykdInputError(Exception):
    """Bad input from the user: printed as one line (see `one_line`), exit code 2."""

    def __str__(self) -> str:
        return one_line(super().__str__())


class DataError(RaykdInputError):
    """A data file or data spec that cannot be used at all."""


class ConfigError(RaykdInputError):
    """An invalid configuration value (ratios, YAML, hyperparameters)."""


class ModelFormatError(RaykdInputError):
    """A model directory that is missing files or whose weights do not match its config."""


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message (at most 200 characters; its class name when it
    has none): what a one-line error quotes from a library's multi-line one."""
    text = str(exc).strip()
    return (text.splitlines() or [type(exc).__name__])[0][:200]

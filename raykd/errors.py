"""User-facing errors.

Anything the user can fix (a bad path, a malformed file, an impossible ratio) raises
`RaykdInputError`; the CLI turns it into one line on stderr and exit code 2, with no traceback.
"""


class RaykdInputError(Exception):
    """Bad input from the user: printed as one line, exit code 2."""


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

"""Argument types shared by every command: each value is checked when the command line is parsed.

Every numeric flag of every command uses one of these types (a test walks the parser and fails on a
plain `int` or `float`), so a new flag cannot accept `--threads -1` or `--lr nan` by forgetting a
range check. A bad value ends in one line naming the flag and the problem, exit code 2, before any
work starts (see `RaykdArgumentParser.error`).
"""

from __future__ import annotations

import argparse
import math
import re
from typing import Any, Callable, NoReturn

from raykd.errors import one_line
from raykd.storage import is_run_name

# Bounds for flags that size work: generous for real use, but far below what would hang or
# exhaust memory before the command could fail.
MAX_THREADS = 1024
MAX_BATCH = 1 << 16
MAX_REPEATS = 100_000


class RaykdArgumentParser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line (`raykd: error: ...`, as every other bad input),
    exit code 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"raykd: error: {one_line(message)} (see {self.prog} --help)\n")


def _typed(name: str, convert: Callable[[str], Any]) -> Callable[[str], Any]:
    """Give a converter the name argparse shows in its messages ("invalid <name> value")."""
    convert.__name__ = name
    return convert


def int_at_least(low: int, high: int | None = None) -> Callable[[str], int]:
    """An integer in [low, high]."""

    def convert(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        if value < low or (high is not None and value > high):
            bounds = f">= {low}" if high is None else f"in {low}..{high}"
            raise argparse.ArgumentTypeError(f"must be an integer {bounds}, got {value}")
        return value

    return _typed(f"int>={low}", convert)


def number(low: float | None = None, high: float | None = None, *, low_open: bool = False,
           high_open: bool = False) -> Callable[[str], float]:
    """A finite float, optionally within bounds (open or closed at each end)."""

    def convert(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
        if not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"must be a finite number, got {text!r}")
        too_low = low is not None and (value <= low if low_open else value < low)
        too_high = high is not None and (value >= high if high_open else value > high)
        if too_low or too_high:
            left = "(" if low_open else "["
            right = ")" if high_open else "]"
            lo = "-inf" if low is None else f"{low:g}"
            hi = "inf" if high is None else f"{high:g}"
            raise argparse.ArgumentTypeError(f"must be in {left}{lo}, {hi}{right}, got {value:g}")
        return value

    return _typed("number", convert)


def device(text: str) -> str:
    """A torch device this machine has: cpu, cuda[:N] (when CUDA works) or mps (when available)."""
    import torch  # deferred: torch (~3 s) at `raykd` start-up

    m = re.fullmatch(r"(cpu|cuda|mps)(?::(\d+))?", text.strip())
    if not m:
        raise argparse.ArgumentTypeError(f"unknown device {text!r}; expected cpu, cuda, cuda:N or mps")
    kind, index = m.group(1), m.group(2)
    if kind == "cuda":
        if not torch.cuda.is_available():
            why = "this torch build has no CUDA" if torch.version.cuda is None else "no CUDA GPU is visible"
            raise argparse.ArgumentTypeError(f"{text!r}: {why} (torch {torch.__version__}); use --device cpu")
        if index is not None and int(index) >= torch.cuda.device_count():
            raise argparse.ArgumentTypeError(f"{text!r}: only {torch.cuda.device_count()} CUDA device(s)")
    if kind == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise argparse.ArgumentTypeError(f"{text!r}: MPS is not available here; use --device cpu")
    if kind == "cpu" and index is not None:
        raise argparse.ArgumentTypeError(f"{text!r}: the CPU device takes no index")
    return text.strip()


device = _typed("device", device)


def sweep_name(text: str) -> str:
    """A sweep name: one directory level of letters, digits, '-', '_', '.', not '.' or '..'."""
    if not is_run_name(text):
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a sweep name: use letters, digits, '-', '_', '.', starting with a letter or digit "
            "(one directory level, at most 128 characters)")
    return text


sweep_name = _typed("sweep name", sweep_name)


_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")  # control characters but tab, CR and newline


def problem_text(text: str) -> str:
    """Problem text for `solve`: not empty or blank, and plain text: a terminal escape (a colour code
    `ESC[31m` pasted with the text) or another control character is refused, since its digits
    would otherwise be read as the problem's numbers."""
    if not text.strip():
        raise argparse.ArgumentTypeError("the problem text is empty")
    bad = _CONTROL.search(text)
    if bad:
        what = "a terminal escape sequence" if bad.group() in ("\x1b", "\x9b") else "a control character"
        raise argparse.ArgumentTypeError(f"the problem text contains {what} ({bad.group()!r} at character "
                                         f"{bad.start() + 1}): give plain text")
    return text


problem_text = _typed("problem text", problem_text)


THREADS = int_at_least(0, MAX_THREADS)
POSITIVE = int_at_least(1)
NON_NEGATIVE = int_at_least(0)
BATCH = int_at_least(1, MAX_BATCH)
BEAM = int_at_least(1, 64)
REPEATS = int_at_least(1, MAX_REPEATS)
SEED = int_at_least(0, 2**32 - 1)
NON_NEGATIVE_NUMBER = number(0.0)
POSITIVE_NUMBER = number(0.0, low_open=True)
FRACTION = number(0.0, 1.0)


def add_threads(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--threads", type=THREADS, default=0, help="torch threads (0: torch's default)")


def add_device(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--device", type=device, default="cpu", help="cpu, cuda, cuda:N or mps (default cpu)")


def plain_numeric_flags(parser: argparse.ArgumentParser) -> list[str]:
    """'COMMAND --flag' for every flag of `parser` (and its sub-commands) typed plain int/float."""
    found: list[str] = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                found += plain_numeric_flags(sub)
        elif action.type in (int, float):
            found.append(f"{parser.prog} {'/'.join(action.option_strings) or action.dest}")
    return found

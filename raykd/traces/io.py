"""Traces files (JSON lines) and source (b): traces from GSM8K-style annotated solutions.

One object per line: `id` (the problem's id), `trace` (the trace text, `format.Trace.render`),
`source` ("teacher", "file" or "gold-equation": where it came from), `strength` (the pruning
strength applied, 0 for an unpruned trace) and `model` (the teacher's or pruner's model id, null
when none). A malformed row is one `DataError` line naming the file and line; a file is written
whole or not at all.
"""

from __future__ import annotations

import json
import math
import os
import re
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from raykd.data.answers import AnswerError, parse_answer
from raykd.data.build import row_id
from raykd.data.readers import read_rows
from raykd.errors import DataError, shown
from raykd.traces.format import Trace, answer_text, parse_trace

SOURCES: tuple[str, ...] = ("teacher", "file", "gold-equation")
FIELDS: tuple[str, ...] = ("id", "trace", "source", "strength", "model")


@dataclass(frozen=True)
class TraceRecord:
    """One trace with its provenance; validated on construction (`ValueError` with the reason)."""

    id: str
    trace: Trace
    source: str
    strength: float = 0.0
    model: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.id, str) or not self.id:
            raise ValueError(f"id must be a non-empty string, got {shown(self.id)}")
        if self.source not in SOURCES:
            raise ValueError(f"source must be one of {list(SOURCES)}, got {shown(self.source)}")
        strength = self.strength
        if isinstance(strength, bool) or not isinstance(strength, (int, float)) or not (
            math.isfinite(strength) and 0.0 <= strength <= 1.0
        ):
            raise ValueError(f"strength must be a number in [0, 1], got {shown(strength)}")
        if self.model is not None and (not isinstance(self.model, str) or not self.model):
            raise ValueError(f"model must be a non-empty string or null, got {shown(self.model)}")

    def to_row(self) -> dict[str, Any]:
        return {"id": self.id, "trace": self.trace.render(), "source": self.source,
                "strength": float(self.strength), "model": self.model}


def record_from_row(row: Any) -> TraceRecord:
    """A record from one decoded JSON row; `ValueError` with the reason when it is malformed."""
    if not isinstance(row, dict):
        raise ValueError(f"not an object: row is {type(row).__name__}")
    missing = [f for f in ("id", "trace", "source") if f not in row]
    if missing:
        raise ValueError(f"missing field {missing[0]!r}")
    unknown = sorted(set(row) - set(FIELDS))
    if unknown:
        raise ValueError(f"unknown field {shown(unknown[0])}; fields: {list(FIELDS)}")
    if not isinstance(row["trace"], str):
        raise ValueError(f"trace must be a string, got {type(row['trace']).__name__}")
    trace = parse_trace(row["trace"])
    if trace is None:
        raise ValueError("trace has no 'Answer:' line")
    return TraceRecord(row["id"], trace, row["source"], row.get("strength", 0.0), row.get("model"))


def read_traces(path: str | Path) -> list[TraceRecord]:
    """All records of a traces file; `DataError` ("FILE:LINE: reason") at the first malformed row."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise DataError(f"traces file not found: {path}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: cannot read ({type(exc).__name__})") from None
    records: list[TraceRecord] = []
    for lineno, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except (json.JSONDecodeError, RecursionError) as exc:
            raise DataError(f"{path}:{lineno}: not JSON ({getattr(exc, 'msg', 'nested too deeply')})") from None
        try:
            records.append(record_from_row(row))
        except ValueError as exc:
            raise DataError(f"{path}:{lineno}: {exc}") from None
    if not records:
        raise DataError(f"{path}: no traces")
    return records


def write_traces(path: str | Path, records: Iterable[TraceRecord]) -> Path:
    """Write `records` as JSON lines, atomically (a temporary file renamed into place)."""
    path = Path(path)
    lines = [json.dumps(r.to_row(), ensure_ascii=False) for r in records]
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write("".join(line + "\n" for line in lines))
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


# --- source (b): GSM8K solutions -------------------------------------------------------------

_ANNOTATION = re.compile(r"<<([^<>=]*)=([^<>=]*)>>")
_FINAL = re.compile(r"^\s*####\s*(.+?)\s*$")


def _annotated_line(line: str) -> str:
    """A solution line with `<<a*b=c>>` annotations turned into written computations: dropped
    where the line already writes "a*b = c", else `<<a*b=c>>c` becomes "a*b = c"."""
    out: list[str] = []
    pos = 0
    for m in _ANNOTATION.finditer(line):
        before = line[pos : m.start()]
        after = m.end()
        expr, result = m.group(1).strip(), m.group(2).strip()
        if before.rstrip().endswith("="):
            out.append(before)
        else:
            out.append(f"{before}{expr} = {result}")
            if line.startswith(result, after):
                after += len(result)
        pos = after
    out.append(line[pos:])
    return " ".join("".join(out).split())


def gsm8k_trace(solution: str) -> Trace:
    """The trace of a GSM8K solution: one step per solution line, then the `####` answer.
    `ValueError` when the solution has no parseable final answer."""
    steps: list[str] = []
    for line in solution.splitlines():
        if m := _FINAL.match(line):
            try:
                value = parse_answer(m.group(1))
            except AnswerError:
                raise ValueError(f"unparseable final answer {shown(m.group(1))}") from None
            return Trace(tuple(steps), answer_text(value))
        if (step := _annotated_line(line)) and not re.match(r"^\s*answer\s*:", step, re.IGNORECASE):
            steps.append(step)
    raise ValueError("no final answer after '####'")


def gsm8k_records(rows: Sequence[Any], where: str = "gsm8k") -> list[TraceRecord]:
    """Records (source "file") from GSM8K rows (`question`, `answer`); `DataError` naming the row."""
    records: list[TraceRecord] = []
    for index, row in enumerate(rows):
        try:
            if not isinstance(row, dict) or not isinstance(row.get("answer"), str):
                raise ValueError("missing field 'answer' (the solution)")
            records.append(TraceRecord(row_id(row, index, "gsm8k"), gsm8k_trace(row["answer"]), "file"))
        except ValueError as exc:
            raise DataError(f"{where}: row {index}: {exc}") from None
    return records


def read_gsm8k_traces(path: str | Path) -> list[TraceRecord]:
    """Source (b): the traces of a GSM8K file (JSON / JSON lines, as raykd's data readers read it)."""
    rows, _ = read_rows(Path(path))
    return gsm8k_records(rows, str(path))

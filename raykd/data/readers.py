"""Data specs -> problems: read a file (JSON list, JSON lines / concatenated objects, ASDiv XML),
tell its format, convert every row, and account for every row that could not be used.

Spec forms: "FORMAT:PATH" (FORMAT one of `FORMATS`), "synthetic:N" / "synthetic:N:SEED" /
"synthetic:TRAIN/VALID/TEST[:SEED]" (exact split sizes), or a
bare PATH whose format is detected from its content. PATH may be a directory holding split files
(train, valid or dev, test; .json / .jsonl / .xml), and a URI (`s3://`, `gs://`, `file://`) of a
file or directory: it is read from a local copy (`raykd.data.remote`). `hf:NAME[:CONFIG][@REVISION]`
(optionally after FORMAT:) is a Hugging Face dataset, read through `datasets` (`raykd.data.hub`).
"""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ElementTree
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from raykd.data import hub
from raykd.data.answers import equation_reproduces_answer, expression_value
from raykd.data.build import RowError, row_id
from raykd.data.expressions import ExpressionError
from raykd.data.formats import FORMATS, convert_row
from raykd.data.problem import Problem
from raykd.data.remote import is_data_uri, local_copy
from raykd.data.splits import SPLIT_NAMES, ratios_for, stratified_split
from raykd.data.synthetic import generate_problems
from raykd.errors import DataError
from raykd.paths import checked_path  # a symlink loop or an over-long name: one line, not a traceback

SPLIT_FILE_STEMS: dict[str, tuple[str, ...]] = {"train": ("train",), "valid": ("valid", "dev"), "test": ("test",)}
SPLIT_FILE_SUFFIXES: tuple[str, ...] = (".json", ".jsonl", ".xml")


@dataclass(frozen=True)
class DataSpec:
    """A parsed data spec: a file or directory (`path`, `format` None = detect) or synthetic data."""

    format: str | None
    path: Path | None = None
    n: int = 0
    seed: int = 0
    sizes: tuple[int, int, int] | None = None  # synthetic:TRAIN/VALID/TEST: exact split sizes


@dataclass(frozen=True)
class SkippedRow:
    """A row that was not loaded (`skipped`) or loaded but not reproduced by its equation
    (`inconsistent`); `index` counts rows from 0 within `file`."""

    index: int
    id: str
    reason: str
    file: str = ""


@dataclass
class LoadResult:
    """What a spec loaded to: the problems, the rows left out and why, the rows whose gold
    equation misses their gold answer (loaded all the same), and "FORMAT:PATH" it came from."""

    problems: list[Problem]
    skipped: list[SkippedRow] = field(default_factory=list)
    inconsistent: list[SkippedRow] = field(default_factory=list)
    source: str = ""


MAX_SYNTHETIC = 100_000
"""The most problems a synthetic spec may ask for (about 20 s to generate on one core)."""


def parse_spec(spec: str) -> DataSpec:
    """Parse a data spec string (see the module doc); `DataError` if it cannot be one."""
    if not isinstance(spec, str) or not spec.strip():
        raise DataError("empty data spec; expected FORMAT:PATH, synthetic:N[:SEED], hf:NAME[:CONFIG] or PATH")
    prefix, sep, rest = spec.partition(":")
    if sep and prefix == "synthetic":
        parts = rest.split(":")
        counts = parts[0].split("/")
        number = r"\s*-?[0-9]{1,30}\s*"  # more digits than any count or seed (and than int() parses: 4,300)
        if (len(parts) > 2 or len(counts) not in (1, 3) or not all(re.fullmatch(number, p) for p in [*counts, *parts[1:]])):
            raise DataError(f"bad synthetic spec {spec!r}; expected synthetic:N, synthetic:N:SEED or "
                            "synthetic:TRAIN/VALID/TEST[:SEED]")
        sizes = tuple(int(c) for c in counts)
        n, seed = sum(sizes), int(parts[1]) if len(parts) == 2 else 0
        if any(c <= 0 for c in sizes):
            raise DataError(f"bad synthetic spec {spec!r}: {'every split size' if len(sizes) == 3 else 'N'} must be positive")
        if n > MAX_SYNTHETIC:
            raise DataError(f"bad synthetic spec {spec!r}: at most {MAX_SYNTHETIC:,} problems (they are generated in memory)")
        if not 0 <= seed < 2**32:
            raise DataError(f"bad synthetic spec {spec!r}: SEED must be in 0..{2**32 - 1}")
        return DataSpec("synthetic", n=n, seed=seed, sizes=sizes if len(sizes) == 3 else None)  # type: ignore[arg-type]

    if sep and prefix in FORMATS:
        if not rest:
            raise DataError(f"data spec {spec!r} names no path")
        if hub.is_hub_spec(rest):
            return DataSpec(prefix, hub.local_copy(rest))
        return DataSpec(prefix, local_copy(rest) if is_data_uri(rest) else checked_path(rest, "data", resolve=False))
    if hub.is_hub_spec(spec):
        return DataSpec(None, hub.local_copy(spec))
    if is_data_uri(spec):
        return DataSpec(None, local_copy(spec))
    if sep and prefix.isalpha() and len(prefix) > 1 and not checked_path(spec, "data", resolve=False).exists():
        known = ", ".join([*FORMATS, "synthetic", "hf"])
        raise DataError(f"unknown data format {prefix!r} in spec {spec!r}; known: {known}")
    return DataSpec(None, checked_path(spec, "data", resolve=False))


def _xml_rows(text: str, path: Path) -> list[dict[str, Any]]:
    """ASDiv XML problems as dicts shaped like MWPToolkit's ASDiv-A JSON."""
    try:
        root = ElementTree.fromstring(text)
    except ElementTree.ParseError as exc:
        raise DataError(f"{path}: invalid XML ({exc})") from None
    problems = list(root.iter("Problem"))
    if not problems:
        raise DataError(f"{path}: XML without ASDiv <Problem> elements (root <{root.tag}>)")
    rows = []
    for element in problems:
        row: dict[str, Any] = {f"@{k}": v for k, v in element.attrib.items()}
        for child in element:
            value = (child.text or "").strip()
            row[child.tag] = (
                {**{f"@{k}": v for k, v in child.attrib.items()}, "#text": value} if child.attrib else value
            )
        rows.append(row)
    return rows


def _json_rows(text: str, path: Path) -> list[Any]:
    """A JSON list, one object, or a stream of objects (JSON lines, or objects spanning several
    lines as in the original Math23k release)."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        if exc.msg != "Extra data":
            raise DataError(
                f"{path}: not JSON, JSON lines or ASDiv XML ({exc.msg} at line {exc.lineno} column {exc.colno})"
            ) from None
        data = _json_stream(text, path)
    except RecursionError:
        raise DataError(f"{path}: JSON nested too deeply to hold problems") from None
    if isinstance(data, dict):
        if "\n" in text.strip():  # one pretty-printed object: a wrapper or a single problem, not a data set
            keys = ", ".join(repr(k) for k in list(data)[:3])
            raise DataError(f"{path}: holds one JSON object (keys {keys}), not a list of problems: "
                            "write a JSON list of problem objects, or one object per line")
        data = [data]  # JSON lines with a single row
    if not isinstance(data, list):
        raise DataError(f"{path}: JSON holds a {type(data).__name__}, not a list of problems")
    return data


def _json_stream(text: str, path: Path) -> list[Any]:
    decoder = json.JSONDecoder()
    rows: list[Any] = []
    pos = 0
    while True:
        while pos < len(text) and text[pos].isspace():
            pos += 1
        if pos == len(text):
            return rows
        try:
            row, pos = decoder.raw_decode(text, pos)
        except RecursionError:
            raise DataError(f"{path}: JSON nested too deeply to hold problems") from None
        except json.JSONDecodeError as exc:
            raise DataError(
                f"{path}: bad JSON after {len(rows)} objects ({exc.msg} at line {exc.lineno} column {exc.colno})"
            ) from None
        rows.append(row)


def read_rows(path: Path) -> tuple[list[Any], bool]:
    """Raw rows of a data file and whether it was XML; `DataError` if it is not readable data."""
    if not path.exists():
        raise DataError(f"data file not found: {path}")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: cannot read ({exc})") from None
    if not text.strip():
        raise DataError(f"{path}: file is empty")
    is_xml = text.lstrip().startswith("<")
    rows = _xml_rows(text, path) if is_xml else _json_rows(text, path)
    if not rows:
        raise DataError(f"{path}: no rows")
    return rows, is_xml


_SIGNATURES: tuple[tuple[str, frozenset[str]], ...] = (
    ("asdiv-a", frozenset({"Body", "Question", "Formula", "Answer"})),
    ("svamp", frozenset({"Body", "Question", "Equation", "Answer"})),
    ("gsm8k", frozenset({"question", "answer"})),
    ("math23k", frozenset({"original_text", "equation", "ans"})),
)


def _has_cjk(text: Any) -> bool:
    return isinstance(text, str) and any("\u4e00" <= ch <= "\u9fff" for ch in text)


def detect_format(rows: list[Any], path: Path) -> str:
    """The format of a file's rows, from the keys of its first object (Math23k vs MAWPS: Chinese text)."""
    first = next((row for row in rows if isinstance(row, dict)), None)
    if first is None:
        raise DataError(f"{path}: no JSON objects among its {len(rows)} rows")
    for name, keys in _SIGNATURES:
        if keys <= first.keys():
            if name == "math23k" and not _has_cjk(first.get("original_text")):
                return "mawps"
            return name
    formats = ", ".join(f"{f}:PATH" for f in FORMATS)
    raise DataError(f"{path}: unknown data format (first object has keys {sorted(first)}); name it, e.g. {formats}")


def _mismatch(problem: Problem) -> str:
    try:
        value = f"{expression_value(problem, problem.equation):g}"
    except ExpressionError as exc:
        value = f"an error ({exc})"
    return f"equation gives {value}, gold is {problem.answer_text!r}"


def _load_file(path: Path, fmt: str | None, strict: bool) -> tuple[str, LoadResult]:
    rows, is_xml = read_rows(path)
    fmt = fmt or ("asdiv-a" if is_xml else detect_format(rows, path))
    result = LoadResult(problems=[], source=f"{fmt}:{path}")
    for index, row in enumerate(rows):
        try:
            problem = convert_row(fmt, row, index)
        except RowError as exc:
            if strict:
                raise DataError(f"{path}: row {index} (id {row_id(row, index, fmt)}): {exc}") from None
            result.skipped.append(SkippedRow(index, row_id(row, index, fmt), str(exc), path.name))
            continue
        result.problems.append(problem)
        if problem.equation and not equation_reproduces_answer(problem):
            result.inconsistent.append(SkippedRow(index, problem.id, _mismatch(problem), path.name))
    if not result.problems:
        first = result.skipped[0]
        raise DataError(
            f"{path}: no usable problems ({len(result.skipped)} rows skipped; first, row {first.index}: {first.reason})"
        )
    return fmt, result


def split_files(directory: Path) -> dict[str, Path]:
    """The split files of a directory by split name ("valid" may come from dev.*)."""
    found: dict[str, Path] = {}
    for split, stems in SPLIT_FILE_STEMS.items():
        for stem in stems:
            for suffix in SPLIT_FILE_SUFFIXES:
                if split not in found and (directory / f"{stem}{suffix}").is_file():
                    found[split] = directory / f"{stem}{suffix}"
    return found


def _merge(results: list[LoadResult], source: str) -> LoadResult:
    merged = LoadResult(problems=[], source=source)
    for r in results:
        merged.problems += r.problems
        merged.skipped += r.skipped
        merged.inconsistent += r.inconsistent
    return merged


def _synthetic(spec: DataSpec) -> LoadResult:
    problems = _distinct_synthetic(spec) if spec.sizes else generate_problems(spec.n, seed=spec.seed)
    inconsistent = [
        SkippedRow(index, p.id, _mismatch(p)) for index, p in enumerate(problems) if not equation_reproduces_answer(p)
    ]
    size = "/".join(map(str, spec.sizes)) if spec.sizes else str(spec.n)
    return LoadResult(problems, inconsistent=inconsistent, source=f"synthetic:{size}:{spec.seed}")


def _distinct_synthetic(spec: DataSpec) -> list[Problem]:
    """`spec.n` synthetic problems with pairwise different texts (a held-out split must not repeat
    a training problem; about 1 in 3,000 generated texts is a repeat), in generation order."""
    extra = 16 + spec.n // 100
    for _ in range(4):
        seen: set[str] = set()
        distinct = []
        for p in generate_problems(spec.n + extra, seed=spec.seed):
            if p.text not in seen:
                seen.add(p.text)
                distinct.append(p)
        if len(distinct) >= spec.n:
            return distinct[: spec.n]
        extra *= 4
    raise DataError(f"synthetic:{'/'.join(map(str, spec.sizes or ()))}: the generator gave only {len(distinct)} distinct problems")


def _load_split_results(spec: DataSpec, strict: bool) -> tuple[str, dict[str, LoadResult]]:
    """Format and per-file results of a file or directory spec (a single file is keyed "all")."""
    assert spec.path is not None
    if spec.path.is_dir():
        files = split_files(spec.path)
        if not files:
            raise DataError(f"{spec.path}: directory has no train/valid/dev/test .json, .jsonl or .xml file")
        loaded = {split: _load_file(path, spec.format, strict) for split, path in files.items()}
        return next(iter(loaded.values()))[0], {split: result for split, (_, result) in loaded.items()}
    fmt, result = _load_file(spec.path, spec.format, strict)
    return fmt, {"all": result}


def load_problems(spec: str, *, strict: bool = False) -> LoadResult:
    """Every problem of a data spec (all split files of a directory, in train/valid/test order).
    Unusable rows are skipped with a reason (strict: the first raises `DataError`); rows whose gold
    equation does not reproduce the gold answer are loaded and listed in `inconsistent`."""
    parsed = parse_spec(spec)
    if parsed.format == "synthetic":
        return _synthetic(parsed)
    fmt, results = _load_split_results(parsed, strict)
    return _merge(list(results.values()), f"{fmt}:{parsed.path}")


def load_splits(spec: str, *, seed: int = 0, strict: bool = False) -> dict[str, list[Problem]]:
    """The "train", "valid" and "test" problems of a data spec.

    A directory with train, valid (or dev) and test files: those files. Train plus one held-out
    file: that file is "test" and "valid" is carved out of train. `synthetic:TRAIN/VALID/TEST`:
    exactly those sizes, cut in generation order (which cycles the complexity levels; `seed` is
    not used, the spec's SEED is). Anything else (one file, `synthetic:N`): a seeded split
    stratified by complexity in the data set's `SPLIT_RATIOS`.
    """
    parsed = parse_spec(spec)
    if parsed.sizes:  # generation cycles the complexity levels, so consecutive cuts are stratified
        problems = _synthetic(parsed).problems
        n_train, n_valid, _ = parsed.sizes
        return {"train": problems[:n_train], "valid": problems[n_train:n_train + n_valid],
                "test": problems[n_train + n_valid:]}
    if parsed.format == "synthetic":
        fmt, results = "synthetic", {"all": _synthetic(parsed)}
    else:
        fmt, results = _load_split_results(parsed, strict)
    ratios = ratios_for(fmt)
    if set(results) == set(SPLIT_NAMES):
        return {split: results[split].problems for split in SPLIT_NAMES}
    if "train" in results and len(results) == 2:
        (held_out,) = (results[s].problems for s in results if s != "train")
        train, valid = stratified_split(results["train"].problems, ratios[:2], key=_level, seed=seed)
        return {"train": train, "valid": valid, "test": held_out}
    if len(results) == 1:
        (only,) = results.values()
        train, valid, test = stratified_split(only.problems, ratios, key=_level, seed=seed)
        return {"train": train, "valid": valid, "test": test}
    raise DataError(f"{parsed.path}: split files {sorted(results)} include no train file")


def _level(problem: Problem) -> str:
    return problem.complexity

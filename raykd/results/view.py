"""A sweep's trials as a person reads them: the few columns one decides with, no cell cut.

The results store has 26+ columns per trial; printed whole at 80-120 columns every cell is cut
("77.6…"). `render_front` shows, by default, one row per trial (the teacher first, then the front,
★), with:

    trial | accuracy % [95% CI] | Δ vs teacher, pt [95% CI] | speed × [95% CI] | params | shape

* the difference from the teacher is the paired interval (`accuracy_diff`, `_low`, `_high`, or
  computed from the per-problem bits with `raykd.stats.paired_difference`) where the
  store has it, else the drop in points with the exact McNemar p;
* speed is the side-by-side re-timing with its interval where the trial was re-timed, else the
  sweep's own `speedup` with its source named (in the header, or in the cell when rows differ);
* the shape is compact: "4L·38H·3072F" (layers, heads, FFN channels kept: every registered
  structure kind's total, `raykd.results.columns`; a kind with no one-letter mark by its name).

`columns="params"` adds the searched hyperparameters as a second table, `columns="wide"` every
stored column (in as many tables as the width needs). `fmt="csv"|"json"` writes the raw values
behind the chosen columns for scripts; `fmt="markdown"` the formatted cells as a pipe table.

Nothing is ever cut: columns wrap (rich's "fold", never an ellipsis); tables that cannot fit side
by side are split into several, each with the trial column; when even that cannot fit, each trial
is printed as a block of "name: value" lines. No Ray, no torch.
"""

from __future__ import annotations

import io
import json
import math
import os
import shutil
import sys
import textwrap
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd
from rich import box
from rich.console import Console
from rich.measure import Measurement
from rich.table import Table

from raykd import stats
from raykd.results.columns import original_columns, total_columns
from raykd.results.store import int_columns
from raykd.structures.registry import shape_order

VIEWS = ("default", "params", "wide")
FORMATS = ("table", "csv", "json", "markdown")
FILE_WIDTH = 100  # the table's width when stdout is not a terminal and COLUMNS is unset
STATUS_RANK = {"complete": 0, "pruned": 1, "running": 2, "rejected": 3, "failed": 4}
# Long machine columns the wide *table* leaves out (it says so under the table); csv/json keep them.
BULKY = ("accuracy_correct", "test_accuracy_correct", "chain_config_json", "rounds_json")


@dataclass(frozen=True)
class Column:
    """One column of the view: its header, how a row becomes its cell, and the stored columns
    behind it (what csv/json write)."""

    key: str
    header: str
    cell: Callable[[Mapping[str, Any]], str]
    raw: tuple[str, ...]
    justify: str = "right"
    in_table: bool = True  # False: long machine strings, in csv/json only (the table says so)


def render_front(df: pd.DataFrame, *, teacher: Mapping[str, Any] | None = None, columns: str = "default",
                 fmt: str = "table", width: int | None = None, margin: float | None = None,
                 title: str | None = None) -> str:
    """The trials of `df` (a results-store frame: `Sweep.df`, `read_trials(...).to_pandas()` or a
    front) as text.

    `teacher`: the sweep's teacher (sweep.json's "teacher": accuracy, params, metrics.valid with
    n / interval / per-problem bits), shown as the first row and used for the difference when the
    rows lack one. `columns`: "default", "params" (+ hyperparameters) or "wide" (everything).
    `fmt`: "table" (rich, `width` columns; None: $COLUMNS, the terminal's, or 100 off a terminal),
    "csv", "json" (a list of records) or "markdown". `margin` (points): mark rows whose paired
    interval lies above −margin as non-inferior ("✓")."""
    if columns not in VIEWS:
        raise ValueError(f"columns must be one of {VIEWS}, got {columns!r}")
    if fmt not in FORMATS:
        raise ValueError(f"fmt must be one of {FORMATS}, got {fmt!r}")
    teacher = dict(teacher or {})
    data = _order(enrich(df, teacher))
    groups = _groups(data, teacher, columns, margin)
    if fmt in ("csv", "json"):
        return _machine(data, groups, fmt)
    left_out = [c.key for g in groups for c in g if not c.in_table]
    if columns == "wide":  # columns no trial has a value in: named under the table, not shown
        empty = [c.key for c in groups[-1][1:] if c.in_table and not _any(data, c.key)]
        groups[-1] = [c for c in groups[-1] if c.key not in empty]
    else:
        empty = []
    groups = [[c for c in g if c.in_table] for g in groups]
    rows = _records(data)
    if fmt == "markdown":
        return _markdown(groups, rows, teacher, title, left_out, empty)
    return _table(groups, rows, teacher, data, width or terminal_width(), title, margin, left_out, empty)


def terminal_width() -> int:
    """$COLUMNS when set, else the terminal's width, else FILE_WIDTH (stdout is a file or a pipe)."""
    text = os.environ.get("COLUMNS", "")
    if text.strip().isdigit() and int(text) > 0:
        return int(text)
    try:
        if sys.stdout.isatty():
            return shutil.get_terminal_size((FILE_WIDTH, 24)).columns
    except (AttributeError, ValueError, OSError):
        pass
    return FILE_WIDTH


# -- the data --------------------------------------------------------------------------------------

def enrich(df: pd.DataFrame, teacher: Mapping[str, Any] | None = None) -> pd.DataFrame:
    """`df` plus the derived columns the view shows: `shape`, `accuracy_drop` (when a teacher
    accuracy is known) and the paired difference `accuracy_diff[_low|_high]` computed from the
    per-problem bits when the rows lack it and raykd.stats can."""
    out = df.copy()
    teacher = dict(teacher or {})
    t_acc = teacher.get("accuracy")
    if "accuracy_drop" not in out and _finite(t_acc) and "accuracy" in out:
        out["accuracy_drop"] = (float(t_acc) - pd.to_numeric(out["accuracy"], errors="coerce")) * 100.0
    if "accuracy_diff" not in out or not out["accuracy_diff"].notna().any():
        diffs = _paired_from_bits(out, teacher)
        if diffs is not None:
            for k, v in diffs.items():
                out[k] = v
    out["shape"] = [_shape(r) for r in _records(out)] if len(out) else pd.Series([], dtype=object)
    return out


def _paired_from_bits(df: pd.DataFrame, teacher: Mapping[str, Any]) -> dict[str, list[float]] | None:
    """accuracy_diff/_low/_high (fractions, student − teacher) from the stored bits, or None when
    the bits or stats.paired_difference are missing."""
    paired = getattr(stats, "paired_difference", None)
    valid = (teacher.get("metrics") or {}).get("valid") or {}
    t_bits, t_n = valid.get("correct_bits"), valid.get("n")
    if paired is None or not t_bits or not _finite(t_n) or "accuracy_correct" not in df or "accuracy_n" not in df:
        return None
    t_flags = stats.unpack_correct(t_bits, int(t_n))
    cols: dict[str, list[float]] = {"accuracy_diff": [], "accuracy_diff_low": [], "accuracy_diff_high": []}
    for bits, n in zip(df["accuracy_correct"], df["accuracy_n"]):
        if isinstance(bits, str) and _finite(n) and int(n) == int(t_n):
            d = paired(t_flags, stats.unpack_correct(bits, int(n)))
            vals = (d.difference, d.low, d.high)
        else:
            vals = (math.nan,) * 3
        for k, v in zip(cols, vals):
            cols[k].append(float(v))
    return cols if any(math.isfinite(v) for v in cols["accuracy_diff"]) else None


def _order(df: pd.DataFrame) -> pd.DataFrame:
    """Front first, then complete/pruned/..., then the most accurate; ties by trial id."""
    if not len(df):
        return df
    key = pd.DataFrame({
        "front": ~df["on_front"].fillna(False).astype(bool) if "on_front" in df else True,
        "status": df["status"].map(STATUS_RANK).fillna(9) if "status" in df else 0,
        "acc": -pd.to_numeric(df["accuracy"], errors="coerce").fillna(-math.inf) if "accuracy" in df else 0,
        "id": df["trial_id"].astype(str) if "trial_id" in df else "",
    }, index=df.index)
    return df.loc[key.sort_values(["front", "status", "acc", "id"], kind="stable").index]


def _records(df: pd.DataFrame) -> list[dict[str, Any]]:
    return [{k: (None if _missing(v) else v) for k, v in r.items()} for r in df.to_dict(orient="records")]


# -- the columns -----------------------------------------------------------------------------------

def _groups(df: pd.DataFrame, teacher: Mapping[str, Any], columns: str, margin: float | None) -> list[list[Column]]:
    """The view's tables, each a list of columns (the trial column first)."""
    groups = [_default_columns(df, teacher, margin)]
    hps = [c for c in df.columns if c.startswith("hp_")]
    if columns in ("params", "wide") and hps:
        groups.append([_trial_column()] + [Column(c, c[3:], _generic(c), (c,)) for c in hps])
    if columns == "wide":
        shown = {"trial_id", "status", "on_front", "shape", *hps}  # every stored column raw, even if in a cell above
        rest = [c for c in df.columns if c not in shown and not c.startswith("_")]
        groups.append([_trial_column()] + [Column(c, c, _generic(c), (c,), in_table=c not in BULKY) for c in rest])
    return groups


def _trial_column() -> Column:
    return Column("trial_id", "trial", _trial_cell, ("trial_id", "status", "on_front"), justify="left")


def _default_columns(df: pd.DataFrame, teacher: Mapping[str, Any], margin: float | None) -> list[Column]:
    ci = "\n[95% CI]"
    cols = [_trial_column(),
            Column("accuracy", "accuracy %" + (ci if _any(df, "accuracy_ci_low") else ""), _accuracy_cell,
                   ("accuracy", "accuracy_ci_low", "accuracy_ci_high"))]
    if _any(df, "accuracy_diff"):
        cols.append(Column("accuracy_diff", "Δ pt\n[95% CI]",
                           lambda r: _diff_cell(r, margin), ("accuracy_diff", "accuracy_diff_low", "accuracy_diff_high")))
    elif _any(df, "accuracy_drop") or _finite(teacher.get("accuracy")):
        p = _any(df, "accuracy_p_vs_teacher")
        cols.append(Column("accuracy_drop", "Δ pt" + ("\n(p)" if p else ""), _drop_cell,
                           ("accuracy_drop", *(("accuracy_p_vs_teacher",) if p else ()))))
    sources = _speed_sources(df)
    if _any(df, "retimed_speedup"):
        cols.append(Column("retimed_speedup", "speed ×" + ci, _retimed_cell,
                           ("retimed_speedup", "retimed_low", "retimed_high", "speedup", "speedup_source")))
    elif "speedup" in df:
        cols.append(Column("speedup", "speed ×", lambda r: _speed_cell(r, len(sources) > 1),
                           ("speedup", *(("speedup_source",) if "speedup_source" in df else ()))))
    if "params" in df:
        cols.append(Column("params", "params", lambda r: _params(r.get("params")), ("params",)))
    totals = total_columns()
    if any(_any(df, c) for c in totals):
        cols.append(Column("shape", "shape", lambda r: r.get("shape") or "–", ("shape", *(c for c in totals if c in df))))
    return cols


def _speed_sources(df: pd.DataFrame) -> list[str]:
    if "speedup_source" not in df:
        return ["the sweep's speedup"]
    got = [str(s) for s in df["speedup_source"].dropna().unique()]
    return sorted(got) or ["the sweep's speedup"]


# -- cells -----------------------------------------------------------------------------------------

def _trial_cell(r: Mapping[str, Any]) -> str:
    text = str(r.get("trial_id"))
    if r.get("_teacher"):
        return text
    status = r.get("status")
    if status and status != "complete":
        text += f" {status}"
    return text + (" ★" if r.get("on_front") else "")


def _accuracy_cell(r: Mapping[str, Any]) -> str:
    a, lo, hi = r.get("accuracy"), r.get("accuracy_ci_low"), r.get("accuracy_ci_high")
    if not _finite(a):
        return "–"
    if _finite(lo) and _finite(hi):
        return f"{100 * a:.1f} [{100 * lo:.1f}–{100 * hi:.1f}]"
    return f"{100 * a:.1f}"


def _diff_cell(r: Mapping[str, Any], margin: float | None) -> str:
    d, lo, hi = r.get("accuracy_diff"), r.get("accuracy_diff_low"), r.get("accuracy_diff_high")
    if r.get("_teacher"):
        return "0"
    if not _finite(d):
        return "–"
    text = f"{100 * d:+.1f}"
    if _finite(lo) and _finite(hi):
        text += f" [{100 * lo:.1f}, {100 * hi:.1f}]"
        if margin is not None:
            text += " ✓" if lo > -margin / 100 else " ✗"  # as raykd.results.noninferiority judges it
    return text


def _drop_cell(r: Mapping[str, Any]) -> str:
    if r.get("_teacher"):
        return "0"
    drop, p = r.get("accuracy_drop"), r.get("accuracy_p_vs_teacher")
    if not _finite(drop):
        return "–"
    text = f"{-drop:+.1f}"
    return text + (f" (p {p:.2g})" if _finite(p) else "")


def _retimed_cell(r: Mapping[str, Any]) -> str:
    if r.get("_teacher"):
        return "1.00"
    v, lo, hi = r.get("retimed_speedup"), r.get("retimed_low"), r.get("retimed_high")
    if _finite(v):
        return f"{v:.2f} [{lo:.2f}–{hi:.2f}]" if _finite(lo) and _finite(hi) else f"{v:.2f}"
    s = r.get("speedup")
    if not _finite(s):
        return "–"
    return f"{s:.2f} ({_SHORT_SOURCE.get(r.get('speedup_source'), r.get('speedup_source') or 'sweep')})"


_SHORT_SOURCE = {"latency table": "table", "latency table x tokens": "table x tokens"}


def _speed_cell(r: Mapping[str, Any], mixed: bool) -> str:
    if r.get("_teacher"):
        return "1.00"
    s = r.get("speedup")
    if not _finite(s):
        return "–"
    return f"{s:.2f}" + (f" ({_SHORT_SOURCE.get(r.get('speedup_source'), r.get('speedup_source') or '?')})" if mixed else "")


def _params(v: Any) -> str:
    if not _finite(v):
        return "–"
    v = float(v)
    if v >= 1e9:
        return f"{v / 1e9:.2f}B"
    if v >= 1e7:
        return f"{v / 1e6:.1f}M"
    if v >= 1e6:
        return f"{v / 1e6:.2f}M"
    return f"{v / 1e3:.0f}k"


def _shape(r: Mapping[str, Any]) -> str | None:
    """"4L·38H·3072F": each registered kind's total, whole layers first; a kind with no `short`
    mark by its name ("·512 hidden")."""
    bits = [f"{int(r[k.total_key])}{k.short or ' ' + k.name}" for k in shape_order() if _finite(r.get(k.total_key))]
    return "·".join(bits) or None


def _generic(col: str) -> Callable[[Mapping[str, Any]], str]:
    def cell(r: Mapping[str, Any]) -> str:
        v = r.get(col)
        if v is None:
            return "–"
        if isinstance(v, bool):
            return "yes" if v else "no"
        if isinstance(v, float):
            if not math.isfinite(v):
                return "–"
            return f"{int(v):,}" if v.is_integer() and abs(v) >= 10_000 else f"{v:.4g}"
        if isinstance(v, int):
            return f"{v:,}" if abs(v) >= 10_000 else str(v)
        return " ".join(str(v).split())
    return cell


# -- output formats --------------------------------------------------------------------------------

def _machine(df: pd.DataFrame, groups: Sequence[Sequence[Column]], fmt: str) -> str:
    names: list[str] = []
    for g in groups:
        for col in g:
            names += [c for c in col.raw if c in df.columns and c not in names]
    out = df[names].copy()

    ints = int_columns()
    for c in names:  # integer columns that NaN turned into floats: integers again
        if c in ints:
            v = pd.to_numeric(out[c], errors="coerce")
            if ((v.dropna() % 1) == 0).all():
                out[c] = v.round().astype("Int64")
    if fmt == "csv":
        return out.to_csv(index=False)
    records = [{k: _json_value(v) for k, v in r.items()} for r in out.astype(object).to_dict(orient="records")]
    return json.dumps(records, indent=1, ensure_ascii=False) + "\n"


def _markdown(groups: Sequence[Sequence[Column]], rows: list[dict[str, Any]], teacher: Mapping[str, Any],
              title: str | None, left_out: Sequence[str], empty: Sequence[str]) -> str:
    lines = [f"**{title}**", ""] if title else []
    body = _with_teacher(rows, teacher, groups)
    for i, g in enumerate(groups):
        if i:
            lines.append("")
        lines.append("| " + " | ".join(_md(c.header) for c in g) + " |")
        lines.append("|" + "|".join(":---" if c.justify == "left" else "---:" for c in g) + "|")
        for r in (body if i == 0 else rows):  # the teacher row only in the first table: it has no hyperparameters
            lines.append("| " + " | ".join(_md(c.cell(r)) for c in g) + " |")
    notes = _notes(rows, left_out, empty)
    if notes:
        lines += ["", *[f"- {n}" for n in notes]]
    return "\n".join(lines) + "\n"


def _md(text: str) -> str:
    return " ".join(str(text).split()).replace("|", "\\|")


def _table(groups: Sequence[Sequence[Column]], rows: list[dict[str, Any]], teacher: Mapping[str, Any],
           df: pd.DataFrame, width: int, title: str | None, margin: float | None, left_out: Sequence[str],
           empty: Sequence[str]) -> str:
    width = max(20, int(width))
    console = Console(file=io.StringIO(), width=width, color_system=None, force_terminal=False, legacy_windows=False,
                      soft_wrap=False, emoji=False, highlight=False, markup=False)
    body = _with_teacher(rows, teacher, groups)
    tables: list[tuple[list[Column], list[dict[str, Any]]]] = []
    for i, g in enumerate(groups):
        these = body if i == 0 else rows  # the teacher row only in the first table: it has no hyperparameters
        split = _split(console, g, these, width)
        if split is None:  # not even one column beside the trial's fits: one block per trial
            return _stacked(groups, body, rows, width, title, _notes(rows, left_out, empty) + _legend(df, margin))
        tables += [(t, these) for t in split]
    if title:
        console.print(title, overflow="fold")
    for t, these in tables:
        console.print(_rich_table(t, these))
    for line in _notes(rows, left_out, empty) + _legend(df, margin):
        console.print(line, overflow="fold")
    return console.file.getvalue()


def _rich_table(cols: Sequence[Column], body: list[dict[str, Any]]) -> Any:
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False, show_edge=False, collapse_padding=True)
    for c in cols:
        table.add_column(c.header, justify=c.justify, overflow="fold", no_wrap=False)  # fold: never "…"
    for r in body:
        table.add_row(*[c.cell(r) for c in cols])
    return table


def _split(console: Any, cols: Sequence[Column], body: list[dict[str, Any]], width: int) -> list[list[Column]] | None:
    """`cols` as one table when it fits `width` (wrapping words within cells if need be), else as
    several tables of consecutive columns, each with the trial column; None when the trial column
    and any one other column cannot fit."""
    def fits(c: Sequence[Column], use_max: bool) -> bool:
        m = Measurement.get(console, console.options.update_width(10_000), _rich_table(c, body))
        return (m.maximum if use_max else m.minimum) <= width

    if fits(cols, use_max=False):
        if fits(cols, use_max=True) or len(cols) <= 2:
            return [list(cols)]
        # it fits only by wrapping words: prefer whole tables that do not wrap, when each fits unwrapped
    key, rest = cols[0], list(cols[1:])
    out: list[list[Column]] = []
    current: list[Column] = [key]
    for c in rest:
        if len(current) > 1 and not fits([*current, c], use_max=True):
            out.append(current)
            current = [key]
        current.append(c)
        if not fits(current, use_max=False):
            return None
    out.append(current)
    if fits(cols, use_max=False) and len(out) > 2:
        return [list(cols)]  # splitting would scatter it: one table, some cells wrapped
    return out


def _stacked(groups: Sequence[Sequence[Column]], body: list[dict[str, Any]], rows: list[dict[str, Any]], width: int,
             title: str | None, notes: Sequence[str]) -> str:
    """One block per trial ("name: value" lines), for widths no table fits in; wrapped, never cut."""
    def wrap(text: str, indent: str = "", more: str = "  ") -> list[str]:
        return textwrap.wrap(text, width=width, initial_indent=indent, subsequent_indent=more,
                             break_long_words=True, break_on_hyphens=False) or [""]

    out = wrap(title) if title else []
    for r in body:
        out += wrap(_trial_column().cell(r))
        for i, g in enumerate(groups):
            if i and r.get("_teacher"):
                continue
            for c in g[1:]:
                out += wrap(f"{' '.join(c.header.split())}: {c.cell(r)}", "  ", "    ")
    for line in notes:
        out += wrap(line)
    return "\n".join(out) + "\n"


def _with_teacher(rows: list[dict[str, Any]], teacher: Mapping[str, Any], groups: Sequence[Sequence[Column]]) -> list[dict[str, Any]]:
    """The teacher as the first row (accuracy with its interval, params, its shape), when known."""
    if not teacher or not _finite(teacher.get("accuracy")):
        return rows
    valid = (teacher.get("metrics") or {}).get("valid") or {}
    original = {k: next((r[k] for r in rows if _finite(r.get(k))), None) for k in original_columns()}
    t = {"trial_id": "teacher", "_teacher": True, "accuracy": teacher.get("accuracy"),
         "accuracy_ci_low": valid.get("ci_low"), "accuracy_ci_high": valid.get("ci_high"), "params": teacher.get("params"),
         "retimed_speedup": 1.0, "speedup": 1.0}
    t["shape"] = _shape({k.total_key: original.get(k.original_key) for k in shape_order()}) or "–"
    for g in groups:
        for c in g:
            if c.key not in ("trial_id", "accuracy", "accuracy_diff", "accuracy_drop", "retimed_speedup", "speedup",
                             "params", "shape"):
                t.setdefault(c.key, teacher.get(c.key))
    return [t, *rows]


def _notes(rows: list[dict[str, Any]], left_out: Sequence[str], empty: Sequence[str] = ()) -> list[str]:
    """Why trials are not final (errors, early stops) and what the wide table leaves out."""
    notes = []
    for r in rows:
        status = r.get("status")
        if status in (None, "complete"):
            continue
        err = r.get("error")
        why = " ".join(str(err).split()) if isinstance(err, str) and err else (
            f"stopped early{' by ' + str(r['stopped_by']) if r.get('stopped_by') else ''}: not final"
            if status == "pruned" else "")
        if why:
            notes.append(f"{r.get('trial_id')} {status}: {why}")
    if left_out:
        notes.append(f"not in the table: {', '.join(left_out)} (long strings; --format json or csv has them)")
    if empty:
        notes.append(f"no trial has a value for: {', '.join(empty)}")
    return notes


def _legend(df: pd.DataFrame, margin: float | None) -> list[str]:
    """What the short headers mean, in one or two lines under the table."""
    parts = ["★ on the Pareto front", "accuracy on the valid split"]
    if _any(df, "accuracy_diff"):
        parts.append("Δ pt: student − teacher on the same problems, paired 95% interval"
                     + (f"; ✓ non-inferior at a {margin:g}-point margin (interval above −{margin:g}), ✗ not shown to be"
                        if margin is not None else ""))
    elif "accuracy_drop" in df:
        parts.append("Δ pt: student − teacher" + ("; p: exact McNemar test on the same problems"
                                                  if _any(df, "accuracy_p_vs_teacher") else ""))
    sources = _speed_sources(df)
    if _any(df, "retimed_speedup"):
        parts.append("speed: re-timed side by side with the teacher, 95% interval"
                     + ("" if df["retimed_speedup"].notna().all() else
                        f" (rows not re-timed: the sweep's {' / '.join(sources)} figure, named)"))
    elif "speedup" in df:
        parts.append(f"speed: {' / '.join(sources)}" + (" (named in each cell)" if len(sources) > 1 else ""))
    if "shape" in df and df["shape"].notna().any():
        parts.append("shape: L layers · H attention heads · F FFN channels kept")  # (the built-in marks; a kind with no mark is named in the cell)
    return ["; ".join(parts)]


# -- helpers ---------------------------------------------------------------------------------------

def _missing(v: Any) -> bool:
    if v is None:
        return True
    try:
        return bool(pd.isna(v))
    except (TypeError, ValueError):
        return False


def _finite(v: Any) -> bool:
    try:
        return v is not None and not isinstance(v, bool) and math.isfinite(float(v))
    except (TypeError, ValueError):
        return False


def _any(df: pd.DataFrame, col: str) -> bool:
    return col in df and bool(df[col].notna().any())


def _json_value(v: Any) -> Any:
    if hasattr(v, "item") and callable(v.item):
        v = v.item()
    if isinstance(v, float) and not math.isfinite(v):
        return None
    if _missing(v):
        return None
    return v

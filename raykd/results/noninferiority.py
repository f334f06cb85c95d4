"""Non-inferiority over a table of students: which rows are shown "not worse than the teacher by
more than M points", and the fastest of them.

"No significant drop" (a McNemar p above 0.05) is what a small test set gives any student, however
much it lost; non-inferiority asks the opposite question with the burden on the student: the 95%
interval of the paired difference (student - teacher, `raykd.stats.paired_difference`) must
lie above -M. Rows carry that interval as `accuracy_diff_low` (results store, chain records) or,
in older sweeps, only their per-problem bits, from which it is computed here against the teacher's.

Margins here are in accuracy POINTS (2 = 2 percentage points), as on the command line; the
intervals are stored in proportion units. No Ray, no torch.
"""

from __future__ import annotations

import math
from typing import Any, Mapping

import numpy as np
import pandas as pd

from raykd.stats import check_margin, margin_from_points, paired_difference, unpack_correct


def diff_low(df: pd.DataFrame, teacher: Mapping[str, Any] | None = None) -> np.ndarray:
    """Each row's lower 95% bound of (student - teacher) valid accuracy, in proportion units: the
    stored `accuracy_diff_low` where finite, else computed from the row's `accuracy_correct` bits and
    the teacher's (`teacher["metrics"]["valid"]["correct_bits"]`, as a sweep's meta records them),
    else NaN (the row cannot be judged)."""
    out = pd.to_numeric(df["accuracy_diff_low"], errors="coerce").to_numpy(dtype=float, na_value=np.nan, copy=True) \
        if "accuracy_diff_low" in df.columns else np.full(len(df), np.nan)
    valid = ((teacher or {}).get("metrics") or {}).get("valid") or {}
    t_bits, t_n = valid.get("correct_bits"), valid.get("n")
    if not isinstance(t_bits, str) or not _finite(t_n) or "accuracy_correct" not in df.columns or "accuracy_n" not in df.columns:
        return out
    t_flags = None
    for i, (bits, n) in enumerate(zip(df["accuracy_correct"], df["accuracy_n"])):
        if math.isfinite(out[i]) or not isinstance(bits, str) or not _finite(n) or int(n) != int(t_n):
            continue
        t_flags = t_flags if t_flags is not None else unpack_correct(t_bits, int(t_n))
        out[i] = paired_difference(t_flags, unpack_correct(bits, int(n))).low
    return out


def non_inferior_mask(df: pd.DataFrame, margin_points: float, teacher: Mapping[str, Any] | None = None) -> np.ndarray:
    """Rows whose paired 95% interval lies above -margin_points (points, e.g. 2); rows with no
    interval are False (never assumed non-inferior)."""
    margin = margin_from_points(margin_points)
    check_margin(margin)
    low = diff_low(df, teacher)
    return np.isfinite(low) & (low > -margin)


def fastest_non_inferior(df: pd.DataFrame, margin_points: float, teacher: Mapping[str, Any] | None = None,
                         speed: str = "speedup") -> pd.Series | None:
    """The complete row with the highest `speed` among those non-inferior at `margin_points`
    (ties: higher accuracy, then the smaller trial id); None when no row qualifies."""
    ok = non_inferior_mask(df, margin_points, teacher)
    if "status" in df.columns:
        ok &= np.asarray(df["status"].astype(str) == "complete", dtype=bool)
    speeds = pd.to_numeric(df[speed], errors="coerce").to_numpy(dtype=float, na_value=np.nan) if speed in df.columns \
        else np.full(len(df), np.nan)
    ok &= np.isfinite(speeds)
    if not ok.any():
        return None
    cand = df[ok].assign(_speed=speeds[ok])
    keys = ["_speed"] + [k for k in ("accuracy",) if k in cand.columns] + [k for k in ("trial_id",) if k in cand.columns]
    asc = [False] * (len(keys) - ("trial_id" in keys)) + ([True] if "trial_id" in keys else [])
    return cand.sort_values(keys, ascending=asc, kind="stable").iloc[0].drop(labels="_speed")


def _finite(v: Any) -> bool:
    try:
        return v is not None and math.isfinite(float(v))
    except (TypeError, ValueError):
        return False

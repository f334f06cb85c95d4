"""Small value helpers of the analysis layer (NaN-aware reads of result rows)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd


def _finite(v: Any) -> bool:
    try:
        return v is not None and not isinstance(v, bool) and math.isfinite(float(v))
    except (TypeError, ValueError):
        return False


def _missing(v: Any) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v)) or v is pd.NA


def _num(df: pd.DataFrame, col: str) -> np.ndarray:
    if col not in df.columns:
        return np.full(len(df), np.nan)
    return pd.to_numeric(df[col], errors="coerce").to_numpy(dtype=float, na_value=np.nan)


def _py(v: Any) -> Any:
    if hasattr(v, "item") and callable(v.item):
        v = v.item()
    return None if _missing(v) else v


def _short(text: str, n: int) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= n else text[: n - 1] + "…"

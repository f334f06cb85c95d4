"""Calibration: one factor per structure kind, fitted to mixed shapes timed with the table.

Savings measured one kind at a time do not quite add up when a model cuts heads, FFN channels and
layers together (tiny solver, decode: every mixed shape over-predicted, median 7-9%, up to 27%).
So the table's one timing call also times `calibration` mixed shapes (seeded random cuts of every
registered kind, drawn like the shapes a chain makes: `mixed_variant`), and one non-negative
factor per kind is fitted by least squares (scipy's `nnls`) to their measured savings: what a
mixed shape saves on each kind, as a share of what the uniform variants said. Per kind rather than
one factor for all: on the default sweep's own models, which mostly drop layers and cut few heads,
one factor fitted to mixed shapes under-predicted by a median 8.4% and per-kind factors by 5.4%
(BENCHMARKS.md §18). The leave-one-out error on the calibration shapes (each predicted by a fit on
the others) is stored: the table's own estimate, under the conditions it was timed in, of how well
it predicts a shape it did not see.
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping
from typing import Any

from torch import nn

from raykd.measure.latency.kinds import BUILTIN
from raykd.measure.latency.predictor import LatencyTable, shape_sizes
from raykd.measure.latency.registry import component_order, latency_names

COMPONENTS = BUILTIN  # the built-in kinds' components; every registered kind is one (`latency_names()`)
# 16, not 8: three tables of one teacher with 8 shapes each missed the sweep's re-timed models by up
# to 12.9%; four with 16 shapes by at most 3.3%, for 4 s more table time (BENCHMARKS.md §18c). The
# factors themselves still move (FFN 0.68-0.82 over those four): the predictions are what is stable
CALIBRATION_SHAPES = 16
FACTOR_WARN = (0.7, 1.3)  # a fitted factor outside this says the one-type-at-a-time savings are far off


def fit_scale(components: list[dict[str, float]], measured: list[float]) -> dict[str, float]:
    """Non-negative least-squares factors (scipy's `nnls`) with measured_i ~ sum_c scale_c x
    components_i[c], over the components some shape saved on (in registration order); {} (the
    table stays additive) when there are not more shapes than factors, or a factor comes out 0 (a
    structure kind that saves nothing would make a smaller model no faster: the timings cannot be
    trusted to fit)."""
    import numpy as np
    from scipy.optimize import nnls

    names = component_order({c for row in components for c in row})
    used = [c for c in names if any(row.get(c, 0.0) > 0 for row in components)]
    if not used or len(measured) <= len(used):
        return {}
    x = np.array([[row.get(c, 0.0) for c in used] for row in components])
    factors, _ = nnls(x, np.array(measured, dtype=float))
    if not all(f > 0 for f in factors):
        return {}
    return {c: float(f) for c, f in zip(used, factors)}


def speedup_from_savings(dense_ms: float, savings: Mapping[str, float], scale: Mapping[str, float]) -> float:
    """dense / (dense - sum of each component's savings times its factor; 1.0 where absent)."""
    return dense_ms / (dense_ms - sum(scale.get(c, 1.0) * ms for c, ms in savings.items()))


def calibrate(additive: LatencyTable, shapes: dict[str, nn.Module], variant_ms: dict[str, float]) -> tuple[dict[str, float], dict[str, Any]]:
    """The fitted factors, and how well they predict: every calibration shape's measured speedup,
    the additive and calibrated predictions, and the leave-one-out error (each shape predicted by a
    fit on the others, additively where the others cannot be fitted) that tells a user what to
    expect on a shape the table has not seen."""
    names = list(shapes)
    comps = [additive.savings_of_shape(shape_sizes(shapes[n])) for n in names]
    measured = [additive.dense_ms - variant_ms[n] for n in names]
    scale = fit_scale(comps, measured)

    def speedup(factors: dict[str, float], comp: dict[str, float]) -> float:
        return speedup_from_savings(additive.dense_ms, comp, factors)

    rows, loo = [], []
    for i, n in enumerate(names):
        held_out = fit_scale(comps[:i] + comps[i + 1:], measured[:i] + measured[i + 1:]) if scale else {}
        actual = additive.dense_ms / variant_ms[n]
        row = {"shape": n, "measured": round(actual, 4), "additive": round(speedup({}, comps[i]), 4),
               "calibrated": round(speedup(scale, comps[i]), 4), "held_out": round(speedup(held_out, comps[i]), 4),
               "saved_ms": round(measured[i], 4), "components_ms": {c: round(v, 4) for c, v in comps[i].items()}}
        rows.append(row)
        loo.append(abs(row["held_out"] / actual - 1))
    report: dict[str, Any] = {
        "shapes": len(names), "scale": scale, "rows": rows,
        "additive_median_error": _median_error(rows, "additive"), "additive_max_error": _max_error(rows, "additive"),
        "held_out_median_error": round(statistics.median(loo), 4) if loo and scale else None,
        "held_out_max_error": round(max(loo), 4) if loo and scale else None,
    }
    if not scale:
        used = sum(1 for c in latency_names() if any(r[c] > 0 for r in comps))
        report["note"] = (f"not fitted: {len(names)} calibration shape(s) for {used} factor(s)" if len(names) <= used or not used
                          else "not fitted: a structure type's fitted factor was 0")
    off = {c: round(f, 3) for c, f in scale.items() if not FACTOR_WARN[0] <= f <= FACTOR_WARN[1]}
    if off:
        report["warning"] = (f"fitted factors {off} are outside {FACTOR_WARN[0]}-{FACTOR_WARN[1]}: the one-type-at-a-time "
                             f"savings are far from what mixed shapes save (seen on quiet machines too, BENCHMARKS.md §18b: "
                             f"the calibrated figures are still the table's best estimate)")
    return scale, report


def _median_error(rows: list[dict[str, Any]], key: str) -> float | None:
    return round(statistics.median(abs(r[key] / r["measured"] - 1) for r in rows), 4) if rows else None


def _max_error(rows: list[dict[str, Any]], key: str) -> float | None:
    return round(max(abs(r[key] / r["measured"] - 1) for r in rows), 4) if rows else None


def calibration_summary(table: LatencyTable) -> str:
    """One line: the fitted factors and the table's error on mixed shapes it was not fitted to."""
    report = table.meta.get("calibration")
    if not report:
        return "latency table: not calibrated (an older format: savings are summed as measured one type at a time)"
    if not report.get("scale"):
        return f"latency table: additive ({report.get('note', 'no calibration shapes')})"
    # a fixed order: a table read back from JSON (keys sorted) says the same line as when it was built
    factors = ", ".join(f"{c} x{report['scale'][c]:.3f}" for c in component_order(report["scale"]))
    line = (f"latency table: calibrated on {report['shapes']} mixed shapes ({factors}); error on a shape left out of the "
            f"fit: median {report['held_out_median_error']:.1%}, max {report['held_out_max_error']:.1%} "
            f"(additive: median {report['additive_median_error']:.1%}, max {report['additive_max_error']:.1%})")
    return line + (f"; WARNING: {report['warning']}" if report.get("warning") else "")

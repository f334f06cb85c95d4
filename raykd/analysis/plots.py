"""Plots of a sweep: the front (accuracy vs measured speedup by default) and one trial's rounds.

Built on `matplotlib.figure.Figure` directly (no pyplot, no global backend switch), so it works
headless (Agg) and inline in a notebook alike. Every function returns the Figure and, given
`path`, writes it (PNG/SVG/PDF by suffix).
"""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from raykd.analysis.errors import NoCompleteTrialError
from raykd.analysis.paper import DATASET_NAMES, PAPER_LABEL, paper_dataset, paper_points
from raykd.errors import RaykdInputError
from raykd.outputs import PNG_SOFTWARE
from raykd.results.pareto import check_objectives, format_objectives
from raykd.storage import write_bytes_atomic

# metric -> (axis label, scale applied to the stored value)
METRIC_AXES: dict[str, tuple[str, float]] = {
    "accuracy": ("valid answer accuracy (%)", 100.0),
    "test_accuracy": ("test answer accuracy (%)", 100.0),
    "speedup": ("speedup vs teacher (×; latency-table prediction unless the sweep measured it)", 1.0),
    "measured_speedup": ("measured speedup vs teacher (×, latency ratio in the trial)", 1.0),
    "retimed_speedup": ("re-timed speedup vs teacher (×, side by side)", 1.0),
    "ideal_speedup": ("ideal speedup vs teacher (×, FLOPs ratio)", 1.0),
    "params": ("parameters (millions)", 1e-6),
    "flops": ("FLOPs per batch (GFLOPs, analytic)", 1e-9),
    "memory_bytes": ("memory (MiB)", 1.0 / 2**20),
    "latency_ms": ("latency (ms)", 1.0),
    "params_reduction": ("params reduction (%)", 100.0),
    "flops_reduction": ("FLOPs reduction (%)", 100.0),
    "memory_reduction": ("memory reduction (%)", 100.0),
}
# The teacher's position on an axis: a fixed value (ratios) or its recorded figure.
TEACHER_AXIS = {"speedup": 1.0, "ideal_speedup": 1.0, "params_reduction": 0.0, "flops_reduction": 0.0,
                "memory_reduction": 0.0}

FRONT_COLOR = "#1f5fbf"
PICK_COLOR = "#e07b00"
PAPER_COLOR = "#c0392b"
OTHER_COLOR = "#8c8c8c"


def _axis(metric: str) -> tuple[str, float]:
    return METRIC_AXES.get(metric, (metric, 1.0))


def _vals(df: pd.DataFrame, metric: str) -> np.ndarray:
    return pd.to_numeric(df[metric], errors="coerce").to_numpy(dtype=float, na_value=np.nan) * _axis(metric)[1]


def trial_label(trial_id: str) -> str:
    """A short label for a trial id (Ray's ids look like 'a1b2c3d4_00003')."""
    text = str(trial_id)
    if len(text) <= 10:
        return text
    tail = text.rsplit("_", 1)[-1]
    return tail if 2 <= len(tail) <= 10 else text[-8:]


def _new_figure(ax: Any, size: tuple[float, float]) -> tuple[Any, Any]:
    if ax is not None:
        return ax.figure, ax
    from matplotlib.figure import Figure  # deferred: matplotlib (~0.3 s), only when a plot is drawn

    fig = Figure(figsize=size, layout="constrained")
    return fig, fig.add_subplot()


def _save(fig: Any, path: str | os.PathLike | None) -> None:
    """Write the figure whole (rendered in memory, then one atomic write); a PNG is marked as
    raykd's, so that `--png` may later replace it without --force."""
    if path is not None:
        target = Path(path).expanduser()
        fmt = target.suffix.lstrip(".").lower() or "png"
        buf = io.BytesIO()
        fig.savefig(buf, format=fmt, dpi=150, metadata={"Software": PNG_SOFTWARE} if fmt == "png" else None)
        write_bytes_atomic(target, buf.getvalue())


def plot_front(sweep: Any, path: str | os.PathLike | None = None, ax: Any = None, objectives: Any = None,
               max_drop: float | None = None, pick: Any = None, paper: bool = True, annotate: bool = True,
               reference: Any = None, margin: float | None = None) -> Any:
    """Accuracy against measured speedup (or the sweep's / given first two objectives: y = the
    first, x = the second): every complete trial, the front highlighted and connected, pruned
    trials as crosses, failed ones counted in the legend, the teacher as a reference point, the
    paper's Table 1 points when the data set is ASDiv-A or Math23k, and the chosen point (`pick`, a
    row, or the result of `sweep.query(max_drop=max_drop)`) ringed. With accuracy on y, each
    point's 95% accuracy interval is a vertical bar (gid "accuracy-ci"), and `margin` (accuracy
    points) shades the teacher's non-inferiority band, teacher − margin to the teacher (gid
    "non-inferiority-band")."""
    sw = sweep  # a Sweep (raykd.analysis.plot_front opens a path or URI first)
    objs = check_objectives(sw.df, objectives if objectives is not None else sw.objectives)
    if len(objs) < 2:
        raise ValueError("plot_front needs two objectives (y, x)")
    (ym, ymode), (xm, xmode) = objs[0], objs[1]
    df = sw.df
    front_mask = sw.pareto_mask(objs)
    status = df["status"].astype(str).to_numpy()
    x, y = _vals(df, xm), _vals(df, ym)
    finite = np.isfinite(x) & np.isfinite(y)
    fig, ax = _new_figure(ax, (8.5, 6.0))

    complete = (status == "complete") & finite & ~front_mask
    if complete.any():
        ax.scatter(x[complete], y[complete], s=36, color=OTHER_COLOR, alpha=0.75, edgecolor="white", linewidth=0.5,
                   label=f"other complete trials ({int(complete.sum())})", zorder=2)
    pruned = status == "pruned"
    pruned_plotted = pruned & finite
    if pruned.any():
        extra = f", {int((pruned & ~finite).sum())} without metrics" if (pruned & ~finite).any() else ""
        ax.scatter(x[pruned_plotted], y[pruned_plotted], s=30, marker="x", color="#b5b5b5", linewidth=1.2,
                   label=f"pruned early ({int(pruned.sum())}{extra}; not final)", zorder=1)
    failed = int((status == "failed").sum())
    running = int((status == "running").sum())
    if failed:
        ax.scatter([], [], marker="", label=f"failed: {failed} (not plotted)")
    if running:
        ax.scatter([], [], marker="", label=f"running: {running} (not plotted)")

    if front_mask.any():
        order = np.argsort(x[front_mask], kind="stable")
        fx, fy = x[front_mask][order], y[front_mask][order]
        ax.plot(fx, fy, color=FRONT_COLOR, linewidth=1.6, alpha=0.8, zorder=3)
        ax.scatter(fx, fy, s=70, color=FRONT_COLOR, edgecolor="white", linewidth=0.8, zorder=4,
                   label=f"Pareto front ({int(front_mask.sum())})")
        if annotate:
            ids = df["trial_id"].to_numpy()[front_mask][order]
            for i, (xi, yi, tid) in enumerate(zip(fx, fy, ids)):
                last = i == len(fx) - 1 and len(fx) > 0  # the rightmost label goes left of its point
                ax.annotate(trial_label(tid), (xi, yi), xytext=(-6 if last else 5, 6), textcoords="offset points",
                            fontsize=7.5, color=FRONT_COLOR, ha="right" if last else "left")

    # each point's 95% accuracy interval (Wilson, on the valid split): a vertical bar through it
    if ym == "accuracy" and "accuracy_ci_low" in df and df["accuracy_ci_low"].notna().any():
        scale = _axis(ym)[1]  # the interval in the axis' units (percent), like the point
        lo, hi = _vals(df, "accuracy_ci_low") * scale, _vals(df, "accuracy_ci_high") * scale
        shown = finite & np.isin(status, ("complete", "pruned")) & np.isfinite(lo) & np.isfinite(hi)
        if shown.any():
            bars = ax.errorbar(x[shown], y[shown], yerr=[np.maximum(y[shown] - lo[shown], 0), np.maximum(hi[shown] - y[shown], 0)],
                               fmt="none", ecolor=FRONT_COLOR, alpha=0.45, elinewidth=1.0, capsize=2, zorder=2,
                               label=f"95% accuracy interval ({int(shown.sum())})")
            for part in bars.lines[2]:  # the bars themselves (LineCollections), findable in the figure
                part.set_gid("accuracy-ci")

    # re-timed points (raykd pareto --retime): the measured speedup with its 95% interval, beside the
    # predicted one, joined by a thin line so each point's prediction error is visible
    if xm == "speedup" and "retimed_speedup" in df and df["retimed_speedup"].notna().any():
        rt = _vals(df, "retimed_speedup")
        ok = np.isfinite(rt) & np.isfinite(y)
        lo, hi = _vals(df, "retimed_low")[ok], _vals(df, "retimed_high")[ok]
        ax.errorbar(rt[ok], y[ok], xerr=[rt[ok] - lo, hi - rt[ok]], fmt="D", markersize=4, color="#555555",
                    ecolor="#999999", elinewidth=1.0, capsize=2, zorder=4,
                    label=f"re-timed side by side, 95% CI ({int(ok.sum())}; {df['retimed_device'].dropna().iloc[0]})")
        for xi, ri, yi in zip(x[ok], rt[ok], y[ok]):
            ax.plot([xi, ri], [yi, yi], color="#bbbbbb", linewidth=0.8, zorder=1)

    # the teacher: y at its accuracy (or recorded figure), x at 1.0x / its recorded figure
    tx = TEACHER_AXIS.get(xm, sw.teacher.get(xm))
    ty = TEACHER_AXIS.get(ym, sw.teacher.get(ym))
    if tx is not None and ty is not None:
        txs, tys = float(tx) * _axis(xm)[1], float(ty) * _axis(ym)[1]
        ax.scatter([txs], [tys], s=170, marker="*", color="black", zorder=5,
                   label=f"teacher ({_fmt(tys, ym)}, {_fmt(txs, xm)})")
        if margin is not None and ym == "accuracy":
            band = ax.axhspan(tys - margin, tys, color=PICK_COLOR, alpha=0.10, linewidth=0, zorder=0,
                              label=f"non-inferiority band: teacher − {margin:g} pt")
            band.set_gid("non-inferiority-band")
        if max_drop is not None and ym == "accuracy":
            ax.axhline(tys - max_drop, color=PICK_COLOR, linestyle=":", linewidth=1.0, zorder=0,
                       label=f"teacher − {max_drop:g} pt")

    if pick is None and max_drop is not None:
        try:
            pick = sw.query(max_drop=max_drop)
        except NoCompleteTrialError:
            pick = None
    if pick is not None:
        px, py = float(pick[xm]) * _axis(xm)[1], float(pick[ym]) * _axis(ym)[1]
        ax.scatter([px], [py], s=260, facecolor="none", edgecolor=PICK_COLOR, linewidth=2.2, zorder=6,
                   label=f"pick: trial {trial_label(pick['trial_id'])}"
                         + (f" (fastest within {max_drop:g} pt)" if max_drop is not None else ""))

    points = paper_points(sw.meta.get("data")) if paper and (ym, xm) == ("accuracy", "speedup") else ()
    if points:
        ds = DATASET_NAMES[paper_dataset(sw.meta.get("data")) or ""]
        ax.scatter([p.speedup for p in points], [p.accuracy_pct for p in points], s=60, marker="D",
                   facecolor="none", edgecolor=PAPER_COLOR, linewidth=1.5, zorder=4,
                   label=f"{PAPER_LABEL}, {ds} test")
        for p in points:
            ax.annotate(f"{p.ratio:.0%}", (p.speedup, p.accuracy_pct), xytext=(5, -11), textcoords="offset points",
                        fontsize=7.5, color=PAPER_COLOR)

    ax.margins(x=0.08, y=0.08)  # room for the trial labels at the edges
    if xm in ("speedup", "ideal_speedup"):
        ax.axvline(1.0, color="black", linewidth=0.6, alpha=0.3, zorder=0)
    ax.set_xlabel(_axis(xm)[0] + ("  →  better" if xmode == "max" else "  ←  better"))
    ax.set_ylabel(_axis(ym)[0] + ("  ↑ better" if ymode == "max" else "  ↓ better"))
    ax.grid(True, alpha=0.25)
    try:
        hv = sw.hypervolume(objs, reference)
        ref = sw.reference_point(objs, reference)
        ref_text = ", ".join(f"{m} {_g(v)}" for m, v in ref.items())
        hv_text = f"hypervolume {hv:.4g} (reference: {ref_text})"
    except RaykdInputError:  # a reference that cannot be formed must not stop the plot
        hv_text = "hypervolume n/a"
    n_front = int(front_mask.sum())
    ax.set_title(f"{sw.name}: {ym} vs {xm}, {len(df)} trials, {n_front} on the front "
                 f"({format_objectives(objs)})\n{hv_text}", fontsize=10)
    ax.legend(loc="best", fontsize=8, framealpha=0.9)
    _save(fig, path)
    return fig


def plot_rounds(sweep: Any, trial_id: str, path: str | os.PathLike | None = None) -> Any:
    """One trial's recursive chain: accuracy (left) and measured / ideal speedup (right) by round,
    the teacher as round 0, each round labelled with its pruning ratio and heads kept."""
    from matplotlib.figure import Figure  # deferred: matplotlib (~0.3 s), only when a plot is drawn

    sw = sweep  # a Sweep (raykd.analysis.plot_rounds opens a path or URI first)
    rounds = sw.rounds(trial_id)
    row = sw.trial(trial_id)
    fig = Figure(figsize=(10.5, 4.2), layout="constrained")
    ax_acc, ax_sp = fig.subplots(1, 2)
    r = pd.to_numeric(rounds.get("round", pd.Series(dtype=float)), errors="coerce").to_numpy(dtype=float)
    t_acc = sw.teacher_accuracy
    acc = pd.to_numeric(rounds.get("accuracy", pd.Series(dtype=float)), errors="coerce").to_numpy(dtype=float) * 100
    xs_acc, ys_acc = (np.r_[0, r], np.r_[t_acc * 100, acc]) if t_acc is not None else (r, acc)
    ax_acc.plot(xs_acc, ys_acc, marker="o", color=FRONT_COLOR, label="student (valid)")
    if t_acc is not None:
        ax_acc.scatter([0], [t_acc * 100], s=150, marker="*", color="black", zorder=5, label="teacher (round 0)")
        ax_acc.axhline(t_acc * 100 - 0.5, color=PICK_COLOR, linestyle=":", linewidth=1.0, label="teacher − 0.5 pt")
    ax_acc.set_ylabel("valid answer accuracy (%)")
    for name, style in (("speedup", {"marker": "o", "color": FRONT_COLOR, "label": "measured (latency ratio)"}),
                        ("ideal_speedup", {"marker": "s", "linestyle": "--", "color": OTHER_COLOR, "label": "ideal (FLOPs ratio)"})):
        if name in rounds.columns:
            v = pd.to_numeric(rounds[name], errors="coerce").to_numpy(dtype=float)
            ax_sp.plot(np.r_[0, r], np.r_[1.0, v], **style)
    ax_sp.scatter([0], [1.0], s=150, marker="*", color="black", zorder=5, label="teacher (1.0×)")
    ax_sp.set_ylabel("speedup vs teacher (×)")
    ticks = [0, *[int(v) for v in r if np.isfinite(v)]]
    labels = ["teacher"]
    for _, rec in rounds.iterrows():
        text = f"{int(rec['round'])}"
        if "ratio" in rounds.columns and pd.notna(rec.get("ratio")):
            text += f"\n{float(rec['ratio']):.0%} pruned"
        if "heads_total" in rounds.columns and pd.notna(rec.get("heads_total")):
            total = rec.get("heads_original") if "heads_original" in rounds.columns else row.get("heads_original")
            text += f"\n{int(rec['heads_total'])}" + (f"/{int(total)} heads" if pd.notna(total) else " heads")
        labels.append(text)
    for ax in (ax_acc, ax_sp):
        ax.set_xticks(ticks, labels, fontsize=8)
        ax.set_xlabel("round")
        ax.grid(True, alpha=0.25)
        ax.legend(fontsize=8, loc="best")
    status = str(row.get("status"))
    fig.suptitle(f"{sw.name} / trial {trial_id} ({status}): the recursive prune → distill chain", fontsize=11)
    _save(fig, path)
    return fig


def plot_fronts(comparison: Any, path: str | os.PathLike | None = None, ax: Any = None) -> Any:
    """The fronts of several sweeps (a `Comparison` from compare_sweeps) on one plot."""
    objs = comparison.objectives
    (ym, _), (xm, _) = objs[0], objs[1]
    fig, ax = _new_figure(ax, (8.5, 6.0))
    colors = ["#1f5fbf", "#e07b00", "#2a9d3f", "#8e44ad", "#c0392b", "#16a085", "#7f8c8d"]
    for i, (label, front) in enumerate(comparison.fronts.items()):
        c = colors[i % len(colors)]
        df = comparison.df[(comparison.df["sweep"] == label) & (comparison.df["status"] == "complete")]
        ax.scatter(_vals(df, xm), _vals(df, ym), s=18, color=c, alpha=0.3)
        if len(front):
            order = np.argsort(_vals(front, xm), kind="stable")
            ax.plot(_vals(front, xm)[order], _vals(front, ym)[order], marker="o", color=c,
                    label=f"{label}: front {len(front)}, HV {comparison.hypervolumes[label]:.4g}")
        else:
            ax.scatter([], [], color=c, label=f"{label}: no complete trial")
    ax.set_xlabel(_axis(xm)[0])
    ax.set_ylabel(_axis(ym)[0])
    ax.grid(True, alpha=0.25)
    ref_text = ", ".join(f"{m} {_g(v)}" for m, v in comparison.reference.items())
    ax.set_title(f"fronts compared ({format_objectives(objs)}; HV reference: {ref_text})", fontsize=10)
    ax.legend(fontsize=8, loc="best")
    _save(fig, path)
    return fig


def _g(v: float) -> str:
    return f"{v:,.0f}" if abs(v) >= 1e4 else f"{v:g}"


def _fmt(v: float, metric: str) -> str:
    if metric in ("accuracy", "test_accuracy"):
        return f"{v:.1f}%"
    if metric in ("speedup", "ideal_speedup"):
        return f"{v:.2f}×"
    return f"{v:.3g}"

"""The pooled table of `raykd cv`: every held-out fold's per-problem results as one paired
comparison of the teacher and each round's students over all the problems (each evaluated once),
and its console form."""

from __future__ import annotations

import math
from typing import Any

from raykd.stats import accuracy_interval, margin_from_points, paired_difference, unpack_correct


def pool_folds(folds: list[dict[str, Any]], *, margin_points: float) -> dict[str, Any]:
    """One table over every problem of every held-out fold: the teacher and each round's students,
    accuracy with its Wilson interval, and against the teacher on the same problems the paired
    difference (Newcombe interval, points), exact McNemar p and non-inferiority at the margin."""
    margin = margin_from_points(margin_points)
    teacher: list[bool] = []
    ids: list[str] = []
    for f in folds:
        teacher += unpack_correct(f["teacher_correct"], f["n"])
        ids += f["problem_ids"]
    if len(set(ids)) != len(ids):
        raise RuntimeError("the pooled folds evaluate a problem twice")
    rounds = sorted({r["round"] for f in folds for r in f["rounds"]})
    rows = [{"model": "teacher", "round": 0, **_accuracy(accuracy_interval(teacher)), "speedup": 1.0,
             "speedup_min": 1.0, "speedup_max": 1.0}]
    for r in rounds:
        flags: list[bool] = []
        speeds, params = [], []
        for f in folds:
            (rec,) = [x for x in f["rounds"] if x["round"] == r] or [None]
            if rec is None:
                raise RuntimeError(f"fold {f['fold']} has no round {r}")
            flags += unpack_correct(rec["test_accuracy_correct"], rec["test_accuracy_n"])
            speeds.append(float(rec["speedup"]))
            params.append(rec.get("params"))
        diff = paired_difference(teacher, flags)
        lost = sum(1 for t, s in zip(teacher, flags) if t and not s)
        gained = sum(1 for t, s in zip(teacher, flags) if s and not t)
        rows.append({"model": f"round {r}", "round": r, **_accuracy(accuracy_interval(flags)),
                     "speedup": math.exp(sum(math.log(s) for s in speeds) / len(speeds)),  # geometric mean over folds
                     "speedup_min": min(speeds), "speedup_max": max(speeds),
                     "params": sum(params) / len(params) if all(p is not None for p in params) else None,
                     "accuracy_diff": diff.difference, "accuracy_diff_low": diff.low, "accuracy_diff_high": diff.high,
                     "accuracy_p_vs_teacher": diff.p_value, "accuracy_lost": lost, "accuracy_gained": gained,
                     "non_inferior": diff.non_inferior(margin)})
    return {"n": len(ids), "folds": len(folds), "margin_points": margin_points, "interval": "newcombe-hybrid-score, 95%",
            "teacher_fold_accuracy": [f["teacher_accuracy"] for f in folds],
            "teacher_fold_valid_accuracy": [f["teacher_valid_accuracy"] for f in folds],
            "rows": rows}


def _accuracy(metrics: dict[str, Any]) -> dict[str, Any]:
    return {"accuracy": metrics["accuracy"], "accuracy_n": metrics["n"], "accuracy_ci_low": metrics["ci_low"],
            "accuracy_ci_high": metrics["ci_high"]}


def print_pooled(pooled: dict[str, Any]) -> None:
    """The pooled table for people: points, with the intervals."""
    margin = pooled["margin_points"]
    folds = ", ".join(f"{100 * a:.1f}" for a in pooled["teacher_fold_accuracy"])
    print(f"pooled over {pooled['folds']} held-out folds, {pooled['n']} problems, each evaluated once "
          f"(teacher per fold: {folds}%)")
    head = f"{'model':<9} {'accuracy % [95% CI]':<22} {'Δ pt [95% CI]':<24} {'McNemar p':>9} {'-lost/+gained':>13} " \
           f"{'speedup (min-max)':>19}  not worse by {margin:g} pt"
    print(head)
    for r in pooled["rows"]:
        acc = f"{100 * r['accuracy']:.1f} [{100 * r['accuracy_ci_low']:.1f}, {100 * r['accuracy_ci_high']:.1f}]"
        if r["round"] == 0:
            print(f"{r['model']:<9} {acc:<22} {'–':<24} {'–':>9} {'–':>13} {'1.00x':>19}  –")
            continue
        diff = f"{100 * r['accuracy_diff']:+.1f} [{100 * r['accuracy_diff_low']:+.1f}, {100 * r['accuracy_diff_high']:+.1f}]"
        speed = f"{r['speedup']:.2f}x ({r['speedup_min']:.2f}-{r['speedup_max']:.2f})"
        lg = f"-{r['accuracy_lost']}/+{r['accuracy_gained']}"
        print(f"{r['model']:<9} {acc:<22} {diff:<24} {r['accuracy_p_vs_teacher']:>9.2g} {lg:>13} {speed:>19}  "
              f"{'yes' if r['non_inferior'] else 'no'}")

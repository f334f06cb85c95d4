"""The paper's tables from a reproduction's results: measured (M), analytic (A), quoted (Q).

speed↑ is (measured speedup − 1) in percent: the student's median latency against the unpruned
teacher's, timed interleaved in one process on the chain's latency batch (see
raykd/method/round_cost.py). FLOPs↓ and params↓ count the whole solver (embeddings included).
"""

from __future__ import annotations

from typing import Any

from raykd import paper_figures as paper
from raykd.experiments.plan import TABLES
from raykd.experiments.run import ReproductionResult, model_key

LEVELS = ("simple", "medium", "complex")


def _pct(x: float | None, digits: int = 1) -> str:
    return "–" if x is None else f"{100 * x:.{digits}f}"


def _acc(x: float | None, n: Any, p: float | None = None) -> str:
    """'74.6 [66.2–81.5]': the accuracy with its 95% Wilson interval from the count (raykd's
    `wilson_interval`); ' p=0.31' appended when a paired test against the teacher was stored."""
    if x is None:
        return "–"
    if not n:
        return _pct(x)
    from raykd.stats import wilson_interval

    n = int(n)
    low, high = wilson_interval(round(x * n), n)
    return f"{100 * x:.1f} [{100 * low:.1f}–{100 * high:.1f}]" + ("" if p is None else f" p={p:.2f}")


def _test_acc(result: ReproductionResult, rec: dict[str, Any]) -> str:
    n = rec.get("test_accuracy_n") or result.teacher["test"].get("n")
    return _acc(rec.get("test_accuracy"), n, rec.get("test_accuracy_p_vs_teacher"))


def _valid_acc(rec: dict[str, Any]) -> str:
    n = rec.get("accuracy_n") or (rec.get("valid") or {}).get("n")
    return _acc(rec.get("accuracy"), n, rec.get("accuracy_p_vs_teacher"))


ACCURACY_NOTE = ("acc: % with its 95% Wilson interval [low–high] from the count; p = exact McNemar test against "
                 "the teacher on the same problems, shown for runs that stored per-problem results (from 2026-12-01); "
                 "intervals that overlap do not by themselves show \"no loss\": only a paired test can.")


def _q(x: float | None) -> str:
    return "–" if x is None else f"{x:.1f}"


def _speed(rec: dict[str, Any], key: str = "speedup") -> str:
    return f"{100 * (rec[key] - 1):.1f}"


def speedup_of(result: ReproductionResult, name: str, rec: dict[str, Any]) -> float:
    """The side-by-side re-measured speedup (paired, see run.remeasure_speed) when there is one,
    else the one the chain measured right after training that round."""
    paired = result.speed.get("paired_speedup", {})
    return float(paired.get(model_key(name, rec["round"]), rec["speedup"]))


def _measured(result: ReproductionResult, name: str, rec: dict[str, Any]) -> str:
    return f"{100 * (speedup_of(result, name, rec) - 1):.1f}"


def _speed_note(result: ReproductionResult) -> str:
    sp = result.speed
    if not sp:
        return "speed↑: measured by the chain right after each round (one model vs the teacher at a time)."
    workload = sp.get("workload", "forward (the teacher-forced pass timed before 2026-12-02)")
    return (f"speed↑: workload {workload}; all models re-timed together against the teacher, interleaved round-robin, batch {sp['batch']}, "
            f"{sp['repeats']} rounds, {sp['threads']} thread(s), {sp['date']}; median of per-round ratios.")


def _final(result: ReproductionResult, name: str) -> dict[str, Any] | None:
    exp = result.experiments.get(name)
    return exp["records"][-1] if exp and exp.get("records") else None


def table1(result: ReproductionResult) -> dict[str, Any]:
    quoted = paper.quoted(paper.TABLE1, result.source) or {}
    t = result.teacher
    rows = [["0% (teacher)", "all", _acc(t["test"]["accuracy"], t["test"].get("n")), _acc(t["valid"]["accuracy"], t["valid"].get("n")),
             "0", "0", "0", "0", "0",
             *_paper1(quoted.get(0.0))]]
    exp = result.experiments.get("progressive")
    for rec in (exp or {}).get("records", []):
        rows.append([f"{100 * rec['ratio']:.0f}%", f"{rec['heads_total']}/{rec['heads_original']}", _test_acc(result, rec),
                     _valid_acc(rec), _pct(rec["params_reduction"]), _pct(rec["flops_reduction"]), _measured(result, "progressive", rec),
                     _speed(rec, "ideal_speedup"), _pct(rec["memory_reduction"]), *_paper1(quoted.get(round(rec["ratio"], 2)))])
    return {
        "title": "Table 1: pruning ratio -> accuracy and cost",
        "columns": ["ratio", "heads", "test acc % (M)", "valid acc % (M)", "params↓ % (M)", "FLOPs↓ % (A)", "speed↑ % (M)",
                    "ideal speed↑ % (A)", "memory↓ % (M)", "paper acc (Q)", "paper params↓ / speed↑ / FLOPs↓ (Q)"],
        "rows": rows,
        "notes": [ACCURACY_NOTE, _speed_note(result)],
    }


def _paper1(q: dict[str, float] | None) -> list[str]:
    if not q:
        return ["–", "–"]
    return [_q(q["accuracy"]), f"{q['params']:.1f} / {q['speed']:.1f} / {q['flops']:.1f}"]


def table3a(result: ReproductionResult) -> dict[str, Any]:
    quoted = paper.quoted(paper.TABLE3A, result.source) or {}
    rows = []
    for label, name in TABLES["3a"]:
        rec = _final(result, name)
        if rec is None:
            continue
        rows.append([label, _test_acc(result, rec), _valid_acc(rec), f"{rec['heads_total']}/{rec['heads_original']}",
                     _measured(result, name, rec), _q(quoted.get(float(label)))])
    return {"title": "Table 3a: α (norm vs entropy) at 25% of heads",
            "columns": ["α", "test acc % (M)", "valid acc % (M)", "heads", "speed↑ % (M)", "paper acc (Q)"], "rows": rows,
            "notes": [ACCURACY_NOTE, _speed_note(result)]}


def table3b(result: ReproductionResult) -> dict[str, Any]:
    rows = []
    order = sorted(result.evaluations, key=lambda k: (k != "teacher", result.evaluations[k].get("ratio", 0.0), k))
    for key in order:
        ev = result.evaluations[key]
        label = "teacher (0%)" if key == "teacher" else f"{100 * ev['ratio']:.0f}% ({key})"
        by = ev["by_complexity"]
        rows.append([label, f"{_acc(ev['accuracy'], ev['n'])} (n={ev['n']})",
                     *(f"{_acc(by[lv]['accuracy'], by[lv]['n'])} (n={by[lv]['n']})" if by[lv]["n"] else "– (n=0)" for lv in LEVELS)])
    return {"title": "Table 3b: test accuracy by complexity level, before and after pruning",
            "columns": ["model", "all % (M)", *(f"{lv} % (M)" for lv in LEVELS)], "rows": rows, "notes": [ACCURACY_NOTE]}


def table4(result: ReproductionResult) -> dict[str, Any]:
    quoted = paper.quoted(paper.TABLE4, result.source) or {}
    full = _final(result, "alpha-0.5")
    rows = []
    for label, name in TABLES["4"]:
        rec = _final(result, name)
        if rec is None:
            continue
        delta = "–" if full is None or rec.get("test_accuracy") is None else f"{100 * (rec['test_accuracy'] - full['test_accuracy']):+.1f}"
        q = quoted.get(label)
        q_delta = "–" if q is None or "full" not in quoted else f"{q - quoted['full']:+.1f}"
        rows.append([label, _test_acc(result, rec), delta, _valid_acc(rec), f"{rec['heads_total']}/{rec['heads_original']}",
                     _pct(rec["params_reduction"]), _measured(result, name, rec), _q(q), q_delta])
    return {"title": "Table 4: ablations at 25% of heads",
            "columns": ["variant", "test acc % (M)", "Δ vs full (M)", "valid acc % (M)", "heads", "params↓ % (M)", "speed↑ % (M)",
                        "paper acc (Q)", "paper Δ vs full (Q)"], "rows": rows, "notes": [ACCURACY_NOTE, _speed_note(result)]}


def front(result: ReproductionResult) -> dict[str, Any]:
    """Every model the reproduction trained (each round of each experiment) and the teacher as
    points of (valid accuracy, measured speedup); the non-dominated ones, by raykd's Pareto helper.
    Selection uses the valid split only; the test accuracy is reported beside it."""
    import pandas as pd

    from raykd.results.pareto import pareto_mask

    t = result.teacher
    points = [{"point": "teacher", "accuracy": t["valid"]["accuracy"], "test_accuracy": t["test"]["accuracy"], "speedup": 1.0,
               "ideal_speedup": 1.0, "params_reduction": 0.0, "flops_reduction": 0.0, "heads": "all",
               "valid_cell": _acc(t["valid"]["accuracy"], t["valid"].get("n")), "test_cell": _acc(t["test"]["accuracy"], t["test"].get("n"))}]
    for name, exp in result.experiments.items():
        for rec in exp.get("records", []):
            points.append({"point": f"{name} r{rec['round']} ({100 * rec['ratio']:.0f}%)", "accuracy": rec["accuracy"],
                           "test_accuracy": rec.get("test_accuracy"), "speedup": speedup_of(result, name, rec),
                           "ideal_speedup": rec["ideal_speedup"],
                           "params_reduction": rec["params_reduction"], "flops_reduction": rec["flops_reduction"],
                           "heads": f"{rec['heads_total']}/{rec['heads_original']}",
                           "valid_cell": _valid_acc(rec), "test_cell": _test_acc(result, rec)})
    df = pd.DataFrame(points)
    on_front = df[pareto_mask(df, [("accuracy", "max"), ("speedup", "max")])].sort_values("speedup")
    rows = [[p.point, p.valid_cell, p.test_cell, f"{p.speedup:.3f}x", f"{p.ideal_speedup:.3f}x", _pct(p.params_reduction),
             _pct(p.flops_reduction), p.heads] for p in on_front.itertuples()]
    return {"title": f"Pareto front over all {len(df)} models (valid accuracy max, measured speedup max)",
            "columns": ["model", "valid acc % (M)", "test acc % (M)", "speedup (M)", "ideal speedup (A)", "params↓ % (M)",
                        "FLOPs↓ % (A)", "heads"], "rows": rows, "notes": [ACCURACY_NOTE, _speed_note(result)]}


BUILDERS = {"1": table1, "3a": table3a, "3b": table3b, "4": table4, "front": front}


def build_tables(result: ReproductionResult, tables: list[str] | tuple[str, ...] = tuple(TABLES)) -> dict[str, dict[str, Any]]:
    """The requested tables, then the Pareto front over everything trained so far."""
    return {t: BUILDERS[t](result) for t in [*tables, "front"]}


def render_markdown(tables: dict[str, dict[str, Any]]) -> str:
    parts = []
    for t in tables.values():
        lines = [f"### {t['title']}", "", "| " + " | ".join(t["columns"]) + " |", "|" + "---|" * len(t["columns"])]
        lines += ["| " + " | ".join(row) + " |" for row in t["rows"]]
        if not t["rows"]:
            lines.append("| " + " | ".join(["(not run)"] + ["" for _ in t["columns"][1:]]) + " |")
        lines += ["", *t.get("notes", [])] if t.get("notes") else []
        parts.append("\n".join(lines))
    return "\n\n".join(parts) + "\n"

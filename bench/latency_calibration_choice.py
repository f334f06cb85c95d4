"""One calibration factor for all savings, or one per structure type? Refits a stored latency
table's calibration shapes both ways (and not at all) and scores each fit on models the table
was not fitted to, measured side by side: the check shapes of a `bench/latency_predictor.py`
report (against their paired measured speedup), or a finished sweep's models (against their
re-timed speedup at the sweep's end). Reads stored results only: no timing.

    python bench/latency_calibration_choice.py --predictor bench/results/latency_calibration_choice_a.json
    python bench/latency_calibration_choice.py --sweep ~/raykd_runs/default
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from raykd.measure.latency import LatencyTable, fit_scale, latency_names, speedup_from_savings  # noqa: E402


def fits(table: LatencyTable) -> dict[str, dict[str, float]]:
    rows = table.meta["calibration"]["rows"]
    comps, saved = [r["components_ms"] for r in rows], [r["saved_ms"] for r in rows]
    total = [{"heads": sum(c.values())} for c in comps]  # one factor: every saving summed under one key
    one = fit_scale(total, saved).get("heads")
    return {"additive": {}, "one factor": dict.fromkeys(latency_names(), one) if one else {},
            "per structure type": fit_scale(comps, saved)}


def score(dense: float, models: list[tuple[dict[str, float], float]], scale: dict[str, float]) -> dict[str, float]:
    errors = [speedup_from_savings(dense, comps, scale) / measured - 1 for comps, measured in models]
    return {"median": round(statistics.median(abs(e) for e in errors), 4), "max": round(max(abs(e) for e in errors), 4),
            "over_predicted": sum(e > 0 for e in errors), "models": len(errors)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument("--predictor", type=Path, help="a bench/latency_predictor.py report (it stores its table)")
    src.add_argument("--sweep", type=Path, help="a finished sweep directory (teacher/latency_table.json, re-timed trials)")
    args = ap.parse_args()
    if args.predictor:
        report = json.loads(args.predictor.read_text())
        table = LatencyTable.from_dict(report["table"])
        models = [(r["components_ms"], r["paired_measured"]) for r in report["rows"]]
    else:
        from raykd.results.store import read_trials
        from raykd.structures import ffn_widths, head_counts, layer_counts
        from raykd.task.io import load_solver

        table = LatencyTable.load(args.sweep / "teacher" / "latency_table.json")
        models = []
        for r in read_trials(str(args.sweep)).to_pandas().dropna(subset=["retimed_speedup"]).itertuples():
            m = load_solver(r.checkpoint_path)[0]
            models.append((table.savings(head_counts(m), ffn_widths(m), layer_counts(m)), r.retimed_speedup))
    out = {name: {"scale": {c: round(f, 3) for c, f in scale.items()}, **score(table.dense_ms, models, scale)}
           for name, scale in fits(table).items()}
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()

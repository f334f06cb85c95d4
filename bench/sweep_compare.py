"""Two finished sweeps of the same space and seed, side by side: are they the same sweep?

Reads only the sweeps' stored results (no Ray, no timing): for each trial in order, whether the
sampled configurations are identical, the accuracies, the predicted speedups, and the front
membership; for every re-timed trial, the latency table's prediction against the side-by-side
re-timed measurement (absolute relative error), and whether the two runs' re-timed intervals of
the same configuration overlap.

    python bench/sweep_compare.py ~/raykd_runs/d1 ~/raykd_runs/d2 --json bench/results/front_stability.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from raykd.results.store import read_pareto, read_trials


def _rows(root: str) -> list[dict]:
    trials = read_trials(root).to_pandas().sort_values("finished_at")
    front = set(read_pareto(root).to_pandas().trial_id)
    out = []
    for r in trials.to_dict(orient="records"):
        hp = {k: r[k] for k in sorted(r) if k.startswith("hp_")}
        out.append({**r, "hp": hp, "on_front": r["trial_id"] in front})
    return out


def _num(v):
    return None if v is None or v != v else float(v)


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("first")
    ap.add_argument("second")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args(argv)
    a, b = _rows(args.first), _rows(args.second)
    pairs = []
    for i, (x, y) in enumerate(zip(a, b)):
        pairs.append({
            "trial": i + 1, "same_config": x["hp"] == y["hp"],
            "accuracy": [x["accuracy"], y["accuracy"]], "speedup": [x["speedup"], y["speedup"]],
            "on_front": [x["on_front"], y["on_front"]],
            "retimed": [[_num(r.get("retimed_speedup")), _num(r.get("retimed_low")), _num(r.get("retimed_high"))] for r in (x, y)],
        })
    errors = []
    for run in (a, b):
        for r in run:
            if _num(r.get("retimed_speedup")):
                errors.append(abs(r["speedup"] / r["retimed_speedup"] - 1))
    overlap = [p for p in pairs if all(v[0] for v in p["retimed"])]
    agree = sum(1 for p in overlap if p["retimed"][0][1] <= p["retimed"][1][2] and p["retimed"][1][1] <= p["retimed"][0][2])
    out = {
        "what": "two sweeps of one space and seed compared trial by trial (stored results only)",
        "command": "python bench/sweep_compare.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "trials": [len(a), len(b)],
        "same_configs": sum(p["same_config"] for p in pairs), "same_accuracies": sum(p["accuracy"][0] == p["accuracy"][1] for p in pairs),
        "same_predicted_speedups": sum(p["speedup"][0] == p["speedup"][1] for p in pairs),
        "same_front_membership": sum(p["on_front"][0] == p["on_front"][1] for p in pairs),
        "front_sizes": [sum(r["on_front"] for r in a), sum(r["on_front"] for r in b)],
        "retimed_in_both": len(overlap), "retimed_intervals_overlap": agree,
        "predictor_vs_retimed": {"models": len(errors), "median_abs_rel_error": round(statistics.median(errors), 4) if errors else None,
                                 "max_abs_rel_error": round(max(errors), 4) if errors else None},
        "pairs": pairs,
    }
    print(json.dumps({k: v for k, v in out.items() if k != "pairs"}, indent=1))
    print("| trial | same config | accuracy 1 / 2 | predicted 1 / 2 | front 1 / 2 | re-timed 1 [95% CI] | re-timed 2 [95% CI] |")
    print("|---|---|---|---|---|---|---|")
    for p in pairs:
        cells = ["–" if v[0] is None else f"{v[0]:.3f} [{v[1]:.3f}, {v[2]:.3f}]" for v in p["retimed"]]
        print(f"| {p['trial']} | {'yes' if p['same_config'] else 'no'} | {100 * p['accuracy'][0]:.1f} / {100 * p['accuracy'][1]:.1f} "
              f"| {p['speedup'][0]:.4f} / {p['speedup'][1]:.4f} | {'●' if p['on_front'][0] else '·'} / {'●' if p['on_front'][1] else '·'} "
              f"| {cells[0]} | {cells[1]} |")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(out, indent=1, default=str))
    return out


if __name__ == "__main__":
    main()

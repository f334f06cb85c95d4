"""How repeatable is a calibrated latency table? For a finished sweep's teacher, this builds the
table K times one after another (the sweep's batch, workload, threads and rounds) for each
calibration count asked for, and prints per table the dense model's median, the fitted factors,
the leave-one-out error on its calibration shapes, and its error on the sweep's re-timed models
(table speedup against the re-timed figure stored at the sweep's end). Nothing else may run beside it.

    python bench/latency_table_repeatability.py --sweep /tmp/runs/s8/default --calibration 8 16 --repeats 3 --json bench/results/latency_table_repeatability.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from latency_table_under_load import errors, sweep_inputs  # noqa: E402

from raykd.measure.latency import build_latency_table  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sweep", type=Path, required=True, help="a finished sweep directory")
    ap.add_argument("--calibration", type=int, nargs="+", default=[8], help="calibration shapes, one series per value")
    ap.add_argument("--repeats", type=int, default=3, help="tables per calibration count")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    inputs = sweep_inputs(args.sweep)
    space, task, dense, batch, threads, workload, models = (inputs[k] for k in (
        "space", "task", "dense", "batch", "threads", "workload", "models"))
    rows: list[dict[str, Any]] = []
    for shapes in args.calibration:
        for i in range(args.repeats):
            table = build_latency_table(task, dense, batch, rounds=space.speed["rounds"], threads=threads, workload=workload,
                                        calibration=shapes)
            cal = table.meta["calibration"]
            rows.append({"calibration": shapes, "repeat": i, "dense_ms": round(table.dense_ms, 2),
                         "scale": {c: round(f, 3) for c, f in sorted(table.scale.items())}, "wall_s": table.meta["wall_s"],
                         "held_out_median_error": cal.get("held_out_median_error"), "held_out_max_error": cal.get("held_out_max_error"),
                         "vs_retimed": errors(table, models)})
            r = rows[-1]
            print(f"calibration {shapes}, table {i + 1}: dense {r['dense_ms']} ms, factors {r['scale']}, held out "
                  f"{r['held_out_median_error']:.1%}/{r['held_out_max_error']:.1%}, vs re-timed {r['vs_retimed']['median']:.1%}/"
                  f"{r['vs_retimed']['max']:.1%} ({r['wall_s']} s)", flush=True)
    summary = {}
    for shapes in args.calibration:
        mine = [r for r in rows if r["calibration"] == shapes]
        summary[shapes] = {c: {"min": min(r["scale"].get(c, 1.0) for r in mine), "max": max(r["scale"].get(c, 1.0) for r in mine)}
                           for c in ("heads", "ffn", "layers")}
        summary[shapes]["vs_retimed_median_of_medians"] = statistics.median(r["vs_retimed"]["median"] for r in mine)
        summary[shapes]["vs_retimed_worst_max"] = max(r["vs_retimed"]["max"] for r in mine)
        print(f"calibration {shapes}: factor ranges {({c: (v['min'], v['max']) for c, v in summary[shapes].items() if isinstance(v, dict)})}; "
              f"vs re-timed: median of medians {summary[shapes]['vs_retimed_median_of_medians']:.1%}, worst max "
              f"{summary[shapes]['vs_retimed_worst_max']:.1%}")
    if args.json:
        args.json.write_text(json.dumps({"sweep": str(args.sweep), "threads": threads, "rounds": space.speed["rounds"],
                                         "models": len(models), "tables": rows, "summary": summary}, indent=1))


if __name__ == "__main__":
    main()

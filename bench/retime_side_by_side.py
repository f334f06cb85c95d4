"""Two sweeps' fronts re-timed side by side, several times: do their figures agree, and how far
does a whole re-timing move? (issue 11: front stability)

Each repeat runs `raykd pareto A --retime --with B` on copies of the two sweeps (the originals
are left as they are): both fronts and their runners-up, with both teachers, in the same
interleaved rounds of the same sessions, at the trials' thread count. Per repeat: how many points
the two sweeps share (same configuration), for how many their 95% intervals overlap, the median
and max |B / A - 1| of their re-timed speedups, the latency table's error against them, and the
teacher's milliseconds. Across repeats: the median shift of each repeat's figures against the
first (what separate re-timings cannot share), and the table's error against the mean of the
repeats.

    python bench/retime_side_by_side.py /tmp/runs/s10/default /tmp/runs/s11/default --repeats 5 \\
        --json bench/results/retime_side_by_side.json
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

SEARCHED = "hp_"  # a trial's configuration: its searched settings


def retimed_points(sweep: Path) -> dict[tuple, dict[str, Any]]:
    """configuration -> the stored row, for every re-timed trial of `sweep`."""
    from raykd.results.store import read_trials

    rows = read_trials(str(sweep)).to_pylist()
    return {tuple(sorted((k, round(v, 9)) for k, v in r.items() if k.startswith(SEARCHED) and isinstance(v, float))): r
            for r in rows if r.get("retimed_speedup") is not None}


def compare(a: dict[tuple, dict[str, Any]], b: dict[tuple, dict[str, Any]]) -> dict[str, Any]:
    shared = sorted(set(a) & set(b))
    overlap = sum(a[k]["retimed_low"] <= b[k]["retimed_high"] and b[k]["retimed_low"] <= a[k]["retimed_high"] for k in shared)
    diff = [abs(b[k]["retimed_speedup"] / a[k]["retimed_speedup"] - 1) for k in shared]
    err = [abs(r[k]["speedup"] / r[k]["retimed_speedup"] - 1) for r in (a, b) for k in shared]
    first = next(iter(a.values()))
    return {"shared": len(shared), "intervals_overlap": overlap, "median_abs_diff": round(statistics.median(diff), 4),
            "max_abs_diff": round(max(diff), 4), "table_median_error": round(statistics.median(err), 4),
            "table_max_error": round(max(err), 4), "retimed_at": first["retimed_at"], "threads": first["retimed_threads"],
            "teacher_ms": [round(a[shared[0]]["retimed_reference_ms"], 2), round(b[shared[0]]["retimed_reference_ms"], 2)]}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("a")
    ap.add_argument("b")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--rounds", type=int, default=30)
    ap.add_argument("--sessions", type=int, default=3)
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="raykd-sbs-"))
    t0 = time.perf_counter()
    try:
        copies = []
        for i, src in enumerate((args.a, args.b)):
            # results and teacher copied; checkpoints read where the rows point (the originals')
            dst = work / f"{i}" / Path(src).name
            shutil.copytree(src, dst, ignore=shutil.ignore_patterns("tune", "train"))
            copies.append(dst)
        repeats, points = [], []
        for r in range(args.repeats):
            cmd = [sys.executable, "-m", "raykd", "pareto", str(copies[0]), "--retime", "--rounds", str(args.rounds),
                   "--sessions", str(args.sessions), "--with", str(copies[1]), "--json"]
            subprocess.run(cmd, check=True, capture_output=True)
            a, b = retimed_points(copies[0]), retimed_points(copies[1])
            points.append(a)
            repeats.append(compare(a, b))
            print(f"repeat {r + 1}: {json.dumps(repeats[-1])}", flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    first = points[0]
    for rep, pts in zip(repeats, points):
        rep["shift_vs_first"] = round(statistics.median(pts[k]["retimed_speedup"] / first[k]["retimed_speedup"] - 1 for k in first), 4)
    mean = {k: statistics.mean(p[k]["retimed_speedup"] for p in points) for k in first}
    err_mean = [abs(first[k]["speedup"] / mean[k] - 1) for k in first]
    report = {"command": "python bench/retime_side_by_side.py " + " ".join(argv if argv is not None else sys.argv[1:]),
              "machine": platform.platform(), "date": time.strftime("%Y-%m-%d %H:%M"), "sweeps": [args.a, args.b],
              "rounds": args.rounds, "sessions": args.sessions, "repeats": repeats,
              "table_error_vs_mean_of_repeats": {"median": round(statistics.median(err_mean), 4), "max": round(max(err_mean), 4),
                                                 "per_point": {str(first[k]["trial_id"]): [round(first[k]["speedup"], 4), round(mean[k], 4)]
                                                               for k in first}},
              "wall_s": round(time.perf_counter() - t0, 1)}
    print(json.dumps({k: v for k, v in report.items() if k != "repeats"}, indent=1))
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())

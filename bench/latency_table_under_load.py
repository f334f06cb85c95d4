"""A latency table timed while the machine is busy: how far off is it, and does the cache's reuse
check catch it? For a finished sweep (its teacher, its quiet table, its re-timed models), this
times the table again with N CPU-bound processes running beside it (pure-Python busy loops at
the same niceness), then, with them stopped, times the dense model as `cached_latency_table` does
before a reuse and applies its verdict (`reuse_verdict`). Each table is scored on the sweep's
re-timed models (table speedup against the re-timed median ratio from the sweep's end). Nothing
else may run beside it.

    python bench/latency_table_under_load.py --sweep /tmp/runs/s6/default --busy 1 2 --json bench/results/latency_table_under_load.json
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from latency_calibration_choice import score  # noqa: E402

from raykd.measure.latency import LatencyTable, build_latency_table, dense_now_ms, reuse_verdict  # noqa: E402


def _spin() -> None:  # pragma: no cover - runs in a child process until terminated
    while True:
        pass


def errors(table: LatencyTable, models: list[tuple[Any, float]]) -> dict[str, Any]:
    """`table`'s error on (model, re-timed speedup) pairs (latency_calibration_choice.score)."""
    from raykd.structures import ffn_widths, head_counts, layer_counts

    return score(table.dense_ms, [(table.savings(head_counts(m), ffn_widths(m), layer_counts(m)), retimed)
                                  for m, retimed in models], table.scale)


def sweep_inputs(sweep: Path) -> dict[str, Any]:
    """What a table of `sweep` is timed on and scored against: its stored space, task, teacher
    (dense model and directory), latency batch, threads and workload, and its re-timed models."""
    from raykd.search.space import parse_space
    from raykd.results.store import read_trials
    from raykd.task.io import load_solver
    from raykd.task.registry import load_task_plugin
    from raykd.task_interface import resolve_workload

    meta = json.loads((sweep / "results" / "sweep.json").read_text())
    space = parse_space(meta["space_raw"], "stored space")
    teacher_dir = Path(meta["teacher"]["dir"])
    loaded = load_task_plugin(meta.get("task")).load(teacher_dir, meta["data"], seed=int(meta.get("seed", 0)))
    base = space.chain_config({})
    return {"space": space, "task": loaded.task, "dense": loaded.model.eval(), "teacher_dir": teacher_dir,
            "batch": next(iter(loaded.task.batches("valid", base.latency_batch))),
            "threads": max(1, int(space.resources.cpus_per_worker)),
            "workload": resolve_workload(loaded.task, base.latency_workload),
            "models": [(load_solver(r.checkpoint_path)[0], r.retimed_speedup)
                       for r in read_trials(str(sweep)).to_pandas().dropna(subset=["retimed_speedup"]).itertuples()]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sweep", type=Path, required=True, help="a finished sweep directory")
    ap.add_argument("--busy", type=int, nargs="+", default=[2], help="busy processes beside the timing, one table per value")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    inputs = sweep_inputs(args.sweep)
    space, task, dense, batch, threads, workload, models = (inputs[k] for k in (
        "space", "task", "dense", "batch", "threads", "workload", "models"))
    quiet = LatencyTable.load(inputs["teacher_dir"] / "latency_table.json")
    report: dict[str, Any] = {
        "sweep": str(args.sweep), "threads": threads, "rounds": space.speed["rounds"], "calibration": space.speed["calibration"],
        "quiet_table": {"dense_ms": quiet.dense_ms, "date": quiet.meta.get("date"), "vs_retimed": errors(quiet, models),
                        "scale": quiet.scale},
        "quiet_dense_now_ms": dense_now_ms(task, dense, batch, threads=threads, workload=workload),
        "loaded": [],
    }
    for n in args.busy:
        hogs = [mp.Process(target=_spin, daemon=True) for _ in range(n)]
        for p in hogs:
            p.start()
        try:
            t0 = time.perf_counter()
            table = build_latency_table(task, dense, batch, rounds=space.speed["rounds"], threads=threads, workload=workload,
                                        calibration=space.speed["calibration"])
            wall = time.perf_counter() - t0
        finally:
            for p in hogs:
                p.terminate()
                p.join()
        time.sleep(2)
        now = dense_now_ms(task, dense, batch, threads=threads, workload=workload)
        report["loaded"].append({
            "busy_processes": n, "wall_s": round(wall, 1), "dense_ms": table.dense_ms, "scale": table.scale,
            "held_out_median_error": table.meta["calibration"].get("held_out_median_error"),
            "vs_retimed": errors(table, models), "dense_now_ms": now, "reuse_verdict": reuse_verdict(table.dense_ms, now),
        })
    print(f"sweep {args.sweep}: {len(models)} re-timed models; {threads} thread(s); table {report['rounds']} rounds")
    q = report["quiet_table"]
    print(f"quiet table ({q['date']}): dense {q['dense_ms']:.2f} ms, vs re-timed median {q['vs_retimed']['median']:.1%} "
          f"max {q['vs_retimed']['max']:.1%}; dense now {report['quiet_dense_now_ms']:.2f} ms")
    for row in report["loaded"]:
        e = row["vs_retimed"]
        print(f"{row['busy_processes']} busy: dense {row['dense_ms']:.2f} ms (table built in {row['wall_s']} s), factors "
              f"{ {c: round(f, 3) for c, f in row['scale'].items()} }, vs re-timed median {e['median']:.1%} max {e['max']:.1%}; "
              f"quiet again {row['dense_now_ms']:.2f} ms -> reuse check: {row['reuse_verdict']}")
    if args.json:
        args.json.write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()

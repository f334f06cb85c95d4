"""Ray overhead: one chain in-process vs the same chain as a one-trial sweep (Tune + Train).

Both run the same code on the same machine, one after the other, in this script: the chain
(`raykd.method.chain.Chain`) on a tiny teacher, with early stopping disabled so both do exactly
the same number of optimiser steps, and torch using the same thread count (the Train worker gets
`cpus_per_worker` CPUs and as many threads). The sweep side is timed end to end from the
driver: `ray.init`, Tune, Optuna, the Train worker group, reporting, checkpoint upload and
shutdown, i.e. everything a user waits for. The shared head statistics are computed on both sides.

    python bench/ray_overhead.py --epochs-per-round 10 --worker-niceness ray 0 --json bench/results/ray_overhead.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default="synthetic:2000")
    ap.add_argument("--teacher", help="teacher directory (default: train a tiny one first, not timed)")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--epochs-per-round", type=int, default=10)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--worker-niceness", nargs="+", default=["ray"], metavar="N",
                    help="one sweep per value: 'ray' (Ray's default, 15) or 0..19 (resources.worker_niceness)")
    ap.add_argument("--json", help="write the results here")
    args = ap.parse_args()

    import torch

    from raykd.data import load_splits
    from raykd.search.space import parse_space
    from raykd.distributed.sweep import run_sweep
    from raykd.method.chain import Chain
    from raykd.method.config import ChainConfig
    from raykd.method.importance import collect_stats
    from raykd.method.round_cost import make_measure
    from raykd.task.io import SolverIO, load_solver
    from raykd.task.mwp import MWPTask
    from raykd.task.teacher import SolverSpec, train_teacher
    from raykd.training import FitConfig

    torch.set_num_threads(args.threads)
    work = Path(tempfile.mkdtemp(prefix="raykd-overhead-"))
    splits = load_splits(args.data)
    teacher_dir = Path(args.teacher) if args.teacher else work / "teacher"
    if not args.teacher:
        train_teacher(splits, SolverSpec(preset="tiny"), FitConfig(epochs=8, lr=2e-3), teacher_dir, progress=False)
    fixed = {"alpha": 0.5, "p_min": 0.1, "p_max": 0.3, "rounds": args.rounds, "epochs_per_round": args.epochs_per_round,
             "lr": 1e-3, "patience": 1000, "calib_batches": 4, "latency_batch": 8, "latency_repeats": 10}

    # 1. in-process
    teacher, tok, _ = load_solver(teacher_dir)
    task = MWPTask(tok, teacher.vocab, splits)
    cfg = ChainConfig(**fixed)
    t0 = time.perf_counter()
    stats = collect_stats(teacher, task, batches=cfg.calib_batches, batch_size=cfg.calib_batch_size, ffn=False, layers=False)
    result = Chain(task, teacher, cfg, SolverIO(tok), work / "inproc", make_measure(task, repeats=cfg.latency_repeats),
                   teacher_stats=stats, progress=False, log=lambda _m: None).run()
    inproc_s = time.perf_counter() - t0

    # 2. the same chain as a one-trial sweep on a local Ray (Tune + Optuna + Train, 1 worker), once per
    #    worker niceness asked for ("ray" = Ray's default, 15), one after the other.
    from raykd.results.store import read_trials

    def chain_s(records: list) -> float:
        return round(sum(r["round_s"] for r in records), 1)

    steps_in = sum(r["train_steps"] for r in result.records)
    out = {
        "in_process_s": round(inproc_s, 1), "chain_rounds_s_in_process": chain_s(result.records),
        "train_s_in_process": round(sum(r["train_s"] for r in result.records), 1), "train_steps_in_process": steps_in,
        "accuracy_in_process": result.records[-1]["accuracy"],
        "rounds": args.rounds, "epochs_per_round": args.epochs_per_round, "threads": args.threads, "cpus": os.cpu_count(),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, torch threads {args.threads}, Python {platform.python_version()}",
        "date": time.strftime("%Y-%m-%d %H:%M"), "sweeps": [],
    }
    print(f"{'chain in-process':<40}{out['in_process_s']:>10.1f} s   (rounds {out['chain_rounds_s_in_process']} s)")
    for i, nice in enumerate(args.worker_niceness):
        resources = {"workers": 1, "cpus_per_worker": args.threads, "concurrent_trials": 1,
                     "worker_niceness": None if nice == "ray" else int(nice)}  # null: Ray's own 15
        space = parse_space({
            "name": f"overhead-{i}", "data": args.data, "teacher": {"path": str(teacher_dir)},
            "search": {"tau": {"choices": [2.0]}}, "fixed": fixed, "num_samples": 1,
            # the same work as the in-process chain: speed measured in the chain, no latency table, no re-timing
            "speed": {"source": "measured", "retime_rounds": 0},
            "resources": resources, "storage": str(work / "sweeps"),
        })
        t0 = time.perf_counter()
        outcome = run_sweep(space, progress=False, log=lambda _m: None)
        sweep_s = time.perf_counter() - t0
        row = read_trials(outcome.root).to_pandas().iloc[0]
        # The worker's own per-round timings, from the last round's checkpoint (state.json holds every record).
        states = sorted(Path(outcome.root).rglob("state.json"), key=lambda p: json.loads(p.read_text())["round"])
        worker_records = json.loads(states[-1].read_text())["records"] if states else []
        run = {
            "worker_niceness": 15 if nice == "ray" else int(nice), "niceness_source": "Ray default" if nice == "ray" else "resources.worker_niceness",
            "tune_train_s": round(sweep_s, 1), "ratio": round(sweep_s / inproc_s, 3),
            "trial_time_total_s": float(row.wall_s) if row.wall_s == row.wall_s else None,
            "chain_rounds_s_in_worker": chain_s(worker_records) if worker_records else None,
            "train_s_in_worker": round(sum(r["train_s"] for r in worker_records), 1) if worker_records else None,
            "accuracy_tune_train": float(row.accuracy),
        }
        out["sweeps"].append(run)
        label = f"same chain in Tune + Train, nice {run['worker_niceness']}"
        print(f"{label:<40}{run['tune_train_s']:>10.1f} s   (rounds {run['chain_rounds_s_in_worker']} s)   ratio {run['ratio']:.3f} (goal <= 1.10)")
        if args.json:
            Path(args.json).parent.mkdir(parents=True, exist_ok=True)
            Path(args.json).write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()

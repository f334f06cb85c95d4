"""Structured pruning (heads + FFN + layers) against the paper's heads-only method, at matched speed.

Given a teacher and the round directories of chains (e.g. `bench/chain-asdiv.yaml`, heads only,
and `bench/chain-asdiv-structured.yaml`, FFN channels + layers with hidden-state distillation),
this (1) evaluates every model on the test split (and valid) with its n, 95% Wilson interval and
an exact McNemar test against the teacher on the same problems, and (2) times all of them side by
side in one interleaved `compare_latency` call on the chain's workload (default: encoding +
cached constrained decoding), giving each model's paired speedup over the teacher with a
2.5-97.5 percentile range of the per-round ratios. No Ray.

    python bench/structured_vs_heads.py --teacher runs/minilm-asdiv --data ../shared/data/asdiv-a \
        --chain heads=runs/chain-asdiv --chain structured=runs/chain-asdiv-structured \
        --threads 1 --rounds 30 --json bench/results/structured_vs_heads_asdiv.json
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from raykd.data import load_splits
from raykd.measure import compare_latency, count_params
from raykd.stats import accuracy_interval, mcnemar_exact
from raykd.structures import structure_counts
from raykd.task.io import load_solver
from raykd.task.mwp import MWPTask


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--teacher", required=True)
    ap.add_argument("--data", required=True)
    ap.add_argument("--chain", action="append", default=[], help="NAME=DIR: a chain directory (every round-NN in it)")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--rounds", type=int, default=30)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--workload", default="default")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    teacher, tok, _ = load_solver(args.teacher)
    splits = load_splits(args.data)
    task = MWPTask(tok, teacher.vocab, splits)
    models = {"teacher": teacher.eval()}
    for spec in args.chain:
        name, _, directory = spec.partition("=")
        for rdir in sorted(Path(directory).glob("round-*")):
            if (rdir / "state.json").is_file():
                models[f"{name}/{rdir.name}"] = load_solver(rdir)[0].eval()
    splits_eval = [s for s in ("test", "valid") if splits.get(s)]
    results: dict[str, dict] = {}
    teacher_bits = {}
    for name, model in models.items():
        row = {"structures": structure_counts(model), "params": count_params(model)}
        for split in splits_eval:
            bits = [bool(pred.correct) for pred in task.predict(model, split)]
            if name == "teacher":
                teacher_bits[split] = bits
            row[split] = {**accuracy_interval(bits)}
            if name != "teacher":
                test = mcnemar_exact(teacher_bits[split], bits)
                row[split]["vs_teacher"] = test.to_dict()
        results[name] = row
    batch = next(iter(task.batches("valid", args.batch)))
    t0 = time.perf_counter()
    lat = compare_latency({n: (lambda m=m: task.run(m, batch, args.workload)) for n, m in models.items()},
                          warmup=args.warmup, rounds=args.rounds, num_threads=args.threads, reference="teacher")
    for name in models:
        results[name]["median_ms"] = lat.stats[name].median_ms
        results[name]["speedup"] = lat.paired_speedup[name]
        if name != "teacher":  # per-round ratios (the teacher and the model timed adjacently in each round)
            ratios = np.asarray(lat.stats["teacher"].samples_ms) / np.asarray(lat.stats[name].samples_ms)
            results[name]["speedup_range_95"] = [float(np.percentile(ratios, 2.5)), float(np.percentile(ratios, 97.5))]
    out = {"command": "python " + " ".join([sys.argv[0], *(argv or sys.argv[1:])]),
           "machine": platform.platform(), "torch": torch.__version__, "threads": args.threads,
           "timing": {"rounds": args.rounds, "warmup": args.warmup, "batch": args.batch, "workload": args.workload,
                      "wall_s": round(time.perf_counter() - t0, 1)},
           "date": time.strftime("%Y-%m-%d %H:%M"), "models": results}
    for name, r in results.items():
        t = r.get("test", {})
        p = t.get("vs_teacher", {}).get("p_value")
        print(f"{name:<28} test {100 * t.get('accuracy', float('nan')):5.1f}% "
              f"[{100 * t.get('ci_low', float('nan')):.1f}, {100 * t.get('ci_high', float('nan')):.1f}] n={t.get('n')} "
              f"p={'-' if p is None else f'{p:.3g}'}  speedup {r['speedup']:.3f}x  {r['structures']}")
    if args.json:
        args.json.write_text(json.dumps(out, indent=1))
    return out


if __name__ == "__main__":
    main()

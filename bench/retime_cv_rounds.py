"""Re-time the round students of one CV fold of several `raykd cv` runs side by side, against
their shared teacher (issue 36: hidden-size against FFN-only at matched speed).

Why: each chain measures its own rounds against the teacher, each at its own time; on a loaded box
two chains' "1.4x" are not the same 1.4x. Here the teacher and every round's model of every run are
loaded into ONE process and timed in the same interleaved rounds (`raykd.measure.compare_latency`:
rotating order, same batch), with the chain's own batch (the fold's first `latency_batch` valid
problems), workload and thread count. Per model: median ms, speedup = teacher median / model median,
a 95% bootstrap interval of that ratio (rounds resampled, fixed seed), the median of the within-round
ratios ("paired"), and the speedup the chain itself measured (fold.json) beside it.

The runs must cross-validate the same problems the same way (data, pool, folds, seed, valid
fraction) and hold byte-identical teachers for the fold: otherwise there is no shared reference.

    nice -n 5 python bench/retime_cv_rounds.py /work/runs/hidden-vs-ffn/hidden /work/runs/hidden-vs-ffn/ffn-only \\
        --fold 1 --rounds 40 --threads 1 --json bench/results/hidden_vs_ffn_retime_cpu_2026-12-08.json
"""

from __future__ import annotations

import argparse
import hashlib
import json
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

SAME = ("data", "pool", "folds", "seed", "valid_fraction", "problems")  # cv.json settings the runs must share
BOOTSTRAP = 2000


def _settings(cv: Path) -> dict[str, Any]:
    try:
        return json.loads((cv / "cv.json").read_text())["settings"]
    except (OSError, ValueError, KeyError) as exc:
        raise SystemExit(f"retime_cv_rounds: error: {cv} is not a raykd cv directory ({type(exc).__name__})") from None


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _interval(ref: list[float], ms: list[float], rng: np.random.Generator) -> tuple[float, float]:
    """95% bootstrap interval of median(ref) / median(ms), the rounds resampled together."""
    a, b = np.asarray(ref), np.asarray(ms)
    idx = rng.integers(0, len(a), size=(BOOTSTRAP, len(a)))
    ratios = np.median(a[idx], axis=1) / np.median(b[idx], axis=1)
    return float(np.percentile(ratios, 2.5)), float(np.percentile(ratios, 97.5))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("cv", nargs="+", help="raykd cv directories sharing the fold's teacher")
    ap.add_argument("--fold", type=int, default=1, help="1-based fold (default 1)")
    ap.add_argument("--rounds", type=int, default=40)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)

    import torch

    from raykd.data import load_splits
    from raykd.data.folds import fold_splits
    from raykd.measure import compare_latency
    from raykd.method.optional_kinds import activate_for_model_dir
    from raykd.task.io import load_solver
    from raykd.task.mwp import MWPTask
    from raykd.task_interface import resolve_workload

    cvs = [Path(c) for c in args.cv]
    settings = [_settings(c) for c in cvs]
    for c, s in zip(cvs[1:], settings[1:]):
        differ = [k for k in SAME if s.get(k) != settings[0].get(k)]
        if differ:
            raise SystemExit(f"retime_cv_rounds: error: {c} and {cvs[0]} cross-validate differently ({', '.join(differ)})")
    fold_dirs = [c / f"fold-{args.fold:02d}" for c in cvs]
    teachers = [d / "teacher" for d in fold_dirs]
    digests = {_sha256(t / "model.safetensors") for t in teachers}
    if len(digests) != 1:
        raise SystemExit("retime_cv_rounds: error: the runs' fold teachers differ: there is no shared reference")

    s0 = settings[0]
    splits = load_splits(s0["data"], seed=s0["seed"])
    problems = [p for name in s0["pool"] for p in splits.get(name, [])]
    fsplits = fold_splits(problems, s0["folds"], args.fold - 1, seed=s0["seed"], valid_fraction=s0["valid_fraction"])
    torch.set_num_threads(args.threads)
    teacher, tokenizer, _ = load_solver(teachers[0])
    task = MWPTask(tokenizer, teacher.vocab, fsplits)
    chain = s0["chain"]
    batch = next(iter(task.batches("valid", int(chain["latency_batch"]))))
    workload = resolve_workload(task, chain.get("latency_workload", "default"))

    models: dict[str, Any] = {"teacher": teacher.eval()}
    chain_speedup: dict[str, float | None] = {"teacher": 1.0}
    for c, d in zip(cvs, fold_dirs):
        fold = json.loads((d / "fold.json").read_text()) if (d / "fold.json").is_file() else {"rounds": []}
        measured = {r["round"]: r.get("measured_speedup") for r in fold["rounds"]}
        for r_dir in sorted((d / "chain").glob("round-*")):
            if not (r_dir / "model.safetensors").is_file():
                continue
            activate_for_model_dir(r_dir)  # a hidden-pruned model (hidden_map) rebuilds with its kind
            name = f"{c.name}/{r_dir.name}"
            models[name] = load_solver(r_dir)[0].eval()
            chain_speedup[name] = measured.get(int(r_dir.name.split("-")[1]))
    calls = {n: (lambda m=m: task.run(m, batch, workload)) for n, m in models.items()}
    t0 = time.perf_counter()
    lat = compare_latency(calls, warmup=args.warmup, rounds=args.rounds, num_threads=args.threads, reference="teacher")
    wall = time.perf_counter() - t0
    rng = np.random.default_rng(0)
    ref = list(lat.stats["teacher"].samples_ms)
    rows = []
    for n, model in models.items():
        ms = list(lat.stats[n].samples_ms)
        low, high = _interval(ref, ms, rng)
        rows.append({"model": n, "median_ms": round(statistics.median(ms), 3), "speedup": round(lat.speedup[n], 4),
                     "low": round(low, 4), "high": round(high, 4), "paired": round(lat.paired_speedup[n], 4),
                     "chain_measured": None if chain_speedup[n] is None else round(chain_speedup[n], 4),
                     "params": sum(p.numel() for p in model.parameters())})
    print(f"{'model':28s} {'ms':>8s} {'speedup [95% CI]':>24s} {'paired':>7s} {'chain':>7s} {'params':>10s}")
    for r in rows:
        chain_s = "-" if r["chain_measured"] is None else f"{r['chain_measured']:.3f}"
        print(f"{r['model']:28s} {r['median_ms']:8.2f} {r['speedup']:7.3f} [{r['low']:.3f}, {r['high']:.3f}]"
              f" {r['paired']:7.3f} {chain_s:>7s} {r['params']:10d}")
    report = {"command": "python bench/retime_cv_rounds.py " + " ".join(argv if argv is not None else sys.argv[1:]),
              "machine": platform.platform(), "date": time.strftime("%Y-%m-%d %H:%M %Z"), "fold": args.fold,
              "rounds": args.rounds, "threads": args.threads, "workload": workload,
              "batch": int(next(iter(batch.values())).shape[0]), "timing_wall_s": round(wall, 1), "rows": rows}
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())

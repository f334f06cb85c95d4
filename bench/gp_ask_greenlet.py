"""Does the `greenlet` package speed up Optuna's GPSampler asks? (issue 35)

Without greenlet, Optuna 5's GPSampler warns "falling back to sequential L-BFGS-B optimization"
(optuna/_gp/batched_lbfgsb.py): its acquisition optimiser then runs its L-BFGS-B restarts one
after another instead of batching their function evaluations. This times the asks of the default
sweep's sampler (`raykd.search.space.make_sampler` on the embedded default space: its
search dimensions, sampler type, seed and startup trials) over a 2-objective study of
`--trials` trials, with and without greenlet, each in a fresh process, alternating (ABAB...) so
that the machine's load falls on both. Trials are told a smooth synthetic (accuracy, speedup) of
their parameters: the GP's work per ask depends on the number of trials and dimensions, not on
what the values mean.

    pip install greenlet   # to measure "with"; the "without" runs hide it (sys.modules["greenlet"] = None)
    python bench/gp_ask_greenlet.py --repeats 3 --json bench/results/gp_ask_greenlet.json
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _child(greenlet: bool, trials: int, seed: int) -> dict:
    """One study in this process: the seconds of every ask, and the sampled configurations."""
    if not greenlet:
        sys.modules["greenlet"] = None  # import greenlet -> ImportError, as when it is not installed
    import warnings

    import optuna
    import torch

    from raykd.search.space import load_space, make_sampler

    torch.set_num_threads(1)  # a sweep's driver shares the machine with its trials
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    warnings.filterwarnings("ignore")
    space = load_space(None)
    assert space.sampler["type"] == "gp", space.sampler
    dists = {}
    for p in space.search:
        if p.choices:
            dists[p.name] = optuna.distributions.CategoricalDistribution(list(p.choices))
        elif p.integer:
            dists[p.name] = optuna.distributions.IntDistribution(int(p.low), int(p.high), log=p.log)
        else:
            dists[p.name] = optuna.distributions.FloatDistribution(p.low, p.high, log=p.log)
    sampler = make_sampler(space, seed=seed)
    study = optuna.create_study(directions=["maximize", "maximize"], sampler=sampler)
    asks, cpu, configs = [], [], []
    for i in range(trials):
        t0, c0 = time.perf_counter(), time.process_time()
        trial = study.ask(dists)
        asks.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)  # CPU seconds: what the ask costs, whatever else the machine runs
        x = [float(v) if not isinstance(v, str) else 0.0 for v in trial.params.values()]
        acc = 0.8 - 0.3 * x[-3] ** 2 - 0.2 * math.sin(3 * x[0]) * x[1] / 3 + 0.01 * i % 3
        speed = 1 + 1.5 * x[-3] + 0.8 * x[-2] + x[-1]
        study.tell(trial, [acc, speed])
        configs.append({k: round(v, 6) if isinstance(v, float) else v for k, v in trial.params.items()})
    import importlib.util

    return {"greenlet": greenlet, "greenlet_found": greenlet and importlib.util.find_spec("greenlet") is not None,
            "seed": seed, "startup": int(space.sampler.get("n_startup_trials", 4)), "dims": len(dists),
            "ask_s": asks, "ask_cpu_s": cpu, "configs": configs}


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--trials", type=int, default=12, help="trials per study (the default sweep's num_samples)")
    ap.add_argument("--repeats", type=int, default=3, help="studies per arm (seeds 0..repeats-1), alternated")
    ap.add_argument("--json", help="write the figures here")
    ap.add_argument("--child", choices=("with", "without"), help=argparse.SUPPRESS)
    ap.add_argument("--seed", type=int, default=0, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        print(json.dumps(_child(args.child == "with", args.trials, args.seed)))
        return {}
    import importlib.util

    if importlib.util.find_spec("greenlet") is None:
        sys.exit("greenlet is not installed: pip install greenlet (the 'without' runs hide it themselves)")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    runs: dict[str, list[dict]] = {"with": [], "without": []}
    for seed in range(args.repeats):
        for arm in ("with", "without") if seed % 2 == 0 else ("without", "with"):
            out = subprocess.run([sys.executable, __file__, "--child", arm, "--trials", str(args.trials), "--seed", str(seed)],
                                 check=True, capture_output=True, text=True, env=env).stdout
            runs[arm].append(json.loads(out.strip().splitlines()[-1]))
    summary: dict = {"trials": args.trials, "repeats": args.repeats, "dims": runs["with"][0]["dims"],
                     "startup": runs["with"][0]["startup"], "cpus": os.cpu_count()}
    for arm, rs in runs.items():
        gp = [s for r in rs for s in r["ask_s"][r["startup"]:]]  # the asks the GP answers
        gp_cpu = [s for r in rs for s in r["ask_cpu_s"][r["startup"]:]]
        summary[arm] = {"gp_asks": len(gp), "mean_ask_s": statistics.mean(gp), "median_ask_s": statistics.median(gp),
                        "max_ask_s": max(gp), "mean_ask_cpu_s": statistics.mean(gp_cpu),
                        "study_ask_total_s": [round(sum(r["ask_s"]), 2) for r in rs]}
    summary["speedup_mean_ask"] = summary["without"]["mean_ask_s"] / summary["with"]["mean_ask_s"]
    summary["speedup_mean_ask_cpu"] = summary["without"]["mean_ask_cpu_s"] / summary["with"]["mean_ask_cpu_s"]
    summary["same_configs"] = [a["configs"] == b["configs"] for a, b in zip(runs["with"], runs["without"])]
    for arm in ("with", "without"):
        s = summary[arm]
        print(f"{arm:>7} greenlet: {s['gp_asks']} GP asks, mean {s['mean_ask_s']:.2f} s, median {s['median_ask_s']:.2f} s, "
              f"max {s['max_ask_s']:.2f} s, mean CPU {s['mean_ask_cpu_s']:.2f} s; per study {s['study_ask_total_s']} s")
    print(f"mean ask without / with greenlet: {summary['speedup_mean_ask']:.2f}x wall, "
          f"{summary['speedup_mean_ask_cpu']:.2f}x CPU; "
          f"same configurations per seed: {summary['same_configs']}")
    if args.json:
        Path(args.json).write_text(json.dumps({"summary": summary, "runs": runs}, indent=1))
    return summary


if __name__ == "__main__":
    main()

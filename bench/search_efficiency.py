"""Search efficiency: on the same budget, does the sweep's multi-objective sampler beat random search?

For each seed, two in-memory multi-objective Optuna studies over the same sweep space (directions
from the space's objectives) are driven by ask/tell in this process, without Ray:

* the space's own sampler (`raykd.distributed.space.make_sampler`, i.e. what `raykd sweep` uses:
  multivariate TPE with the space's n_startup_trials for the default space), with the seed
  replaced by the run's seed, for B trials (`--budget`, default the space's num_samples);
* `optuna.samplers.RandomSampler(seed + --random-seed-offset)` for 2B trials.

Every trial samples all searched parameters from `Param.to_optuna()` (the distributions Ray's
OptunaSearch makes from the sweep's `to_tune()`), builds `space.chain_config(params)` and runs the
chain exactly as a sweep worker does (`raykd/distributed/worker.py`: fresh teacher load, shared
head statistics, `make_measure` with the chain's latency_repeats, torch threads = --threads, a
scratch output directory deleted afterwards); the study is told the final round's objective
values (PRUNED if the space's early_stop would have stopped the chain, FAIL on an error). Trials
are run one at a time, interleaved (random, random, sampler, random, random, sampler, ...) so both
studies see the same machine conditions; each trial's wall time is recorded.

Hypervolume is raykd's own (`raykd.results.pareto.hypervolume`, Optuna's code; reference accuracy
0, speedup 1.0x) of the sampler study after B trials and of the random study after its first B and
after all 2B trials; the same three again with the FLOPs-analytic `ideal_speedup` in place of the
measured speedup (measured latency of small models on a shared CPU is noisy).

Note: with the same seed, Optuna's TPE draws its n_startup_trials random trials from the same
generator as RandomSampler(seed), so the first trials of both studies are the same configurations
(a paired design; their re-measured speedups show the measurement noise, reported as
`paired_repeats`). `--random-seed-offset 1000` makes the two studies independent instead.

The teacher is trained once (`raykd.distributed.teacher.prepare_teacher`, as a sweep does, into
`--work DIR/teacher`, reused by a later run with the same --work) or copied from `--teacher DIR`;
its head statistics are computed for the space's calibration settings.

    python bench/search_efficiency.py --work /tmp/se-work --json bench/results/search_efficiency.json
    python bench/search_efficiency.py --budget 2 --seeds 0 --set epochs_per_round=1 --set latency_repeats=3
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import platform
import shutil
import sys
import tempfile
import time
import traceback
import warnings
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


class _EarlyStop(Exception):
    """The space's early_stop rule stopped the chain (the sweep reports such a trial as PRUNED)."""


def parse_sets(items: list[str]) -> dict[str, Any]:
    import yaml

    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"--set {item!r}: expected KEY=VALUE")
        out[key.strip()] = yaml.safe_load(value)
    return out


def load_raw_space(path: str | None) -> tuple[dict[str, Any], str]:
    import yaml

    from raykd.distributed.space import DEFAULT_SPACE_YAML

    if path is None:
        return yaml.safe_load(DEFAULT_SPACE_YAML), "embedded default space"
    return yaml.safe_load(Path(path).read_text()), str(Path(path).resolve())


def run_trial(space: Any, params: dict[str, Any], teacher_dir: Path, splits: Any, threads: int) -> dict[str, Any]:
    """One chain, in-process, as `raykd.distributed.worker.chain_worker` runs it (rank 0, CPU)."""
    from raykd.method.chain import Chain
    from raykd.method.importance import HeadStats
    from raykd.method.measurement import make_measure
    from raykd.task.io import SolverIO, load_solver
    from raykd.task.mwp import MWPTask

    t0 = time.perf_counter()
    cfg = space.chain_config(params)
    floor = float(space.early_stop.get("accuracy_floor", 0.0)) if space.early_stop else None
    after = int(space.early_stop.get("after_round", 1)) if space.early_stop else 0
    work = Path(tempfile.mkdtemp(prefix="raykd-se-chain-"))
    records: list[dict[str, Any]] = []

    def on_round(record: dict[str, Any], _rdir: Path) -> None:
        records.append(record)
        done = record["round"] >= cfg.rounds
        if floor is not None and not done and int(record["round"]) >= after and float(record.get("accuracy", 1.0)) < floor:
            raise _EarlyStop

    out: dict[str, Any] = {"state": "complete", "error": None}
    try:
        teacher, tokenizer, _ = load_solver(teacher_dir)
        task = MWPTask(tokenizer, teacher.vocab, splits)
        stats_path = teacher_dir / "head_stats.json"
        stats = HeadStats.load(stats_path) if stats_path.is_file() else None
        t1 = time.perf_counter()
        Chain(task, teacher, cfg, SolverIO(tokenizer), work, make_measure(task, repeats=cfg.latency_repeats, threads=threads),
              teacher_stats=stats, progress=False, on_round=on_round, log=lambda _m: None).run()
        out["chain_s"] = round(time.perf_counter() - t1, 2)
    except _EarlyStop:
        out["state"] = "pruned"
    except Exception as exc:  # recorded; the caller decides whether to go on
        out.update(state="failed", error=f"{type(exc).__name__}: {exc}", traceback=traceback.format_exc(limit=5))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    out["wall_s"] = round(time.perf_counter() - t0, 2)
    out["rounds_done"] = len(records)
    if records:
        final = records[-1]
        out["final"] = {k: v for k, v in final.items() if isinstance(v, (int, float, str, bool)) or v is None}
    return out


def trials_frame(trials: list[dict[str, Any]], metrics: list[str]) -> Any:
    import pandas as pd

    rows = []
    for t in trials:
        final = t.get("final") or {}
        row = {"status": t["state"]}
        for m in metrics:
            v = final.get(m)
            row[m] = float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else math.nan
        rows.append(row)
    return pd.DataFrame(rows, columns=["status", *metrics])


def hv_and_front(trials: list[dict[str, Any]], objectives: list[tuple[str, str]], teacher: dict[str, Any]) -> dict[str, Any]:
    from raykd.results.pareto import hypervolume, pareto_mask

    df = trials_frame(trials, [m for m, _ in objectives])
    return {"hv": hypervolume(df, objectives, teacher=teacher), "front": int(pareto_mask(df, objectives).sum()),
            "complete": int((df["status"] == "complete").sum()), "trials": len(df)}


def seed_results(sampler_trials: list[dict[str, Any]], random_trials: list[dict[str, Any]], budget: int,
                 variants: dict[str, list[tuple[str, str]]], teacher: dict[str, Any]) -> dict[str, Any]:
    res: dict[str, Any] = {}
    for name, objs in variants.items():
        r = {"sampler@B": hv_and_front(sampler_trials[:budget], objs, teacher),
             "random@B": hv_and_front(random_trials[:budget], objs, teacher),
             "random@2B": hv_and_front(random_trials[:2 * budget], objs, teacher)}
        r["sampler@B>=random@2B"] = r["sampler@B"]["hv"] >= r["random@2B"]["hv"]
        r["sampler@B>=random@B"] = r["sampler@B"]["hv"] >= r["random@B"]["hv"]
        res[name] = r
    return res


def paired_repeats(sampler_trials: list[dict[str, Any]], random_trials: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Trials of the two studies with the same configuration (same seed: TPE's startup trials)."""
    out = []
    for a, b in zip(sampler_trials, random_trials):
        if a["params"] != b["params"] or a["state"] != "complete" or b["state"] != "complete":
            continue
        fa, fb = a["final"], b["final"]
        out.append({"number": a["number"], **{f"abs_diff_{m}": abs(float(fa[m]) - float(fb[m]))
                                              for m in ("accuracy", "speedup", "ideal_speedup") if m in fa and m in fb}})
    return out


def summarise(per_seed: dict[int, dict[str, Any]]) -> dict[str, Any]:
    summary: dict[str, Any] = {}
    if not per_seed:
        return summary
    first = next(iter(per_seed.values()))
    for variant in first["hypervolume"]:
        s: dict[str, Any] = {}
        for key in ("sampler@B", "random@B", "random@2B"):
            vals = [r["hypervolume"][variant][key]["hv"] for r in per_seed.values()]
            s[key] = {"mean": sum(vals) / len(vals), "min": min(vals), "max": max(vals), "per_seed": vals}
        diffs = [r["hypervolume"][variant]["sampler@B"]["hv"] - r["hypervolume"][variant]["random@2B"]["hv"]
                 for r in per_seed.values()]
        s["sampler@B-random@2B"] = {"mean": sum(diffs) / len(diffs), "min": min(diffs), "max": max(diffs), "per_seed": diffs}
        holds = {seed: r["hypervolume"][variant]["sampler@B>=random@2B"] for seed, r in per_seed.items()}
        s["sampler@B>=random@2B"] = {"per_seed": holds, "holds_for": sum(holds.values()), "seeds": len(holds)}
        summary[variant] = s
    return summary


def print_seed(seed: int, budget: int, sampler_name: str, res: dict[str, Any]) -> None:
    variants = list(res)
    print(f"\nseed {seed}")
    print(f"{'':<26}" + "".join(f"{'HV ' + v:>18}{'front':>7}" for v in variants))
    for key, label in (("sampler@B", f"{sampler_name} after {budget}"), ("random@B", f"random after {budget}"),
                       ("random@2B", f"random after {2 * budget}")):
        print(f"{label:<26}" + "".join(f"{res[v][key]['hv']:>18.4f}{res[v][key]['front']:>7d}" for v in variants))
    print(f"{sampler_name + '@B >= random@2B':<26}" + "".join(
        f"{'yes' if res[v]['sampler@B>=random@2B'] else 'no':>18}{'':>7}" for v in variants))


def print_summary(summary: dict[str, Any], budget: int, sampler_name: str) -> None:
    print(f"\nsummary over {len(next(iter(summary.values()))['random@B']['per_seed'])} seed(s), budget B = {budget}")
    print(f"{'':<22}{'hypervolume':<16}{'mean':>10}{'min':>10}{'max':>10}")
    for variant, s in summary.items():
        for key, label in (("sampler@B", f"{sampler_name}@B"), ("random@B", "random@B"), ("random@2B", "random@2B"),
                           ("sampler@B-random@2B", f"{sampler_name}@B - random@2B")):
            v = s[key]
            print(f"{label:<22}{variant:<16}{v['mean']:>10.4f}{v['min']:>10.4f}{v['max']:>10.4f}")
        h = s["sampler@B>=random@2B"]
        flags = " ".join(f"seed {k}: {'yes' if ok else 'no'}" for k, ok in h["per_seed"].items())
        print(f"{sampler_name + '@B >= random@2B':<22}{variant:<16}{h['holds_for']}/{h['seeds']} ({flags})")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--space", help="sweep space YAML (default: the embedded default space)")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="override one of the space's fixed chain settings (VALUE is YAML), e.g. epochs_per_round=1")
    ap.add_argument("--budget", type=int, help="B: trials of the space's sampler (random gets 2B); default num_samples")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--random-seed-offset", type=int, default=0,
                    help="random search uses seed + this (0: paired with TPE's startup trials, see above)")
    ap.add_argument("--threads", type=int, default=1, help="torch threads for training and latency")
    ap.add_argument("--teacher", help="teacher directory to copy (default: train the space's teacher)")
    ap.add_argument("--work", help="keep the teacher here (WORK/teacher, reused when present); default a temp dir")
    ap.add_argument("--json", help="write every trial and the summary here (rewritten after each trial)")
    args = ap.parse_args()

    import optuna
    import torch

    from raykd.data import load_splits
    from raykd.distributed.space import make_sampler, parse_space
    from raykd.distributed.teacher import prepare_teacher
    from raykd.errors import ConfigError

    try:
        overrides = parse_sets(args.set)
        raw, source = load_raw_space(args.space)
        if overrides:
            raw = {**raw, "fixed": {**(raw.get("fixed") or {}), **overrides}}
        space = parse_space(raw, source)
    except (ValueError, ConfigError, OSError) as exc:
        ap.error(str(exc))
    budget = space.num_samples if args.budget is None else args.budget
    if budget < 1 or args.threads < 1:
        ap.error("--budget and --threads must be >= 1")
    sampler_name = space.sampler["type"]
    objectives = [(o.metric, o.mode) for o in space.objectives]
    variants = {"measured": objectives}
    if "speedup" in space.metrics and "ideal_speedup" not in space.metrics:
        variants["ideal"] = [("ideal_speedup" if m == "speedup" else m, d) for m, d in objectives]
    directions = ["maximize" if d == "max" else "minimize" for _, d in objectives]
    dists = {p.name: p.to_optuna() for p in space.search}

    torch.set_num_threads(args.threads)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)

    work = Path(args.work).resolve() if args.work else Path(tempfile.mkdtemp(prefix="raykd-se-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        t_space = dataclasses.replace(space, teacher={"path": str(Path(args.teacher).resolve())}) if args.teacher else space
        t0 = time.perf_counter()
        teacher = prepare_teacher(t_space, str(work), progress=False, log=print)
        teacher["prepare_s"] = round(time.perf_counter() - t0, 2)
        teacher_dir = Path(teacher["dir"])
        print(f"teacher {teacher_dir}: valid accuracy {teacher['accuracy']:.4f}, {teacher['params']} params "
              f"({teacher['prepare_s']:.1f} s)")
        splits = load_splits(space.data, seed=space.seed)

        out: dict[str, Any] = {
            "question": f"hypervolume of {sampler_name} after B trials vs random search after B and 2B trials",
            "space_source": source, "overrides": overrides, "space_raw": raw, "space": space.to_dict(),
            "objectives": {k: [f"{m}:{d}" for m, d in v] for k, v in variants.items()},
            "hypervolume_reference": "raykd.results.pareto.default_reference (accuracy 0, speedup 1.0)",
            "budget": budget, "seeds": args.seeds, "random_seed_offset": args.random_seed_offset,
            "sampler": {**space.sampler, "seed": "per run"}, "threads": args.threads,
            "order": "per seed: random, random, sampler, random, random, sampler, ... (sequential, in-process, no Ray)",
            "teacher": teacher,
            "machine": f"{platform.machine()} {platform.processor() or ''} cpus={os.cpu_count()}".strip(),
            "python": platform.python_version(), "torch": torch.__version__, "optuna": optuna.__version__,
            "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "trials": [], "per_seed": {}, "summary": {}, "finished": False,
        }

        def save() -> None:
            if args.json:
                Path(args.json).parent.mkdir(parents=True, exist_ok=True)
                Path(args.json).write_text(json.dumps(out, indent=1, default=str))

        completed_any = False
        bench_t0 = time.perf_counter()
        for seed in args.seeds:
            studies = {
                "sampler": optuna.create_study(directions=directions, sampler=make_sampler(space, seed=seed)),
                "random": optuna.create_study(directions=directions,
                                              sampler=optuna.samplers.RandomSampler(seed=seed + args.random_seed_offset)),
            }
            done: dict[str, list[dict[str, Any]]] = {"sampler": [], "random": []}
            schedule = []
            for i in range(2 * budget):
                schedule.append("random")
                if i % 2 == 1:
                    schedule.append("sampler")
            for which in schedule:
                study = studies[which]
                trial = study.ask(fixed_distributions=dists)
                params = dict(trial.params)
                r = run_trial(space, params, teacher_dir, splits, args.threads)
                rec = {"seed": seed, "study": which, "sampler": sampler_name if which == "sampler" else "random",
                       "number": trial.number, "order": len(out["trials"]), "params": params, **r}
                if r["state"] == "complete":
                    final = r["final"]
                    values = [float(final[m]) for m in space.metrics]
                    trial.set_user_attr("ideal_speedup", final.get("ideal_speedup"))
                    study.tell(trial, values)
                    rec["values"] = values
                    completed_any = True
                elif r["state"] == "pruned":
                    study.tell(trial, state=optuna.trial.TrialState.PRUNED)
                else:
                    study.tell(trial, state=optuna.trial.TrialState.FAIL)
                    print(f"  trial failed: {r['error']}", file=sys.stderr)
                    if not completed_any:
                        print(r.get("traceback", ""), file=sys.stderr)
                        raise SystemExit("the first trial failed: stopping (see the error above)")
                done[which].append(rec)
                out["trials"].append(rec)
                f = r.get("final") or {}
                print(f"seed {seed} {rec['sampler']:<7}#{trial.number:<3} {r['state']:<9}"
                      f"acc {f.get('accuracy', math.nan):.4f}  speedup {f.get('speedup', math.nan):.3f}  "
                      f"ideal {f.get('ideal_speedup', math.nan):.3f}  {r['wall_s']:7.1f} s", flush=True)
                save()
            res = seed_results(done["sampler"], done["random"], budget, variants, teacher)
            out["per_seed"][seed] = {"hypervolume": res, "paired_repeats": paired_repeats(done["sampler"], done["random"])}
            print_seed(seed, budget, sampler_name, res)
            out["summary"] = summarise(out["per_seed"])
            save()

        walls = [t["wall_s"] for t in out["trials"]]
        out["timing"] = {"total_s": round(time.perf_counter() - bench_t0, 1), "trials": len(walls),
                         "trial_wall_s_mean": round(sum(walls) / len(walls), 2), "trial_wall_s_min": min(walls),
                         "trial_wall_s_max": max(walls)}
        pairs = [p for r in out["per_seed"].values() for p in r["paired_repeats"]]
        if pairs:
            out["paired_repeats_max_abs_diff"] = {k: max(p[k] for p in pairs) for k in pairs[0] if k.startswith("abs_diff")}
        out["finished"] = True
        save()
        print_summary(out["summary"], budget, sampler_name)
        if pairs:
            diffs = ", ".join(f"{k[9:]} {v:.4f}" for k, v in out["paired_repeats_max_abs_diff"].items())
            print(f"same configuration in both studies: {len(pairs)} pair(s), largest |difference|: {diffs}")
        print(f"{len(walls)} trials, {out['timing']['trial_wall_s_mean']:.1f} s each on average "
              f"({out['timing']['trial_wall_s_min']:.1f}-{out['timing']['trial_wall_s_max']:.1f}), "
              f"total {out['timing']['total_s']:.0f} s")
    finally:
        if not args.work:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()

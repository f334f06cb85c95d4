"""Search against compute: hypervolume per trial-round and per second of wall time for random,
TPE, GP and NSGA-II, each with and without multi-objective successive halving, in-process
without Ray.

Every study is an in-memory multi-objective Optuna study (directions from the space's
objectives) driven by ask/tell, with the sampler a sweep of that type would use
(`raykd.search.space.make_sampler`; the space's n_startup_trials / population_size, the
run's seed). Every trial samples the searched parameters from `Param.to_optuna()` (what Ray's
OptunaSearch samples), builds `space.chain_config(params)` and runs the chain as a sweep worker
does (`raykd.distributed.worker`: the sweep's teacher, statistics and latency table, the final
forecast, `make_measure` with the chain's repeats, 1 torch thread per chain process), with the
speed objective the latency table's predicted `speedup` (deterministic).

Compute is shared where the answer is the same. A chain is a deterministic function of its
chain configuration on CPU (checked at the start of every run: the first configuration is run
twice in two processes and its records compared), so every chain runs once and is cached by its
configuration; studies that ask for a configuration already run (random search with and without
halving draw the same sequence, TPE's and GP's start-up trials are RandomSampler(seed)'s) read
it. Each study is charged what it would have cost alone: the rounds it ran (a chain stopped at
rung r costs r rounds) and their measured wall time (teacher load + forecast + the rounds, as
timed when the chain ran), plus its own sampler's measured `ask` time.

Successive halving is `raykd.search.successive_halving` (the scheduler's rules, Ray-free) with
trials arriving one at a time (concurrency 1, as the default space): at each rung a chain is
ranked on (accuracy at that round, final forecast speedup) against every earlier arrival, and a
stopped chain is told PRUNED, as the sweep's searcher does.

Budgets: studies without halving run 2B trials (B = --budget); studies with halving run until
they have spent 2B x rounds trial-rounds, the compute of 2B unstopped chains. Hypervolume
(`raykd.results.pareto.hypervolume`: Optuna's code, reference accuracy 0, speedup 1.0x) is
recorded after every trial, so the curves compare every study at equal compute.

Runs add up: `--merge EARLIER.json` keeps an earlier report's studies (same space, settings, budget
and halving) and runs only the studies it lacks, after rerunning the earlier run's determinism probe
here. Its accuracies must match to the digit (the teacher and every chain are deterministic on CPU);
its predicted speedups match only if both runs price with the same latency table, so a report
stores its table and a merge prices with the earlier one. (A report without a stored table, like
the first 3-seed run, merges with this run's own table: the probe's two speedups are recorded, and
only comparisons within one seed, where every study shares a table, are exact.)

    python bench/search_compute.py --work /tmp/sc-work --json bench/results/search_compute.json
    python bench/search_compute.py --work /tmp/sc-work --seeds 0 --budget 3 --samplers random tpe   # a smoke run
"""

from __future__ import annotations

import argparse
import concurrent.futures as cf
import hashlib
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Generator

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

SAMPLERS = ("random", "tpe", "gp", "nsga2")


# ---------------------------------------------------------------- the space

def load_raw(path: str | None, sets: list[str]) -> dict[str, Any]:
    import yaml

    from raykd.search.space import DEFAULT_SPACE_YAML

    raw = yaml.safe_load(Path(path).read_text() if path else DEFAULT_SPACE_YAML)
    for item in sets:
        key, sep, value = item.partition("=")
        if not sep:
            raise SystemExit(f"--set {item!r}: expected KEY=VALUE (a `fixed` setting)")
        raw.setdefault("fixed", {})[key.strip()] = yaml.safe_load(value)
    raw.pop("early_stop", None)
    raw.pop("constraints", None)
    return raw


def space_for(raw: dict[str, Any], sampler: str | None = None, seed: int | None = None) -> Any:
    from raykd.search.space import parse_space

    raw = json.loads(json.dumps(raw))
    if sampler is not None:
        s = dict(raw.get("sampler") or {})
        s.update(type=sampler, seed=seed)
        raw["sampler"] = s
    return parse_space(raw, "bench space")


def chain_key(cfg: Any) -> str:
    return hashlib.sha256(json.dumps(cfg.to_dict(), sort_keys=True).encode()).hexdigest()[:20]


# ---------------------------------------------------------------- one chain (in a worker process)

def run_chain(raw: dict[str, Any], teacher_dir: str, teacher_metrics: Any, params: dict[str, Any]) -> dict[str, Any]:
    """One chain as `raykd.distributed.worker.chain_worker` runs it (rank 0, CPU, 1 thread)."""
    import torch

    from raykd.distributed.worker import forecast_for, load_teacher_inputs
    from raykd.method.chain import Chain
    from raykd.method.round_cost import make_measure

    torch.set_num_threads(1)
    space = space_for(raw)
    cfg = space.chain_config(params)
    t0 = time.perf_counter()
    loaded, stats, table = load_teacher_inputs(Path(teacher_dir), {"task": space.task, "data": space.data, "data_seed": space.seed,
                                                                   "speed_source": space.speed["source"]})
    example = next(iter(loaded.task.batches("valid", cfg.latency_batch)))
    told = forecast_for(loaded.model, stats, cfg, table, loaded.task, example, 1)
    setup_s = time.perf_counter() - t0
    rounds: list[dict[str, Any]] = []

    def on_round(record: dict[str, Any], _rdir: Path) -> None:
        rounds.append({"round": int(record["round"]), "wall_s": round(time.perf_counter() - t0, 3),
                       **{k: record.get(k) for k in ("accuracy", "accuracy_n", "speedup", "measured_speedup", "ideal_speedup",
                                                     "params_reduction", "round_s")}})

    work = Path(tempfile.mkdtemp(prefix="raykd-sc-chain-"))
    try:
        Chain(loaded.task, loaded.model, cfg, loaded.io, work,
              make_measure(loaded.task, repeats=cfg.latency_repeats, threads=1, table=table, workload=cfg.latency_workload),
              teacher_stats=stats, teacher_metrics=teacher_metrics, progress=False, on_round=on_round,
              log=lambda _m: None).run()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return {"params": params, "rounds": rounds, "forecast": {k: v for k, v in told.items() if isinstance(v, (int, float))},
            "setup_s": round(setup_s, 3), "chain_rounds": cfg.rounds}


# ---------------------------------------------------------------- one study (a generator driven by the main loop)

def study(raw: dict[str, Any], sampler: str, seed: int, halving: Any, budget: int, teacher: dict[str, Any]
          ) -> Generator[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """Yields the params of each trial, receives the chain's cached result; returns the log."""
    import optuna

    from raykd.search.space import make_sampler
    from raykd.search.successive_halving import SuccessiveHalving

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    space = space_for(raw, sampler, seed)
    study_ = optuna.create_study(directions=["maximize" if o.mode == "max" else "minimize" for o in space.objectives],
                                 sampler=make_sampler(space))
    metrics = [o.metric for o in space.objectives]
    dists = {p.name: p.to_optuna() for p in space.search}
    rules = SuccessiveHalving(halving) if halving is not None else None
    rounds_total = space.chain_config({}).rounds
    round_budget = 2 * budget * rounds_total
    trials: list[dict[str, Any]] = []
    spent_rounds, spent_s, front_rows = 0, 0.0, []
    while (len(trials) < 2 * budget) if rules is None else (spent_rounds < round_budget):
        t0 = time.perf_counter()
        trial = study_.ask(dists)
        ask_s = time.perf_counter() - t0
        result = yield dict(trial.params)
        if result.get("error"):  # the chain raised: the sweep tells Optuna FAIL
            study_.tell(trial, state=optuna.trial.TrialState.FAIL)
            spent_rounds += 1  # at least its first round was paid for; wall not known
            trials.append({"number": trial.number, "state": "failed", "error": result["error"], "rounds_run": 1,
                           "ask_s": round(ask_s, 3), "cost_s": None, "params": dict(trial.params), "trial_rounds": spent_rounds,
                           "wall_s": round(spent_s, 1), "hv": hv(front_rows, space.objectives, teacher)})
            continue
        ran, state = result["rounds"], "complete"
        if rules is not None:
            for i, rec in enumerate(result["rounds"]):
                d = rules.on_round(str(trial.number), rec["round"], rounds_total, {**result["forecast"], **rec})
                if d is not None and not d.go_on:
                    ran, state = result["rounds"][: i + 1], "pruned"
                    break
        final = ran[-1]
        if state == "complete":
            study_.tell(trial, [float(final[m]) for m in metrics])
            front_rows.append({"status": "complete", **{m: float(final[m]) for m in metrics}})
        else:
            study_.tell(trial, state=optuna.trial.TrialState.PRUNED)
        spent_rounds += len(ran)
        cost_s = float(final["wall_s"]) + ask_s  # wall_s: from the teacher load to the end of this round
        spent_s += cost_s
        trials.append({"number": trial.number, "state": state, "rounds_run": len(ran), "ask_s": round(ask_s, 3),
                       "cost_s": round(cost_s, 2), "params": dict(trial.params),
                       **{m: final.get(m) for m in ("accuracy", "speedup", "measured_speedup")},
                       "trial_rounds": spent_rounds, "wall_s": round(spent_s, 1), "hv": hv(front_rows, space.objectives, teacher)})
    return {"sampler": sampler, "seed": seed, "halving": rules is not None, "trials": trials,
            "stopped": sum(t["state"] == "pruned" for t in trials), "rounds_per_chain": rounds_total}


def hv(rows: list[dict[str, Any]], objectives: Any, teacher: dict[str, Any]) -> float:
    import pandas as pd

    from raykd.results.pareto import hypervolume

    if not rows:
        return 0.0
    return float(hypervolume(pd.DataFrame(rows), [(o.metric, o.mode) for o in objectives], teacher=teacher))


# ---------------------------------------------------------------- driving every study over one process pool

def drive(studies: dict[str, Generator], pool: cf.ProcessPoolExecutor, submit: Any, cache: dict[str, Any],
          key_of: Any, log: Any) -> dict[str, Any]:
    """Round-robin over the studies; a study waiting for a chain not yet run waits while the others go on."""
    done: dict[str, Any] = {}
    waiting: dict[str, tuple[str, dict[str, Any]]] = {}  # study -> (chain key, params)
    running: dict[str, cf.Future] = {}
    ready = {name: None for name in studies}  # study -> value to send (None: start)

    def advance(name: str, value: Any) -> None:
        try:
            params = studies[name].send(value)
        except StopIteration as stop:
            done[name] = stop.value
            log(f"{name}: done ({len(stop.value['trials'])} trials, {stop.value['stopped']} stopped, "
                f"hv {stop.value['trials'][-1]['hv']:.4f})")
            return
        waiting[name] = (key_of(params), params)

    while ready or waiting:
        for name, value in list(ready.items()):
            del ready[name]
            advance(name, value)
        for name, (key, params) in list(waiting.items()):
            if key in cache:
                del waiting[name]
                ready[name] = cache[key]
            elif key not in running:
                running[key] = submit(params)
        if ready or not waiting:
            continue
        finished, _ = cf.wait(list(running.values()), return_when=cf.FIRST_COMPLETED)
        for key, fut in list(running.items()):
            if fut in finished:
                exc = fut.exception()
                cache[key] = fut.result() if exc is None else {"error": f"{type(exc).__name__}: {exc}"}
                if exc is not None:
                    log(f"chain {key} failed: {type(exc).__name__}: {exc}")
                del running[key]
    return done


# ---------------------------------------------------------------- summary

def hv_at(study_: dict[str, Any], *, trials: int | None = None, rounds: int | None = None) -> float:
    """A study's hypervolume after its first `trials` trials, or within `rounds` trial-rounds."""
    best = 0.0
    for t in study_["trials"]:
        if (trials is not None and t["number"] < trials) or (rounds is not None and t["trial_rounds"] <= rounds):
            best = t["hv"]
    return best


def wilcoxon_p(diffs: list[float]) -> float | None:
    """Two-sided Wilcoxon signed-rank p-value of paired differences (scipy; exact for few pairs).
    With 5 pairs the smallest possible p is 0.0625: five seeds cannot show a difference at 0.05."""
    from scipy.stats import wilcoxon

    if len(diffs) < 2 or all(d == 0 for d in diffs):
        return None
    return float(wilcoxon(diffs).pvalue)


def summarise(results: dict[str, Any], budget: int, default_sampler: str) -> dict[str, Any]:
    def first_reaching(study_: dict[str, Any], target: float) -> tuple[int | None, float | None]:
        for t in study_["trials"]:
            if t["hv"] >= target - 1e-12:
                return t["trial_rounds"], t["wall_s"]
        return None, None

    by: dict[tuple[str, bool], list[dict[str, Any]]] = {}
    for s in sorted(results.values(), key=lambda s: s["seed"]):  # every per-seed list below is in seed order
        by.setdefault((s["sampler"], s["halving"]), []).append(s)
    out: dict[str, Any] = {"per_sampler": {}}
    for (sampler, halving), studies in sorted(by.items()):
        rounds = studies[0]["rounds_per_chain"]
        row: dict[str, Any] = {"seeds": sorted(s["seed"] for s in studies)}
        for label, r in (("B", budget * rounds), ("2B", 2 * budget * rounds)):
            vals = [hv_at(s, rounds=r) for s in studies]
            row[f"hv_at_{label}_rounds"] = {"mean": statistics.fmean(vals), "sd": statistics.stdev(vals) if len(vals) > 1 else 0.0,
                                            "min": min(vals), "max": max(vals), "per_seed": vals}
        row["wall_s"] = {"mean": statistics.fmean(s["trials"][-1]["wall_s"] for s in studies)}
        row["ask_s_total"] = {"mean": statistics.fmean(sum(t["ask_s"] for t in s["trials"]) for s in studies)}
        row["trials"] = {"mean": statistics.fmean(len(s["trials"]) for s in studies)}
        row["stopped"] = {"mean": statistics.fmean(s["stopped"] for s in studies)}
        out["per_sampler"][f"{sampler}{'+halving' if halving else ''}"] = row
    # goal 1: a sampler at B trials against random at 2B (no halving), paired by seed
    rnd = by.get(("random", False))

    def at_b_vs_random(studies: list[dict[str, Any]]) -> dict[str, Any]:
        d = [hv_at(s, trials=budget) for s in sorted(studies, key=lambda s: s["seed"])]
        r2 = [hv_at(s, trials=2 * budget) for s in sorted(rnd, key=lambda s: s["seed"])]
        return {"mean": statistics.fmean(d), "random_2B_mean": statistics.fmean(r2),
                "sd": statistics.stdev(d) if len(d) > 1 else 0.0, "random_2B_sd": statistics.stdev(r2) if len(r2) > 1 else 0.0,
                "per_seed": d, "random_2B_per_seed": r2, "seeds_at_or_above": sum(a >= b for a, b in zip(d, r2)),
                "wilcoxon_p": wilcoxon_p([a - b for a, b in zip(d, r2)])}

    if by.get((default_sampler, False)) and rnd:
        row = at_b_vs_random(by[(default_sampler, False)])
        out["default_at_B_vs_random_at_2B"] = {"sampler": default_sampler, "default_mean": row["mean"],
                                               "random_2B_mean": row["random_2B_mean"], "met": row["mean"] >= row["random_2B_mean"],
                                               "default_per_seed": row["per_seed"], "random_2B_per_seed": row["random_2B_per_seed"]}
    out["each_at_B_vs_random_at_2B"] = {sampler: at_b_vs_random(studies) for (sampler, halving), studies in by.items()
                                        if rnd and not halving and sampler != "random"}
    # paired tests over seeds (each seed's studies share their start-up and their latency table):
    # each sampler at 2B trials against each other, Wilcoxon signed-rank (exact for few seeds)
    out["paired_at_2B"] = {}
    plain = {sampler: {s["seed"]: hv_at(s, trials=2 * budget) for s in studies} for (sampler, h), studies in by.items() if not h}
    names = sorted(plain)
    for i, x in enumerate(names):
        for y in names[i + 1:]:
            seeds = sorted(set(plain[x]) & set(plain[y]))
            diffs = [plain[x][k] - plain[y][k] for k in seeds]
            out["paired_at_2B"][f"{x} vs {y}"] = {"seeds": seeds, "diffs": diffs, "x_above": sum(d > 0 for d in diffs),
                                                  "wilcoxon_p": wilcoxon_p(diffs)}
    # goal 2: trial-rounds for halving to reach the no-stopping hypervolume of B and of 2B trials, per seed
    out["halving_rounds_to_reach"] = {}
    for (sampler, halving), studies in by.items():
        plain = {s["seed"]: s for s in by.get((sampler, False), [])}
        if not halving or not plain:
            continue
        rows = []
        for s in studies:
            p = plain.get(s["seed"])
            if p is None:
                continue
            rounds = s["rounds_per_chain"]
            for label, n in (("B", budget), ("2B", 2 * budget)):
                target = hv_at(p, trials=n)
                r, w = first_reaching(s, target)
                pr, pw = first_reaching(p, target)
                rows.append({"seed": s["seed"], "target": label, "target_hv": target, "halving_rounds": r, "plain_rounds": pr,
                             "plain_budget_rounds": n * rounds, "fraction_of_budget": None if r is None else r / (n * rounds),
                             "halving_wall_s": w, "plain_wall_s": pw})
        fr = {label: [x["fraction_of_budget"] for x in rows if x["target"] == label] for label in ("B", "2B")}
        out["halving_rounds_to_reach"][sampler] = {
            "per_seed": rows,
            **{f"mean_fraction_{label}": (statistics.fmean(v) if v and all(x is not None for x in v) else None) for label, v in fr.items()},
            **{f"reached_{label}": sum(x is not None for x in v) for label, v in fr.items()}}
    return out


def make_report(args: Any, argv: Any, space: Any, budget: int, info: dict[str, Any], determinism: dict[str, Any],
                cache: dict[str, Any], cached_at_start: int, t_start: float, results: dict[str, Any],
                latency_table: dict[str, Any] | None) -> dict[str, Any]:
    from raykd.measure.latency.cache import _cpu_model

    chain_walls = [c["rounds"][-1]["wall_s"] for c in cache.values() if not c.get("error")]
    return {
        "command": "python " + " ".join([Path(sys.argv[0]).as_posix(), *(argv if argv is not None else sys.argv[1:])]),
        "machine": {"platform": platform.platform(), "cpu": _cpu_model(), "cpus": os.cpu_count(), "processes": args.processes, "torch_threads_per_chain": 1},
        "space": space.name, "sets": args.set, "budget": budget, "seeds": sorted({s["seed"] for s in results.values()}),
        "samplers": sorted({s["sampler"] for s in results.values()}),
        "halving": {"eta": args.eta, "min_rounds": args.min_rounds},
        "teacher": {"accuracy": info["accuracy"], "trained_here": info.get("trained_here"), "train_s": info.get("train_s")},
        "determinism": determinism,
        "chains": {"run": len(cache) - cached_at_start, "cached_at_start": cached_at_start,
                   "mean_chain_s": statistics.fmean(chain_walls) if chain_walls else None},
        "wall_s": round(time.perf_counter() - t_start, 1),
        "latency_table": latency_table,
        "summary": summarise(results, budget, space.sampler["type"]),
        "studies": results,
    }


def markdown(report: dict[str, Any], cache_dir: Path | None = None) -> str:
    """The BENCHMARKS tables of a stored report (and the forecast's error over the chain cache)."""
    summ, b = report["summary"], report["budget"]
    merged = report.get("merged")
    lines = [] if merged is None else [
        f"Merged: {len(merged['studies'])} studies from `{merged['command']}`, the rest from this run; "
        f"the earlier run's probe rerun here: identical accuracies {report['determinism']['earlier_run_probe']['identical_accuracy']}, "
        "predicted speedups (earlier, here) " + ", ".join(f"{x:.4f} / {y:.4f}" for x, y in
                                                      report["determinism"]["earlier_run_probe"]["speedup_earlier_vs_here"]) + ".", ""]
    lines += [f"| study | seeds | HV at {b}x{report['studies'][next(iter(report['studies']))]['rounds_per_chain']} trial-rounds "
             f"(mean ± sd; min–max) | HV at twice that | trials run (mean) | stopped (mean) | wall s (mean) | ask s (mean) |",
             "|---|---|---|---|---|---|---|---|"]
    for name, row in summ["per_sampler"].items():
        h1, h2 = row["hv_at_B_rounds"], row["hv_at_2B_rounds"]
        lines.append(f"| {name} | {len(row['seeds'])} | {h1['mean']:.4f} ± {h1['sd']:.4f}; {h1['min']:.4f}–{h1['max']:.4f} | "
                     f"{h2['mean']:.4f} ± {h2['sd']:.4f}; {h2['min']:.4f}–{h2['max']:.4f} | {row['trials']['mean']:.1f} | "
                     f"{row['stopped']['mean']:.1f} | {row['wall_s']['mean']:.0f} | {row['ask_s_total']['mean']:.1f} |")
    lines += ["", f"| sampler at B = {b} trials vs random at 2B = {2 * b} | per seed (sampler / random@2B) | mean (± sd) | seeds at or above | "
              "Wilcoxon p |", "|---|---|---|---|---|"]
    for sampler, row in summ.get("each_at_B_vs_random_at_2B", {}).items():
        pairs = list(zip(row["per_seed"], row["random_2B_per_seed"]))
        p = row["wilcoxon_p"]
        lines.append(f"| {sampler} | {'; '.join(f'{x:.4f} / {y:.4f}' for x, y in pairs)} | {row['mean']:.4f} vs {row['random_2B_mean']:.4f} "
                     f"(± {row['sd']:.4f} vs ± {row['random_2B_sd']:.4f}) | "
                     f"{row['seeds_at_or_above']} of {len(pairs)} | {'–' if p is None else f'{p:.3f}'} |")
    if summ["paired_at_2B"]:
        lines += ["", f"| at 2B = {2 * b} trials, paired by seed | differences per seed | first above | Wilcoxon p |", "|---|---|---|---|"]
        for pair, row in summ["paired_at_2B"].items():
            p = row["wilcoxon_p"]
            lines.append(f"| {pair} | {', '.join(f'{d:+.4f}' for d in row['diffs'])} | {row['x_above']} of {len(row['diffs'])} | "
                         f"{'–' if p is None else f'{p:.3f}'} |")
    lines += ["", "| with halving | reaches no-stopping HV of B trials at (fraction of B x rounds, per seed) | of 2B trials |",
              "|---|---|---|"]
    for sampler, row in summ.get("halving_rounds_to_reach", {}).items():
        cells = []
        for label in ("B", "2B"):
            fr = [x["fraction_of_budget"] for x in row["per_seed"] if x["target"] == label]
            seeds = [x["seed"] for x in row["per_seed"] if x["target"] == label]
            cells.append(", ".join(f"seed {k}: " + ("not reached" if f is None else f"{f:.2f}") for k, f in zip(seeds, fr))
                         + (f" (mean {row[f'mean_fraction_{label}']:.2f})" if row[f"mean_fraction_{label}"] is not None else ""))
        lines.append(f"| {sampler} | {cells[0]} | {cells[1]} |")
    if cache_dir is not None and cache_dir.is_dir():
        errs, exact = [], 0
        for f in cache_dir.glob("*.json"):
            c = json.loads(f.read_text())
            if c.get("error") or not c["rounds"] or c["forecast"].get("forecast_speedup") is None:
                continue
            final, told = float(c["rounds"][-1]["speedup"]), float(c["forecast"]["forecast_speedup"])
            errs.append(abs(told - final) / final)
            exact += told == final
        if errs:
            lines += ["", f"Final forecast vs the chain's final predicted speedup over {len(errs)} chains: {exact} identical, "
                          f"median |error| {statistics.median(errs) * 100:.2f}%, max {max(errs) * 100:.2f}%."]
    return "\n".join(lines)


def records(rounds: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """What two runs of one chain must agree on, to the last digit."""
    return [{k: x[k] for k in ("round", "accuracy", "speedup")} for x in rounds]


def load_earlier(path: str, space_name: str, args: Any, budget: int) -> dict[str, Any]:
    """An earlier report whose studies this run may keep: same space, settings, budget and halving."""
    earlier = json.loads(Path(path).read_text())
    mine = {"space": space_name, "sets": args.set, "budget": budget, "halving": {"eta": args.eta, "min_rounds": args.min_rounds}}
    for key, value in mine.items():
        if earlier.get(key) != value:
            raise SystemExit(f"--merge {path}: its {key} is {earlier.get(key)!r}, this run's is {value!r}")
    return earlier


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--space", default=None, help="a space YAML (default: the embedded default)")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a `fixed` chain setting")
    ap.add_argument("--work", default="/tmp/raykd-search-compute", help="teacher + chain cache (reused by a later run)")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    ap.add_argument("--budget", type=int, default=None, help="B (default: the space's num_samples)")
    ap.add_argument("--samplers", nargs="+", default=list(SAMPLERS), choices=SAMPLERS)
    ap.add_argument("--eta", type=int, default=3)
    ap.add_argument("--min-rounds", type=int, default=1)
    ap.add_argument("--no-halving", action="store_true", help="only the studies without successive halving")
    ap.add_argument("--halving-samplers", nargs="+", default=None, choices=SAMPLERS,
                    help="the samplers also run with halving (default: every one of --samplers)")
    ap.add_argument("--processes", type=int, default=2, help="chains run at once (1 torch thread each)")
    ap.add_argument("--json", default=None)
    ap.add_argument("--table", default=None, metavar="JSON", help="print the BENCHMARKS tables of a stored report and exit")
    ap.add_argument("--merge", default=None, metavar="JSON",
                    help="an earlier report of the same space, budget and halving: its studies are kept and not rerun, after "
                         "checking that this run's teacher and its determinism probe reproduce the earlier run's exactly")
    args = ap.parse_args(argv)
    if args.table:
        report = json.loads(Path(args.table).read_text())
        # recomputed, so a report stored before a summary field existed prints every table
        default = report["summary"].get("default_at_B_vs_random_at_2B", {}).get("sampler", "tpe")
        report["summary"] = summarise(report["studies"], report["budget"], default)
        print(markdown(report, Path(args.work) / "chains"))
        return 0

    from raykd.distributed.shared_teacher import prepare_teacher
    from raykd.search.successive_halving import HalvingConfig

    t_start = time.perf_counter()
    raw = load_raw(args.space, args.set)
    space = space_for(raw)
    budget = args.budget or space.num_samples
    earlier = load_earlier(args.merge, space.name, args, budget) if args.merge else None
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    info = prepare_teacher(space, str(work / "sweep"), progress=False, log=lambda m: print(m, flush=True))
    teacher_dir = str(info["dir"])
    if earlier is not None and earlier["teacher"]["accuracy"] != info["accuracy"]:
        print(f"--merge {args.merge}: its teacher scored {earlier['teacher']['accuracy']!r}, this one {info['accuracy']!r}", flush=True)
        return 1
    table_path = Path(teacher_dir) / "latency_table.json"
    if earlier is not None and earlier.get("latency_table") and table_path.is_file() and \
            json.loads(table_path.read_text()) != earlier["latency_table"]:
        # the earlier run's predicted speedups came from its table: price this run's chains with it too
        tmp = table_path.with_name(".latency_table.json.tmp")
        tmp.write_text(json.dumps(earlier["latency_table"], indent=1, sort_keys=True))
        os.replace(tmp, table_path)
        print(f"using the earlier run's latency table (measured {earlier['latency_table'].get('meta', {}).get('date')})", flush=True)
    latency_table = json.loads(table_path.read_text()) if table_path.is_file() else None
    teacher_ref = {"accuracy": info["accuracy"]}
    cache_dir = work / "chains"
    cache_dir.mkdir(exist_ok=True)
    cache: dict[str, Any] = {}
    for f in cache_dir.glob("*.json"):
        cache[f.stem] = json.loads(f.read_text())
    cached_at_start = len(cache)

    def key_of(params: dict[str, Any]) -> str:
        return chain_key(space.chain_config(params))

    pool = cf.ProcessPoolExecutor(args.processes)

    def submit(params: dict[str, Any]) -> cf.Future:
        fut = pool.submit(run_chain, raw, teacher_dir, info.get("metrics"), params)
        key = key_of(params)

        def store(f: cf.Future) -> None:
            if f.exception() is None:
                tmp = cache_dir / f".{key}.tmp"
                tmp.write_text(json.dumps(f.result()))
                os.replace(tmp, cache_dir / f"{key}.json")
        fut.add_done_callback(store)
        return fut

    # determinism: one configuration run twice, side by side in two processes (and, merging, the
    # earlier run's probe once more: its records must match what that run stored)
    probe = next(study(raw, "random", args.seeds[0], None, 1, teacher_ref))
    a, b = pool.submit(run_chain, raw, teacher_dir, info.get("metrics"), probe), pool.submit(
        run_chain, raw, teacher_dir, info.get("metrics"), probe)
    c = pool.submit(run_chain, raw, teacher_dir, info.get("metrics"), earlier["determinism"]["params"]) if earlier else None
    ra, rb = a.result(), b.result()
    same = records(ra["rounds"]) == records(rb["rounds"])
    determinism = {"params": probe, "identical_accuracy_and_speedup": same, "run_a": ra["rounds"], "run_b": rb["rounds"]}
    print(f"determinism probe: identical records: {same}", flush=True)
    if not same:
        print("chains are not deterministic here: the cache would hide run-to-run variation; stopping", flush=True)
        return 1
    cache.setdefault(key_of(probe), ra)
    results: dict[str, Any] = {}
    if earlier is not None:
        # accuracies must agree to the digit (same teacher, same training); predicted speedups are
        # the latency table's, re-timed by this run, so they agree only as closely as two tables do
        rc = c.result()
        acc = [(x["round"], x["accuracy"]) for x in rc["rounds"]]
        across = acc == [(x["round"], x["accuracy"]) for x in earlier["determinism"]["run_a"]]
        determinism["earlier_run_probe"] = {
            "identical_accuracy": across, "run_here": rc["rounds"],
            "speedup_earlier_vs_here": [(x["speedup"], y["speedup"]) for x, y in zip(earlier["determinism"]["run_a"], rc["rounds"])]}
        print(f"the earlier run's probe, rerun here: identical accuracies: {across}; predicted speedups (earlier, here): "
              f"{determinism['earlier_run_probe']['speedup_earlier_vs_here']}", flush=True)
        if earlier.get("latency_table") and records(rc["rounds"]) != records(earlier["determinism"]["run_a"]):
            print(f"--merge {args.merge}: with the earlier run's own latency table the probe's records still differ", flush=True)
            return 1
        if not across:
            print(f"--merge {args.merge}: this machine's chains train differently from the earlier run's; its studies cannot be merged",
                  flush=True)
            return 1
        cache.setdefault(key_of(earlier["determinism"]["params"]), rc)
        results.update(earlier["studies"])

    halving = HalvingConfig(args.eta, args.min_rounds)
    # phases, each written to --json when it ends (a run cut short keeps what finished; the chain
    # cache makes a rerun free up to where it stopped): every sampler without halving, then each
    # sampler with halving, the space's own sampler first
    order = sorted(args.samplers, key=lambda x: x != space.sampler["type"])
    halved = [x for x in order if args.halving_samplers is None or x in args.halving_samplers]
    phases = [[(x, False) for x in args.samplers]] + ([] if args.no_halving else [[(x, True)] for x in halved])
    for phase in phases:
        studies = {name: study(raw, x, seed, halving if h else None, budget, teacher_ref)
                   for x, h in phase for seed in args.seeds
                   if (name := f"{x}{'+halving' if h else ''}/seed{seed}") not in results}
        results.update(drive(studies, pool, submit, cache, key_of,
                             lambda m: print(f"[{time.perf_counter() - t_start:7.0f}s] {m}", flush=True)))
        report = make_report(args, argv, space, budget, info, determinism, cache, cached_at_start, t_start, results, latency_table)
        if earlier is not None:
            report["merged"] = {"from": args.merge, "command": earlier["command"], "studies": sorted(earlier["studies"]),
                                "chains": earlier["chains"], "wall_s": earlier["wall_s"], "earlier_merge": earlier.get("merged")}
        if args.json:
            Path(args.json).parent.mkdir(parents=True, exist_ok=True)
            Path(args.json).write_text(json.dumps(report, indent=1, default=str))
    pool.shutdown()
    print(json.dumps(report["summary"], indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())

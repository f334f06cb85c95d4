"""How well does what a chain shows at round r tell its final accuracy? (issue 15: a rung metric)

Successive halving ranks chains at a rung by their accuracy at that round. On the default space's
4-round chains that accuracy barely ranks final accuracy (BENCHMARKS §17c: Spearman rho 0.01 at
round 1, 0.22 at round 2, 0.36 at round 3), because the schedule (Eq. 5, (t/T)^n with n > 1)
removes most structures in the last rounds: a round-1 model is nearly the teacher.

This benchmark measures candidate rung metrics on the same chains, every one computed from what
exists at round r (r = 0 is before training: the teacher):

- `accuracy`: the round-r model's validation accuracy (what the scheduler ranks on today);
- `lookahead`: the round-r model pruned at once to the configuration's *final* ratios (by its own
  statistics, the ones round r + 1 collects anyway; at r = 0 the teacher's shared statistics: the
  forecast's final model) and evaluated without any training: how much of the final cut the model
  survives so far;
- `extrapolated`: the accuracy lost so far scaled to the final cut by predicted log-speedup,
  teacher − (teacher − acc_r) · log S_final / log S_r (r >= 1).

Configurations are RandomSampler(seed)'s over the space's searched settings (what every sampler's
start-up draws), chains run as `bench/search_compute.py` runs them (the sweep's teacher, shared
statistics and latency table; 1 torch thread per chain process). Reported: per round and metric,
Spearman rho with the final accuracy (scipy); the same given the final forecast speedup (a
partial rank correlation: a rung ranks on (metric, forecast), so what counts is what a metric
tells beyond the forecast); and the cost of the lookahead probe.

Then a replay: random search draws configurations independently of results, so any order of the
measured chains is a random-search run. Over many orders, successive halving (the scheduler's own
rules, `raykd.search.successive_halving`) is replayed on the chains with each rung metric, plus
an oracle (the chain's final accuracy known at every rung: an upper bound on any rung metric) and
none (the forecast alone), and the fraction of trial-rounds it needs to reach plain random search's
hypervolume after 2B trials is reported (issue 15's goal 2: <= 60%).

    python bench/rung_fidelity.py --work /tmp/sc-work --set rounds=4 --chains 36 --json bench/results/rung_fidelity.json
    python bench/rung_fidelity.py --table bench/results/rung_fidelity.json   # the tables, the replay recomputed
"""

from __future__ import annotations

import argparse
import concurrent.futures as cf
import copy
import json
import math
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from search_compute import load_raw, space_for  # noqa: E402

METRICS = ("accuracy", "lookahead", "extrapolated")
REPLAY_METRICS = ("accuracy", "lookahead", "oracle", "none")  # oracle: the final accuracy; none: the forecast alone


def lookahead_accuracy(model: Any, stats: Any, task: Any, cfg: Any, original: Any) -> float:
    """Validation accuracy of `model` cut at once to the configuration's final ratios (no training)."""
    from raykd.method.plan import plan_round

    cut = copy.deepcopy(model).eval()
    if any(cfg.prunes.values()):
        plan_round(cut, stats, cfg, cfg.rounds, original).apply(cut)
    return float(task.evaluate(cut, "valid")[task.primary_metric])


def run_probed_chain(raw: dict[str, Any], teacher_dir: str, teacher_metrics: Any, params: dict[str, Any]) -> dict[str, Any]:
    """One chain (as search_compute.run_chain) with the lookahead probe after every round but the last."""
    import torch

    from raykd.distributed.worker import forecast_for, load_teacher_inputs
    from raykd.method.chain import Chain
    from raykd.method.importance.stats import collect_stats
    from raykd.method.round_cost import make_measure
    from raykd.method.plan import OriginalShape

    torch.set_num_threads(1)
    space = space_for(raw)
    cfg = space.chain_config(params)
    loaded, stats, table = load_teacher_inputs(Path(teacher_dir), {"task": space.task, "data": space.data, "data_seed": space.seed,
                                                                   "speed_source": space.speed["source"]})
    task, on = loaded.task, cfg.prunes
    example = next(iter(task.batches("valid", cfg.latency_batch)))
    told = forecast_for(loaded.model, stats, cfg, table, task, example, 1)
    original = OriginalShape.of(loaded.model)
    t0 = time.perf_counter()
    rounds: list[dict[str, Any]] = [{"round": 0, "accuracy": float(task.evaluate(loaded.model.eval(), "valid")[task.primary_metric]),
                                     "speedup": 1.0, "lookahead": lookahead_accuracy(loaded.model, stats, task, cfg, original),
                                     "probe_s": round(time.perf_counter() - t0, 3)}]

    def on_round(record: dict[str, Any], rdir: Path) -> None:
        row = {"round": int(record["round"]), "accuracy": record.get("accuracy"), "speedup": record.get("speedup"),
               "round_s": record.get("round_s")}
        if row["round"] < cfg.rounds:
            t = time.perf_counter()
            model = loaded.io.load(rdir).eval()
            own = collect_stats(model, task, batches=cfg.calib_batches, batch_size=cfg.calib_batch_size,
                                taylor=cfg.importance == "taylor", ffn=on["ffn"], layers=on["layers"])
            stats_s = time.perf_counter() - t
            row["lookahead"] = lookahead_accuracy(model, own, task, cfg, original)
            row["probe_s"], row["probe_stats_s"] = round(time.perf_counter() - t, 3), round(stats_s, 3)
        rounds.append(row)

    work = Path(tempfile.mkdtemp(prefix="raykd-rf-chain-"))
    try:
        Chain(task, loaded.model, cfg, loaded.io, work,
              make_measure(task, repeats=cfg.latency_repeats, threads=1, table=table, workload=cfg.latency_workload),
              teacher_stats=stats, teacher_metrics=teacher_metrics, progress=False, on_round=on_round,
              log=lambda _m: None).run()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return {"params": params, "rounds": rounds, "forecast_speedup": told.get("forecast_speedup"), "chain_rounds": cfg.rounds,
            "wall_s": round(time.perf_counter() - t0, 2)}


def rung_value(chain: dict[str, Any], r: int, metric: str) -> float | None:
    """Metric `metric` of `chain` at round r (None where it does not exist)."""
    row = next((x for x in chain["rounds"] if x["round"] == r), None)
    if row is None:
        return None
    if metric != "extrapolated":
        return row.get(metric)
    teacher = chain["rounds"][0]["accuracy"]
    s_r, s_final = row.get("speedup"), chain.get("forecast_speedup")
    if r == 0 or not s_r or not s_final or s_r <= 1.0 + 1e-6 or s_final <= 1.0:
        return None
    return teacher - (teacher - row["accuracy"]) * math.log(s_final) / math.log(s_r)


def correlations(chains: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per metric and round: Spearman rho (and p) with final accuracy, over the chains that have it."""
    from scipy.stats import spearmanr

    out: dict[str, dict[str, Any]] = {}
    rounds = chains[0]["chain_rounds"]
    for metric in METRICS:
        for r in range(rounds):
            pairs = [(v, c["rounds"][-1]["accuracy"]) for c in chains if (v := rung_value(c, r, metric)) is not None]
            if len(pairs) < 5 or len({p[0] for p in pairs}) < 2:
                continue
            res = spearmanr([p[0] for p in pairs], [p[1] for p in pairs])
            out.setdefault(metric, {})[str(r)] = {"rho": round(float(res.statistic), 3), "p": float(res.pvalue), "n": len(pairs)}
    return out


def partial_given_forecast(chains: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """Per metric and round: the rank correlation of the metric with final accuracy once both are
    regressed on the forecast speedup's rank (what the metric adds to the rung's speed coordinate)."""
    import numpy as np
    from scipy.stats import rankdata

    def residual(a: Any, z: Any) -> Any:
        design = np.vstack([z, np.ones_like(z)]).T
        return a - design @ np.linalg.lstsq(design, a, rcond=None)[0]

    out: dict[str, dict[str, float]] = {}
    for metric in METRICS:
        for r in range(chains[0]["chain_rounds"]):
            rows = [(v, c["rounds"][-1]["accuracy"], c["forecast_speedup"]) for c in chains
                    if (v := rung_value(c, r, metric)) is not None and c.get("forecast_speedup")]
            if len(rows) < 5 or len({x[0] for x in rows}) < 2:
                continue
            x, y, z = (rankdata([row[i] for row in rows]) for i in range(3))
            out.setdefault(metric, {})[str(r)] = round(float(np.corrcoef(residual(x, z), residual(y, z))[0, 1]), 3)
    return out


def replay_halving(chains: list[dict[str, Any]], order: list[int], metric: str, *, eta: int, min_rounds: int,
                   budget_rounds: int, teacher_accuracy: float) -> list[tuple[int, float]]:
    """(trial-rounds spent, hypervolume) after each trial of successive halving replayed on the
    chains in `order`, ranking rungs on (metric, forecast speedup), until the budget is spent."""
    import pandas as pd

    from raykd.results.pareto import hypervolume
    from raykd.search.successive_halving import HalvingConfig, SuccessiveHalving

    rules = SuccessiveHalving(HalvingConfig(eta, min_rounds, ((metric, "max"), ("forecast_speedup", "max"))))
    spent, front, curve = 0, [], []
    for i in order:
        if spent >= budget_rounds:
            break
        c = chains[i]
        rounds, ran = c["chain_rounds"], c["chain_rounds"]
        for rec in c["rounds"][1:]:
            shown = {"forecast_speedup": c["forecast_speedup"], "accuracy": rec["accuracy"], "lookahead": rec.get("lookahead"),
                     "oracle": c["rounds"][-1]["accuracy"], "none": None}
            decision = rules.on_round(str(i), rec["round"], rounds, shown)
            if decision is not None and not decision.go_on:
                ran = rec["round"]
                break
        spent += ran
        if ran == rounds:
            front.append({"accuracy": c["rounds"][-1]["accuracy"], "speedup": c["rounds"][-1]["speedup"]})
        hv = hypervolume(pd.DataFrame(front), [("accuracy", "max"), ("speedup", "max")], teacher={"accuracy": teacher_accuracy}) if front else 0.0
        curve.append((spent, float(hv)))
    return curve


def replay(chains: list[dict[str, Any]], teacher_accuracy: float, *, trials: int = 12, orders: int = 200,
           etas: tuple[int, ...] = (2, 3, 4), min_rounds: int = 1) -> dict[str, Any]:
    """Successive halving against plain random search over `orders` random orders of the chains
    (order p: numpy default_rng(p)'s permutation): per metric and eta, the fraction of the
    plain study's trial-rounds (trials x rounds) halving needs to reach its hypervolume."""
    import numpy as np
    import pandas as pd

    from raykd.results.pareto import hypervolume, pareto_mask

    objectives = [("accuracy", "max"), ("speedup", "max")]
    finals = [{"accuracy": c["rounds"][-1]["accuracy"], "speedup": c["rounds"][-1]["speedup"]} for c in chains]
    rounds = chains[0]["chain_rounds"]
    budget = trials * rounds
    perms = [list(np.random.default_rng(p).permutation(len(chains))) for p in range(orders)]
    targets, front_sizes = [], []
    for order in perms:
        df = pd.DataFrame([finals[i] for i in order[:trials]])
        targets.append(float(hypervolume(df, objectives, teacher={"accuracy": teacher_accuracy})))
        front_sizes.append(int(pareto_mask(df, objectives).sum()))
    out: dict[str, Any] = {"trials": trials, "orders": orders, "budget_rounds": budget, "min_rounds": min_rounds,
                           "plain_front_size_mean": round(float(np.mean(front_sizes)), 2),
                           "plain_front_size_p10_p90": [float(x) for x in np.percentile(front_sizes, [10, 90])],
                           "results": {}}
    for metric in REPLAY_METRICS:
        for eta in etas:
            fractions, used = [], []
            for order, target in zip(perms, targets):
                curve = replay_halving(chains, order, metric, eta=eta, min_rounds=min_rounds, budget_rounds=budget,
                                       teacher_accuracy=teacher_accuracy)
                reach = next((s for s, h in curve if h >= target - 1e-12), None)
                fractions.append(None if reach is None else reach / budget)
                used.append(len(curve))
            got = [f for f in fractions if f is not None]
            out["results"][f"{metric}/eta{eta}"] = {
                "reached": round(len(got) / orders, 3), "at_most_0.6": round(sum(f <= 0.6 for f in got) / orders, 3),
                "median_fraction_when_reached": round(float(np.median(got)), 3) if got else None,
                "configurations_mean": round(float(np.mean(used)), 2)}
    return out


def markdown(report: dict[str, Any]) -> str:
    rounds = report["chain_rounds"]
    lines = ["| metric: Spearman rho with final accuracy (given the forecast) | "
             + " | ".join(f"round {r}" for r in range(rounds)) + " |", "|---|" + "---|" * rounds]
    for metric in METRICS:
        cells = []
        for r in range(rounds):
            c = report["spearman"].get(metric, {}).get(str(r))
            given = report.get("partial_given_forecast", {}).get(metric, {}).get(str(r))
            cells.append("–" if c is None else f"{c['rho']:+.2f} (p {c['p']:.2g}; {given:+.2f})" if given is not None
                         else f"{c['rho']:+.2f} (p {c['p']:.2g})")
        lines.append(f"| {metric} | " + " | ".join(cells) + " |")
    rep = report.get("replay")
    if rep:
        lines += ["", f"Replay: {rep['orders']} random orders of the {len(report.get('chains', [])) or '?'} chains; plain random "
                  f"search's front after {rep['trials']} trials holds {rep['plain_front_size_mean']} points on average "
                  f"(p10–p90 {rep['plain_front_size_p10_p90'][0]:.0f}–{rep['plain_front_size_p10_p90'][1]:.0f}).", "",
                  "| rung metric / eta | orders reaching plain's HV within its trial-rounds | at <= 60% of them | median fraction (reached) | configurations tried |",
                  "|---|---|---|---|---|"]
        for name, r in rep["results"].items():
            med = "–" if r["median_fraction_when_reached"] is None else f"{r['median_fraction_when_reached']:.2f}"
            lines.append(f"| {name} | {r['reached']:.0%} | {r['at_most_0.6']:.0%} | {med} | {r['configurations_mean']:.1f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--space", default=None)
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    ap.add_argument("--work", default="/tmp/raykd-search-compute", help="the teacher (shared with bench/search_compute.py)")
    ap.add_argument("--chains", type=int, default=24)
    ap.add_argument("--seed", type=int, default=100, help="RandomSampler seed of the configurations")
    ap.add_argument("--processes", type=int, default=2)
    ap.add_argument("--replay-trials", type=int, default=12, help="plain random search's trials in the replay (2B)")
    ap.add_argument("--json", default=None)
    ap.add_argument("--table", default=None, metavar="JSON", help="print a stored report's table and exit")
    args = ap.parse_args(argv)
    if args.table:
        report = json.loads(Path(args.table).read_text())
        report["partial_given_forecast"] = partial_given_forecast(report["chains"])
        report["replay"] = replay(report["chains"], report["teacher_accuracy"], trials=args.replay_trials)
        print(markdown(report))
        return 0

    import optuna

    from raykd.distributed.shared_teacher import prepare_teacher

    t_start = time.perf_counter()
    raw = load_raw(args.space, args.set)
    space = space_for(raw)
    info = prepare_teacher(space, str(Path(args.work) / "sweep"), progress=False, log=lambda m: print(m, flush=True))
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    sampler = optuna.samplers.RandomSampler(seed=args.seed)
    study = optuna.create_study(sampler=sampler)
    dists = {p.name: p.to_optuna() for p in space.search}
    configs = [dict(study.ask(dists).params) for _ in range(args.chains)]
    chains: list[dict[str, Any]] = []
    with cf.ProcessPoolExecutor(args.processes) as pool:
        futures = [pool.submit(run_probed_chain, raw, str(info["dir"]), info.get("metrics"), p) for p in configs]
        for i, fut in enumerate(cf.as_completed(futures)):
            chains.append(fut.result())
            print(f"[{time.perf_counter() - t_start:6.0f}s] chain {i + 1}/{len(configs)}: final accuracy "
                  f"{chains[-1]['rounds'][-1]['accuracy']:.4f}", flush=True)
    chains.sort(key=lambda c: configs.index(c["params"]))
    probe = [x["probe_s"] for c in chains for x in c["rounds"] if "probe_s" in x]
    round_s = [x["round_s"] for c in chains for x in c["rounds"] if x.get("round_s")]
    report = {"command": "python bench/rung_fidelity.py " + " ".join(argv if argv is not None else sys.argv[1:]),
              "machine": {"platform": platform.platform(), "processes": args.processes, "torch_threads_per_chain": 1},
              "date": time.strftime("%Y-%m-%d"), "sets": args.set, "seed": args.seed, "teacher_accuracy": info["accuracy"],
              "chain_rounds": chains[0]["chain_rounds"], "chains": chains, "spearman": correlations(chains),
              "partial_given_forecast": partial_given_forecast(chains),
              "replay": replay(chains, info["accuracy"], trials=args.replay_trials),
              "probe_s_median": sorted(probe)[len(probe) // 2] if probe else None,
              "round_s_median": sorted(round_s)[len(round_s) // 2] if round_s else None,
              "wall_s": round(time.perf_counter() - t_start, 1)}
    print(markdown(report))
    print(f"lookahead probe {report['probe_s_median']} s median against a round's {report['round_s_median']} s", flush=True)
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(report, indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())

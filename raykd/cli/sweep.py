"""`raykd sweep`: the multi-objective search over chains, on a local or remote Ray cluster."""

from __future__ import annotations

import argparse
import dataclasses
import os
import time
from typing import Any

from raykd.cli.args import int_at_least, sweep_name
from raykd.cli.common import add_json_flag, print_json
from raykd.cli.pareto import print_table
from raykd.errors import ConfigError
from raykd.results.store import read_pareto
from raykd.search.preflight import check_new_sweep
from raykd.search.space import MAX_NUM_SAMPLES, SweepSpace, load_space
from raykd.storage import check_storage_uri
from raykd.structures.registry import structure_kinds


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("sweep", help="search chain hyperparameters with Ray Tune + Optuna", description=__doc__)
    p.add_argument("--space", help="search-space YAML (default: the embedded search_spaces/default.yaml)")
    p.add_argument("--data", help="override the space's data spec")
    p.add_argument("--storage", help="where sweeps live: a path or s3://, gs:// URI (default: the space's storage)")
    p.add_argument("--name", type=sweep_name, help="sweep name, one directory level (default: the space's name); "
                                                "an existing sweep of that name is never overwritten: use --resume")
    p.add_argument("--address", help="Ray cluster address (default: RAY_ADDRESS, else a local Ray)")
    p.add_argument("--num-samples", type=int_at_least(1, MAX_NUM_SAMPLES), help="override the number of trials")
    p.add_argument("--autoscaling", action="store_true",
                   help="the cluster grows on demand: check trial slots only, not the CPUs/GPUs present now")
    p.add_argument("--resume", metavar="DIR", help="continue the sweep stored at DIR (after a crash or kill)")
    p.add_argument("--trust-sweep", action="store_true",
                   help="--resume: the sweep is yours: import the plug-in its space names by import path and read its data "
                        "where it says, outside the sweep (a stored sweep is data otherwise: docs/security.md)")
    p.add_argument("--quiet", action="store_true", help="no per-trial lines or progress bar")
    p.add_argument("--verbose", action="store_true",
                   help="also show Ray Tune's own output (status tables, result boxes; always kept in the sweep's tune.log)")
    add_json_flag(p)
    p.set_defaults(func=run)


def sweep_then_retime(space: SweepSpace | None = None, **kwargs: Any) -> Any:
    """`raykd sweep`'s two steps: the sweep on Ray (`raykd.distributed.sweep.run_sweep`, same
    arguments), then, with Ray shut down, the re-timing of its front (`speed.retime_rounds` > 0:
    `raykd.analysis.retime.retime_at_end`); the returned `SweepOutcome` holds the re-timed front.
    The orchestration lives here, above both, so `raykd.distributed` never imports `raykd.analysis.retime`."""
    from raykd.analysis.retime import retime_at_end  # deferred: pandas, pyarrow (~1 s), needed after the sweep only
    from raykd.distributed.sweep import run_sweep  # deferred: pyarrow and the searcher (~1.4 s); Ray itself once it runs

    outcome = run_sweep(space, **kwargs)
    if outcome.space is not None and outcome.space.speed.get("retime_rounds"):
        start = time.perf_counter()
        retime_at_end(outcome.root, outcome.space, kwargs.get("log", print))
        outcome = dataclasses.replace(outcome, front=read_pareto(outcome.root).to_pandas(),
                                      wall_s=outcome.wall_s + time.perf_counter() - start)  # the command's whole time
    return outcome


def run(args: argparse.Namespace) -> int:
    if args.trust_sweep and not args.resume:
        raise ConfigError("--trust-sweep is for --resume DIR (a space file given with --space is trusted already)")
    space = None
    if not args.resume:
        space = load_space(args.space)
        changes = {}
        if args.data:
            changes["data"] = args.data
        if args.num_samples is not None:
            changes["num_samples"] = args.num_samples
        space = dataclasses.replace(space, **changes)
        # data, teacher, storage, constraints: refused here, in seconds, not after Ray has started
        check_new_sweep(space, storage_root=args.storage, source=args.space or "embedded default space")
    elif args.space or args.data or args.num_samples or args.name or args.storage:
        raise ConfigError("--resume takes the sweep stored at DIR as it was created (its own copy of the space): "
                          "drop --space/--data/--num-samples/--name/--storage")
    for flag, where in (("--storage", args.storage), ("--resume", args.resume)):
        if where:  # a symlink loop, an over-long name, an S3 bucket with no region: one line, before Ray
            check_storage_uri(where, flag)
    if args.autoscaling:
        os.environ["RAYKD_AUTOSCALING"] = "1"
    quiet = args.quiet or args.json
    outcome = sweep_then_retime(space, storage_root=args.storage, name=args.name, address=args.address, resume=args.resume,
                        trusted=args.trust_sweep, progress=not quiet, verbose=args.verbose and not quiet, log=(lambda _m: None) if quiet else print)
    front = outcome.front
    cols = [c for c in ("trial_id", "accuracy", "accuracy_n", "accuracy_ci_low", "accuracy_ci_high", "accuracy_p_vs_teacher",
                        "test_accuracy", "speedup", "measured_speedup", "retimed_speedup", "retimed_low", "retimed_high",
                        "latency_workload", "ideal_speedup", "params", *(f"{k.count_key}_total" for k in structure_kinds()))
            if c in front]
    hp = [c for c in front.columns if c.startswith("hp_")]
    if args.json:
        print_json({"sweep": outcome.root, "trials": outcome.num_trials, "wall_s": round(outcome.wall_s, 1),
                    "front": front[cols + hp].to_dict(orient="records")})
        return 0
    from raykd.analysis import open_sweep  # deferred: pandas, pyarrow (~1 s), not needed for --json or a refused space

    print(f"\nsweep {outcome.root}: {outcome.num_trials} trials in {outcome.wall_s:.0f} s; Pareto front ({len(front)} points):")
    sw = open_sweep(outcome.root)
    objs = sw.resolve_objectives(None)
    print_table(sw, objs, sw.pareto_mask(objs), front_only=True)
    print(f"\nanalyse with: raykd pareto {outcome.root}")
    return 0

"""`raykd prune`: one-shot head pruning of a saved solver, no training."""

from __future__ import annotations

import argparse

from raykd.cli.args import FRACTION, POSITIVE, SEED, add_threads, number
from raykd.cli.common import add_json_flag, add_output, print_json, set_threads
from raykd.errors import ConfigError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("prune", help="remove the least important heads of a solver (no training)", description=__doc__)
    p.add_argument("--model", required=True, help="solver directory")
    p.add_argument("--ratio", type=number(0.0, 1.0, high_open=True), required=True, help="fraction of heads to remove, in [0, 1)")
    p.add_argument("--alpha", type=FRACTION, default=0.5, help="weight of the norm term in S = a*w + (1-a)*H, in [0, 1]")
    p.add_argument("--calib", required=True, help="data spec of the calibration problems (for attention entropy)")
    add_output(p, "--out", kind="model", inputs=("model",), help="directory for the pruned solver")
    p.add_argument("--importance", choices=["combined", "random", "taylor"], default="combined")
    p.add_argument("--normalisation", choices=["minmax", "zscore", "rank", "none"], default="minmax")
    p.add_argument("--ranking", choices=["per-kind", "global"], default="per-kind")
    p.add_argument("--calib-batches", type=POSITIVE, default=8)
    p.add_argument("--seed", type=SEED, default=0)
    add_threads(p)
    add_json_flag(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from raykd.data import load_problems
    from raykd.structures import head_counts, prune_heads
    from raykd.measure import count_params
    from raykd.method.chain import head_scores
    from raykd.method.config import ChainConfig
    from raykd.method.importance import collect_head_stats
    from raykd.method.pruner import removal_counts, select_heads
    from raykd.task.io import load_solver, save_solver
    from raykd.task.mwp import MWPTask

    cfg = ChainConfig(alpha=args.alpha, importance=args.importance, normalisation=args.normalisation,
                      ranking=args.ranking, seed=args.seed)
    set_threads(args.threads)
    model, tokenizer, _ = load_solver(args.model)
    calib = load_problems(args.calib).problems
    task = MWPTask(tokenizer, model.vocab, {"train": calib})
    if task.num_examples("train") == 0:
        raise ConfigError(f"no usable calibration problems in {args.calib}")
    present = {k: sum(v) for k, v in head_counts(model).items()}
    counts = removal_counts(args.ratio, present, present, args.ranking)
    stats = collect_head_stats(model, task, batches=args.calib_batches, taylor=args.importance == "taylor")
    removal = select_heads(head_scores(stats, cfg, 1), counts)
    before = count_params(model)
    if removal:
        prune_heads(model, removal)
    after = count_params(model)
    settings = {k: getattr(args, k) for k in ("ratio", "alpha", "calib", "importance", "normalisation", "ranking",
                                              "calib_batches", "seed")}
    save_solver(model, tokenizer, args.out, extra={"pruned_from": args.model, "prune": settings}, replace=args.force)
    summary = {"removed": removal, "heads": head_counts(model), "params_before": before, "params_after": after, "out": args.out}
    if args.json:
        print_json(summary)
        return 0
    for kind, layers in head_counts(model).items():
        print(f"{kind:<14} heads per layer {layers}")
    print(f"removed {sum(len(v) for l in removal.values() for v in l.values())} heads; params {before:,} -> {after:,}")
    print(f"saved to {args.out}")
    return 0

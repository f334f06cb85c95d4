"""`raykd prune`: one-shot structured pruning of a saved model (heads, FFN channels, layers), no training.

The equation solver by default; `--task causal-lm` (or a plug-in) prunes that task's saved model,
calibrating on the train split of `--calib` as the task reads it."""

from __future__ import annotations

import argparse
from pathlib import Path

from raykd.cli.args import FRACTION, POSITIVE, SEED, add_threads, number
from raykd.cli.common import add_json_flag, add_output, add_task, print_json, set_threads, task_plugin
from raykd.data import load_problems
from raykd.errors import ConfigError
from raykd.method.config import ChainConfig
from raykd.method.optional_kinds import activate_for_model_dir, activate_for_settings
from raykd.outputs import atomic_dir, is_model_dir


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("prune", help="remove the least important heads, FFN channels or layers of a solver (no training)",
                       description=__doc__)
    p.add_argument("--model", required=True, help="model directory (a solver; with --task, that task's saved model)")
    add_task(p)
    p.add_argument("--ratio", type=number(0.0, 1.0, high_open=True), required=True, help="fraction of heads to remove, in [0, 1)")
    p.add_argument("--ffn-ratio", type=number(0.0, 1.0, high_open=True), default=0.0,
                   help="fraction of FFN channels to remove (of the layers that stay), in [0, 1)")
    p.add_argument("--layer-ratio", type=number(0.0, 1.0, high_open=True), default=0.0,
                   help="fraction of each stack's layers to drop (by Block Influence), in [0, 1); one always stays")
    p.add_argument("--hidden-ratio", type=number(0.0, 1.0, high_open=True), default=0.0,
                   help="fraction of hidden (embedding) channels to remove, one set for the whole model, in [0, 1); "
                        "activates the optional hidden kind (docs/structures.md)")
    p.add_argument("--uniform", action="store_true", help="remove the same number from every layer (an exportable uniform shape)")
    p.add_argument("--gqa-heads", choices=["within-groups", "groups"], default="within-groups",
                   help="grouped-query attention: remove query heads evenly within K/V groups, or whole groups")
    p.add_argument("--alpha", type=FRACTION, default=0.5, help="weight of the norm term in S = a*w + (1-a)*H, in [0, 1]")
    p.add_argument("--ffn-alpha", type=FRACTION, default=0.5, help="weight of the norm term in the FFN score, in [0, 1]")
    p.add_argument("--calib", required=True, help="data spec of the calibration problems (for attention entropy)")
    add_output(p, "--out", kind="model", inputs=("model",), help="directory for the pruned model")
    p.add_argument("--importance", choices=["combined", "random", "taylor"], default="combined")
    p.add_argument("--normalisation", choices=["minmax", "zscore", "rank", "none"], default="minmax")
    p.add_argument("--ranking", choices=["per-kind", "global"], default="per-kind")
    p.add_argument("--calib-batches", type=POSITIVE, default=8)
    p.add_argument("--seed", type=SEED, default=0)
    add_threads(p)
    add_json_flag(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from raykd.measure import count_params  # deferred: torch (~3 s) at `raykd` start-up
    from raykd.method.importance import collect_stats
    from raykd.method.plan import OriginalShape, plan_round
    from raykd.structures import ffn_widths, head_counts, layer_counts, structure_kinds

    activate_for_model_dir(args.model)  # a model pruned in an optional kind (hidden_map) rebuilds with it
    hidden = {"hidden_p_min": args.hidden_ratio, "hidden_p_max": args.hidden_ratio} if args.hidden_ratio else {}
    activate_for_settings(hidden)
    cfg = ChainConfig(alpha=args.alpha, ffn_alpha=args.ffn_alpha, importance=args.importance, normalisation=args.normalisation,
                      ranking=args.ranking, uniform_shape=args.uniform, seed=args.seed, rounds=1, gqa_heads=args.gqa_heads,
                      p_min=args.ratio, p_max=args.ratio, ffn_p_min=args.ffn_ratio, ffn_p_max=args.ffn_ratio,
                      layer_p_min=args.layer_ratio, layer_p_max=args.layer_ratio, plugin_settings=tuple(sorted(hidden.items())))
    plugin = task_plugin(args)
    set_threads(args.threads)
    if plugin.name == "mwp":
        model, task, save = _mwp_solver(args)
    else:
        loaded = plugin.load(Path(args.model), args.calib, seed=args.seed)
        model, task = loaded.model, loaded.task

        def save(extra: dict) -> None:
            with atomic_dir(args.out, may_replace=lambda p: args.force and is_model_dir(p)) as tmp:
                loaded.io.save(model, tmp, extra)
    if task.num_examples("train") == 0:
        raise ConfigError(f"no usable calibration problems in {args.calib}")
    on = cfg.prunes
    stats = collect_stats(model, task, batches=args.calib_batches, taylor=args.importance == "taylor",
                          ffn=on["ffn"], layers=on["layers"], kinds=[k for k, v in on.items() if v])
    plan = plan_round(model, stats, cfg, 1, OriginalShape.of(model))
    before = count_params(model)
    plan.apply(model)
    after = count_params(model)
    settings = {k: getattr(args, k) for k in ("task", "ratio", "ffn_ratio", "layer_ratio", "uniform", "gqa_heads", "alpha",
                                              "ffn_alpha", "calib", "importance", "normalisation", "ranking", "calib_batches", "seed")}
    if args.hidden_ratio:  # only when asked: a prune without it records exactly what it always did
        settings["hidden_ratio"] = args.hidden_ratio
    save({"pruned_from": args.model, "prune": settings})
    removed = plan.removed()
    summary = {"removed": plan.heads, "removed_ffn": plan.ffn, "removed_layers": plan.layers, "heads": head_counts(model),
               "ffn": ffn_widths(model), "layers": layer_counts(model), "params_before": before, "params_after": after,
               "out": args.out}
    if args.hidden_ratio:
        summary["removed_hidden"] = removed["hidden_channels"]
    if args.json:
        print_json(summary)
        return 0
    for kind, layers in head_counts(model).items():
        print(f"{kind:<14} heads per layer {layers}")
    for kind, widths in ffn_widths(model).items():
        print(f"{kind:<14} FFN width per layer {widths}")
    for kind, n in layer_counts(model).items():
        print(f"{kind:<14} {n} layers")
    print(f"removed {', '.join(f'{removed[k.count_key]} {k.unit}' for k in structure_kinds())}; "
          f"params {before:,} -> {after:,}")
    print(f"saved to {args.out}")
    return 0


def _mwp_solver(args: argparse.Namespace) -> tuple:
    """(solver, its task over the --calib problems as "train", a save function) for the default task."""
    from raykd.task.io import load_solver, save_solver  # deferred: torch (~3 s) at `raykd` start-up
    from raykd.task.mwp import MWPTask

    model, tokenizer, _ = load_solver(args.model)
    task = MWPTask(tokenizer, model.vocab, {"train": load_problems(args.calib).problems})
    return model, task, lambda extra: save_solver(model, tokenizer, args.out, extra=extra, replace=args.force)

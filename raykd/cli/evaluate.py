"""`raykd eval`: answer accuracy of a saved solver on a data set."""

from __future__ import annotations

import argparse

from raykd.cli.args import BATCH, BEAM, add_device, add_threads
from raykd.cli.common import add_json_flag, print_json, set_threads
from raykd.data import load_problems
from raykd.errors import DataError
from raykd.method.optional_kinds import activate_for_model_dir
from raykd.stats import format_accuracy


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("eval", help="evaluate a solver on a data set", description=__doc__)
    p.add_argument("--model", required=True, help="solver directory (from teacher, chain or export)")
    p.add_argument("--data", required=True, help="data spec; the whole set is evaluated (use a split file for a split)")
    p.add_argument("--beam-size", type=BEAM, default=1, help="beam size (1: greedy)")
    p.add_argument("--batch-size", type=BATCH, default=64)
    add_device(p)
    add_threads(p)
    p.add_argument("--strict", action="store_true")
    add_json_flag(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from raykd.task.io import load_solver  # deferred: torch (~3 s) at `raykd` start-up
    from raykd.task.mwp import MWPTask

    set_threads(args.threads)
    activate_for_model_dir(args.model)  # a model pruned in an optional kind (hidden_map) rebuilds with it
    model, tokenizer, _ = load_solver(args.model)
    loaded = load_problems(args.data, strict=args.strict)
    if not loaded.problems:
        raise DataError(f"{args.data} holds no usable problems to evaluate ({len(loaded.skipped)} rows skipped)")
    task = MWPTask(tokenizer, model.vocab, {"eval": loaded.problems}, eval_batch_size=args.batch_size, beam_size=args.beam_size)
    metrics = task.evaluate(model.to(args.device), "eval")
    metrics["skipped_rows"] = len(loaded.skipped)
    if args.json:
        print_json(metrics)
        return 0

    print(f"n {metrics['n']} (skipped rows: {metrics['skipped_rows']})")
    print(f"answer accuracy   {format_accuracy(metrics)}")
    print(f"equation accuracy {metrics['equation_accuracy']:.4f}")
    for level, m in metrics["by_complexity"].items():
        print(f"  {level:<8} {format_accuracy(m)}")
    return 0

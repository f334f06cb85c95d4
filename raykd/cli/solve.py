"""`raykd solve`: solve one problem typed on the command line."""

from __future__ import annotations

import argparse

from raykd.cli.args import BEAM, problem_text
from raykd.cli.common import add_json_flag, print_json
from raykd.data.numbers import NumberTooLarge
from raykd.errors import RaykdInputError
from raykd.method.optional_kinds import activate_for_model_dir


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("solve", help="solve one math word problem", description=__doc__)
    p.add_argument("--model", required=True, help="solver directory")
    p.add_argument("text", type=problem_text, help="the problem, in quotes")
    p.add_argument("--beam-size", type=BEAM, default=1, help="beam size (1: greedy)")
    add_json_flag(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from raykd.task.free_text import solve_text  # deferred: torch (~3 s) at `raykd` start-up
    from raykd.task.io import load_solver

    activate_for_model_dir(args.model)  # a model pruned in an optional kind (hidden_map) rebuilds with it
    model, tokenizer, _ = load_solver(args.model)
    try:
        result = solve_text(model, tokenizer, args.text, beam_size=args.beam_size)
    except NumberTooLarge as exc:
        raise RaykdInputError(f"cannot solve this text: {exc}") from None
    if args.json:
        print_json(result)
        return 0
    print(f"numbers:    {', '.join(f'N{i}={v:g}' for i, v in enumerate(result['numbers'])) or '(none)'}")
    print(f"expression: {result['infix']}   (prefix: {' '.join(result['prefix'])})")
    print(f"answer:     {result['answer'] if result['answer'] is not None else 'cannot be evaluated'}")
    return 0

"""`raykd reproduce`: run the paper's Tables 1, 3a, 3b and 4 from one teacher and write them.

Writes OUT/results.json (every record), OUT/tables.md and OUT/tables.json; re-running on the
same OUT resumes (finished experiments are kept). Train the teacher first with `raykd teacher`.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from raykd.cli.args import REPEATS, SEED, add_device, add_threads
from raykd.cli.chain import load_chain_config
from raykd.cli.common import add_json_flag, add_output, print_json, set_threads
from raykd.data import load_splits, require_splits
from raykd.errors import ConfigError
from raykd.experiments.plan import TABLES, plan_experiments
from raykd.method.optional_kinds import activate_for_model_dir
from raykd.storage import write_bytes_atomic


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("reproduce", help="reproduce the paper's tables (chains in-process)", description=__doc__)
    p.add_argument("--data", help="data spec (split as for the teacher)")
    p.add_argument("--teacher", help="unpruned solver directory (from `raykd teacher`)")
    add_output(p, "--out", kind="reproduce", inputs=("teacher",), help="output directory (resumable)")
    p.add_argument("--render", action="store_true",
                   help="run nothing: rebuild tables.md / tables.json from OUT/results.json (e.g. after runs of "
                        "different tables with different budgets into the same OUT)")
    p.add_argument("--tables", nargs="+", default=list(TABLES), choices=list(TABLES), help="which tables (default: all)")
    p.add_argument("--config", help="YAML of base chain settings (training budget, lr, measurement); "
                                    "each experiment overrides ratio, schedule and the ablated part")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override one base setting")
    p.add_argument("--remeasure", action="store_true",
                   help="train nothing: re-time the teacher and every trained model together, interleaved in one "
                        "process (robust on a busy machine), store it in results.json and rebuild the tables")
    p.add_argument("--repeats", type=REPEATS, default=20, help="--remeasure: interleaved timing rounds")
    p.add_argument("--seed", type=SEED, default=0, help="data split seed")
    add_threads(p)
    add_device(p)
    p.add_argument("--quiet", action="store_true")
    add_json_flag(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    # deferred: torch (~3 s) at `raykd` start-up
    from raykd.experiments.run import ReproductionResult, check_same_inputs, inputs_fingerprint, remeasure_speed, run_reproduction
    from raykd.method.round_cost import make_measure
    from raykd.task.io import SolverIO, load_solver
    from raykd.task.mwp import MWPTask

    out = Path(args.out)
    if args.render:
        return _write_and_print(ReproductionResult.load(out), args, out)
    if not args.data or not args.teacher:
        raise ConfigError("--data and --teacher are needed (unless --render)")
    base = load_chain_config(args.config, args.set)
    experiments = plan_experiments(args.tables)
    stored = ReproductionResult.load(out) if args.remeasure else None  # checked before any model is loaded
    set_threads(args.threads)
    activate_for_model_dir(args.teacher)  # a teacher pruned in an optional kind (hidden_map) rebuilds with it
    teacher, tokenizer, _ = load_solver(args.teacher)
    teacher.to(args.device)
    splits = load_splits(args.data, seed=args.seed)
    require_splits(splits, args.data, ("train", "valid", "test"), why="the tables train on train, select on valid and report test")
    task = MWPTask(tokenizer, teacher.vocab, splits)
    if stored is not None:
        check_same_inputs(stored, inputs_fingerprint(task, teacher), args.data, out)
        remeasure_speed(task, teacher, SolverIO(tokenizer), out, stored, batch_size=base.latency_batch, repeats=args.repeats,
                        threads=args.threads or None, workload=base.latency_workload)
        return _write_and_print(stored, args, out)
    quiet = args.quiet or args.json
    log = (lambda _m: None) if quiet else print
    result = run_reproduction(task, teacher, SolverIO(tokenizer), out, base, experiments,
                              make_measure(task, repeats=base.latency_repeats, threads=args.threads or None,
                                           workload=base.latency_workload),
                              data=args.data, source=splits["train"][0].source, progress=not quiet, log=log,
                              on_update=lambda r: write_tables(r, args.tables, out))
    return _write_and_print(result, args, out)


def write_tables(result: Any, tables: list[str], out: Path) -> dict[str, Any]:
    from raykd.experiments.tables import build_tables, render_markdown  # deferred: torch (~3 s) at `raykd` start-up

    built = build_tables(result, tables)
    write_bytes_atomic(out / "tables.json", json.dumps(built, indent=1, ensure_ascii=False).encode())
    write_bytes_atomic(out / "tables.md", render_markdown(built).encode())
    return built


def _write_and_print(result: Any, args: argparse.Namespace, out: Path) -> int:
    from raykd.experiments.tables import render_markdown  # deferred: torch (~3 s) at `raykd` start-up

    built = write_tables(result, args.tables, out)
    if args.json:
        print_json({"out": str(out), "tables": built})
    else:
        print(render_markdown(built))
        print(f"written: {out / 'tables.md'}, {out / 'results.json'}")
    return 0

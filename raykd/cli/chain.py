"""`raykd chain`: one recursive prune -> distill chain, in this process."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from raykd.cli.args import SEED, add_device, add_threads
from raykd.cli.common import add_json_flag, add_output, add_task, parse_assignments, print_json, set_threads, task_plugin
from raykd.errors import ConfigError
from raykd.method.config import ChainConfig
from raykd.method.optional_kinds import activate_for_model_dir, activate_for_settings
from raykd.stats import format_accuracy
from raykd.structures.registry import structure_kinds
from raykd.yaml_io import load_yaml_file


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("chain", help="run one prune -> distill chain in-process", description=__doc__)
    p.add_argument("--teacher", required=True, help="unpruned teacher directory (from `raykd teacher`, same --task)")
    p.add_argument("--data", required=True, help="data spec, read by the task (split as for the teacher)")
    add_task(p)
    p.add_argument("--config", help="YAML file of chain settings (see docs/method.md); defaults otherwise")
    add_output(p, "--out", kind="chain", inputs=("teacher",), help="chain directory: one checkpoint per round; re-running resumes")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override one setting (YAML value)")
    p.add_argument("--seed", type=SEED, default=0, help="data split seed")
    add_threads(p)
    add_device(p)
    p.add_argument("--quiet", action="store_true")
    add_json_flag(p)
    p.set_defaults(func=run)


def load_chain_config(path: str | None, overrides: list[str]) -> Any:
    given = load_yaml_file(path, "chain config") if path else None  # the settings it names activate optional kinds
    assignments = parse_assignments(overrides, "--set")
    activate_for_settings([*(given if isinstance(given, dict) else {}), *assignments])
    base = {**(ChainConfig.from_file_data(given, path).to_dict() if path else {}), **assignments}
    try:
        return ChainConfig.from_dict(base)
    except ConfigError as exc:
        raise ConfigError(f"{'--set/--config' if overrides else path}: {exc}") from None


def run(args: argparse.Namespace) -> int:
    from raykd.method.chain import Chain  # deferred: torch (~3 s) at `raykd` start-up
    from raykd.method.round_cost import make_measure
    from raykd.task.registry import require_task_splits

    config = load_chain_config(args.config, args.set)
    plugin = task_plugin(args)
    set_threads(args.threads)
    activate_for_model_dir(args.teacher)  # a teacher pruned in an optional kind (hidden_map) rebuilds with it
    loaded = plugin.load(Path(args.teacher), args.data, seed=args.seed)
    task, model = loaded.task, loaded.model.to(args.device)
    require_task_splits(task, args.data, ("train", "valid"), why="each round trains on train and is scored on valid")
    quiet = args.quiet or args.json
    chain = Chain(task, model, config, loaded.io, Path(args.out), make_measure(task, repeats=config.latency_repeats, workload=config.latency_workload),
                  progress=not quiet, log=(lambda _m: None) if quiet else print,
                  on_round=None if quiet else (lambda rec, _d: print(round_line(rec))))
    result = chain.run()
    teacher_valid = result.teacher_metrics["valid"]
    if args.json:
        print_json({"task": plugin.name, "teacher_accuracy": teacher_valid[task.primary_metric], "teacher": result.teacher_metrics,
                    "rounds": result.records, "out": args.out})
        return 0
    print_round_table(result.records, teacher_valid)
    print(f"final model: {Path(args.out) / f'round-{len(result.records):02d}'}")
    return 0


def round_line(rec: dict[str, Any]) -> str:
    return (f"round {rec['round']}: ratio {rec['ratio']:.3f}, {_shape(rec)}, "
            f"accuracy {_acc(rec)}, speedup {rec['speedup']:.3f}x (ideal {rec['ideal_speedup']:.3f}x)")


def _shape(rec: dict[str, Any]) -> str:
    """'heads 60/104, FFN channels 4608/6144, layers 5/8': every registered structure kind the
    record counts, in registration order (a record from before `structures` existed: heads only)."""
    now, original = rec.get("structures") or {}, rec.get("structures_original") or {}
    parts = [f"{k.unit} {now[k.count_key]}/{original[k.count_key]}" for k in structure_kinds()
             if k.count_key in now and k.count_key in original]
    return ", ".join(parts) or f"heads {rec['heads_total']}/{rec['heads_original']}"


def _acc(rec: dict[str, Any], prefix: str = "accuracy") -> str:
    """'0.741 [0.64, 0.82] n 81' (95% Wilson interval) from a round record."""
    low, high = rec.get(f"{prefix}_ci_low"), rec.get(f"{prefix}_ci_high")
    if low is None or high is None:
        return f"{rec[prefix]:.3f}"
    return f"{rec[prefix]:.3f} [{low:.2f}, {high:.2f}] n {rec.get(f'{prefix}_n')}"


def _paired(rec: dict[str, Any]) -> str:
    """Problems lost/gained against the teacher on valid and the exact McNemar p-value."""
    p = rec.get("accuracy_p_vs_teacher")
    return "–" if p is None else f"-{rec['accuracy_lost']}/+{rec['accuracy_gained']}, p {p:.2g}"


def print_round_table(records: list[dict[str, Any]], teacher: dict[str, Any]) -> None:
    from rich.console import Console  # deferred: rich, for this table only
    from rich.table import Table

    table = Table(title=f"chain (teacher valid accuracy {format_accuracy(teacher)}; intervals 95% Wilson; "
                        "vs teacher: problems lost/gained, exact McNemar p)")
    for col in ("round", "ratio", "shape", "accuracy [95% CI] n", "vs teacher", "params↓", "FLOPs↓", "speed↑ (measured)",
                "ideal speed↑", "memory↓", "train s"):
        table.add_column(col, justify="right")
    for r in records:
        table.add_row(
            str(r["round"]), f"{r['ratio']:.3f}", _shape(r), _acc(r), _paired(r),
            f"{100 * r['params_reduction']:.1f}%", f"{100 * r['flops_reduction']:.1f}%", f"{r['speedup']:.3f}x",
            f"{r['ideal_speedup']:.3f}x", f"{100 * r['memory_reduction']:.1f}%", f"{r['train_s']:.0f}",
        )
    Console(width=160).print(table)

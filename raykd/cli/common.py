"""Argument helpers shared by the command modules, and the one place output locations are checked."""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from raykd.errors import ConfigError, RaykdInputError
from raykd.outputs import (
    CHAIN_ENTRIES,
    REPRODUCE_ENTRIES,
    check_model_dir,
    check_not_overlapping,
    check_output_file,
    check_resumable_dir,
)
from raykd.yaml_io import parse_yaml

OutputKind = Literal["model", "chain", "reproduce", "cv", "file"]


def add_json_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of a table")


def print_json(obj: Any) -> None:
    json.dump(obj, sys.stdout, indent=2, sort_keys=True, default=str)
    sys.stdout.write("\n")


def set_threads(threads: int | None) -> None:
    """Fix torch's intra-op threads (measurements and reproducibility want a fixed count)."""
    if threads:
        import torch  # deferred: torch (~3 s) at `raykd` start-up

        torch.set_num_threads(threads)


@dataclass(frozen=True)
class OutputSpec:
    """One output location of a command, checked by `prepare_outputs` before the command runs."""

    dest: str
    flag: str
    kind: OutputKind
    inputs: tuple[str, ...] = ()  # dests of every input path (models, sweeps) the output must not overlap


OUTPUT_HELP = {
    "model": "must be new or empty; --force replaces an earlier raykd model there, "
             "never a directory holding other files",
    "chain": "new, empty, or an earlier chain's directory (resumed only if its settings, teacher and data match)",
    "reproduce": "new, empty, or an earlier reproduction's directory (resumed only if teacher and data match)",
    "cv": "new, empty, or an earlier cross-validation's directory (resumed only if its settings and data match)",
    "file": "an existing file is replaced only if raykd wrote it, or with --force",
}


def add_output(parser: argparse.ArgumentParser, flag: str, *, kind: OutputKind, help: str, required: bool = True,
               inputs: tuple[str, ...] = (), metavar: str | None = None) -> None:
    """Add an output flag whose location `prepare_outputs` checks before any work starts."""
    action = parser.add_argument(flag, required=required, metavar=metavar, help=f"{help} ({OUTPUT_HELP[kind]})")
    specs = list(parser.get_default("_outputs") or [])
    parser.set_defaults(_outputs=[*specs, OutputSpec(action.dest, flag, kind, inputs)],
                        _input_flags={a.dest: (a.option_strings[0] if a.option_strings else (a.metavar or a.dest))
                                      for a in parser._actions if a.dest in inputs})
    if kind in ("model", "file") and not any("--force" in a.option_strings for a in parser._actions):
        parser.add_argument("--force", action="store_true",
                            help="replace an existing output that raykd wrote (default: refuse)")


def prepare_outputs(args: argparse.Namespace) -> None:
    """Check every output location of the command (exit 2 before any work if one is refused)."""
    force = bool(getattr(args, "force", False))
    for spec in getattr(args, "_outputs", None) or []:
        value = getattr(args, spec.dest, None)
        if value is None:
            continue
        if not str(value).strip():
            raise RaykdInputError(f"{spec.flag} is empty")
        # first: never write into, over or around what the command reads (whatever the kind says)
        inputs = {input_flag(args, d): getattr(args, d) for d in spec.inputs if getattr(args, d, None)}
        check_not_overlapping(Path(value), inputs, spec.flag)
        if spec.kind == "model":
            check_model_dir(value, force=force, flag=spec.flag)
        elif spec.kind == "chain":
            check_resumable_dir(value, CHAIN_ENTRIES, what="chain", flag=spec.flag)
        elif spec.kind == "reproduce":
            check_resumable_dir(value, REPRODUCE_ENTRIES, what="reproduction", flag=spec.flag)
        elif spec.kind == "cv":
            from raykd.cli.cv import CV_ENTRIES  # deferred: a cycle, cli.cv imports cli.common (a known debt)

            check_resumable_dir(value, CV_ENTRIES, what="cross-validation", flag=spec.flag)
        else:
            check_output_file(value, force=force, flag=spec.flag)


def input_flag(args: argparse.Namespace, dest: str) -> str:
    """How the user wrote the input `dest` ("--model", "--with", or "RUN" for a positional)."""
    flags = (getattr(args, "_input_flags", None) or {})
    return flags.get(dest) or f"--{dest.strip('_').replace('_', '-')}"


def add_task(parser: argparse.ArgumentParser) -> None:
    """--task NAME|module:factory and --task-option KEY=VALUE (raykd.task.registry)."""
    parser.add_argument("--task", default="mwp",
                        help="task: mwp (default: the equation solver), causal-lm (decoder-only LLMs), or a plug-in's "
                             "import path module:factory (docs/tasks.md)")
    parser.add_argument("--task-option", action="append", default=[], metavar="KEY=VALUE",
                        help="an option of the task (YAML value), e.g. max_new_tokens=24 for causal-lm")


def task_plugin(args: argparse.Namespace) -> Any:
    """The `TaskPlugin` that --task and --task-option name; ConfigError (one line) otherwise."""
    from raykd.task.registry import TaskSpec, load_task_plugin  # deferred: torch (~3 s) at `raykd` start-up

    return load_task_plugin(TaskSpec(args.task, parse_assignments(args.task_option, "--task-option")))


def parse_assignments(items: list[str], flag: str) -> dict[str, Any]:
    """{key: YAML value} from repeated `flag KEY=VALUE` arguments; ConfigError naming a bad one."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"{flag} needs KEY=VALUE, got {item!r}")
        out[key.strip()] = parse_yaml(value, f"{flag} {item!r}")
    return out

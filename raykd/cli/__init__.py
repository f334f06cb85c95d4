"""The `raykd` command line: one entry point, one module per command group.

Each command module exposes `register(subparsers)`, which adds its parser and sets
`func=<callable(args) -> int>`. `main` turns `RaykdInputError` into one line on stderr and exit 2.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from typing import Sequence

from raykd import __version__
from raykd.cli.args import RaykdArgumentParser
from raykd.cli.common import prepare_outputs
from raykd.errors import RaykdInputError

# Command modules, in the order `raykd --help` lists them.
COMMAND_MODULES: tuple[str, ...] = (
    "raykd.cli.data",
    "raykd.cli.teacher",
    "raykd.cli.evaluate",
    "raykd.cli.solve",
    "raykd.cli.prune",
    "raykd.cli.chain",
    "raykd.cli.bench",
    "raykd.cli.reproduce",
    "raykd.cli.cv",
    "raykd.cli.sweep",
    "raykd.cli.pareto",
    "raykd.cli.export",
)


def build_parser() -> argparse.ArgumentParser:
    parser = RaykdArgumentParser(
        prog="raykd",
        description="Prune attention heads and recover accuracy by recursive distillation; "
        "search the hyperparameters on Ray.",
        epilog="Your files are safe by default: no command replaces a file or directory it did not write. "
        "--out of teacher/prune/export must be new or empty (--force replaces an earlier raykd model, never "
        "anything else); chain/reproduce --out resume only a run with the same settings, teacher and data; "
        "sweep never reuses a name (--resume continues one). Bad input: one 'raykd: error:' line, exit code 2.",
    )
    parser.add_argument("--version", action="version", version=f"raykd {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # a bad argument (exit 2, one line already printed) or --help/--version (0)
        return exc.code if isinstance(exc.code, int) else 0 if exc.code is None else 2
    try:
        prepare_outputs(args)  # every output location, checked before any work starts
        return int(args.func(args) or 0)
    except RaykdInputError as exc:
        print(f"raykd: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("raykd: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

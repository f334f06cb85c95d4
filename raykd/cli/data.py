"""`raykd data check|show SPEC`: see what a data spec loads to before training on it."""

from __future__ import annotations

import argparse
import json
from typing import Any

from raykd.cli.args import int_at_least
from raykd.data.check import check_report
from raykd.data.expressions import from_prefix, to_infix
from raykd.data.numbers import format_number
from raykd.data.readers import load_problems

SPEC_HELP = (
    "FORMAT:PATH (asdiv-a, math23k, mawps, svamp, gsm8k), synthetic:N[:SEED], synthetic:TRAIN/VALID/TEST[:SEED], or a PATH "
    "(file or directory of train/valid/test files) whose format is detected"
)


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = subparsers.add_parser(
        "data", help="check or preview a data set", description="Load a data spec and report on it."
    )
    actions = parser.add_subparsers(dest="data_command", metavar="ACTION")
    actions.required = True

    check = actions.add_parser(
        "check",
        help="load a data set and report skipped rows and gold consistency",
        description="Load SPEC, then report counts, skip reasons and every skipped or inconsistent row. "
        "Consistency counts only problems that have an equation (GSM8K rows may be answer-only).",
    )
    check.add_argument("spec", metavar="SPEC", help=SPEC_HELP)
    check.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    check.add_argument("--strict", action="store_true", help="fail (exit 2) on the first row that cannot be loaded")
    check.set_defaults(func=run_check)

    show = actions.add_parser(
        "show", help="print the first parsed problems", description="Print the first N problems of SPEC as parsed."
    )
    show.add_argument("spec", metavar="SPEC", help=SPEC_HELP)
    show.add_argument("--n", type=int_at_least(1), default=5, help="how many problems to print (default 5)")
    show.set_defaults(func=run_show)


def _percent(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.2f}%"


def format_report(report: dict[str, Any]) -> str:
    """The human-readable form of a `check_report`."""
    lines = [
        f"source: {report['source']}",
        f"loaded: {report['loaded']}   skipped: {report['skipped']}   inconsistent: {report['inconsistent']}",
        f"consistent: {_percent(report['consistent'])} of {report['with_equation']} problems with an equation"
        f" (answer-only: {report['answer_only']}; equations using no text number: {report['constants_only']})",
        "by complexity: " + ", ".join(f"{level} {count}" for level, count in report["by_complexity"].items()),
    ]
    if report["post_ops"]:
        counts = ", ".join(f"{count} {op}" for op, count in report["post_ops"].items())
        lines.append(f"remainder problems: {counts} (gold = the stated quotient; exact value in meta['exact_answer'])")
    if report["skipped_reasons"]:
        lines.append("skip reasons:")
        lines += [f"  {reason}: {count}" for reason, count in report["skipped_reasons"].items()]
    if report["rows"]:
        lines.append("bad rows:")
        for row in report["rows"]:
            where = f"{row['file']} row {row['index']}" if row["file"] else f"row {row['index']}"
            lines.append(f"  {row['kind']:<12} {where} (id {row['id']}): {row['reason']}")
    return "\n".join(lines)


def run_check(args: argparse.Namespace) -> int:
    report = check_report(load_problems(args.spec, strict=args.strict))
    print(json.dumps(report, ensure_ascii=False) if args.json else format_report(report))
    return 0


def run_show(args: argparse.Namespace) -> int:
    result = load_problems(args.spec)
    for problem in result.problems[: args.n]:
        numbers = ", ".join(f"N{k}={format_number(v)}" for k, v in enumerate(problem.numbers)) or "(none)"
        equation = " ".join(problem.equation) or "(answer only)"
        infix = to_infix(from_prefix(problem.equation)) if problem.equation else ""
        print(f"[{problem.id}] {problem.complexity}")
        print(f"  text:     {problem.text}")
        print(f"  numbers:  {numbers}")
        print(f"  equation: {equation}" + (f"   ({infix})" if infix else ""))
        print(f"  answer:   {format_number(problem.answer)}   (as written: {problem.answer_text})")
    print(f"{min(args.n, len(result.problems))} of {len(result.problems)} problems from {result.source}")
    return 0

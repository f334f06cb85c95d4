"""Recovery levers on and off at a fixed student shape: what each one buys, measured and paired.

Runs one `raykd chain` per variant from the same teacher and the same base settings, each variant
overriding a few settings (`--variant NAME=key=value,key=value`; `NAME=` alone is the base). Every
chain is an ordinary resumable chain directory under `--out`, so an interrupted run continues where
it stopped and a finished variant costs nothing to re-read. The table reports, per variant and
round: the measured speedup (side by side with the teacher, in the chain's own run), the accuracy on
the split named by `--split` (default test: never used for training or selection) with its n and
95% Wilson interval, the paired difference from the teacher with its 95% Newcombe interval, the
exact McNemar p, and the non-inferiority verdict at `--margin` points.

    python bench/recovery_levers.py --teacher /work/runs/default-teacher --data synthetic:640/1100/1100 \
        --base /work/runs/levers/base.yaml --out /work/runs/levers --threads 1 \
        --variant base= --variant epochs4=epochs_per_round=4 --json bench/results/recovery_levers_default.json
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import yaml


def parse_variant(text: str) -> tuple[str, dict[str, Any]]:
    name, _, rest = text.partition("=")
    if not name:
        raise SystemExit(f"recovery_levers: error: a variant needs a name: {text!r}")
    settings: dict[str, Any] = {}
    for item in filter(None, rest.split(",")):
        key, sep, value = item.partition("=")
        if not sep:
            raise SystemExit(f"recovery_levers: error: {item!r} in variant {name!r} is not key=value")
        settings[key] = yaml.safe_load(value)
    return name, settings


def run_variant(args: argparse.Namespace, name: str, settings: dict[str, Any]) -> dict[str, Any]:
    out = Path(args.out) / name
    cmd = [sys.executable, "-m", "raykd", "chain", "--teacher", args.teacher, "--data", args.data, "--config", args.base,
           "--out", str(out), "--threads", str(args.threads), "--json", "--quiet"]
    for key, value in settings.items():
        cmd += ["--set", f"{key}={json.dumps(value)}"]
    start = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"recovery_levers: variant {name} failed:\n{done.stderr[-3000:]}")
    result = json.loads(done.stdout)
    result["variant"], result["settings"], result["call_s"] = name, settings, round(time.perf_counter() - start, 1)
    return result


def row(name: str, record: dict[str, Any], split: str, margin: float) -> dict[str, Any]:
    key = "test_accuracy" if split == "test" else "accuracy"
    low, high = record.get(f"{key}_diff_low"), record.get(f"{key}_diff_high")
    return {
        "variant": name, "round": record["round"],
        "speedup": record.get("speedup"), "speedup_source": record.get("speedup_source"),
        "layers": record.get("layers_total"), "heads": record.get("heads_total"), "ffn": record.get("ffn_channels_total"),
        "accuracy": record.get(key), "n": record.get(f"{key}_n"),
        "ci": (record.get(f"{key}_ci_low"), record.get(f"{key}_ci_high")),
        "diff": record.get(f"{key}_diff"), "diff_ci": (low, high), "p": record.get(f"{key}_p_vs_teacher"),
        "non_inferior": low is not None and low > -margin / 100.0,
        "valid_accuracy": record.get("accuracy"), "train_s": record.get("train_s"),
        "final_train_steps": record.get("final_train_steps"),
    }


def table(rows: list[dict[str, Any]], margin: float) -> str:
    lines = [f"| variant | round | speedup | layers/heads/FFN | acc % [95% CI] (n) | Δ pts [95% CI] | McNemar p | NI @{margin:g} |",
             "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        pct = lambda v: f"{100 * v:.1f}" if v is not None else "–"  # noqa: E731
        lines.append(
            f"| {r['variant']} | {r['round']} | {r['speedup']:.2f}x | {r['layers']}/{r['heads']}/{r['ffn']} | "
            f"{pct(r['accuracy'])} [{pct(r['ci'][0])}–{pct(r['ci'][1])}] ({r['n']}) | "
            f"{100 * r['diff']:+.1f} [{100 * r['diff_ci'][0]:+.1f}, {100 * r['diff_ci'][1]:+.1f}] | {r['p']:.2g} | "
            f"{'yes' if r['non_inferior'] else 'no'} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--teacher", required=True)
    parser.add_argument("--data", required=True)
    parser.add_argument("--base", required=True, help="YAML chain settings shared by every variant")
    parser.add_argument("--out", required=True, help="directory of the variants' chain directories (resumable)")
    parser.add_argument("--variant", action="append", default=[], help="NAME=key=value,key=value (repeatable)")
    parser.add_argument("--split", choices=("test", "valid"), default="test")
    parser.add_argument("--margin", type=float, default=2.0, help="non-inferiority margin in points")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--all-rounds", action="store_true", help="a row per round (default: the last round only)")
    parser.add_argument("--json", help="write the rows and the raw chain results here")
    args = parser.parse_args(argv)
    variants = [parse_variant(v) for v in args.variant] or [("base", {})]
    rows, raw = [], []
    for name, settings in variants:
        result = run_variant(args, name, settings)
        raw.append(result)
        records = result["rounds"] if args.all_rounds else result["rounds"][-1:]
        rows += [row(name, r, args.split, args.margin) for r in records]
        print(f"{name}: done in {result['call_s']} s", file=sys.stderr, flush=True)
    teacher = raw[0].get("teacher_accuracy")
    print(f"teacher accuracy on valid (the chain's figure; the table compares on --split): {teacher}")
    print(table(rows, args.margin))
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps({"argv": sys.argv[1:], "rows": rows,
                                               "chains": [{k: v for k, v in r.items() if k != "rounds"} |
                                                          {"rounds": [{k: v for k, v in rec.items() if not k.endswith("_correct")}
                                                                      for rec in r["rounds"]]} for r in raw]},
                                              indent=1, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

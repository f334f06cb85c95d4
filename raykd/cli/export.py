"""`raykd export`: copy one trial's model out of a sweep into a standalone solver directory.

The directory loads with `raykd eval --model DIR`, `raykd solve --model DIR` and
`raykd.task.io.load_solver`; its README.md records the trial's hyperparameters, measured figures
and provenance (export.json holds the same in machine-readable form).
"""

from __future__ import annotations

import argparse

from raykd.cli.common import add_json_flag, add_output, print_json


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("export", help="copy a sweep trial's model to a standalone directory", description=__doc__)
    p.add_argument("run", metavar="RUN", help="the sweep directory: <storage>/<name>, a local path or s3:// / gs:// URI")
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--trial", metavar="ID", help="the trial id (see `raykd pareto RUN`)")
    which.add_argument("--pick", metavar="SPEC",
                       help='choose by constraint: "max-drop=0.5" (fastest within 0.5 accuracy points of the '
                            'teacher), "min-speedup=1.2" (smallest with speedup >= 1.2x); also max-params=, '
                            'max-flops=, min-accuracy=, by=METRIC:MODE, comma-separated')
    add_output(p, "--out", kind="model", metavar="DIR", help="target directory")
    add_json_flag(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from raykd.analysis import export_trial, open_sweep, parse_pick

    sw = open_sweep(args.run)
    if args.pick is not None:
        query = parse_pick(args.pick)
        out = export_trial(sw, args.out, force=args.force, selected_by=f'--pick "{args.pick}"', **query)
    else:
        out = export_trial(sw, args.out, trial_id=args.trial, force=args.force, selected_by=f"--trial {args.trial}")
    import json

    record = json.loads((out / "export.json").read_text())
    if args.json:
        print_json({"out": str(out), **record})
        return 0
    m = record["metrics"]
    acc = f"{100 * m['accuracy']:.2f}%" if m.get("accuracy") is not None else "–"
    drop = f" (drop {m['accuracy_drop']:.2f} pt)" if m.get("accuracy_drop") is not None else ""
    speed = f"{m['speedup']:.3f}x" if m.get("speedup") is not None else "–"
    params = f"{int(m['params']):,}" if m.get("params") is not None else "–"
    print(f"exported trial {record['trial_id']} of sweep {record['sweep']} ({record['selected_by']})")
    print(f"  accuracy {acc}{drop}, speedup {speed}, params {params}")
    print("  hyperparameters: " + ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
                                          for k, v in record["hyperparameters"].items()))
    print(f"  -> {out} (README.md, export.json)")
    return 0

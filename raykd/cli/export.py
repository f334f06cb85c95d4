"""`raykd export`: copy one trial's model out of a sweep into a standalone solver directory.

The directory loads with `raykd eval --model DIR`, `raykd solve --model DIR` and
`raykd.task.io.load_solver`; its README.md records the trial's hyperparameters, measured figures
and provenance (export.json holds the same in machine-readable form).

With --hf the output is instead a stock Transformers directory of the pruned encoder (loads with
`AutoModel.from_pretrained`, no raykd needed), from a sweep trial or from a solver (--model DIR);
a shape that a stock config cannot express (pruned heads, uneven FFN widths) is refused, naming it.
"""

from __future__ import annotations

import argparse
import json
import tempfile

from raykd.cli.common import add_json_flag, add_output, print_json
from raykd.errors import ConfigError
from raykd.outputs import atomic_dir, is_model_dir


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("export", help="copy a sweep trial's model to a standalone directory", description=__doc__)
    p.add_argument("run", metavar="RUN", nargs="?", help="the sweep directory: <storage>/<name>, a local path or s3:// / gs:// URI")
    which = p.add_mutually_exclusive_group()
    which.add_argument("--trial", metavar="ID", help="the trial id (see `raykd pareto RUN`)")
    which.add_argument("--pick", metavar="SPEC",
                       help='choose by constraint: "max-drop=0.5" (fastest within 0.5 accuracy points of the '
                            'teacher), "min-speedup=1.2" (smallest with speedup >= 1.2x); also max-params=, '
                            'max-flops=, min-accuracy=, not-worse-at=P, not-worse-by=PT (fastest whose 95%% interval '
                            'of the paired difference from the teacher lies above -PT points), by=METRIC:MODE, '
                            'comma-separated')
    which.add_argument("--model", metavar="DIR", help="a model directory (a solver, or a causal LM from --task causal-lm) instead of a sweep trial (with --hf)")
    p.add_argument("--hf", action="store_true",
                   help="write the pruned encoder as a stock Transformers directory (uniform shapes only)")
    add_output(p, "--out", kind="model", metavar="DIR", inputs=("run", "model"), help="target directory")
    add_json_flag(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.model is not None:
        if not args.hf or args.run is not None:
            raise ConfigError("--model exports a solver directory with --hf, without RUN")
        return _export_hf(args, args.model)
    if args.run is None or (args.trial is None and args.pick is None):
        raise ConfigError("give RUN with --trial ID or --pick SPEC (or --hf --model DIR)")
    if args.hf:
        with tempfile.TemporaryDirectory(prefix="raykd-export-") as tmp:
            solver = _export_trial(args, f"{tmp}/solver", force=False)
            return _export_hf(args, str(solver), source=f"sweep {args.run}")
    out = _export_trial(args, args.out, force=args.force)

    record = json.loads((out / "export.json").read_text())
    if args.json:
        print_json({"out": str(out), **record})
        return 0
    _print_record(record, out)
    return 0


def _export_trial(args: argparse.Namespace, out: str, *, force: bool):
    from raykd.analysis import export_trial, open_sweep, parse_pick  # deferred: pandas, pyarrow (~0.7 s) at `raykd` start-up

    sw = open_sweep(args.run)
    if args.pick is not None:
        query = parse_pick(args.pick)
        return export_trial(sw, out, force=force, selected_by=_selected_by(args), **query)
    return export_trial(sw, out, trial_id=args.trial, force=force, selected_by=_selected_by(args))


def _selected_by(args: argparse.Namespace) -> str:
    """How the exported model was chosen, as the user said it."""
    if args.pick is not None:
        return f'--pick "{args.pick}"'
    return f"--trial {args.trial}" if args.trial is not None else "--model"


def _export_hf(args: argparse.Namespace, solver_dir: str, source: str | None = None) -> int:
    from raykd.analysis.export import load_saved_model  # deferred: torch (~3 s) at `raykd` start-up
    from raykd.structures.hf_export import export_hf, hf_shape
    from raykd.task.model import SolverModel

    model, tokenizer = load_saved_model(solver_dir)
    solver = isinstance(model, SolverModel)
    exported = model.encoder if solver else model  # a solver exports its encoder
    shape = hf_shape(exported)  # refuses before anything is written
    provenance = {"from": source or str(solver_dir), "selected_by": _selected_by(args)}
    with atomic_dir(args.out, may_replace=lambda p: args.force and is_model_dir(p)) as tmp:
        export_hf(exported, tmp, tokenizer=tokenizer, provenance=provenance)
    if args.json:
        print_json({"out": str(args.out), "hf_shape": shape, **provenance})
        return 0
    print(f"exported the pruned {'encoder' if solver else 'model'} as a stock {type(exported).__name__} "
          f"({', '.join(f'{k}={v}' for k, v in shape.items())}) to {args.out}; "
          f"load it with transformers.{'AutoModel' if solver else type(model).__name__}.from_pretrained")
    return 0


def _print_record(record: dict, out) -> None:
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

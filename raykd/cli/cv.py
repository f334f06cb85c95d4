"""`raykd cv`: k-fold cross-validation of a teacher and its chain, pooled so every problem of the
data counts once, with the paired difference, exact McNemar p and a non-inferiority verdict.

Per fold (stratified by the number of operations, deterministic from --seed): a teacher trained on
the other folds (10% of them kept for early stopping), then the chain from it; every round's student
and the teacher are scored on the held-out fold. The held-out folds' per-problem results are pooled:
teacher and each round's students are paired over all the problems (~1,100 for ASDiv-A's train +
valid instead of 122). Resumable per fold and per round: a finished fold is never retrained, a fold's
teacher is kept in its directory, and its chain resumes after its last finished round. Folds run one
after another in this process (not as parallel Ray jobs).
"""

from __future__ import annotations

import argparse
import json
import math
import re
from pathlib import Path
from typing import Any

from raykd.cli.args import BATCH, NON_NEGATIVE, POSITIVE, POSITIVE_NUMBER, SEED, add_device, add_threads, int_at_least, number
from raykd.cli.common import add_json_flag, add_output, print_json, set_threads

CV_ENTRIES = re.compile(r"cv\.json|pooled\.json|fold-\d{2,}")
CV_NAME, FOLD_NAME, POOLED_NAME = "cv.json", "fold.json", "pooled.json"


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("cv", help="k-fold cross-validation of teacher + chain, pooled paired comparison",
                       description=__doc__)
    p.add_argument("--data", required=True, help="data spec (a directory, FILE, asdiv-a:PATH, synthetic:N); its splits "
                                                 "named by --pool are pooled and cut into folds")
    add_output(p, "--out", kind="cv", inputs=("config",),
               help="the CV directory: cv.json, fold-NN/ (teacher/, chain/, fold.json), pooled.json")
    p.add_argument("--folds", type=int_at_least(2, 100), default=5, help="number of folds (default 5)")
    p.add_argument("--seed", type=SEED, default=0, help="fold, split and training seed")
    p.add_argument("--pool", default="train,valid,test",
                   help="the data spec's splits pooled into the folds (default all: for a directory with train.json "
                        "and valid.json such as ASDiv-A's, valid.json is the 'test' split)")
    p.add_argument("--valid-fraction", type=number(0.0, 1.0, low_open=True, high_open=True), default=0.1,
                   help="share of the training folds kept for early stopping and round selection (default 0.1)")
    p.add_argument("--fold-limit", type=int_at_least(1, 100), metavar="N",
                   help="stop after the first N folds are done (the rest on a later run)")
    p.add_argument("--margin", type=number(0.0, 100.0, high_open=True), default=2.0, metavar="PT",
                   help="non-inferiority margin in accuracy points (default 2): a student is non-inferior when the "
                        "95%% interval of its pooled paired difference from the teacher lies above -PT")
    src = p.add_mutually_exclusive_group()
    src.add_argument("--encoder", help="teacher: pretrained encoder (hub name, local path or 'minilm')")
    src.add_argument("--preset", choices=["tiny"], help="teacher: small random encoder (default when no --encoder)")
    p.add_argument("--epochs", type=POSITIVE, default=30, help="teacher epochs (default 30)")
    p.add_argument("--batch-size", type=BATCH, default=32)
    p.add_argument("--lr", type=POSITIVE_NUMBER, help="teacher encoder learning rate (default 1e-3 tiny, 5e-5 pretrained)")
    p.add_argument("--head-lr", type=number(0.0), help="teacher decoder learning rate")
    p.add_argument("--patience", type=POSITIVE, default=5, help="teacher early-stopping patience (evaluations)")
    p.add_argument("--max-steps", type=NON_NEGATIVE, default=0, help="teacher: hard cap on optimiser steps (0: none)")
    p.add_argument("--encoder-layers", type=int_at_least(0, 64), default=0, help="tiny preset: encoder layers")
    p.add_argument("--encoder-heads", type=int_at_least(0, 128), default=0, help="tiny preset: heads per layer")
    p.add_argument("--config", help="YAML file of chain settings (docs/method.md)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override one chain setting (YAML value)")
    add_threads(p)
    add_device(p)
    p.add_argument("--quiet", action="store_true")
    add_json_flag(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from raykd.cli.chain import load_chain_config
    from raykd.errors import ConfigError
    from raykd.outputs import check_resumable_dir

    out = check_resumable_dir(args.out, CV_ENTRIES, what="cross-validation", flag="--out")  # prepare_outputs checked it too
    config = load_chain_config(args.config, args.set)
    if not config.test_every_round:
        raise ConfigError("raykd cv scores every round on the held-out fold: test_every_round must stay true")
    teacher = _teacher_settings(args)
    pool = _pool_names(args.pool)
    set_threads(args.threads)
    problems = _pooled_problems(args.data, pool, args.seed)
    if len(problems) < 2 * args.folds:
        raise ConfigError(f"{args.data}: {len(problems)} problems cannot make {args.folds} folds of two or more")
    _check_folds(problems, args)
    from raykd.resume import check_resume, problems_digest

    settings = {"data": args.data, "pool": pool, "folds": args.folds, "seed": args.seed,
                "valid_fraction": args.valid_fraction, "problems": problems_digest({"pool": problems}),
                "teacher": teacher, "chain": config.to_dict()}
    stored = _read_json(out / CV_NAME)
    check_resume(stored.get("settings") if stored else None, settings, what="cross-validation", where=out)
    out.mkdir(parents=True, exist_ok=True)
    if stored is None:
        _write_json(out / CV_NAME, {"settings": settings})
    log = (lambda _m: None) if (args.quiet or args.json) else print
    log(f"cv {args.data}: {len(problems)} problems ({'+'.join(pool)}), {args.folds} folds, seed {args.seed}")
    done = []
    for fold in range(args.folds):
        if args.fold_limit is not None and len(done) >= args.fold_limit:
            break
        done.append(run_fold(args, out, problems, fold, config, teacher, log))
    if len(done) < args.folds:
        log(f"{len(done)} of {args.folds} folds done; run the same command again to continue")
        if args.json:
            print_json({"out": str(out), "folds_done": len(done), "folds": args.folds, "pooled": None})
        return 0
    pooled = pool_folds(done, margin_points=args.margin)
    _write_json(out / POOLED_NAME, pooled)
    if args.json:
        print_json({"out": str(out), "folds_done": len(done), "folds": args.folds, "pooled": pooled})
    else:
        print_pooled(pooled)
        print(f"pooled table: {out / POOLED_NAME}")
    return 0


def _check_folds(problems: list[Any], args: argparse.Namespace) -> None:
    """Every fold keeps training, valid and held-out problems (checked before anything is written)."""
    from raykd.data.folds import fold_splits
    from raykd.errors import DataError

    for fold in range(args.folds):
        sizes = {k: len(v) for k, v in fold_splits(problems, args.folds, fold, seed=args.seed,
                                                   valid_fraction=args.valid_fraction).items()}
        empty = [k for k, n in sizes.items() if not n]
        if empty:
            raise DataError(f"{args.data}: fold {fold + 1} of {args.folds} keeps no {' and no '.join(empty)} problems "
                            f"({len(problems)} problems, --valid-fraction {args.valid_fraction:g}): use more data or a "
                            "larger --valid-fraction")


def _teacher_settings(args: argparse.Namespace) -> dict[str, Any]:
    from raykd.cli.teacher import learning_rates
    from raykd.errors import ConfigError
    from raykd.task.encoders import check_encoder_source
    from raykd.task.teacher import SolverSpec
    from raykd.training import FitConfig

    if args.encoder:
        check_encoder_source(args.encoder)
    lrs = learning_rates(args)
    try:
        spec = SolverSpec(encoder=args.encoder, preset=None if args.encoder else "tiny",
                          encoder_layers=args.encoder_layers, encoder_heads=args.encoder_heads)
        fit = FitConfig(epochs=args.epochs, batch_size=args.batch_size, patience=args.patience,
                        max_steps=args.max_steps, seed=args.seed, **lrs)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    return {"spec": dict(spec.__dict__), "fit": fit.to_dict()}


def _pool_names(text: str) -> list[str]:
    from raykd.data.splits import SPLIT_NAMES
    from raykd.errors import ConfigError

    names = [n.strip() for n in text.split(",") if n.strip()]
    bad = [n for n in names if n not in SPLIT_NAMES]
    if not names or bad or len(set(names)) != len(names):
        raise ConfigError(f"--pool {text!r}: expected distinct split names from {', '.join(SPLIT_NAMES)}")
    return names


def _pooled_problems(spec: str, pool: list[str], seed: int) -> list[Any]:
    from raykd.data import load_splits
    from raykd.errors import DataError

    splits = load_splits(spec, seed=seed)
    problems = [p for name in pool for p in splits.get(name, [])]
    ids = [p.id for p in problems]
    if len(set(ids)) != len(ids):
        dup = sorted({i for i in ids if ids.count(i) > 1})
        raise DataError(f"{spec}: problem ids repeat across {'+'.join(pool)} ({', '.join(dup[:3])}): each problem must "
                        "be evaluated once")
    return problems


def run_fold(args: argparse.Namespace, out: Path, problems: list[Any], fold: int, config: Any,
             teacher: dict[str, Any], log: Any) -> dict[str, Any]:
    """One fold: its teacher (trained unless its directory holds one), its chain (resumed), and its
    held-out results (fold.json, written last: a fold with one is done and never rerun)."""
    fold_dir = out / f"fold-{fold + 1:02d}"
    stored = _read_json(fold_dir / FOLD_NAME)
    if stored is not None:
        log(f"fold {fold + 1}: done earlier")
        return stored
    from raykd.data.folds import fold_splits
    from raykd.method.chain import Chain
    from raykd.method.measurement import make_measure
    from raykd.outputs import is_model_dir
    from raykd.task.io import SolverIO, load_solver
    from raykd.task.mwp import MWPTask
    from raykd.task.teacher import SolverSpec, train_teacher
    from raykd.training import FitConfig

    splits = fold_splits(problems, args.folds, fold, seed=args.seed, valid_fraction=args.valid_fraction)
    teacher_dir = fold_dir / "teacher"
    if is_model_dir(teacher_dir):
        log(f"fold {fold + 1}: teacher trained earlier ({teacher_dir})")
    else:
        log(f"fold {fold + 1}: training the teacher on {len(splits['train'])} problems "
            f"(valid {len(splits['valid'])}, held out {len(splits['test'])})")
        fold_dir.mkdir(parents=True, exist_ok=True)
        train_teacher(splits, SolverSpec(**teacher["spec"]), FitConfig(**teacher["fit"]), teacher_dir, device=args.device,
                      progress=not (args.quiet or args.json), extra_config={"data": args.data, "cv_fold": fold + 1})
    model, tokenizer, _ = load_solver(teacher_dir)
    model = model.to(args.device)
    task = MWPTask(tokenizer, model.vocab, splits)
    quiet = args.quiet or args.json
    chain = Chain(task, model, config, SolverIO(tokenizer), fold_dir / "chain",
                  make_measure(task, repeats=config.latency_repeats, workload=config.latency_workload),
                  progress=not quiet, log=log,
                  on_round=None if quiet else (lambda rec, _d: log(f"fold {fold + 1}: round {rec['round']}, held-out "
                                                                   f"accuracy {rec.get('test_accuracy', math.nan):.3f}, "
                                                                   f"speedup {rec['speedup']:.3f}x")))
    result = chain.run()
    held = result.teacher_metrics["test"]
    ids = [p.id for p in splits["test"]]
    if held["n"] != len(ids):
        raise RuntimeError(f"fold {fold + 1}: the teacher was scored on {held['n']} of {len(ids)} held-out problems")
    rounds = []
    for rec in result.records:
        if rec.get("test_accuracy_correct") is None or rec.get("test_accuracy_n") != len(ids):
            raise RuntimeError(f"fold {fold + 1}: round {rec['round']} has no per-problem results on the held-out fold")
        rounds.append({k: rec.get(k) for k in ("round", "ratio", "speedup", "measured_speedup", "ideal_speedup", "params",
                                               "params_reduction", "flops_reduction", "test_accuracy",
                                               "test_accuracy_correct", "test_accuracy_n", "accuracy")})
    summary = {"fold": fold + 1, "problem_ids": ids, "teacher_correct": held["correct_bits"],
               "teacher_accuracy": held["accuracy"], "teacher_valid_accuracy": result.teacher_metrics["valid"]["accuracy"],
               "n": len(ids), "rounds": rounds}
    _write_json(fold_dir / FOLD_NAME, summary)
    log(f"fold {fold + 1}: teacher {held['accuracy']:.3f} on {len(ids)} held-out problems; "
        f"{len(rounds)} round(s) done")
    return summary


def pool_folds(folds: list[dict[str, Any]], *, margin_points: float) -> dict[str, Any]:
    """One table over every problem of every held-out fold: the teacher and each round's students,
    accuracy with its Wilson interval, and against the teacher on the same problems the paired
    difference (Newcombe interval, points), exact McNemar p and non-inferiority at the margin."""
    from raykd.results.stats import accuracy_interval, margin_from_points, paired_difference, unpack_correct

    margin = margin_from_points(margin_points)
    teacher: list[bool] = []
    ids: list[str] = []
    for f in folds:
        teacher += unpack_correct(f["teacher_correct"], f["n"])
        ids += f["problem_ids"]
    if len(set(ids)) != len(ids):
        raise RuntimeError("the pooled folds evaluate a problem twice")
    rounds = sorted({r["round"] for f in folds for r in f["rounds"]})
    rows = [{"model": "teacher", "round": 0, **_accuracy(accuracy_interval(teacher)), "speedup": 1.0,
             "speedup_min": 1.0, "speedup_max": 1.0}]
    for r in rounds:
        flags: list[bool] = []
        speeds, params = [], []
        for f in folds:
            (rec,) = [x for x in f["rounds"] if x["round"] == r] or [None]
            if rec is None:
                raise RuntimeError(f"fold {f['fold']} has no round {r}")
            flags += unpack_correct(rec["test_accuracy_correct"], rec["test_accuracy_n"])
            speeds.append(float(rec["speedup"]))
            params.append(rec.get("params"))
        diff = paired_difference(teacher, flags)
        lost = sum(1 for t, s in zip(teacher, flags) if t and not s)
        gained = sum(1 for t, s in zip(teacher, flags) if s and not t)
        rows.append({"model": f"round {r}", "round": r, **_accuracy(accuracy_interval(flags)),
                     "speedup": math.exp(sum(math.log(s) for s in speeds) / len(speeds)),  # geometric mean over folds
                     "speedup_min": min(speeds), "speedup_max": max(speeds),
                     "params": sum(params) / len(params) if all(p is not None for p in params) else None,
                     "accuracy_diff": diff.difference, "accuracy_diff_low": diff.low, "accuracy_diff_high": diff.high,
                     "accuracy_p_vs_teacher": diff.p_value, "accuracy_lost": lost, "accuracy_gained": gained,
                     "non_inferior": diff.non_inferior(margin)})
    return {"n": len(ids), "folds": len(folds), "margin_points": margin_points, "interval": "newcombe-hybrid-score, 95%",
            "teacher_fold_accuracy": [f["teacher_accuracy"] for f in folds],
            "teacher_fold_valid_accuracy": [f["teacher_valid_accuracy"] for f in folds],
            "rows": rows}


def _accuracy(metrics: dict[str, Any]) -> dict[str, Any]:
    return {"accuracy": metrics["accuracy"], "accuracy_n": metrics["n"], "accuracy_ci_low": metrics["ci_low"],
            "accuracy_ci_high": metrics["ci_high"]}


def print_pooled(pooled: dict[str, Any]) -> None:
    """The pooled table for people: points, with the intervals."""
    margin = pooled["margin_points"]
    folds = ", ".join(f"{100 * a:.1f}" for a in pooled["teacher_fold_accuracy"])
    print(f"pooled over {pooled['folds']} held-out folds, {pooled['n']} problems, each evaluated once "
          f"(teacher per fold: {folds}%)")
    head = f"{'model':<9} {'accuracy % [95% CI]':<22} {'Δ pt [95% CI]':<24} {'McNemar p':>9} {'-lost/+gained':>13} " \
           f"{'speedup (min-max)':>19}  not worse by {margin:g} pt"
    print(head)
    for r in pooled["rows"]:
        acc = f"{100 * r['accuracy']:.1f} [{100 * r['accuracy_ci_low']:.1f}, {100 * r['accuracy_ci_high']:.1f}]"
        if r["round"] == 0:
            print(f"{r['model']:<9} {acc:<22} {'–':<24} {'–':>9} {'–':>13} {'1.00x':>19}  –")
            continue
        diff = f"{100 * r['accuracy_diff']:+.1f} [{100 * r['accuracy_diff_low']:+.1f}, {100 * r['accuracy_diff_high']:+.1f}]"
        speed = f"{r['speedup']:.2f}x ({r['speedup_min']:.2f}-{r['speedup_max']:.2f})"
        lg = f"-{r['accuracy_lost']}/+{r['accuracy_gained']}"
        print(f"{r['model']:<9} {acc:<22} {diff:<24} {r['accuracy_p_vs_teacher']:>9.2g} {lg:>13} {speed:>19}  "
              f"{'yes' if r['non_inferior'] else 'no'}")


def _read_json(path: Path) -> dict[str, Any] | None:
    from raykd.errors import ConfigError

    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{path} is unreadable ({type(exc).__name__}): remove it to redo that part") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path} is not a raykd cross-validation file: remove it to redo that part")
    return data


def _write_json(path: Path, obj: Any) -> None:
    from raykd.storage import write_bytes_atomic

    write_bytes_atomic(path, json.dumps(obj, indent=1, sort_keys=True).encode())

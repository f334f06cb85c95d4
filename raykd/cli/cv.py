"""`raykd cv`: k-fold cross-validation of a teacher and its chain, pooled so every problem of the
data counts once, with the paired difference, exact McNemar p and a non-inferiority verdict.

Per fold (stratified by the number of operations, deterministic from --seed): a teacher trained on
the other folds (10% of them kept for early stopping), then the chain from it; every round's student
and the teacher are scored on the held-out fold. The held-out folds' per-problem results are pooled:
teacher and each round's students are paired over all the problems (~1,100 for ASDiv-A's train +
valid instead of 122). Resumable per fold and per round: a finished fold is never retrained, a fold's
teacher is kept in its directory, and its chain resumes after its last finished round. Folds run one
after another in this process, or as parallel Ray tasks (--parallel, --ray-address).

--from RUN --trial ID confirms a stored sweep's trial: the data, seed, teacher recipe, the trial's
chain settings and its task (with the trial's sampled task settings, e.g. a trace sweep's
trace_strength) are taken from the sweep (docs/cv.md).
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import math
import re
from pathlib import Path
from typing import Any

from raykd.cli.args import BATCH, NON_NEGATIVE, POSITIVE, POSITIVE_NUMBER, SEED, add_device, add_threads, int_at_least, number
from raykd.cli.chain import load_chain_config
from raykd.cli.common import add_json_flag, add_output, print_json, set_threads
from raykd.cli.cv_pool import pool_folds, print_pooled
from raykd.cli.cv_sweep import read_sweep_trial, reseeded, trial_chain_config
from raykd.cli.teacher import learning_rates
from raykd.data import load_splits
from raykd.data.folds import fold_splits
from raykd.data.splits import SPLIT_NAMES
from raykd.distributed.cv import FoldResources, fold_cluster
from raykd.errors import ConfigError, DataError
from raykd.outputs import check_resumable_dir, is_model_dir
from raykd.resume import check_resume, problems_digest
from raykd.storage import write_bytes_atomic
from raykd.task.encoders import check_encoder_source

CV_ENTRIES = re.compile(r"cv\.json|pooled\.json|fold-\d{2,}")
CV_NAME, FOLD_NAME, POOLED_NAME = "cv.json", "fold.json", "pooled.json"


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("cv", help="k-fold cross-validation of teacher + chain, pooled paired comparison",
                       description=__doc__)
    p.add_argument("--data", help="data spec (a directory, FILE, asdiv-a:PATH, synthetic:N); its splits "
                                  "named by --pool are pooled and cut into folds (with --from: the sweep's)")
    p.add_argument("--from", dest="from_run", metavar="RUN",
                   help="a sweep directory (<storage>/<name>, a local path or s3:// / gs:// URI): cross-validate its "
                        "trial --trial with the sweep's data, seed and teacher recipe and the trial's chain settings")
    p.add_argument("--trial", metavar="ID", help="with --from: the trial to confirm (see `raykd pareto RUN`)")
    p.add_argument("--trust-sweep", action="store_true",
                   help="with --from: the sweep is yours, so its data may lie outside it, its task may be an import "
                        "path and its teacher encoder a hub name or path (docs/security.md)")
    add_output(p, "--out", kind="cv", inputs=("config", "from_run"),
               help="the CV directory: cv.json, fold-NN/ (teacher/, chain/, fold.json), pooled.json")
    p.add_argument("--folds", type=int_at_least(2, 100), default=5, help="number of folds (default 5)")
    p.add_argument("--seed", type=SEED, help="fold, split and training seed (default 0; with --from: the sweep's)")
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
    p.add_argument("--epochs", type=POSITIVE, help="teacher epochs (default 30)")
    p.add_argument("--batch-size", type=BATCH, help="teacher batch size (default 32)")
    p.add_argument("--lr", type=POSITIVE_NUMBER, help="teacher encoder learning rate (default 1e-3 tiny, 5e-5 pretrained)")
    p.add_argument("--head-lr", type=number(0.0), help="teacher decoder learning rate")
    p.add_argument("--patience", type=POSITIVE, help="teacher early-stopping patience (evaluations, default 5)")
    p.add_argument("--max-steps", type=NON_NEGATIVE, help="teacher: hard cap on optimiser steps (default 0: none)")
    p.add_argument("--encoder-layers", type=int_at_least(0, 64), help="tiny preset: encoder layers")
    p.add_argument("--encoder-heads", type=int_at_least(0, 128), help="tiny preset: heads per layer")
    p.add_argument("--config", help="YAML file of chain settings (docs/method.md)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override one chain setting (YAML value); with --from, over the trial's settings")
    add_threads(p)
    add_device(p)
    par = p.add_argument_group("parallel folds (Ray)")
    par.add_argument("--parallel", action="store_true",
                     help="run the folds as parallel Ray tasks on a local Ray started here (this machine's CPUs)")
    par.add_argument("--ray-address", metavar="ADDR",
                     help="run the folds as parallel Ray tasks on a running cluster (HOST:PORT, ray://..., auto); "
                          "its nodes must see --out (a shared disk)")
    par.add_argument("--cpus-per-fold", type=POSITIVE_NUMBER, metavar="N",
                     help="CPUs each fold's task asks Ray for (default: --threads, else 1); its torch threads too "
                          "unless --threads says otherwise")
    par.add_argument("--gpus-per-fold", type=number(0.0), default=0.0, metavar="G",
                     help="GPUs each fold's task asks Ray for (default 0; give --device cuda to train on them)")
    p.add_argument("--quiet", action="store_true")
    add_json_flag(p)
    p.set_defaults(func=run)


TEACHER_FLAGS = {"data": "--data", "config": "--config", "encoder": "--encoder", "preset": "--preset",
                 "epochs": "--epochs", "batch_size": "--batch-size", "lr": "--lr", "head_lr": "--head-lr",
                 "patience": "--patience", "max_steps": "--max-steps", "encoder_layers": "--encoder-layers",
                 "encoder_heads": "--encoder-heads"}
"""Flags that say what is cross-validated: with --from the sweep says it, so they are refused."""


def run(args: argparse.Namespace) -> int:
    out = check_resumable_dir(args.out, CV_ENTRIES, what="cross-validation", flag="--out")  # prepare_outputs checked it too
    config, teacher, source = _what_to_validate(args)
    resources = _fold_resources(args)
    pool = _pool_names(args.pool)
    set_threads(args.threads)
    problems = _pooled_problems(args.data, pool, args.seed)
    if len(problems) < 2 * args.folds:
        raise ConfigError(f"{args.data}: {len(problems)} problems cannot make {args.folds} folds of two or more")
    _check_folds(problems, args)

    settings = {"data": args.data, "pool": pool, "folds": args.folds, "seed": args.seed,
                "valid_fraction": args.valid_fraction, "problems": problems_digest({"pool": problems}),
                "teacher": teacher, "chain": config.to_dict(),
                **({"task": args.task} if args.task is not None else {})}  # (the equation solver: as before)
    stored = _read_json(out / CV_NAME)
    # the data is compared by content ("problems"), not by how its path was spelled
    check_resume(stored.get("settings") if stored else None, {k: v for k, v in settings.items() if k != "data"},
                 what="cross-validation", where=out)
    wanted = list(range(args.folds if args.fold_limit is None else min(args.folds, args.fold_limit)))
    todo = [f for f in wanted if not (out / f"fold-{f + 1:02d}" / FOLD_NAME).is_file()]
    with contextlib.ExitStack() as stack:
        runner = None
        if resources is not None and todo:  # Ray connected and the folds' placement checked before anything is written
            runner = stack.enter_context(fold_cluster(resources, address=args.ray_address))
        done = _run_folds(args, out, problems, wanted, config, teacher, settings, stored, source, runner)
    log = _log(args)
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


def _log(args: argparse.Namespace) -> Any:
    return (lambda _m: None) if (args.quiet or args.json) else print


def _run_folds(args: argparse.Namespace, out: Path, problems: list[Any], wanted: list[int], config: Any,
               teacher: dict[str, Any], settings: dict[str, Any], stored: dict[str, Any] | None,
               source: dict[str, Any] | None, runner: Any) -> list[dict[str, Any]]:
    """cv.json (first run), then the folds `wanted`: here one after another, or on Ray through
    `runner` (None also when every one of them is done). Returns the fold records in fold order."""
    out.mkdir(parents=True, exist_ok=True)
    if stored is None:  # where the settings came from: beside them, not part of the resume check
        _write_json(out / CV_NAME, {"settings": settings, **({"from": source} if source else {})})
    log = _log(args)
    if source:
        log(f"cv of trial {source['trial']} ({source['status']}) of sweep {source['sweep']}")
    log(f"cv {args.data}: {len(problems)} problems ({'+'.join(settings['pool'])}), {args.folds} folds, seed {args.seed}")
    if runner is None:
        return [run_fold(args, out, problems, fold, config, teacher, log) for fold in wanted]
    return _run_parallel(args, out, problems, wanted, config, teacher, runner, log)


def _what_to_validate(args: argparse.Namespace) -> tuple[Any, dict[str, Any], dict[str, Any] | None]:
    """(chain config, teacher settings, source): from the flags, or with --from from the sweep's
    trial (`raykd.cli.cv_sweep`). Sets args.data and args.seed to what the folds use."""
    source = None
    args.task = None  # the equation solver with greedy decoding; with --from: the trial's task
    if args.from_run is None and args.trial is None:
        if args.trust_sweep:
            raise ConfigError("--trust-sweep is for --from RUN (a sweep whose data and teacher settings cv reads)")
        if args.data is None:
            raise ConfigError("give --data (with the teacher and chain settings), or --from RUN --trial ID")
        args.seed = 0 if args.seed is None else args.seed
        config = load_chain_config(args.config, args.set)
        teacher = _teacher_settings(args)
    else:
        if args.from_run is None:
            raise ConfigError("--trial ID names a trial of the sweep given by --from RUN")
        if args.trial is None:
            raise ConfigError(f"--from {args.from_run} needs --trial ID: the trial to confirm (`raykd pareto "
                              f"{args.from_run}` lists them)")
        given = [flag for dest, flag in TEACHER_FLAGS.items() if getattr(args, dest) is not None]
        if given:
            raise ConfigError(f"--from takes the data, teacher and chain settings from the sweep's trial: {', '.join(given)} "
                              "cannot be given with it (--set changes one chain setting; --seed, --folds, --pool and "
                              "--valid-fraction are the cross-validation's own)")

        trial = read_sweep_trial(args.from_run, args.trial, trusted=args.trust_sweep)
        args.data = trial.data
        args.seed = trial.seed if args.seed is None else args.seed
        if args.seed != trial.seed:  # one seed for folds, data and training, as without --from
            trial = reseeded(trial, args.seed)
        config = trial_chain_config(trial, args.set)
        teacher = trial.teacher
        args.task = trial.task
        source = {"sweep": trial.sweep, "trial": trial.trial_id, "status": trial.status,
                  "set": list(args.set), "sweep_seed": trial.seed}
    if not config.test_every_round:
        raise ConfigError("raykd cv scores every round on the held-out fold: test_every_round must stay true")
    return config, teacher, source


def _fold_resources(args: argparse.Namespace) -> Any:
    """The per-fold Ray resources with --parallel / --ray-address; None for folds in this process."""
    parallel = args.parallel or args.ray_address is not None
    if not parallel:
        if args.cpus_per_fold is not None or args.gpus_per_fold:
            raise ConfigError("--cpus-per-fold and --gpus-per-fold are for parallel folds (--parallel or --ray-address)")
        return None
    if args.parallel and args.ray_address is not None:
        raise ConfigError("--parallel starts a local Ray and --ray-address connects to a running one: give one of them")
    if args.gpus_per_fold and not str(args.device).startswith("cuda"):
        raise ConfigError(f"--gpus-per-fold {args.gpus_per_fold:g} with --device {args.device}: give --device cuda to "
                          "train on the GPUs the folds ask for")

    return FoldResources(cpus=args.cpus_per_fold or float(args.threads or 1), gpus=args.gpus_per_fold)


def _run_parallel(args: argparse.Namespace, out: Path, problems: list[Any], wanted: list[int], config: Any,
                  teacher: dict[str, Any], runner: Any, log: Any) -> list[dict[str, Any]]:
    """The folds in `wanted` as parallel Ray tasks (`raykd.distributed.cv`); a fold with its
    record is read, never submitted. Returns the records in fold order, as the sequential path."""
    records: dict[int, dict[str, Any]] = {}
    for fold in wanted:
        stored = _read_json(out / f"fold-{fold + 1:02d}" / FOLD_NAME)
        if stored is not None:
            log(f"fold {fold + 1}: done earlier")
            records[fold] = stored
    todo = [f for f in wanted if f not in records]
    if todo:
        threads = args.threads or max(1, math.ceil(runner.resources.cpus))
        work = functools.partial(fold_in_worker, args, out, problems, config, teacher, threads)
        for fold, record in runner.run(work, todo, log).items():
            path = out / f"fold-{fold + 1:02d}" / FOLD_NAME
            if not path.is_file():  # a cluster without a shared disk: the record is kept here all the same
                path.parent.mkdir(parents=True, exist_ok=True)
                _write_json(path, record)
            records[fold] = record
    return [records[f] for f in wanted]


def fold_in_worker(args: argparse.Namespace, out: Path, problems: list[Any], config: Any, teacher: dict[str, Any],
                   threads: int, fold: int) -> tuple[dict[str, Any], list[str]]:
    """One fold inside a Ray task: the sequential path's `run_fold`, with its torch threads fixed
    and its log lines returned (a worker's console is not the user's)."""
    set_threads(threads)
    lines: list[str] = []
    return run_fold(args, out, problems, fold, config, teacher, lines.append, bars=False), lines


def _check_folds(problems: list[Any], args: argparse.Namespace) -> None:
    """Every fold keeps training, valid and held-out problems (checked before anything is written)."""
    for fold in range(args.folds):
        sizes = {k: len(v) for k, v in fold_splits(problems, args.folds, fold, seed=args.seed,
                                                   valid_fraction=args.valid_fraction).items()}
        empty = [k for k, n in sizes.items() if not n]
        if empty:
            raise DataError(f"{args.data}: fold {fold + 1} of {args.folds} keeps no {' and no '.join(empty)} problems "
                            f"({len(problems)} problems, --valid-fraction {args.valid_fraction:g}): use more data or a "
                            "larger --valid-fraction")


def _teacher_settings(args: argparse.Namespace) -> dict[str, Any]:
    from raykd.task.teacher import SolverSpec  # deferred: torch (~3 s) at `raykd` start-up
    from raykd.training import FitConfig

    if args.encoder:
        check_encoder_source(args.encoder)
    lrs = learning_rates(args)
    def given(value: Any, default: Any) -> Any:
        return default if value is None else value

    try:
        spec = SolverSpec(encoder=args.encoder, preset=None if args.encoder else "tiny",
                          encoder_layers=given(args.encoder_layers, 0), encoder_heads=given(args.encoder_heads, 0))
        fit = FitConfig(epochs=given(args.epochs, 30), batch_size=given(args.batch_size, 32),
                        patience=given(args.patience, 5), max_steps=given(args.max_steps, 0), seed=args.seed, **lrs)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    return {"spec": dict(spec.__dict__), "fit": fit.to_dict()}


def _pool_names(text: str) -> list[str]:
    names = [n.strip() for n in text.split(",") if n.strip()]
    bad = [n for n in names if n not in SPLIT_NAMES]
    if not names or bad or len(set(names)) != len(names):
        raise ConfigError(f"--pool {text!r}: expected distinct split names from {', '.join(SPLIT_NAMES)}")
    return names


def _pooled_problems(spec: str, pool: list[str], seed: int) -> list[Any]:
    splits = load_splits(spec, seed=seed)
    problems = [p for name in pool for p in splits.get(name, [])]
    ids = [p.id for p in problems]
    if len(set(ids)) != len(ids):
        dup = sorted({i for i in ids if ids.count(i) > 1})
        raise DataError(f"{spec}: problem ids repeat across {'+'.join(pool)} ({', '.join(dup[:3])}): each problem must "
                        "be evaluated once")
    return problems


def run_fold(args: argparse.Namespace, out: Path, problems: list[Any], fold: int, config: Any,
             teacher: dict[str, Any], log: Any, *, bars: bool = True) -> dict[str, Any]:
    """One fold: its teacher (trained unless its directory holds one), its chain (resumed), and its
    held-out results (fold.json, written last: a fold with one is done and never rerun). `bars`:
    progress bars (off in a Ray task, whose console nobody reads)."""
    fold_dir = out / f"fold-{fold + 1:02d}"
    stored = _read_json(fold_dir / FOLD_NAME)
    if stored is not None:
        log(f"fold {fold + 1}: done earlier")
        return stored
    from raykd.method.chain import Chain  # deferred: torch (~3 s) at `raykd` start-up
    from raykd.method.round_cost import make_measure
    from raykd.task.io import SolverIO, load_solver
    from raykd.task.mwp import MWPTask
    from raykd.task.registry import load_task_plugin
    from raykd.task.teacher import SolverSpec, train_teacher
    from raykd.training import FitConfig

    splits = fold_splits(problems, args.folds, fold, seed=args.seed, valid_fraction=args.valid_fraction)
    teacher_dir = fold_dir / "teacher"
    plugin = None if getattr(args, "task", None) is None else load_task_plugin(args.task)  # the trial's task
    if is_model_dir(teacher_dir):
        log(f"fold {fold + 1}: teacher trained earlier ({teacher_dir})")
    else:
        log(f"fold {fold + 1}: training the teacher on {len(splits['train'])} problems "
            f"(valid {len(splits['valid'])}, held out {len(splits['test'])})")
        fold_dir.mkdir(parents=True, exist_ok=True)
        progress = bars and not (args.quiet or args.json)
        if plugin is None:
            train_teacher(splits, SolverSpec(**teacher["spec"]), FitConfig(**teacher["fit"]), teacher_dir,
                          device=args.device, progress=progress, extra_config={"data": args.data, "cv_fold": fold + 1})
        else:
            plugin.train_teacher_on(splits, teacher["settings"], teacher_dir, seed=args.seed, progress=progress,
                                    device=args.device, data=f"{args.data} (cv fold {fold + 1})")
    if plugin is None:
        model, tokenizer, _ = load_solver(teacher_dir)
        task, io = MWPTask(tokenizer, model.vocab, splits), SolverIO(tokenizer)
    else:
        loaded = plugin.load_on(teacher_dir, splits)
        model, task, io = loaded.model, loaded.task, loaded.io
    model = model.to(args.device)
    quiet = args.quiet or args.json
    chain = Chain(task, model, config, io, fold_dir / "chain",
                  make_measure(task, repeats=config.latency_repeats, workload=config.latency_workload),
                  progress=bars and not quiet, log=log,
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


def _read_json(path: Path) -> dict[str, Any] | None:
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
    write_bytes_atomic(path, json.dumps(obj, indent=1, sort_keys=True).encode())

"""Shared teacher work: one teacher and one set of head statistics per sweep.

The teacher is trained once (or taken from a path) and its per-head statistics (weight norms,
attention entropies on the calibration set) are computed once, saved beside it as
`structure_stats.json` (heads, FFN channels, layers), and reused by round 1 of every trial. The time both took is recorded in the
sweep's metadata so the saving (per extra trial: one teacher training + one statistics pass) is a
measured figure.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from raykd import storage
from raykd.distributed.space import SweepSpace



def prepare_teacher(space: SweepSpace, sweep_uri: str, *, progress: bool = True, log=print) -> dict[str, Any]:
    """Teacher directory URI + its reference metrics; trains and measures only what is missing."""
    from raykd.data import load_splits, require_splits

    target = storage.join(sweep_uri, "teacher")
    t_cfg = space.teacher
    info: dict[str, Any] = {"dir": target, "trained_here": False, "train_s": 0.0, "stats_s": 0.0}
    splits = load_splits(space.data, seed=space.seed)
    require_splits(splits, space.data, ("train", "valid"), why="trials train on train and are scored on valid")
    work = Path(tempfile.mkdtemp(prefix="raykd-teacher-"))
    try:
        return _prepare(space, target, t_cfg, info, splits, work, progress, log)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _prepare(space: SweepSpace, target: str, t_cfg: dict[str, Any], info: dict[str, Any], splits: dict[str, Any],
             work: Path, progress: bool, log: Any) -> dict[str, Any]:
    from raykd.method.importance import STATS_NAME, StructureStats, collect_stats
    from raykd.task.io import load_solver, save_solver
    from raykd.task.mwp import MWPTask
    from raykd.task.teacher import SolverSpec, train_teacher
    from raykd.training import FitConfig

    local = work / "teacher"
    if "path" in t_cfg:
        source = storage.download_dir(t_cfg["path"], work / "given")
        model, tokenizer, _ = load_solver(source)
        save_solver(model, tokenizer, local, extra={"copied_from": str(t_cfg["path"])})
    elif storage.exists(storage.join(target, "config.json")):
        local = storage.download_dir(target, local)
        log(f"reusing the sweep's teacher at {target}")
    else:
        spec = SolverSpec(preset=t_cfg.get("preset"), encoder=t_cfg.get("encoder"))
        pretrained = "encoder" in t_cfg
        fit = FitConfig(
            epochs=int(t_cfg.get("epochs", 20)), batch_size=int(t_cfg.get("batch_size", 32)),
            lr=float(t_cfg.get("lr", 5e-5 if pretrained else 1e-3)), head_lr=float(t_cfg.get("head_lr", 1e-3 if pretrained else 0.0)),
            patience=int(t_cfg.get("patience", 5)), max_steps=int(t_cfg.get("max_steps", 0)),
            time_budget_s=float(t_cfg.get("time_budget_s", 0.0)), seed=space.seed,
        )
        log(f"training the sweep's teacher on {space.data} ...")
        t0 = time.perf_counter()
        train_teacher(splits, spec, fit, local, progress=progress, extra_config={"data": space.data})
        info["train_s"] = round(time.perf_counter() - t0, 2)
        info["trained_here"] = True
    model, tokenizer, _ = load_solver(local)
    task = MWPTask(tokenizer, model.vocab, splits)
    stats_file = Path(local) / STATS_NAME
    if not stats_file.is_file():
        base = space.chain_config({})
        t0 = time.perf_counter()
        stats = collect_stats(model, task, batches=base.calib_batches, batch_size=base.calib_batch_size,
                              taylor=_needs_taylor(space))
        info["stats_s"] = round(time.perf_counter() - t0, 3)
        stats.save(stats_file)
    else:
        StructureStats.load(stats_file)  # fail early on a corrupt file
    if space.speed["source"] == "table":
        _latency_table(space, model, task, Path(local), info, log)
    from raykd.resume import problems_digest
    from raykd.task.io import CHECKSUM_KEY, read_solver_config

    info["data_digest"] = problems_digest(splits)
    info["weights_sha256"] = read_solver_config(local).get(CHECKSUM_KEY)
    valid = task.evaluate(model, "valid")
    test = task.evaluate(model, "test") if splits.get("test") else None
    info.update({"accuracy": valid["accuracy"], "test_accuracy": test["accuracy"] if test else None,
                 # with n, interval and per-problem bits: every trial's paired test against the teacher
                 "metrics": {"valid": valid, **({"test": test} if test else {})}})
    from raykd.measure import count_params

    info["params"] = count_params(model)
    storage.upload_dir(Path(local), target)
    return info


def _latency_table(space: SweepSpace, model: Any, task: Any, local: Path, info: dict[str, Any], log: Any) -> None:
    """The sweep's latency table (teacher/latency_table.json), built once, on the batch and thread
    count the trials time with; kept as it is when the teacher directory already has one."""
    from raykd.method.latency_table import TABLE_NAME, LatencyTable, cached_latency_table

    path = local / TABLE_NAME
    if path.is_file():
        if not LatencyTable.load(path).heads_only:  # (fails early on a corrupt file)
            return
        log("the sweep's latency table times heads only (an older format): timing FFN widths and depth too")
    base = space.chain_config({})
    batch = next(iter(task.batches("valid", base.latency_batch)))
    threads = max(1, int(space.resources.cpus_per_worker))
    log(f"timing the latency table ({space.speed['rounds']} interleaved rounds, {threads} thread(s)) ...")
    t0 = time.perf_counter()
    cached_latency_table(task, model, batch, rounds=space.speed["rounds"], threads=threads, workload=base.latency_workload,
                         use_cache=space.speed["table_cache"], log=log).save(path)
    info["latency_table_s"] = round(time.perf_counter() - t0, 2)


def _needs_taylor(space: SweepSpace) -> bool:
    for p in space.search:
        if p.name == "importance" and "taylor" in p.choices:
            return True
    return space.fixed.get("importance") == "taylor"

"""Shared teacher work: one teacher and one set of head statistics per sweep.

The teacher is trained once (or taken from a path) and its per-head statistics (weight norms,
attention entropies on the calibration set) are computed once, saved beside it as
`structure_stats.json` (heads, FFN channels, layers), and reused by round 1 of every trial. The time both took is recorded in the
sweep's metadata so the saving (per extra trial: one teacher training + one statistics pass) is a
measured figure.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from raykd import storage
from raykd.distributed.remote_result import get_logged
from raykd.method.optional_kinds import activate_for_settings
from raykd.search.space import SweepSpace


def prepare_teacher_as_ray_work(space: SweepSpace, sweep_uri: str, *, log=print) -> dict[str, Any]:
    """`prepare_teacher` as one Ray task on the resources one trial worker gets (its CPUs, its
    GPU when the space asks for GPUs), so the teacher trains, and its statistics and latency
    table are measured, on the hardware the trials use; the driver never needs a GPU. What it
    writes goes to the sweep's storage, where every trial reads it. Its log comes back with it.
    A bad-input error inside it is raised here as itself (one line, exit 2)."""
    import ray  # deferred: Ray (seconds), once the sweep runs

    res = space.resources

    def teacher_work(space: SweepSpace, sweep_uri: str) -> tuple[dict[str, Any], list[str]]:
        import torch  # deferred: torch, in the Ray task only; the sweep driver needs no torch

        lines: list[str] = []
        device = "cuda" if res.gpus_per_worker > 0 and torch.cuda.is_available() else "cpu"
        info = prepare_teacher(space, sweep_uri, progress=False, log=lines.append, device=device)
        info["prepared_by"] = {"node_id": ray.get_runtime_context().get_node_id(), "pid": os.getpid()}
        return info, lines

    work = ray.remote(num_cpus=res.cpus_per_worker, num_gpus=res.gpus_per_worker, max_retries=0)(teacher_work)
    log(f"preparing the sweep's teacher as Ray work ({res.cpus_per_worker:g} CPU, {res.gpus_per_worker:g} GPU) ...")
    return get_logged(work.remote(space, sweep_uri), log)


def prepare_teacher(space: SweepSpace, sweep_uri: str, *, progress: bool = True, log=print, device: str = "cpu") -> dict[str, Any]:
    """Teacher directory URI + its reference metrics; trains and measures only what is missing.

    The task plug-in (`space.task_plugin()`) trains or copies the teacher and loads it with its
    task; everything else here (statistics, latency table, reference metrics) is task-agnostic
    and runs on `device`."""
    # a Ray task starts without the optional kinds the space names: its statistics and latency table need them
    activate_for_settings([*space.fixed, *(p.name for p in space.search)])
    target = storage.join(sweep_uri, "teacher")
    info: dict[str, Any] = {"dir": target, "task": space.task_spec.name, "trained_here": False, "train_s": 0.0, "stats_s": 0.0,
                            "device": device}
    work = Path(tempfile.mkdtemp(prefix="raykd-teacher-"))
    try:
        return _prepare(space, target, info, work, progress, log, device)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _prepare(space: SweepSpace, target: str, info: dict[str, Any], work: Path, progress: bool, log: Any,
             device: str) -> dict[str, Any]:
    # deferred: torch; the sweep driver imports this module and needs no torch
    from raykd.method.importance import STATS_NAME, StructureStats, collect_stats
    from raykd.task.registry import require_task_splits

    plugin, t_cfg = space.task_plugin(), space.teacher
    local = work / "teacher"
    if "path" in t_cfg:
        source = storage.download_dir(t_cfg["path"], work / "given")
        given = plugin.load(source, space.data, seed=space.seed)
        given.io.save(given.model, local, {"copied_from": str(t_cfg["path"])})
    elif storage.exists(storage.join(target, "config.json")):
        local = storage.download_dir(target, local)
        log(f"reusing the sweep's teacher at {target}")
    else:
        log(f"training the sweep's teacher on {space.data} ...")
        t0 = time.perf_counter()
        plugin.train_teacher(space.data, t_cfg, local, seed=space.seed, progress=progress, log=log, device=device)
        info["train_s"] = round(time.perf_counter() - t0, 2)
        info["trained_here"] = True
    loaded = plugin.load(local, space.data, seed=space.seed)
    model, task = loaded.model.to(device), loaded.task
    require_task_splits(task, space.data, ("train", "valid"), why="trials train on train and are scored on valid")
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
    info["data_digest"] = plugin.data_fingerprint(space.data, seed=space.seed)
    info["weights_sha256"] = weights_digest(str(local))
    valid = task.evaluate(model, "valid")
    test = task.evaluate(model, "test") if task.has_split("test") else None
    metric = task.primary_metric
    info.update({"accuracy": valid[metric], "test_accuracy": test[metric] if test else None, "primary_metric": metric,
                 # with n, interval and per-problem bits: every trial's paired test against the teacher
                 "metrics": {"valid": valid, **({"test": test} if test else {})}})
    from raykd.measure import count_params

    info["params"] = count_params(model)
    storage.upload_dir(Path(local), target)
    return info


def weights_digest(directory: str) -> str | None:
    """SHA-256 of a saved model's weights (a local path or a storage URI): the checksum its
    config.json records (every model raykd writes), else the hash of its model.safetensors (a
    plug-in's own format); None when it has neither. OSError/ValueError when config.json is
    unreadable."""
    # deferred: torch; the sweep driver imports this module and needs no torch
    from raykd.structures.serialization import CHECKSUM_KEY, WEIGHTS_NAME

    config = json.loads(storage.read_bytes(storage.join(directory, "config.json")))
    recorded = config.get(CHECKSUM_KEY) if isinstance(config, dict) else None
    if recorded:
        return str(recorded)
    weights = storage.join(directory, WEIGHTS_NAME)
    return hashlib.sha256(storage.read_bytes(weights)).hexdigest() if storage.exists(weights) else None


def _latency_table(space: SweepSpace, model: Any, task: Any, local: Path, info: dict[str, Any], log: Any) -> None:
    """The sweep's latency table (teacher/latency_table.json), built once, on the batch and thread
    count the trials time with; kept as it is when the teacher directory already has one."""
    # deferred: torch; the sweep driver imports this module and needs no torch
    from raykd.measure.latency import TABLE_NAME, LatencyTable, cached_latency_table

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
                         use_cache=space.speed["table_cache"], calibration=space.speed["calibration"], log=log).save(path)
    info["latency_table_s"] = round(time.perf_counter() - t0, 2)


def _needs_taylor(space: SweepSpace) -> bool:
    for p in space.search:
        if p.name == "importance" and "taylor" in p.choices:
            return True
    return space.fixed.get("importance") == "taylor"

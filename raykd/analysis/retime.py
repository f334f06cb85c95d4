"""Re-time a sweep's front side by side: one measured speedup per point, with an interval.

The front's speed axis is the latency table's prediction (deterministic, one shape one figure).
What a user deploys still deserves a measurement, taken fairly: the teacher, the front and its
runners-up (the next non-dominated layer, capped) are loaded together and timed in ONE interleaved
comparison (`compare_latency`: round-robin, rotating order, same batch, same process, many
rounds), on the device asked for. Per point: `retimed_speedup` (median teacher / median model) and
a 95% bootstrap interval of that ratio (rounds resampled with a fixed seed), the device and when.
Every row is written only after all timing finished, then the front is rewritten (both atomic),
so a crash mid-re-timing leaves the previous results as they were.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from raykd import storage
from raykd.errors import RaykdInputError

MAX_POINTS = 12  # front + runners-up timed together (each is a whole model in memory)
BOOTSTRAP = 2000


def retime_candidates(sw: Any, objectives: Any = None, cap: int = MAX_POINTS) -> list[str]:
    """Trial ids of the front, then of the next non-dominated layer, at most `cap` in all."""
    from raykd.results.pareto import pareto_mask

    objs = sw.resolve_objectives(objectives)
    df = sw.df
    first = df[pareto_mask(df, objs)]
    rest = df[~df["trial_id"].isin(first["trial_id"])]
    second = rest[pareto_mask(rest, objs)] if len(rest) else rest
    key = objs[0][0]
    ids = [*first.sort_values(key, ascending=False)["trial_id"], *second.sort_values(key, ascending=False)["trial_id"]]
    return [str(t) for t in ids[:cap]]


def bootstrap_ratio(reference_ms: list[float], model_ms: list[float], *, seed: int = 0,
                    draws: int = BOOTSTRAP) -> tuple[float, float]:
    """95% interval of median(reference) / median(model), resampling the timed rounds."""
    rng = np.random.default_rng(seed)
    ref, mod = np.asarray(reference_ms), np.asarray(model_ms)
    idx = rng.integers(0, len(ref), size=(draws, len(ref)))
    ratios = np.median(ref[idx], axis=1) / np.median(mod[idx], axis=1)
    low, high = np.percentile(ratios, [2.5, 97.5])
    return float(low), float(high)


def retime_front(sweep_uri: str, *, rounds: int = 30, device: str = "cpu", threads: int | None = None,
                 objectives: Any = None, log: Any = print) -> list[dict[str, Any]]:
    """Time the teacher, the front and its runners-up together; store and return one record per point."""
    import torch

    from raykd.analysis.export import _checkpoint_uri
    from raykd.analysis.sweep import open_sweep
    from raykd.distributed.space import parse_space
    from raykd.measure import compare_latency
    from raykd.results.store import update_pareto, write_trial
    from raykd.task_interface import resolve_workload

    sw = open_sweep(sweep_uri)
    ids = retime_candidates(sw, objectives)
    if not ids:
        raise RaykdInputError(f"sweep {sw.name} has no complete trial to re-time")
    space = parse_space(sw.meta.get("space_raw"), f"{sweep_uri} (stored space)")
    work = Path(tempfile.mkdtemp(prefix="raykd-retime-"))
    try:
        teacher_dir = storage.download_dir(sw.teacher["dir"], work / "teacher")
        loaded = space.task_plugin().load(teacher_dir, space.data, seed=space.seed)
        task = loaded.task
        models = {"teacher": loaded.model.to(device).eval()}
        for tid in ids:
            src = _checkpoint_uri(sw, sw.trial(tid))
            local = storage.download_dir(src, work / tid)
            models[tid] = loaded.io.load(local).to(device).eval()
        base = space.chain_config({})
        batch = {k: v.to(device) for k, v in next(iter(task.batches("valid", base.latency_batch))).items()}
        log(f"re-timing the teacher and {len(ids)} trials together: {rounds} interleaved rounds on {device}")
        t0 = time.perf_counter()
        workload = resolve_workload(task, base.latency_workload)
        lat = compare_latency({k: (lambda m=m: task.run(m, batch, workload)) for k, m in models.items()}, rounds=rounds,
                              device=device, num_threads=threads, reference="teacher")
        wall = time.perf_counter() - t0
    finally:
        shutil.rmtree(work, ignore_errors=True)
    when = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    used_threads = (threads or torch.get_num_threads()) if str(device).startswith("cpu") else None
    records = []
    for tid in ids:
        low, high = bootstrap_ratio(list(lat.stats["teacher"].samples_ms), list(lat.stats[tid].samples_ms))
        records.append({"trial_id": tid, "retimed_speedup": lat.speedup[tid], "retimed_low": low, "retimed_high": high,
                        "retimed_device": str(device), "retimed_workload": workload, "retimed_threads": used_threads, "retimed_rounds": rounds,
                        "retimed_at": when, "retimed_with": len(ids), "retimed_wall_s": round(wall, 1)})
    stored = {row["trial_id"]: row for row in sw.table.to_pylist()}  # as stored: nulls stay null
    for rec in records:  # only now that every figure exists
        write_trial(sweep_uri, {**stored[rec["trial_id"]], **rec})
    update_pareto(sweep_uri)
    return records

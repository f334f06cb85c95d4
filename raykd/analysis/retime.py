"""Re-time a sweep's front side by side: one measured speedup per point, with an interval.

The front's speed axis is the latency table's prediction (deterministic, one shape one figure).
What a user deploys still deserves a measurement, taken fairly: the teacher, the front and its
runners-up (the next non-dominated layer, capped) are loaded together and timed in ONE interleaved
comparison (`compare_latency`: round-robin, rotating order, same batch, same process, many
rounds; by default in three such sessions, see below), on the device asked for. Per point:
`retimed_speedup` (median teacher / median model) and a 95% bootstrap interval of that ratio
(rounds resampled with a fixed seed), the device and when.
Every row is written only after all timing finished, then the front is rewritten (both atomic),
so a crash mid-re-timing leaves the previous results as they were.

Sessions: the rounds of one process agree more closely than two processes do (BENCHMARKS.md
§18b: on a quiet box a process's 95% interval was 1.4% wide while four re-timings of the same
models in four processes ranged over 2.3%, up to 4.4%), so an interval from one process does not
cover a re-timing in another. With `sessions` S > 1 the rounds are split over S fresh processes,
run one after another; a point's figure is the mean over sessions of each session's ratio of
medians, and its interval a two-level bootstrap (sessions resampled, then rounds within each), so
it carries the variation between processes too. S = 1 is the one-process comparison above.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
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


def sessions_ratio(sessions: list[tuple[list[float], list[float]]], *, seed: int = 0,
                   draws: int = BOOTSTRAP) -> tuple[float, float, float]:
    """(speedup, low, high) of a model against the reference from S timing sessions, each a pair
    (reference ms per round, model ms per round): the mean over sessions of median(reference) /
    median(model), and a 95% interval by a two-level bootstrap (S sessions drawn with replacement,
    the rounds of each resampled). One session: its ratio of medians and `bootstrap_ratio`."""
    if len(sessions) == 1:
        ref, mod = sessions[0]
        return float(np.median(ref) / np.median(mod)), *bootstrap_ratio(ref, mod, seed=seed, draws=draws)
    rng = np.random.default_rng(seed)
    per_session = []  # draws resampled ratios of each session
    for ref, mod in sessions:
        r, m = np.asarray(ref), np.asarray(mod)
        idx = rng.integers(0, len(r), size=(draws, len(r)))
        per_session.append(np.median(r[idx], axis=1) / np.median(m[idx], axis=1))
    boot = np.stack(per_session)  # (S, draws)
    pick = rng.integers(0, len(sessions), size=(draws, len(sessions)))
    means = boot[pick, np.arange(draws)[:, None]].mean(axis=1)
    low, high = np.percentile(means, [2.5, 97.5])
    point = float(np.mean([np.median(ref) / np.median(mod) for ref, mod in sessions]))
    return point, float(low), float(high)


def time_session(teacher_dir: str, model_dirs: dict[str, str], space_raw: Any, *, rounds: int, device: str,
                 threads: int | None) -> tuple[str, dict[str, list[float]]]:
    """One timing session: load the teacher and the models (local directories, by trial id) and
    time them in one interleaved comparison; (workload, ms per round per name). Module level:
    `raykd.analysis.retime_session` runs it in a fresh process."""
    from raykd.distributed.space import parse_space
    from raykd.measure import compare_latency
    from raykd.task_interface import resolve_workload

    space = parse_space(space_raw, "stored space")
    loaded = space.task_plugin().load(Path(teacher_dir), space.data, seed=space.seed)
    task = loaded.task
    models = {"teacher": loaded.model.to(device).eval()}
    for name, local in model_dirs.items():
        models[name] = loaded.io.load(Path(local)).to(device).eval()
    base = space.chain_config({})
    batch = {k: v.to(device) for k, v in next(iter(task.batches("valid", base.latency_batch))).items()}
    workload = resolve_workload(task, base.latency_workload)
    lat = compare_latency({k: (lambda m=m: task.run(m, batch, workload)) for k, m in models.items()}, rounds=rounds,
                          device=device, num_threads=threads, reference="teacher")
    return workload, {k: list(v.samples_ms) for k, v in lat.stats.items()}


def session_in_fresh_process(teacher_dir: str, model_dirs: dict[str, str], space_raw: Any, *, rounds: int,
                             device: str, threads: int | None) -> tuple[str, dict[str, list[float]]]:
    """`time_session` in a new Python process (`python -m raykd.analysis.retime_session`), which
    sees the same import path as this one; its one-line error becomes this process's."""
    with tempfile.TemporaryDirectory(prefix="raykd-session-") as d:
        spec, out = Path(d) / "session.json", Path(d) / "samples.json"
        spec.write_text(json.dumps({"teacher_dir": teacher_dir, "model_dirs": model_dirs, "space_raw": space_raw,
                                    "rounds": rounds, "device": device, "threads": threads}, default=str))
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p and os.path.isdir(p))}
        proc = subprocess.run([sys.executable, "-m", "raykd.analysis.retime_session", str(spec), str(out)],
                              capture_output=True, text=True, env=env)
        if proc.returncode != 0 or not out.is_file():
            lines = proc.stderr.strip().splitlines()
            raise RaykdInputError(f"a re-timing session failed: {lines[-1] if lines else f'exit code {proc.returncode}'}")
        result = json.loads(out.read_text())
    return result["workload"], result["samples"]


def retime_front(sweep_uri: str, *, rounds: int = 30, sessions: int = 3, device: str = "cpu", threads: int | None = None,
                 objectives: Any = None, log: Any = print) -> list[dict[str, Any]]:
    """Time the teacher, the front and its runners-up together (in `sessions` fresh processes, the
    `rounds` split between them, when `sessions` > 1); store and return one record per point."""
    import torch

    from raykd.analysis.export import _checkpoint_uri
    from raykd.analysis.sweep import open_sweep
    from raykd.distributed.space import parse_space
    from raykd.results.store import update_pareto, write_trial

    if sessions < 1 or rounds < 2 * sessions:
        raise RaykdInputError(f"re-timing needs at least 2 rounds per session: {rounds} rounds for {sessions} sessions")
    sw = open_sweep(sweep_uri)
    ids = retime_candidates(sw, objectives)
    if not ids:
        raise RaykdInputError(f"sweep {sw.name} has no complete trial to re-time")
    space_raw = sw.meta.get("space_raw")
    parse_space(space_raw, f"{sweep_uri} (stored space)")  # a damaged space: said before anything is downloaded
    split = [rounds // sessions + (1 if i < rounds % sessions else 0) for i in range(sessions)]
    work = Path(tempfile.mkdtemp(prefix="raykd-retime-"))
    try:
        teacher_dir = str(storage.download_dir(sw.teacher["dir"], work / "teacher"))
        model_dirs = {tid: str(storage.download_dir(_checkpoint_uri(sw, sw.trial(tid)), work / tid)) for tid in ids}
        where = "one process" if sessions == 1 else f"{sessions} fresh processes, one after another"
        log(f"re-timing the teacher and {len(ids)} trials together: {rounds} interleaved rounds on {device} ({where})")
        t0 = time.perf_counter()
        timed: list[dict[str, list[float]]] = []
        if sessions == 1:
            workload, samples = time_session(teacher_dir, model_dirs, space_raw, rounds=rounds, device=device, threads=threads)
            timed.append(samples)
        else:  # a new process per session, never two at once
            for n in split:
                workload, samples = session_in_fresh_process(teacher_dir, model_dirs, space_raw, rounds=n, device=device,
                                                             threads=threads)
                timed.append(samples)
        wall = time.perf_counter() - t0
    finally:
        shutil.rmtree(work, ignore_errors=True)
    when = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    used_threads = (threads or torch.get_num_threads()) if str(device).startswith("cpu") else None
    records = []
    for tid in ids:
        speedup, low, high = sessions_ratio([(t["teacher"], t[tid]) for t in timed])
        records.append({"trial_id": tid, "retimed_speedup": speedup, "retimed_low": low, "retimed_high": high,
                        "retimed_device": str(device), "retimed_workload": workload, "retimed_threads": used_threads, "retimed_rounds": rounds,
                        "retimed_sessions": sessions, "retimed_at": when, "retimed_with": len(ids), "retimed_wall_s": round(wall, 1)})
    stored = {row["trial_id"]: row for row in sw.table.to_pylist()}  # as stored: nulls stay null
    for rec in records:  # only now that every figure exists
        write_trial(sweep_uri, {**stored[rec["trial_id"]], **rec})
    update_pareto(sweep_uri)
    return records

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
from raykd.analysis.confine import check_stored_inputs
from raykd.analysis.export import _checkpoint_uri
from raykd.analysis.sweep import open_sweep
from raykd.errors import RaykdInputError
from raykd.results.pareto import pareto_mask
from raykd.results.store import update_pareto, write_trial
from raykd.search.space import SweepSpace, parse_space

MAX_POINTS = 12  # front + runners-up timed together (each is a whole model in memory)
BOOTSTRAP = 2000


def retime_candidates(sw: Any, objectives: Any = None, cap: int = MAX_POINTS) -> list[str]:
    """Trial ids of the front, then of the next non-dominated layer, at most `cap` in all."""
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


def time_session(groups: list[dict[str, Any]], *, rounds: int, device: str,
                 threads: int | None) -> tuple[list[str], dict[str, list[float]]]:
    """One timing session: load every group's teacher and models (a group is one sweep:
    {"teacher_dir", "model_dirs": {trial id: local dir}, "space_raw"}) and time them all in ONE
    interleaved comparison, each with its own sweep's batch and workload; (workload per group, ms
    per round per name "<group>:teacher" / "<group>:<trial id>"). Module level:
    `raykd.analysis.retime_session` runs it in a fresh process."""
    from raykd.measure import compare_latency  # deferred, as torch is: reading a sweep (raykd.analysis) imports
    from raykd.task_interface import resolve_workload  # no torch; only timing does
    from raykd.traces.speed import retime_workload

    calls, workloads = {}, []
    for g, group in enumerate(groups):
        space = parse_space(group["space_raw"], "stored space")
        loaded = space.task_plugin().load(Path(group["teacher_dir"]), space.data, seed=space.seed)
        task = loaded.task
        models = {"teacher": loaded.model.to(device).eval()}
        for name, local in group["model_dirs"].items():
            models[name] = loaded.io.load(Path(local)).to(device).eval()
        base = space.chain_config({})
        batch = {k: v.to(device) for k, v in next(iter(task.batches("valid", base.latency_batch))).items()}
        workload = retime_workload(task, resolve_workload(task, base.latency_workload))  # traces: end to end
        workloads.append(workload)
        for name, m in models.items():
            calls[f"{g}:{name}"] = lambda m=m, task=task, batch=batch, workload=workload: task.run(m, batch, workload)
    lat = compare_latency(calls, rounds=rounds, device=device, num_threads=threads, reference="0:teacher")
    return workloads, {k: list(v.samples_ms) for k, v in lat.stats.items()}


def session_in_fresh_process(groups: list[dict[str, Any]], *, rounds: int, device: str,
                             threads: int | None) -> tuple[list[str], dict[str, list[float]]]:
    """`time_session` in a new Python process (`python -m raykd.analysis.retime_session`), which
    sees the same import path as this one; its one-line error becomes this process's."""
    with tempfile.TemporaryDirectory(prefix="raykd-session-") as d:
        spec, out = Path(d) / "session.json", Path(d) / "samples.json"
        spec.write_text(json.dumps({"groups": groups, "rounds": rounds, "device": device, "threads": threads}, default=str))
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p and os.path.isdir(p))}
        proc = subprocess.run([sys.executable, "-m", "raykd.analysis.retime_session", str(spec), str(out)],
                              capture_output=True, text=True, env=env)
        if proc.returncode != 0 or not out.is_file():
            lines = proc.stderr.strip().splitlines()
            raise RaykdInputError(f"a re-timing session failed: {lines[-1] if lines else f'exit code {proc.returncode}'}")
        result = json.loads(out.read_text())
    return result["workloads"], result["samples"]


def trial_threads(space: Any) -> int:
    """The torch threads a sweep's trials ran with on CPU (its latency table's and speedups' too)."""
    return max(1, int(space.resources.cpus_per_worker))


def retime_front(sweep_uri: str, *, rounds: int = 30, sessions: int = 3, device: str = "cpu", threads: int | None = None,
                 objectives: Any = None, log: Any = print, trusted: bool = False) -> list[dict[str, Any]]:
    """Time the teacher, the front and its runners-up together (in `sessions` fresh processes, the
    `rounds` split between them, when `sessions` > 1); store and return one record per point.
    `threads` None on CPU: the sweep's trials' thread count. `trusted`: see `retime_fronts`."""
    return retime_fronts([sweep_uri], rounds=rounds, sessions=sessions, device=device, threads=threads,
                         objectives=objectives, log=log, trusted=trusted)[sweep_uri]


def retime_fronts(sweep_uris: list[str], *, rounds: int = 30, sessions: int = 3, device: str = "cpu",
                  threads: int | None = None, objectives: Any = None, log: Any = print,
                  trusted: bool = False) -> dict[str, list[dict[str, Any]]]:
    """Re-time several sweeps' fronts side by side: every sweep's teacher, front and runners-up in
    the same interleaved rounds of the same sessions, each point's ratio taken against its own
    sweep's teacher. Figures from two separate re-timings differ by the machine's state at the
    time, a shift shared by every ratio of a re-timing (BENCHMARKS §18d, a quiet 2-core VM: up to 3%
    within three minutes, 2-6% between two sweeps' ends); timed together, two fronts share it, so
    their figures compare (11 of 11 intervals overlapped in each of five such re-timings). Nothing
    is written until every figure exists; then each sweep's rows and front (atomic per sweep).

    A stored sweep is data (docs/security.md): its task must be raykd's or an installed entry
    point, its data, teacher and checkpoints must lie inside it (`raykd.analysis.confine`), all
    checked before anything is imported, downloaded or loaded. `trusted` (`--trust-sweep`: the
    user made these sweeps) lets an import-path plug-in and data outside the sweep through."""
    import torch  # deferred: `raykd pareto` without --retime and notebooks open sweeps without torch

    if sessions < 1 or rounds < 2 * sessions:
        raise RaykdInputError(f"re-timing needs at least 2 rounds per session: {rounds} rounds for {sessions} sessions")
    if len(set(sweep_uris)) != len(sweep_uris):
        raise RaykdInputError(f"a sweep is named twice among the fronts to re-time: {' '.join(sweep_uris)}")
    sweeps = [open_sweep(uri) for uri in sweep_uris]
    ids, spaces, sources = [], [], []
    for uri, sw in zip(sweep_uris, sweeps):
        ids.append(retime_candidates(sw, objectives))
        if not ids[-1]:
            raise RaykdInputError(f"sweep {sw.name} ({uri}) has no complete trial to re-time")
        # data, not code: the task, data, teacher and links checked before parse_space makes the plug-in
        teacher = check_stored_inputs(sw.meta, sw.uri, where=f"{uri} (stored space)", trusted=trusted)
        spaces.append(parse_space(sw.meta.get("space_raw"), f"{uri} (stored space)"))  # damaged: said before any download
        sources.append((teacher["dir"], {tid: _checkpoint_uri(sw, sw.trial(tid)) for tid in ids[-1]}))
    if threads is None and str(device).startswith("cpu"):
        # the trials' count: a re-timed figure then measures what the stored speedup predicts
        counts = sorted({trial_threads(space) for space in spaces})
        if len(counts) > 1:
            raise RaykdInputError(f"the sweeps' trials ran with {' and '.join(map(str, counts))} threads: "
                                  "say which to re-time them all with (--threads N)")
        threads = counts[0]
    split = [rounds // sessions + (1 if i < rounds % sessions else 0) for i in range(sessions)]
    work = Path(tempfile.mkdtemp(prefix="raykd-retime-"))
    try:
        groups = []
        for g, (sw, (teacher, checkpoints)) in enumerate(zip(sweeps, sources)):
            teacher_dir = str(storage.download_dir(teacher, work / f"{g}" / "teacher"))
            model_dirs = {tid: str(storage.download_dir(ck, work / f"{g}" / tid)) for tid, ck in checkpoints.items()}
            groups.append({"teacher_dir": teacher_dir, "model_dirs": model_dirs, "space_raw": sw.meta.get("space_raw")})
        where = "one process" if sessions == 1 else f"{sessions} fresh processes, one after another"
        points = sum(len(t) for t in ids)
        what = f"the teacher and {points} trials" if len(sweeps) == 1 else f"{len(sweeps)} sweeps' teachers and {points} trials"
        log(f"re-timing {what} together: {rounds} interleaved rounds on {device} ({where})")
        t0 = time.perf_counter()
        timed: list[dict[str, list[float]]] = []
        if sessions == 1:
            workloads, samples = time_session(groups, rounds=rounds, device=device, threads=threads)
            timed.append(samples)
        else:  # a new process per session, never two at once
            for n in split:
                workloads, samples = session_in_fresh_process(groups, rounds=n, device=device, threads=threads)
                timed.append(samples)
        wall = time.perf_counter() - t0
    finally:
        shutil.rmtree(work, ignore_errors=True)
    when = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    used_threads = (threads or torch.get_num_threads()) if str(device).startswith("cpu") else None
    out: dict[str, list[dict[str, Any]]] = {}
    for g, (uri, tids) in enumerate(zip(sweep_uris, ids)):
        beside = json.dumps([u for u in sweep_uris if u != uri]) if len(sweep_uris) > 1 else None
        # the teacher's own time (median over sessions of its median): beside the table's dense
        # time it tells whether the machine ran as it did when the table was timed
        reference_ms = float(np.median([np.median(t[f"{g}:teacher"]) for t in timed]))
        out[uri] = []
        for tid in tids:
            speedup, low, high = sessions_ratio([(t[f"{g}:teacher"], t[f"{g}:{tid}"]) for t in timed])
            out[uri].append({"trial_id": tid, "retimed_speedup": speedup, "retimed_low": low, "retimed_high": high,
                             "retimed_device": str(device), "retimed_workload": workloads[g], "retimed_threads": used_threads,
                             "retimed_rounds": rounds, "retimed_sessions": sessions, "retimed_at": when, "retimed_with": points,
                             "retimed_beside": beside, "retimed_reference_ms": reference_ms,
                             "retimed_wall_s": round(wall, 1)})
    for uri, sw in zip(sweep_uris, sweeps):  # only now that every figure exists
        stored = {row["trial_id"]: row for row in sw.table.to_pylist()}  # as stored: nulls stay null
        for rec in out[uri]:
            write_trial(uri, {**stored[rec["trial_id"]], **rec})
        update_pareto(uri)
    return out


def retime_at_end(root: str, space: SweepSpace, log: Any = print) -> None:
    """Re-time the front and its runners-up side by side with the teacher (what `raykd pareto
    --retime` does), in the driver, on the trials' device and thread count, so the front a sweep
    prints and stores carries measured speedups with intervals, not only predictions. Called after
    the sweep's Ray work (`raykd.cli.sweep.sweep_then_retime`), never from `raykd.distributed`."""
    import torch  # deferred: see retime_fronts

    device = "cuda" if space.resources.gpus_per_worker > 0 and torch.cuda.is_available() else "cpu"
    threads = trial_threads(space) if device == "cpu" else None
    try:
        retime_front(root, rounds=int(space.speed["retime_rounds"]), sessions=int(space.speed["retime_sessions"]),
                     device=device, threads=threads, log=log, trusted=True)  # the space this run was given
    except RaykdInputError as exc:
        # no complete trial, or a checkpoint that cannot be read: said, and the sweep's rows stand
        # as they are (the re-timing writes nothing until every figure exists)
        log(f"not re-timed: {exc}")

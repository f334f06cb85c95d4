"""Run the reproduction's chains and the evaluations the tables need (pure PyTorch, no Ray).

Layout of `out_dir` (re-running on it resumes: finished chains are read back, an interrupted one
continues after its last complete round, evaluations are cached):

    results.json            everything the tables are built from (rewritten after each experiment)
    structure_stats.json    the teacher's head statistics, computed once, shared by every chain
                            (a directory an older raykd wrote holds `head_stats.json` instead: still read)
    experiments/<name>/     one chain per experiment (round-NN checkpoints)
"""

from __future__ import annotations

import json
import platform
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch
from torch import nn

from raykd.method.chain import Chain, MeasureFn, ModelIO, round_dir
from raykd.method.config import ChainConfig
from raykd.method.importance import LEGACY_STATS_NAME, STATS_NAME, StructureStats, collect_stats
from raykd.errors import ConfigError
from raykd.resume import ResumeMismatch, check_resume, differences, model_digest
from raykd.storage import write_bytes_atomic
from raykd.task_interface import Task
from raykd.experiments.plan import Experiment

RESULTS_NAME = "results.json"


def model_key(experiment: str, round_index: int) -> str:
    """How one trained model is named in `evaluations` and `speed`."""
    return f"{experiment}/round-{round_index:02d}"


def experiment_dir(out_dir: Path, experiment: str) -> Path:
    return Path(out_dir) / "experiments" / experiment


@dataclass
class ReproductionResult:
    data: str
    source: str
    teacher: dict[str, Any]
    experiments: dict[str, dict[str, Any]] = field(default_factory=dict)
    evaluations: dict[str, dict[str, Any]] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)
    speed: dict[str, Any] = field(default_factory=dict)  # from remeasure_speed, when it ran
    fingerprint: dict[str, Any] = field(default_factory=dict)  # teacher + data digests (raykd.resume)

    def to_dict(self) -> dict[str, Any]:
        return {"data": self.data, "source": self.source, "teacher": self.teacher, "experiments": self.experiments,
                "evaluations": self.evaluations, "meta": self.meta, "speed": self.speed, "fingerprint": self.fingerprint}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "ReproductionResult":
        return cls(d["data"], d["source"], d["teacher"], d.get("experiments", {}), d.get("evaluations", {}), d.get("meta", {}),
                   d.get("speed", {}), d.get("fingerprint", {}))

    @classmethod
    def load(cls, out_dir: str | Path) -> "ReproductionResult":
        """The results stored in `out_dir`; ConfigError (one line, exit 2) when absent or malformed."""
        path = Path(out_dir) / RESULTS_NAME
        if not path.is_file():
            raise ConfigError(f"{path} does not exist")
        try:
            return cls.from_dict(json.loads(path.read_text()))
        except (ValueError, KeyError, TypeError, AttributeError, RecursionError) as exc:
            raise ConfigError(f"{path} is not a reproduction's results file ({exc})") from None

    def save(self, out_dir: Path) -> None:
        write_bytes_atomic(Path(out_dir) / RESULTS_NAME, json.dumps(self.to_dict(), indent=1, sort_keys=True, default=float).encode())


def inputs_fingerprint(task: Task, teacher: nn.Module) -> dict[str, str]:
    """What every experiment of a reproduction shares: the teacher's weights and the data."""
    return {"teacher": model_digest(teacher), "data": task.fingerprint()}


def check_same_inputs(result: ReproductionResult, current: dict[str, str], data: str, out_dir: Path) -> None:
    """Refuse to add to (or re-time) a reproduction made from another teacher or other data."""
    stored = result.fingerprint or ({"data_spec": result.data} if result.data != data else {})
    check_resume(stored, {**current, "data_spec": data}, what="reproduction", where=out_dir)


def check_experiment_configs(result: ReproductionResult, base: ChainConfig, experiments: list[Experiment],
                             out_dir: Path) -> None:
    """Refuse, before anything runs, experiments stored under other settings than asked now."""
    clashes = []
    for exp in experiments:
        stored = (result.experiments.get(exp.name) or {}).get("config")
        if stored:
            diff = differences(stored, ChainConfig.from_dict({**base.to_dict(), **exp.overrides}).to_dict())
            if diff:
                clashes.append(f"{exp.name} ({', '.join(diff)})")
    if clashes:
        raise ResumeMismatch(f"{out_dir} holds experiments run with other settings: {'; '.join(clashes)}: "
                             "use a new --out, or the --config/--set they were run with")


def _metrics(result: dict[str, Any]) -> dict[str, Any]:
    return {k: result[k] for k in ("accuracy", "equation_accuracy", "n", "by_complexity", "ci_low", "ci_high", "correct_bits")
            if k in result}


def run_reproduction(
    task: Task,
    teacher: nn.Module,
    io: ModelIO,
    out_dir: str | Path,
    base: ChainConfig,
    experiments: list[Experiment],
    measure: MeasureFn,
    *,
    data: str,
    source: str,
    evaluate_rounds_of: tuple[str, ...] = ("progressive",),
    progress: bool = False,
    log: Callable[[str], None] = print,
    on_update: Callable[[ReproductionResult], None] | None = None,
) -> ReproductionResult:
    """Run every experiment's chain from `teacher` with `base` + its overrides; evaluate the teacher
    and every round of the chains in `evaluate_rounds_of` on the test split, by complexity."""
    out = Path(out_dir)
    result = ReproductionResult.load(out) if (out / RESULTS_NAME).is_file() else None
    fingerprint = inputs_fingerprint(task, teacher)
    if result is not None:
        check_same_inputs(result, fingerprint, data, out)
        check_experiment_configs(result, base, experiments, out)
    out.mkdir(parents=True, exist_ok=True)
    if result is None:
        t0 = time.perf_counter()
        teacher_eval = {"valid": _metrics(task.evaluate(teacher, "valid")), "test": _metrics(task.evaluate(teacher, "test"))}
        result = ReproductionResult(data, source, {**teacher_eval, "eval_s": round(time.perf_counter() - t0, 2)})
    result.fingerprint = fingerprint
    result.meta.update({"base_config": base.to_dict(), "machine": platform.platform(), "torch": torch.__version__,
                        "threads": torch.get_num_threads()})
    result.evaluations.setdefault("teacher", result.teacher["test"])

    # the paper's plans prune heads only; a reproduction an older raykd began holds head_stats.json
    stats_path = next((out / n for n in (STATS_NAME, LEGACY_STATS_NAME) if (out / n).is_file()), None)
    if stats_path is not None:
        stats = StructureStats.load(stats_path)
    else:
        t0 = time.perf_counter()
        stats = collect_stats(teacher, task, batches=base.calib_batches, batch_size=base.calib_batch_size, ffn=False, layers=False)
        stats.save(out / STATS_NAME)
        result.meta["teacher_stats_s"] = round(time.perf_counter() - t0, 2)

    # the teacher's per-problem results, for every chain's paired tests (older results files lack them)
    teacher_metrics = ({s: result.teacher[s] for s in ("valid", "test")}
                       if all("correct_bits" in result.teacher.get(s, {}) for s in ("valid", "test")) else None)
    for exp in experiments:
        done = result.experiments.get(exp.name)
        config = ChainConfig.from_dict({**base.to_dict(), **exp.overrides})
        if done and done.get("config") == config.to_dict() and done.get("done"):
            log(f"{exp.name}: done earlier, {len(done['records'])} round(s)")
            continue
        log(f"{exp.name}: {exp.description}")
        t0 = time.perf_counter()
        chain_dir = experiment_dir(out, exp.name)
        chain = Chain(task, teacher, config, io, chain_dir, measure, teacher_stats=stats, progress=progress,
                      log=log, teacher_metrics=teacher_metrics)
        records = chain.run().records
        result.experiments[exp.name] = {"description": exp.description, "overrides": exp.overrides, "config": config.to_dict(),
                                        "records": records, "done": True, "wall_s": round(time.perf_counter() - t0, 2)}
        if exp.name in evaluate_rounds_of:
            for rec in records:
                key = model_key(exp.name, rec["round"])
                if key not in result.evaluations:
                    model = io.load(round_dir(chain_dir, rec["round"]))
                    result.evaluations[key] = {"ratio": rec["ratio"], **_metrics(task.evaluate(model, "test"))}
        result.save(out)
        if on_update:
            on_update(result)
    result.save(out)
    return result


def remeasure_speed(
    task: Task,
    teacher: nn.Module,
    io: ModelIO,
    out_dir: str | Path,
    result: ReproductionResult,
    *,
    batch_size: int = 8,
    repeats: int = 20,
    threads: int | None = None,
    workload: str = "default",
) -> ReproductionResult:
    """Time the teacher and every model the reproduction trained in ONE interleaved comparison
    (round-robin, rotating order, same batch, same process), so that a noisy machine slows all of
    them alike; the in-chain speedups were each taken at a different time. Stored in
    `result.speed` and preferred by the tables."""
    from raykd.measure import compare_latency
    from raykd.task_interface import batch_rows, resolve_workload

    out = Path(out_dir)
    device = next(teacher.parameters()).device  # every model is timed where the teacher is
    batch = {k: v.to(device) for k, v in next(iter(task.batches("valid", batch_size))).items()}
    models: dict[str, nn.Module] = {"teacher": teacher.eval()}
    for name, exp in result.experiments.items():
        for rec in exp.get("records", []):
            models[model_key(name, rec["round"])] = io.load(round_dir(experiment_dir(out, name), rec["round"])).to(device).eval()
    t0 = time.perf_counter()
    workload = resolve_workload(task, workload)
    lat = compare_latency({k: (lambda m=m: task.run(m, batch, workload)) for k, m in models.items()}, rounds=repeats, num_threads=threads,
                          reference="teacher", device=device)
    result.speed = {
        "how": ("one compare_latency call: all models round-robin with rotating order; speedup = median(teacher) / "
                "median(model); paired_speedup = median over rounds of teacher/model within the round (the tables use it)"),
        "workload": workload, "device": str(device), "batch": batch_rows(batch), "repeats": repeats, "threads": torch.get_num_threads() if threads is None else threads,
        "wall_s": round(time.perf_counter() - t0, 1), "date": time.strftime("%Y-%m-%d %H:%M"),
        "median_ms": {k: s.median_ms for k, s in lat.stats.items()},
        "speedup": {k: v for k, v in lat.speedup.items() if k != "teacher"},
        "paired_speedup": {k: v for k, v in lat.paired_speedup.items() if k != "teacher"},
    }
    result.save(out)
    return result

"""The Ray Train worker: a thin shell around the Ray-free chain.

Every worker of a trial's TorchTrainer runs the same chain (DDP inside `fit`); at the end of each
round rank 0 (which alone evaluates, measures and writes the round: `raykd.replicas`) reports the
round's metrics with the round directory as a Train checkpoint, the other ranks report what they
know without one. A restarted worker group (worker or node failure, or a
resumed sweep) finds the last checkpoint, lays it out as the chain's last complete round and
continues from there; a chain that had already finished re-reports its final round.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path
from typing import Any

from raykd.errors import ConfigError
from raykd.method.config import ChainConfig
from raykd.method.optional_kinds import activate_for_settings
from raykd.storage import download_dir
from raykd.structures.registry import structure_kinds

CHAIN_DONE = "chain_done"


def flatten_record(record: dict[str, Any], rounds: int) -> dict[str, Any]:
    """Tune metrics of one round: every scalar, plus `chain_done` on the last round."""
    out: dict[str, Any] = {k: v for k, v in record.items() if isinstance(v, (int, float, str, bool)) or v is None}
    for kind in structure_kinds():  # each kind's kept units as JSON: heads_kept_json, ffn_kept_json, ...
        if kind.kept_key in record:
            out[f"{kind.kept_key}_json"] = json.dumps(record[kind.kept_key])
    out[CHAIN_DONE] = record["round"] >= rounds
    return out


def load_teacher_inputs(teacher_dir: Path, config: dict[str, Any]) -> tuple[Any, Any, Any]:
    """(the task plug-in's LoadedModel, the shared structure statistics or None, the latency table
    or None) of a local teacher directory, for `config` (task, data, data_seed, speed_source). With
    speed_source "table" the table must be there: ConfigError, never a quiet switch to measured speed."""
    # deferred: torch; the sweep driver imports this module and needs no torch
    from raykd.method.importance import LEGACY_STATS_NAME, STATS_NAME, StructureStats
    from raykd.measure.latency import TABLE_NAME, LatencyTable
    from raykd.task.registry import load_task_plugin

    loaded = load_task_plugin(config.get("task")).load(teacher_dir, config["data"], seed=int(config.get("data_seed", 0)))
    stats_path = next((teacher_dir / n for n in (STATS_NAME, LEGACY_STATS_NAME) if (teacher_dir / n).is_file()), None)
    stats = StructureStats.load(stats_path) if stats_path is not None else None
    table_path = teacher_dir / TABLE_NAME
    table = None
    if config.get("speed_source") == "table":
        if not table_path.is_file():
            raise ConfigError(f"speed.source is table but the sweep's teacher has no {TABLE_NAME} ({teacher_dir.name}/): "
                              "its trials would time their own speed and mix measured with predicted figures on one "
                              "front; re-prepare the teacher, or set speed: {source: measured}")
        table = LatencyTable.load(table_path)
    return loaded, stats, table


def forecast_for(teacher: Any, stats: Any, chain_config: Any, table: Any, task: Any, example: Any,
                 threads: int | None) -> dict[str, Any]:
    """The chain's final forecast (`raykd.method.forecast`), priced by the table only where the
    table applies (measured under the threads, batch and workload the chain's measure uses)."""
    from raykd.method.forecast import forecast  # deferred: torch; the sweep driver imports this module and needs no torch
    from raykd.measure.latency import table_key
    from raykd.task_interface import resolve_workload

    device = next(teacher.parameters()).device
    batch = {k: v.to(device) for k, v in example.items()}
    key = table_key(teacher, batch, threads, resolve_workload(task, chain_config.latency_workload))
    return forecast(teacher, stats, chain_config, table=table if table is not None and table.matches(key) else None,
                    task=task, batch=batch)


def target_metrics(task: Any) -> dict[str, Any]:
    """`targets_<key>` of what the trial's students learn, where the task says
    (`target_record("train")`: the causal-LM task's trace targets, their pruning strength,
    rejected prunes and mean tokens); {} for other tasks."""
    record = getattr(task, "target_record", None)
    return {f"targets_{k}": v for k, v in (record("train") if callable(record) else {}).items()}


def trial_chain_config(chain: dict[str, Any]) -> ChainConfig:
    """A trial's chain config, on a Train worker. The worker process starts without the optional
    structure kinds the driver registered (`raykd.method.optional_kinds`): the settings the trial
    names (`hidden_p_max`) activate theirs here too, before the config, the shared statistics and
    the latency table are read."""
    activate_for_settings(chain)
    return ChainConfig.from_dict(chain)


def chain_worker(config: dict[str, Any]) -> None:
    """`train_loop_per_worker` of the trial's TorchTrainer."""
    import ray.train  # deferred: Ray Train and torch, inside the trial's worker only
    import torch

    from raykd.method.chain import STATE_NAME, Chain, round_dir
    from raykd.method.round_cost import make_measure

    ctx = ray.train.get_context()
    rank = ctx.get_world_rank()
    node_id = ray.get_runtime_context().get_node_id()
    chain_config = trial_chain_config(config["chain"])
    threads = int(config.get("threads_per_worker") or 0)
    if threads:
        torch.set_num_threads(threads)
    work = Path(tempfile.mkdtemp(prefix=f"raykd-chain-r{rank}-"))
    checkpoint = ray.train.get_checkpoint()
    restored_from = 0  # the round a restarted worker group (node lost, sweep resumed) continued after
    if checkpoint is not None:
        with checkpoint.as_directory() as d:
            state = json.loads((Path(d) / STATE_NAME).read_text())
            restored_from = int(state["round"])
            shutil.copytree(d, round_dir(work, restored_from))
    teacher_dir = download_dir(config["teacher_dir"], work / "teacher")
    loaded, stats, table = load_teacher_inputs(teacher_dir, config)
    task, teacher = loaded.task, loaded.model
    device = torch.device("cuda", torch.cuda.current_device()) if torch.cuda.is_available() and config.get("use_gpu") else torch.device("cpu")
    teacher.to(device)

    example = next(iter(task.batches("valid", chain_config.latency_batch)))
    if table is not None:  # one clear line before any training, not a front of mixed sources after it
        from raykd.measure.latency import table_key
        from raykd.method.round_cost import require_table
        from raykd.task_interface import resolve_workload

        require_table(table, table_key(teacher, {k: v.to(device) for k, v in example.items()}, threads or None,
                                       resolve_workload(task, chain_config.latency_workload)))
    told = forecast_for(teacher, stats, chain_config, table, task, example, threads or None)  # what the chain ends as
    told.update(target_metrics(task))

    def on_round(record: dict[str, Any], rdir: Path) -> None:
        metrics = flatten_record(record, chain_config.rounds)
        metrics.update(told)  # every round: successive halving ranks rungs on the final forecast
        metrics["rounds"] = chain_config.rounds
        metrics["restored_from_round"] = restored_from
        metrics["node_id"] = node_id  # where rank 0 ran this round
        if rank == 0:
            ray.train.report(metrics, checkpoint=ray.train.Checkpoint.from_directory(str(rdir)))
        else:
            ray.train.report(metrics)

    try:
        Chain(task, teacher, chain_config, loaded.io, work,
              make_measure(task, repeats=chain_config.latency_repeats, threads=threads or None, table=table,
                           workload=chain_config.latency_workload),
              teacher_stats=stats, teacher_metrics=config.get("teacher_metrics"), progress=False, on_round=on_round,
              log=lambda _m: None).run()
    finally:
        shutil.rmtree(work, ignore_errors=True)

"""A per-machine cache of latency tables, and when a cached one may be reused.

A table re-measured for every sweep moves with the machine's state (two default sweeps on this
box: dense 57.5 vs 51.3 ms, per-layer savings up to 25% apart), and so would every prediction,
and with them the sampler's next configurations. Once-for-All builds its lookup tables once per
device; raykd does the same: a table is cached per (machine, architecture, batch shape, workload,
threads, rounds, calibration shapes, and the registered kinds where they are not the built-in
ones) and reused by later sweeps, each of which keeps its own copy beside its teacher.

A cached table is checked before it is reused: the dense model is timed again (REUSE_CHECK_ROUNDS
calls) and compared with the table's dense median. Two quiet sweeps on one box timed it 12% apart
(57.5 vs 51.3 ms), so only a larger gap counts. Faster now by more than BUSIER_THEN: the table was
timed on a busier machine and is measured again (and replaced); slower now by more than
BUSIER_NOW: this machine is busy now, and the stored table, timed quietly, is kept.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
from pathlib import Path
from typing import Any

import torch
from torch import nn

from raykd.errors import ConfigError
from raykd.measure.latency.build import build_latency_table
from raykd.measure.latency.calibration import CALIBRATION_SHAPES, calibration_summary
from raykd.measure.latency.kinds import BUILTIN
from raykd.measure.latency.predictor import FORMAT, LatencyTable, table_key
from raykd.measure.latency.registry import latency_names
from raykd.measure.latency.timing import measure_latency
from raykd.task_interface import Batch, Task, resolve_workload

REUSE_CHECK_ROUNDS = 10
BUSIER_THEN = 0.8
BUSIER_NOW = 1.25


CACHE_ENV = "RAYKD_CACHE"


def cache_root() -> Path:
    """$RAYKD_CACHE/latency_tables, default ~/.cache/raykd/latency_tables."""
    base = os.environ.get(CACHE_ENV) or str(Path.home() / ".cache" / "raykd")
    return Path(base) / "latency_tables"


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_identity(device: torch.device) -> dict[str, Any]:
    """What names this machine's hardware for a table (host, CPU model, GPU model)."""
    ident = {"host": platform.node(), "cpu": _cpu_model(), "cpus": os.cpu_count()}
    if device.type == "cuda":
        ident["gpu"] = torch.cuda.get_device_name(device)
    return ident


def architecture_digest(model: nn.Module) -> str:
    """SHA-256 of every tensor's name, shape and dtype: the architecture, not the weights."""
    parts = [(name, list(t.shape), str(t.dtype)) for name, t in model.state_dict().items()]
    return hashlib.sha256(json.dumps(parts).encode()).hexdigest()


def cache_path(dense: nn.Module, batch: Batch, *, threads: int | None, workload: str, rounds: int, warmup: int,
               calibration: int = CALIBRATION_SHAPES) -> Path:
    device = next(dense.parameters()).device
    key = {"table": table_key(dense, batch, threads, workload), "machine": machine_identity(device),
           "architecture": architecture_digest(dense), "rounds": rounds, "warmup": warmup, "format": FORMAT,
           "calibration": calibration}
    if latency_names() != BUILTIN:  # a table of other kinds is another table (built-in only: the key format 3 always had)
        key["kinds"] = list(latency_names())
    return cache_root() / f"{hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:32]}.json"


def dense_now_ms(task: Task, dense: nn.Module, batch: Batch, *, threads: int | None, workload: str,
                 rounds: int = REUSE_CHECK_ROUNDS) -> float:
    """The dense model's median latency now, timed as a table times it (same batch, workload and
    threads), for comparing a cached table's `dense_ms` with this machine's present state."""
    device = next(dense.parameters()).device
    batch = {k: v.to(device) for k, v in batch.items()}
    dense = dense.eval()
    return measure_latency(lambda: task.run(dense, batch, workload), warmup=2, repeats=rounds, device=device,
                           num_threads=threads).median_ms


def reuse_verdict(then_ms: float, now_ms: float) -> str:
    """"rebuild" (the table was timed on a busier machine), "busy" (this machine is busier now:
    keep the table) or "ok", from the dense model's median latency then and now."""
    ratio = now_ms / then_ms
    return "rebuild" if ratio < BUSIER_THEN else "busy" if ratio > BUSIER_NOW else "ok"


def cached_latency_table(task: Task, dense: nn.Module, batch: Batch, *, rounds: int = 30, warmup: int = 3,
                         threads: int | None = None, workload: str = "default", use_cache: bool = True,
                         calibration: int = CALIBRATION_SHAPES, check_rounds: int = REUSE_CHECK_ROUNDS,
                         log: Any = print) -> LatencyTable:
    """The table this machine measured before for this architecture and batch, else a new one
    (then cached). An unreadable cache entry is measured again and replaced, saying so; so is one
    timed when the machine was busier than now (`reuse_verdict`; `check_rounds` 0: no check)."""
    workload = resolve_workload(task, workload)
    path = cache_path(dense, batch, threads=threads, workload=workload, rounds=rounds, warmup=warmup, calibration=calibration)
    if use_cache and path.is_file():
        try:
            table = LatencyTable.load(path)
        except ConfigError as exc:
            log(f"latency table: cache entry unusable, measuring again ({exc})")
        else:
            when = table.meta.get("date", "?")
            now = dense_now_ms(task, dense, batch, threads=threads, workload=workload, rounds=check_rounds) if check_rounds else None
            verdict = reuse_verdict(table.dense_ms, now) if now is not None else "ok"
            figures = "" if now is None else f" (dense model {table.dense_ms:.2f} ms then, {now:.2f} ms now)"
            if verdict == "rebuild":
                log(f"latency table: the one this machine measured on {when} was timed when it was busier{figures}: "
                    f"measuring again ({path})")
            else:
                log(f"latency table: reusing the one this machine measured on {when}{figures} ({path})")
                if verdict == "busy":
                    log(f"latency table: WARNING: this machine is {now / table.dense_ms - 1:.0%} slower than when the table "
                        "was timed: something else is running? The stored table is kept; measured figures "
                        "(measured_speedup, re-timing) are taken under the present load")
                log(calibration_summary(table))
                return table
    table = build_latency_table(task, dense, batch, rounds=rounds, warmup=warmup, threads=threads, workload=workload,
                                calibration=calibration)
    log(calibration_summary(table))
    if use_cache:
        path.parent.mkdir(parents=True, exist_ok=True)
        table.save(path)
    return table

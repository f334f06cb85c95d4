"""Per-round cost of a student against the unpruned reference, measured side by side.

Analytic: params (exact), FLOPs (the task's analytic count for its teacher-forced forward pass,
which cached decoding of the same length matches to first order), the FLOPs-ideal speedup.
Measured, in this process, interleaved with the reference on the same batch, on the config's
`latency_workload` (MWP default: encoding + cached constrained decoding): median latency and the
speedup ratio (`measured_speedup`), and peak memory (weights + peak activations of one call).
`speedup` is the latency table's prediction when a table is given (`raykd.measure.latency`:
deterministic per shape), else the measured ratio; `speedup_source` says which. A given table must
have been timed under this measure's conditions (workload, device, dtype, threads, batch shape,
torch): otherwise `require_table` raises, never a quiet switch to the measured ratio, which would
put predicted and measured figures on one front.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from raykd.errors import ConfigError
from raykd.measure import compare_latency, count_params, peak_memory
from raykd.measure.latency import table_key
from raykd.task_interface import Batch, Task, resolve_workload


class TableMismatchError(ConfigError):
    """A latency table asked for where it was timed under other conditions."""


def require_table(table: Any, key: dict[str, Any]) -> None:
    """TableMismatchError, naming what differs, unless `table` was timed under `key`
    (`raykd.measure.latency.table_key`)."""
    if table.matches(key):
        return
    differ = [f"{k} {table.key.get(k)!r} vs {key.get(k)!r}" for k in sorted(set(table.key) | set(key))
              if table.key.get(k) != key.get(k)]
    raise TableMismatchError(f"the latency table does not fit this timing (table vs here: {'; '.join(differ)}): its "
                             "predicted speed cannot stand beside measured ones; time under the table's conditions "
                             "or use measured speed (a sweep: speed: {source: measured})")


def weight_bytes(model: nn.Module) -> int:
    return sum(p.numel() * p.element_size() for p in model.parameters())


def make_measure(task: Task, *, repeats: int = 15, warmup: int = 3, threads: int | None = None,
                 table: Any = None, workload: str = "default"):
    """A `MeasureFn(reference, model, batch) -> dict` for the chain (`table`: a LatencyTable that
    must fit every call's conditions, else TableMismatchError; `workload`: which of the task's
    workloads is timed)."""
    workload = resolve_workload(task, workload)  # a bad name fails before any training

    def measure(reference: nn.Module, model: nn.Module, batch: Batch) -> dict[str, Any]:
        device = next(model.parameters()).device
        batch = {k: v.to(device) for k, v in batch.items()}
        if table is not None:  # before any timing: a table that does not fit fails at once
            require_table(table, table_key(reference, batch, threads, workload))
        reference.eval()
        model.eval()
        lat = compare_latency(
            {"reference": lambda: task.run(reference, batch, workload), "model": lambda: task.run(model, batch, workload)},
            warmup=warmup, rounds=repeats, device=device, num_threads=threads,
        )
        p_ref, p = count_params(reference), count_params(model)
        f_ref, f = task.flops(reference, batch), task.flops(model, batch)
        m_ref = weight_bytes(reference) + peak_memory(lambda: task.run(reference, batch, workload), device=device)
        m = weight_bytes(model) + peak_memory(lambda: task.run(model, batch, workload), device=device)
        measured = lat.speedup["model"]
        use_table = table is not None
        return {
            "params": p,
            "params_reference": p_ref,
            "params_reduction": 1 - p / p_ref,
            "flops": f,
            "flops_reference": f_ref,
            "flops_reduction": 1 - f / f_ref,
            "ideal_speedup": f_ref / f,
            "latency_ms": lat.stats["model"].median_ms,
            "latency_reference_ms": lat.stats["reference"].median_ms,
            "speedup": table.predicted_speedup_of(model) if use_table else measured,
            "measured_speedup": measured,
            "speedup_source": "latency table" if use_table else "measured",
            "memory_bytes": m,
            "memory_reference_bytes": m_ref,
            "memory_reduction": 1 - m / m_ref,
            "latency_batch": int(next(iter(batch.values())).shape[0]),
            "latency_workload": workload,
            "latency_device": str(device),
            "latency_threads": torch.get_num_threads() if device.type == "cpu" else None,
        }

    return measure

"""What a model costs: parameters, analytic FLOPs, measured latency and memory.

Analytic numbers (params, FLOPs, ideal speedup) are computed here from the model's structure;
measured numbers (latency, speedup, peak memory) are timed here, side by side in one process;
the per-device latency table that predicts a shape's speedup lives in `raykd.measure.latency`.
Needs only torch (and raykd.structures, the task interface and storage); never imports Ray,
datasets, optuna or the method, so it runs on a bare GPU box. See docs/structures.md#measure.
"""

from raykd.measure.flops import BlockFlops, FlopsReport, flops, ideal_speedup
from raykd.measure.latency import (
    LatencyComparison,
    LatencyStats,
    compare_latency,
    measure_latency,
    peak_memory,
)
from raykd.measure.params import count_params, param_breakdown

__all__ = [
    "BlockFlops",
    "FlopsReport",
    "LatencyComparison",
    "LatencyStats",
    "compare_latency",
    "count_params",
    "flops",
    "ideal_speedup",
    "measure_latency",
    "param_breakdown",
    "peak_memory",
]

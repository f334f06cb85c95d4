"""A 12-trial structured sweep written with the results store's own writer, for the readable view.

Each trial's statistics come from raykd.stats on real per-problem bits (1,100 valid
problems, the size of the default sweep's valid split): Wilson intervals, exact McNemar tests and,
where stats provides it, the paired difference. The front and its runners-up are re-timed; the
rest keep the latency table's prediction, as after a real sweep. Shapes are MiniLM-like (6 layers,
72 heads, 9,216 FFN channels in all).
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

from sweep_factory import make_row, meta

from raykd.results import update_pareto, write_sweep_meta, write_trial
from raykd.stats import accuracy_fields, accuracy_interval, pack_correct

N = 1100
TEACHER_CORRECT = 865  # 78.6%, like the default sweep's teacher
IDS = [f"3f9a1_{i:05d}" for i in range(12)]


def _flags(rng: random.Random, base: list[bool], lost: int, gained: int) -> list[bool]:
    right = [i for i, f in enumerate(base) if f]
    wrong = [i for i, f in enumerate(base) if not f]
    out = list(base)
    for i in rng.sample(right, lost):
        out[i] = False
    for i in rng.sample(wrong, gained):
        out[i] = True
    return out


def teacher_metrics() -> dict[str, Any]:
    flags = [i < TEACHER_CORRECT for i in range(N)]
    random.Random(7).shuffle(flags)
    k = accuracy_interval(flags)
    return {"accuracy": k["accuracy"], "n": N, "ci_low": k["ci_low"], "ci_high": k["ci_high"],
            "correct_bits": pack_correct(flags)}


def teacher() -> dict[str, Any]:
    valid = teacher_metrics()
    return {"dir": "TEACHER_DIR", "accuracy": valid["accuracy"], "test_accuracy": None, "params": 22_713_216,
            "flops": 3_000_000_000, "metrics": {"valid": valid}}


# (status, lost, gained, table speedup, layers, heads, ffn channels, params, re-timed?)
SPECS = [
    ("complete", 30, 19, 1.19, 6, 66, 8448, 21_100_000, True),
    ("complete", 52, 14, 1.31, 6, 60, 7680, 19_800_000, True),
    ("complete", 70, 10, 1.52, 5, 55, 6912, 17_200_000, True),
    ("complete", 96, 9, 1.78, 5, 48, 6144, 15_900_000, True),
    ("complete", 140, 12, 2.21, 4, 40, 5120, 13_300_000, True),
    ("complete", 190, 10, 2.64, 4, 36, 4096, 12_100_000, True),
    ("complete", 260, 8, 2.98, 3, 30, 3072, 10_200_000, True),
    ("complete", 75, 10, 1.40, 6, 54, 7424, 18_900_000, True),   # runner-up: dominated by the 1.52x point
    ("complete", 150, 9, 1.90, 5, 44, 5632, 15_100_000, False),
    ("complete", 230, 7, 2.40, 4, 34, 4352, 12_900_000, False),
    ("pruned", 300, 5, 2.70, 4, 32, 3840, 11_800_000, False),
    ("failed", 0, 0, None, None, None, None, None, False),
]


def rows() -> list[dict[str, Any]]:
    """The 12 trial rows, as the sweep writes them."""
    rng = random.Random(0)
    t_valid = teacher_metrics()
    from raykd.stats import unpack_correct

    t_flags = unpack_correct(t_valid["correct_bits"], N)
    out = []
    for i, (status, lost, gained, sp, layers, heads, ffn, params, retimed) in enumerate(SPECS):
        if status == "failed":
            row = make_row("twelve", IDS[i], "failed", None, None, None, finished=i)
            row["error"] = "RuntimeError: the worker died while training round 2 (simulated)"
            out.append(row)
            continue
        flags = _flags(rng, t_flags, lost, gained)
        metrics = {**accuracy_interval(flags), "correct_bits": pack_correct(flags)}
        row = make_row("twelve", IDS[i], status, metrics["accuracy"], sp, params, alpha=round(0.1 + 0.07 * i, 2),
                       n=round(0.6 + 0.2 * i, 2), tau=round(1.5 + 0.2 * i, 2), p_max=round(0.2 + 0.03 * i, 2),
                       importance="combined" if i % 2 else "random", finished=i)
        fields = accuracy_fields("accuracy", metrics, t_valid)
        fields = {k: v for k, v in fields.items() if not k.endswith("_correct") or k == "accuracy_correct"}
        row.update(fields)
        row.update({"speedup_source": "latency table", "measured_speedup": round(sp * 0.97, 3),
                    "layers_total": layers, "layers_original": 6, "heads_total": heads, "heads_original": 72,
                    "ffn_channels_total": ffn, "ffn_channels_original": 9216, "latency_workload": "decode"})
        if retimed:
            row.update({"retimed_speedup": round(sp * 1.03, 3), "retimed_low": round(sp * 0.99, 3),
                        "retimed_high": round(sp * 1.07, 3), "retimed_device": "cpu", "retimed_rounds": 30,
                        "retimed_sessions": 3, "retimed_workload": "decode"})
        out.append(row)
    return out


def make_twelve(root: Path, name: str = "twelve") -> Path:
    """The sweep directory root/name with the 12 rows above."""
    sweep = root / name
    write_sweep_meta(sweep, {**meta(name), "teacher": teacher()})
    for row in rows():
        write_trial(sweep, {**row, "sweep": name})
    update_pareto(sweep)
    return sweep

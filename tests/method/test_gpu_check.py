"""bench/gpu_check.py in quick mode on the CPU: every step of the GPU check runs (gloo standing in
for NCCL) and every check passes. About 20 s of CPU time (one thread; 150 s wall on a box shared by
eight jobs). What it proves on a GPU is its own run's business (docs/method.md, "What is unverified
on GPU")."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_gpu_check_quick_runs_every_step_on_cpu(tmp_path):
    report_path = tmp_path / "report.json"
    run = subprocess.run([sys.executable, str(ROOT / "bench" / "gpu_check.py"), "--device", "cpu", "--quick", "--json", str(report_path)],
                         capture_output=True, text=True, timeout=1200, cwd=tmp_path)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    assert run.stdout.rstrip().endswith("all checks passed")
    report = json.loads(report_path.read_text())
    distributed = report["distributed"]
    assert distributed["backend"] == "gloo" and distributed["collective_device"] == "cpu"
    assert distributed["helpers"] and all(v is True for v in distributed["helpers"].values())
    checks = {k: v for k, v in distributed["resume"].items() if isinstance(v, bool)}
    assert len(checks) == 6 and all(checks.values()), checks
    assert {(r["dtype"], r["workload"]) for r in report["bench"]} == {(d, w) for d in ("fp32", "bf16") for w in ("decode", "forward")}
    assert all(r["teacher_ms"] > 0 and r["student_memory_bytes"] > 0 for r in report["bench"])
    bf16 = {r["workload"]: r for r in report["bench"] if r["dtype"] == "bf16"}
    fp32 = {r["workload"]: r for r in report["bench"] if r["dtype"] == "fp32"}
    assert all(bf16[w]["teacher_memory_bytes"] < fp32[w]["teacher_memory_bytes"] for w in bf16)  # bf16 weights: half the bytes

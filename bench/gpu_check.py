"""GPU check: teacher -> prune -> one distillation round -> bench, on one device, no Ray.

What the sweep does on a GPU worker, in one process, printing every figure: (1) train a solver
teacher on the device (bf16 autocast on CUDA, fp32 master weights), (2) training throughput and
peak memory, fp32 against bf16, on the same steps, (3) one chain round (heads + FFN channels
pruned, distilled against the teacher, scored with n and a 95% interval and an exact McNemar test
against the teacher), (4) teacher and student timed side by side (interleaved rounds) on both
workloads at several batch sizes, with peak memory. Needs only torch and transformers (the device
machine has no Ray, no Optuna, no internet): the data default is synthetic, the teacher is built
from a config (`--shape minilm`: MiniLM-L6's encoder shape, 6 x 384, 12 heads, random init).

    python bench/gpu_check.py --device cuda --json bench/results/gpu_check_h200.json   # < 5 min on an H200
    python bench/gpu_check.py --device cpu --shape tiny --quick                        # what CI-sized CPUs can check
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

SHAPES = {  # encoder shapes built from a config (no download): BertConfig overrides
    "tiny": {},
    "minilm": {"hidden_size": 384, "num_hidden_layers": 6, "num_attention_heads": 12, "intermediate_size": 1536},
}


def build_solver(shape: str, problems: list, seed: int) -> tuple[Any, Any]:
    from raykd.task.encoders import build_tiny_encoder, train_tiny_tokenizer
    from raykd.task.model import DecoderConfig, SolverModel
    from raykd.task.teacher import TINY_DECODER
    from raykd.task.vocab import OutputVocab

    torch.manual_seed(seed)
    tokenizer = train_tiny_tokenizer(p.text for p in problems)
    encoder = build_tiny_encoder(tokenizer, **SHAPES[shape])
    decoder = {**TINY_DECODER, "num_heads": 8 if shape == "minilm" else TINY_DECODER["num_heads"]}
    model = SolverModel(encoder, OutputVocab.from_problems(problems), DecoderConfig(d_model=int(encoder.config.hidden_size), **decoder))
    return model, tokenizer


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def training_throughput(shape: str, splits: dict, device: torch.device, steps: int, batch: int) -> dict[str, Any]:
    """Examples/s and peak memory of `steps` optimiser steps from the same fresh solver, fp32
    and bf16 autocast (the order alternates so neither always runs on a warmer device)."""
    from raykd.task.mwp import MWPTask
    from raykd.training import FitConfig, fit

    out: dict[str, Any] = {}
    for precision in ("fp32", "bf16", "fp32", "bf16"):
        model, tokenizer = build_solver(shape, splits["train"], seed=0)
        model.to(device)
        task = MWPTask(tokenizer, model.vocab, {**splits, "valid": splits["valid"][:64]})
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        sync(device)
        t0 = time.perf_counter()
        result = fit(model, task, FitConfig(epochs=100, max_steps=steps, batch_size=batch, lr=1e-3, eval_every=10**9,
                                            mixed_precision=precision, seed=0), progress=False)
        sync(device)
        wall = time.perf_counter() - t0
        row = {"steps": result.steps, "wall_s": round(wall, 2), "examples_per_s": round(result.train_examples / wall, 1),
               "peak_train_memory_bytes": int(torch.cuda.max_memory_allocated(device)) if device.type == "cuda" else None}
        out.setdefault(precision, []).append(row)
    return {p: rows[-1] | {"first_run_examples_per_s": rows[0]["examples_per_s"]} for p, rows in out.items()}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--data", default="synthetic:4000:0")
    ap.add_argument("--shape", choices=sorted(SHAPES), default="minilm")
    ap.add_argument("--teacher-epochs", type=int, default=12)
    ap.add_argument("--quick", action="store_true", help="a few steps of everything (checks the script, not the GPU)")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args(argv)
    from raykd.data import load_splits
    from raykd.measure import compare_latency, count_params, peak_memory
    from raykd.method.chain import Chain
    from raykd.method.config import ChainConfig
    from raykd.method.measurement import make_measure, weight_bytes
    from raykd.task.io import SolverIO, load_solver, save_solver
    from raykd.task.mwp import MWPTask
    from raykd.training import FitConfig, fit

    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda but torch sees no CUDA device")
    t_start = time.perf_counter()
    report: dict[str, Any] = {
        "command": "python bench/gpu_check.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "date": time.strftime("%Y-%m-%d %H:%M"), "torch": torch.__version__, "python": platform.python_version(),
        "device": str(device), "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or "cpu",
        "bf16_supported": bool(device.type == "cuda" and torch.cuda.is_bf16_supported()), "threads": torch.get_num_threads(),
        "data": args.data, "shape": args.shape,
    }
    splits = load_splits(args.data)
    report["n"] = {k: len(v) for k, v in splits.items()}
    epochs, steps = (1, 20) if args.quick else (args.teacher_epochs, 200)

    # (1) the teacher, trained on the device with the training loop's default precision
    model, tokenizer = build_solver(args.shape, splits["train"], seed=0)
    model.to(device)
    task = MWPTask(tokenizer, model.vocab, splits)
    t0 = time.perf_counter()
    result = fit(model, task, FitConfig(epochs=epochs, batch_size=64, lr=1e-3, patience=4, seed=0), progress=False)
    sync(device)
    work = Path(tempfile.mkdtemp(prefix="raykd-gpu-check-"))
    save_solver(model.cpu(), tokenizer, work / "teacher")
    teacher = load_solver(work / "teacher")[0].to(device).eval()
    test = task.evaluate(teacher, "test")
    report["teacher"] = {"train_s": round(time.perf_counter() - t0, 1), "steps": result.steps, "stopped": result.stopped,
                         "precision": "bf16 autocast" if report["bf16_supported"] else "fp32",
                         "params": count_params(teacher), "valid": _acc(result.best_metrics), "test": _acc(test)}
    print(f"teacher: {report['teacher']}")

    # (2) training throughput, fp32 against bf16 autocast
    report["training"] = training_throughput(args.shape, splits, device, steps if not args.quick else 4, batch=64)
    print(f"training: {report['training']}")

    # (3) one chain round: heads and FFN channels pruned, distilled against the teacher
    cfg = ChainConfig(rounds=1, p_min=0.4, p_max=0.4, ffn_p_min=0.4, ffn_p_max=0.4, epochs_per_round=1 if args.quick else 4,
                      steps_per_round=4 if args.quick else 0, batch_size=64, lr=5e-4, calib_batches=4,
                      latency_batch=32, latency_repeats=5 if args.quick else 30, patience=2)
    t0 = time.perf_counter()
    chain = Chain(task, teacher, cfg, SolverIO(tokenizer), work / "chain", make_measure(task, repeats=cfg.latency_repeats),
                  teacher_metrics={"valid": task.evaluate(teacher, "valid"), "test": test}, progress=False, log=lambda _m: None)
    rec = chain.run().records[-1]
    keys = ("heads_total", "heads_original", "ffn_channels_total", "ffn_channels_original", "train_steps", "train_s", "accuracy",
            "accuracy_ci_low", "accuracy_ci_high", "accuracy_n", "accuracy_p_vs_teacher", "test_accuracy", "test_accuracy_ci_low",
            "test_accuracy_ci_high", "test_accuracy_p_vs_teacher", "speedup", "ideal_speedup", "params", "params_reference",
            "memory_bytes", "memory_reference_bytes", "latency_workload", "latency_device")
    report["chain_round"] = {k: rec.get(k) for k in keys} | {"round_s": round(time.perf_counter() - t0, 1)}
    print(f"chain round: {report['chain_round']}")

    # (4) teacher and student side by side, both workloads, several batch sizes, with memory
    student = load_solver(work / "chain" / "round-01")[0].to(device).eval()
    bench = []
    for workload in task.workloads:
        for batch_size in (1, 8, 64) if not args.quick else (8,):
            batch = {k: v.to(device) for k, v in next(iter(task.batches("test", batch_size))).items()}
            with torch.inference_mode():
                lat = compare_latency({"teacher": lambda: task.run(teacher, batch, workload), "student": lambda: task.run(student, batch, workload)},
                                      rounds=5 if args.quick else 50, device=device, reference="teacher")
            bench.append({"workload": workload, "batch": batch_size,
                          "teacher_ms": round(lat.stats["teacher"].median_ms, 3), "student_ms": round(lat.stats["student"].median_ms, 3),
                          "speedup": round(lat.speedup["student"], 3), "paired_speedup": round(lat.paired_speedup["student"], 3),
                          "teacher_memory_bytes": weight_bytes(teacher) + peak_memory(lambda: task.run(teacher, batch, workload), device=device),
                          "student_memory_bytes": weight_bytes(student) + peak_memory(lambda: task.run(student, batch, workload), device=device)})
            print(f"bench: {bench[-1]}")
    report["bench"] = bench
    report["wall_s"] = round(time.perf_counter() - t_start, 1)
    print(f"total {report['wall_s']} s")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=1, default=str))
    return report


def _acc(metrics: dict[str, Any]) -> dict[str, Any]:
    return {k: metrics.get(k) for k in ("accuracy", "ci_low", "ci_high", "n")}


if __name__ == "__main__":
    main()

"""GPU check: teacher -> prune -> distil -> bench, and the distributed path, on one device, no Ray.

What the sweep does on a GPU worker, in one process, printing every figure: (1) train a solver
teacher on the device (bf16 autocast on CUDA, fp32 master weights), (2) training throughput and
peak memory, fp32 against bf16, on the same steps, (3) one chain round (heads + FFN channels
pruned, distilled against the teacher, scored with n and a 95% interval and an exact McNemar test
against the teacher), (4) teacher and student timed side by side (interleaved rounds) on both
workloads at several batch sizes, with peak memory, in fp32 and in bf16 weights, (5) the training
loop and every `raykd.replicas` helper under a real torch.distributed group of one process with
Ray Train's backend for the device (NCCL on CUDA, gloo on CPU): init, one step, each collective,
one DDP step, (6) inside that group, a two-round chain interrupted after round 1 and resumed: the
resumed round trains and is timed on the device. Needs only torch and transformers (the device
machine has no Ray, no Optuna, no internet): the data default is synthetic, the teacher is built
from a config (`--shape minilm`: MiniLM-L6's encoder shape, 6 x 384, 12 heads, random init).
A failed check stops the script with the reason; a clean run ends with "all checks passed".

    python bench/gpu_check.py --device cuda --json bench/results/gpu_check_h100.json   # meant to take < 5 min
    python bench/gpu_check.py --device cpu --quick                                     # every step, a few rows (CI CPUs)

What it cannot show on one GPU: NCCL between two or more GPUs (docs/method.md, "What is unverified").
"""

from __future__ import annotations

import argparse
import copy
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
    ap.add_argument("--data", default=None, help="data spec (default synthetic:4000:0; --quick: synthetic:400:0)")
    ap.add_argument("--shape", choices=sorted(SHAPES), default=None, help="encoder shape (default minilm; --quick: tiny)")
    ap.add_argument("--teacher-epochs", type=int, default=12)
    ap.add_argument("--quick", action="store_true", help="a few steps of everything (checks the script, not the GPU)")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args(argv)
    args.data = args.data or ("synthetic:400:0" if args.quick else "synthetic:4000:0")
    args.shape = args.shape or ("tiny" if args.quick else "minilm")
    from raykd.data import load_splits
    from raykd.measure import count_params
    from raykd.method.chain import Chain
    from raykd.method.config import ChainConfig
    from raykd.method.round_cost import make_measure
    from raykd.task.io import SolverIO, load_solver, save_solver
    from raykd.task.mwp import MWPTask
    from raykd.training import FitConfig, fit

    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda but torch sees no CUDA device")
    if args.quick and device.type == "cpu":
        torch.set_num_threads(1)  # a script check on shared CPUs: oversubscribed threads only spin
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
    report["training"] = training_throughput(args.shape, splits, device, steps if not args.quick else 2, batch=64 if not args.quick else 16)
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

    # (4) teacher and student side by side, both workloads, several batch sizes, fp32 and bf16 weights, with memory
    student = load_solver(work / "chain" / "round-01")[0].to(device).eval()
    report["bench"] = side_by_side(task, teacher, student, device, batch_sizes=(8,) if args.quick else (1, 8, 64),
                                   rounds=5 if args.quick else 50)

    # (5) + (6) the training loop, every replicas helper and a resumed chain under torch.distributed
    report["distributed"] = distributed_check(args.shape, splits, task, teacher, tokenizer, device, work, quick=args.quick)
    failed = [f"{section}: {name}" for section in ("helpers", "resume") for name, ok in report["distributed"][section].items()
              if ok is False]
    report["wall_s"] = round(time.perf_counter() - t_start, 1)
    print(f"total {report['wall_s']} s")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=1, default=str))
    if failed:
        raise SystemExit("gpu_check: failed: " + "; ".join(failed))
    print("all checks passed")
    return report


def side_by_side(task: Any, teacher: Any, student: Any, device: torch.device, *, batch_sizes: tuple[int, ...],
                 rounds: int) -> list[dict[str, Any]]:
    """Teacher and student latency (interleaved rounds, median) and peak memory (weights + peak
    activations of one call) per workload and batch size, in fp32 and in bf16 weights (what a
    deployment would serve; the training loop's bf16 is autocast over fp32 weights instead)."""
    from raykd.measure import compare_latency, peak_memory
    from raykd.method.round_cost import weight_bytes

    rows = []
    for dtype in ("fp32", "bf16"):
        models = {"teacher": teacher, "student": student}
        if dtype == "bf16":
            models = {name: copy.deepcopy(m).to(torch.bfloat16).eval() for name, m in models.items()}
        for workload in task.workloads:
            for batch_size in batch_sizes:
                batch = {k: v.to(device) for k, v in next(iter(task.batches("test", batch_size))).items()}
                calls = {name: (lambda m=m: task.run(m, batch, workload)) for name, m in models.items()}
                with torch.inference_mode():
                    lat = compare_latency(calls, rounds=rounds, device=device, reference="teacher")
                rows.append({"dtype": dtype, "workload": workload, "batch": batch_size,
                             "teacher_ms": round(lat.stats["teacher"].median_ms, 3), "student_ms": round(lat.stats["student"].median_ms, 3),
                             "speedup": round(lat.speedup["student"], 3), "paired_speedup": round(lat.paired_speedup["student"], 3),
                             **{f"{name}_memory_bytes": weight_bytes(m) + peak_memory(calls[name], device=device)
                                for name, m in models.items()}})
                print(f"bench: {rows[-1]}")
    return rows


class _Interrupted(Exception):
    """Raised after a chain's round 1 was checkpointed: the trial's node is lost."""


def distributed_check(shape: str, splits: dict, task: Any, teacher: Any, tokenizer: Any, device: torch.device, work: Path,
                      *, quick: bool) -> dict[str, Any]:
    """The training loop and every `raykd.replicas` helper under a real process group of one rank
    with Ray Train's backend for the device (NCCL on CUDA, gloo elsewhere), the current CUDA device
    set as Ray Train sets it; then, in the same group, a two-round chain interrupted after round 1
    and resumed. Every helper runs its collective even on one rank. Each check is True or False."""
    import torch.distributed as dist

    from raykd import replicas
    from raykd.task.mwp import MWPTask
    from raykd.training import FitConfig, fit

    backend = "nccl" if device.type == "cuda" else "gloo"
    if device.type == "cuda":
        torch.cuda.set_device(_indexed(device))  # as Ray Train does in each worker
    out: dict[str, Any] = {"backend": backend}
    t0 = time.perf_counter()
    dist.init_process_group(backend, init_method=f"file://{work / 'rendezvous'}", rank=0, world_size=1)
    try:
        out["init_s"] = round(time.perf_counter() - t0, 2)
        out["collective_device"] = str(replicas.collective_device())
        model, model_tokenizer = build_solver(shape, splits["train"], seed=1)
        model.to(device)
        fit_task = MWPTask(model_tokenizer, model.vocab, {**splits, "valid": splits["valid"][:32]})
        t0 = time.perf_counter()
        result = fit(model, fit_task, FitConfig(epochs=1, max_steps=1, batch_size=16, lr=1e-3, eval_every=1, seed=0), progress=False)
        sync(device)
        out["fit_one_step_s"] = round(time.perf_counter() - t0, 2)
        before = {k: v.detach().clone() for k, v in model.state_dict().items()}
        replicas.broadcast_weights(model)  # weights on the device: broadcast in place
        cpu_copy = copy.deepcopy(model).cpu()  # CPU weights under NCCL travel through a CUDA copy
        replicas.broadcast_weights(cpu_copy)
        ddp = replicas.wrap_ddp(model)
        batch = {k: v.to(device) for k, v in next(iter(fit_task.batches("train", 16))).items()}
        loss = fit_task.outputs(ddp, batch).loss
        loss.backward()
        grads = [p.grad for p in model.parameters() if p.grad is not None]
        grads_ok = bool(grads) and all(bool(torch.isfinite(g).all()) for g in grads)
        replicas.barrier()
        out["helpers"] = {
            "collective_device_is_the_device": out["collective_device"] == str(_indexed(device)),
            "fit_one_step": result.steps == 1,
            "total": replicas.total(2.5) == 2.5,
            "from_main": replicas.from_main({"stop": "epochs", "x": [1.5]}) == {"stop": "epochs", "x": [1.5]},
            "broadcast_weights_in_place": all(torch.equal(before[k], v) for k, v in model.state_dict().items()),
            "broadcast_cpu_weights": all(p.device.type == "cpu" for p in cpu_copy.parameters())
                                     and all(torch.equal(before[k].cpu(), v) for k, v in cpu_copy.state_dict().items()),
            "replicas_identical": replicas.replicas_identical(model),
            "ddp_step_finite_grads": grads_ok and bool(torch.isfinite(loss)),
            "barrier": True,  # reached: the barrier returned
        }
        print(f"distributed ({backend}, one rank): {out}")
        out["resume"] = _resume_check(task, teacher, tokenizer, device, work, quick=quick)
        print(f"resume ({backend}): {out['resume']}")
    finally:
        dist.destroy_process_group()
    return out


def _resume_check(task: Any, teacher: Any, tokenizer: Any, device: torch.device, work: Path, *, quick: bool) -> dict[str, Any]:
    """A two-round chain whose run dies after round 1 is checkpointed, restarted on the same
    directory: it must continue from round 1 on the teacher's device, train round 2 there and time
    it there. Each check is True or False; the figures beside them are printed."""
    from raykd.method.chain import Chain
    from raykd.method.config import ChainConfig
    from raykd.method.round_cost import make_measure
    from raykd.task.io import SolverIO

    cfg = ChainConfig(rounds=2, p_min=0.2, p_max=0.4, ffn_p_min=0.2, ffn_p_max=0.4, epochs_per_round=1,
                      steps_per_round=2 if quick else 20, batch_size=32, lr=5e-4, calib_batches=2, latency_batch=8,
                      latency_repeats=3 if quick else 10, patience=2)
    metrics = {"valid": task.evaluate(teacher, "valid")} | ({"test": task.evaluate(teacher, "test")} if task.has_split("test") else {})

    def chain(on_round: Any, log: Any) -> Chain:
        return Chain(task, teacher, cfg, SolverIO(tokenizer), work / "resumed-chain", make_measure(task, repeats=cfg.latency_repeats),
                     teacher_metrics=metrics, progress=False, on_round=on_round, log=log)

    def die_after_round_1(record: dict[str, Any], _directory: Path) -> None:
        if record["round"] == 1:
            raise _Interrupted

    t0 = time.perf_counter()
    try:
        chain(die_after_round_1, lambda _m: None).run()
        interrupted = False
    except _Interrupted:
        interrupted = True
    logs: list[str] = []
    result = chain(None, logs.append).run()
    sync(device)
    last = result.records[-1]
    figures = {"wall_s": round(time.perf_counter() - t0, 1), "model_device": str(next(result.model.parameters()).device),
               "round2_latency_device": last.get("latency_device"), "round2_train_steps": last.get("train_steps"),
               "round2_accuracy": last.get("accuracy"), "round2_speedup": last.get("speedup")}
    checks = {"interrupted_after_round_1": interrupted, "resumed_from_round_1": result.resumed_from == 1,
              "said_so": logs == ["resuming chain after round 1"], "rounds_1_and_2": [r["round"] for r in result.records] == [1, 2],
              "model_on_the_device": figures["model_device"] == str(_indexed(device)),
              "round2_timed_on_the_device": figures["round2_latency_device"] == str(_indexed(device))}
    return checks | figures


def _indexed(device: torch.device) -> torch.device:
    """`cuda` as tensors report it (`cuda:0`, the current device)."""
    return torch.device("cuda", torch.cuda.current_device()) if device.type == "cuda" and device.index is None else device


def _acc(metrics: dict[str, Any]) -> dict[str, Any]:
    return {k: metrics.get(k) for k in ("accuracy", "ci_low", "ci_high", "n")}


if __name__ == "__main__":
    main()

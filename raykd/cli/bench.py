"""`raykd bench`: params, FLOPs and latency of a solver, and its speedup over a baseline."""

from __future__ import annotations

import argparse

from raykd.cli.common import add_json_flag, print_json, set_threads


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("bench", help="measure a solver's cost (and speedup over a baseline)", description=__doc__)
    p.add_argument("--model", required=True, help="solver directory")
    p.add_argument("--baseline", help="unpruned solver directory to compare against, side by side")
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--seq-len", type=int, default=128)
    p.add_argument("--decoder-len", type=int, default=16)
    p.add_argument("--repeats", type=int, default=20)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=0)
    add_json_flag(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import torch

    from raykd.errors import ConfigError
    from raykd.measure import compare_latency, count_params, peak_memory
    from raykd.method.measurement import weight_bytes
    from raykd.task.features import synthetic_batch
    from raykd.task.io import load_solver
    from raykd.task.mwp import MWPTask

    if min(args.batch, args.seq_len, args.decoder_len, args.repeats) < 1:
        raise ConfigError("--batch, --seq-len, --decoder-len and --repeats must be >= 1")
    set_threads(args.threads)
    model, tokenizer, _ = load_solver(args.model)
    models = {"model": model.to(args.device)}
    if args.baseline:
        models = {"baseline": load_solver(args.baseline)[0].to(args.device), **models}
    task = MWPTask(tokenizer, model.vocab, {})
    batch = {k: v.to(args.device) for k, v in synthetic_batch(model.vocab, tokenizer, args.batch, args.seq_len, args.decoder_len).items()}
    lat = compare_latency({n: (lambda m=m: task.run(m, batch)) for n, m in models.items()},
                          warmup=args.warmup, rounds=args.repeats, device=args.device,
                          reference="baseline" if args.baseline else "model")
    out = {
        "params": count_params(model),
        "flops": task.flops(model, batch),
        "latency_ms": lat.stats["model"].median_ms,
        "latency_p10_ms": lat.stats["model"].p10_ms,
        "latency_p90_ms": lat.stats["model"].p90_ms,
        "memory_bytes": weight_bytes(model) + peak_memory(lambda: task.run(model, batch), device=args.device),
        "batch": args.batch, "seq_len": args.seq_len, "decoder_len": args.decoder_len, "repeats": args.repeats,
        "device": args.device, "threads": torch.get_num_threads(),
    }
    if args.baseline:
        base = models["baseline"]
        out["baseline"] = {"params": count_params(base), "flops": task.flops(base, batch), "latency_ms": lat.stats["baseline"].median_ms}
        out["speedup"] = lat.speedup["model"]
        out["ideal_speedup"] = out["baseline"]["flops"] / out["flops"]
    if args.json:
        print_json(out)
        return 0
    print(f"batch {args.batch}, seq len {args.seq_len}, decoder len {args.decoder_len}, {args.device}, {out['threads']} threads, median of {args.repeats}")
    print(f"params     {out['params']:,}")
    print(f"FLOPs      {out['flops']:,} (analytic)")
    print(f"latency    {out['latency_ms']:.2f} ms (p10 {out['latency_p10_ms']:.2f}, p90 {out['latency_p90_ms']:.2f})")
    print(f"memory     {out['memory_bytes'] / 2**20:.1f} MiB (weights + peak activations)")
    if args.baseline:
        b = out["baseline"]
        print(f"baseline   params {b['params']:,}, FLOPs {b['flops']:,}, latency {b['latency_ms']:.2f} ms")
        print(f"speedup    {out['speedup']:.3f}x measured, {out['ideal_speedup']:.3f}x FLOPs-ideal "
              f"(efficiency {out['speedup'] / out['ideal_speedup']:.2f})")
    return 0

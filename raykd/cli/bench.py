"""`raykd bench`: params, FLOPs and latency of a solver, and its speedup over a baseline."""

from __future__ import annotations

import argparse

from raykd.cli.args import BATCH, POSITIVE, REPEATS, add_device, add_threads, int_at_least
from raykd.cli.common import add_json_flag, print_json, set_threads
from raykd.errors import ConfigError
from raykd.method.optional_kinds import activate_for_model_dir


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("bench", help="measure a solver's cost (and speedup over a baseline)", description=__doc__)
    p.add_argument("--model", required=True, help="solver directory")
    p.add_argument("--baseline", help="unpruned solver directory to compare against, side by side")
    p.add_argument("--batch", type=BATCH, default=8)
    p.add_argument("--seq-len", type=POSITIVE, default=128, help="input tokens (at most the encoder's positions)")
    p.add_argument("--decoder-len", type=POSITIVE, default=16, help="decoder tokens (at most the decoder's max_len)")
    p.add_argument("--repeats", type=REPEATS, default=20)
    p.add_argument("--workload", choices=["decode", "forward"], default="decode",
                   help="what is timed: decode = encoding + --decoder-len steps of cached constrained greedy decoding "
                        "(what eval/solve run; the default), forward = one teacher-forced pass")
    p.add_argument("--warmup", type=int_at_least(0, 10_000), default=3)
    add_device(p)
    add_threads(p)
    add_json_flag(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import torch  # deferred: torch (~3 s) at `raykd` start-up

    from raykd.measure import compare_latency, count_params, peak_memory
    from raykd.method.round_cost import weight_bytes
    from raykd.task.features import synthetic_batch
    from raykd.task.io import load_solver
    from raykd.task.mwp import MWPTask

    set_threads(args.threads)
    for d in (args.model, args.baseline):  # a model pruned in an optional kind (hidden_map) rebuilds with it
        if d:
            activate_for_model_dir(d)
    model, tokenizer, _ = load_solver(args.model)
    baseline = load_solver(args.baseline)[0] if args.baseline else None
    for name, m in (("--model", model), ("--baseline", baseline)):
        if m is None:
            continue
        positions = int(getattr(m.encoder.config, "max_position_embeddings", args.seq_len))
        if args.seq_len > positions:
            raise ConfigError(f"--seq-len {args.seq_len} exceeds the {positions} positions of the {name} encoder")
        if args.decoder_len > m.decoder_config.max_len:
            raise ConfigError(f"--decoder-len {args.decoder_len} exceeds the {name} decoder's max_len {m.decoder_config.max_len}")
    models = {"model": model.to(args.device)}
    if baseline is not None:
        models = {"baseline": baseline.to(args.device), **models}
    task = MWPTask(tokenizer, model.vocab, {})
    batch = {k: v.to(args.device) for k, v in synthetic_batch(model.vocab, tokenizer, args.batch, args.seq_len, args.decoder_len).items()}
    lat = compare_latency({n: (lambda m=m: task.run(m, batch, args.workload)) for n, m in models.items()},
                          warmup=args.warmup, rounds=args.repeats, device=args.device,
                          reference="baseline" if args.baseline else "model")
    out = {
        "workload": args.workload,
        "params": count_params(model),
        "flops": task.flops(model, batch),
        "latency_ms": lat.stats["model"].median_ms,
        "latency_p10_ms": lat.stats["model"].p10_ms,
        "latency_p90_ms": lat.stats["model"].p90_ms,
        "memory_bytes": weight_bytes(model) + peak_memory(lambda: task.run(model, batch, args.workload), device=args.device),
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
    print(f"workload {args.workload}, batch {args.batch}, seq len {args.seq_len}, decoder len {args.decoder_len}, {args.device}, "
          f"{out['threads']} threads, median of {args.repeats}")
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

"""How much of the FLOPs-ideal speedup does physical removal of a structure deliver?

A RoBERTa-base-shaped model (random weights, RobertaConfig defaults: 12 layers x 12 heads, hidden
768, FFN width 3072) with, per `--structure`: `heads` 10/20/30/50% of its 144 heads removed
(spread evenly over the layers, which heads within a layer drawn with a fixed seed); `ffn`
25/50/75% of every layer's FFN channels removed (which ones seeded); `layers` 2/4/6 of its 12
layers dropped (spread over the depth); batch 8, sequence 128. Each pruned model is timed side by side
with the unpruned one in this process, interleaved (rotating order each round), and
efficiency = measured speedup (ratio of medians) / ideal speedup (ratio of analytic FLOPs).

Needs only torch + transformers (no Ray):

    python bench/surgery_efficiency.py --device cpu --threads 2 --json results.json
    python bench/surgery_efficiency.py --structure ffn --ratios 0.25,0.5,0.75 --threads 1
    python bench/surgery_efficiency.py --structure layers --drop 2,4,6 --threads 1
"""

from __future__ import annotations

import argparse
import copy
import json
import platform
import random
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from raykd.structures import head_counts, prune_heads
from raykd.structures.ffn import ffn_widths, prune_ffn
from raykd.structures.layers import drop_layers, layer_counts
from raykd.measure import compare_latency, count_params, flops, ideal_speedup, param_breakdown, peak_memory


def spread_heads(layers: int, heads: int, n: int, seed: int) -> dict[int, list[int]]:
    """`n` heads to remove: as even as possible over layers; extra heads and head choice seeded."""
    rng = random.Random(seed)
    base, extra = divmod(n, layers)
    per_layer = [base] * layers
    for layer in rng.sample(range(layers), extra):
        per_layer[layer] += 1
    return {layer: sorted(rng.sample(range(heads), k)) for layer, k in enumerate(per_layer) if k}


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    ap.add_argument("--json", type=Path, help="write the results here")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--seq-len", type=int, default=128)
    ap.add_argument("--structure", default="heads", choices=["heads", "ffn", "layers"])
    ap.add_argument("--ratios", default=None, help="heads/ffn: fractions removed (default 0.1,0.2,0.3,0.5 / 0.25,0.5,0.75)")
    ap.add_argument("--drop", default="2,4,6", help="layers: how many layers to drop, each a model")
    ap.add_argument("--rounds", type=int, default=12, help="timed rounds (each model once per round)")
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--threads", type=int, default=2, help="torch.set_num_threads (CPU)")
    ap.add_argument("--attn-impl", default="sdpa", choices=["sdpa", "eager"])
    ap.add_argument("--dtype", default="float32", choices=["float32", "float16", "bfloat16"])
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)

    from transformers import RobertaConfig, RobertaModel

    if args.device == "cuda" and not torch.cuda.is_available():
        ap.error("--device cuda but CUDA is not available")
    torch.manual_seed(args.seed)
    dtype = getattr(torch, args.dtype)
    cfg = RobertaConfig(attn_implementation=args.attn_impl)
    base = RobertaModel(cfg).eval().to(device=args.device, dtype=dtype)
    layers, heads = cfg.num_hidden_layers, cfg.num_attention_heads
    total = layers * heads
    default_ratios = {"heads": "0.1,0.2,0.3,0.5", "ffn": "0.25,0.5,0.75"}.get(args.structure, "")
    ratios = [float(r) for r in (args.ratios or default_ratios).split(",") if r]
    width = cfg.intermediate_size
    rng = random.Random(args.seed)

    models = {"0%": base}
    if args.structure == "heads":
        for r in ratios:
            m = copy.deepcopy(base)
            prune_heads(m, {"encoder_self": spread_heads(layers, heads, int(r * total), args.seed)})
            models[f"{r:.0%}"] = m
    elif args.structure == "ffn":
        for r in ratios:
            m = copy.deepcopy(base)
            prune_ffn(m, {"encoder_ffn": {i: rng.sample(range(width), int(r * width)) for i in range(layers)}})
            models[f"{r:.0%}"] = m
    else:
        for n in (int(x) for x in args.drop.split(",")):
            m = copy.deepcopy(base)
            drop_layers(m, {"encoder_layers": [round((i + 0.5) * layers / n) for i in range(n)]})
            models[f"-{n} layers"] = m

    g = torch.Generator().manual_seed(args.seed)
    ids = torch.randint(3, cfg.vocab_size, (args.batch, args.seq_len), generator=g).to(args.device)
    mask = torch.ones_like(ids)
    fns = {name: (lambda m=m: m(input_ids=ids, attention_mask=mask)) for name, m in models.items()}

    t0 = time.time()
    cmp = compare_latency(fns, warmup=args.warmup, rounds=args.rounds, device=args.device,
                          num_threads=args.threads if args.device == "cpu" else None, reference="0%")
    elapsed = time.time() - t0

    ref_flops, ref_params = flops(base, args.batch, args.seq_len), count_params(base)
    rows = []
    for name, m in models.items():
        f = flops(m, args.batch, args.seq_len)
        st = cmp.stats[name]
        ideal = ideal_speedup(ref_flops, f)
        rows.append({
            "pruned": name,
            "structure": args.structure,
            "layers": layer_counts(m)["encoder_layers"],
            "ffn_widths": ffn_widths(m)["encoder_ffn"],
            "heads_removed": total - sum(head_counts(m)["encoder_self"]),
            "heads_per_layer": head_counts(m)["encoder_self"],
            "params": count_params(m),
            "params_drop_pct": 100 * (1 - count_params(m) / ref_params),
            "flops": f.total,
            "flops_drop_pct": 100 * (1 - f.total / ref_flops.total),
            "median_ms": st.median_ms,
            "p10_ms": st.p10_ms,
            "p90_ms": st.p90_ms,
            "measured_speedup": cmp.speedup[name],
            "paired_speedup": cmp.paired_speedup[name],
            "ideal_speedup": ideal,
            "efficiency": cmp.speedup[name] / ideal,
            "paired_efficiency": cmp.paired_speedup[name] / ideal,
            "peak_memory_bytes": peak_memory(fns[name], device=args.device),
        })

    parts = param_breakdown(base)
    result = {
        "bench": "surgery_efficiency",
        "command": " ".join(["python", "bench/surgery_efficiency.py", *(argv if argv is not None else sys.argv[1:])]),
        "device": args.device if args.device == "cpu" else torch.cuda.get_device_name(),
        "cpu": platform.processor() or platform.machine(),
        "threads": args.threads if args.device == "cpu" else None,
        "torch": torch.__version__,
        "batch": args.batch,
        "seq_len": args.seq_len,
        "attn_impl": args.attn_impl,
        "dtype": args.dtype,
        "rounds": args.rounds,
        "warmup": args.warmup,
        "timing_wall_s": elapsed,
        "unpruned": {"params": ref_params, "param_breakdown": parts, "flops": ref_flops.to_dict() | {"blocks": None}},
        "rows": rows,
    }

    print(f"RoBERTa-base shape, random weights, batch {args.batch} x seq {args.seq_len}, {args.device}"
          f"{f' ({args.threads} threads)' if args.device == 'cpu' else ''}, {args.attn_impl}, {args.dtype}, "
          f"{args.rounds} interleaved rounds")
    print("| pruned | heads | layers | FFN width | params↓ % | FLOPs↓ % | median ms | p10–p90 ms | speedup | paired | ideal "
          "| efficiency | paired eff. |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['pruned']} | {total - r['heads_removed']} | {r['layers']} | {r['ffn_widths'][0]} | {r['params_drop_pct']:.2f} | {r['flops_drop_pct']:.2f} "
              f"| {r['median_ms']:.1f} | {r['p10_ms']:.1f}–{r['p90_ms']:.1f} | {r['measured_speedup']:.3f} "
              f"| {r['paired_speedup']:.3f} | {r['ideal_speedup']:.3f} | {r['efficiency']:.3f} "
              f"| {r['paired_efficiency']:.3f} |")
    print("speedup = median(unpruned) / median(pruned); paired = median over rounds of the within-round ratio; "
          "efficiency = speedup / ideal (analytic FLOPs ratio)")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()

"""Surgery efficiency of hidden-size (embedding-channel) pruning: measured speedup / FLOPs-ideal.

Two shapes, random weights, configs built here (no download):

- `roberta`: RoBERTa-base (RobertaModel: 12 layers x 12 heads, hidden 768, FFN 3072, pooler);
- `smollm2`: SmolLM2-135M (LlamaForCausalLM: 30 layers, hidden 576, 9 query heads in 3 K/V groups
  of width 64, MLP 1536, vocabulary 49152, tied embeddings).

Each loses 25% and 50% of its hidden channels (which ones seeded; `raykd.structures.hidden`), and
the dense model and both pruned ones are timed side by side in this process, interleaved in
rotating order (`raykd.measure.compare_latency`), on one forward pass of --batch x --seq-len
tokens (the encoder's forward; the causal LM's prefill, logits at every position). FLOPs are
analytic (`raykd.measure.flops`: every Linear's actual shape, and the attention products, which
hidden pruning leaves alone because heads x head width is unchanged); efficiency = measured
speedup (ratio of medians) / ideal speedup (ratio of FLOPs), "paired" the median of the
within-round ratios.

Resumable: with --json, each shape's rows are written as soon as it is timed, and --resume skips
the shapes the file already has. torch + transformers only (no Ray):

    nice -n 10 python bench/hidden_surgery.py --json bench/results/hidden_surgery_cpu.json
    python bench/hidden_surgery.py --shapes smollm2 --rounds 12 --threads 2
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

from raykd.measure import compare_latency, count_params, flops
from raykd.structures.hidden import hidden_width, prune_hidden

SMOLLM2_135M = {"vocab_size": 49152, "hidden_size": 576, "intermediate_size": 1536, "num_hidden_layers": 30,
                "num_attention_heads": 9, "num_key_value_heads": 3, "head_dim": 64, "max_position_embeddings": 2048,
                "tie_word_embeddings": True, "rope_theta": 100000.0, "rms_norm_eps": 1e-5}
SHAPES = ("roberta", "smollm2")


def dense_model(shape: str, seed: int) -> torch.nn.Module:
    from transformers import LlamaConfig, LlamaForCausalLM, RobertaConfig, RobertaModel

    torch.manual_seed(seed)
    if shape == "roberta":
        return RobertaModel(RobertaConfig(attn_implementation="sdpa")).eval()
    return LlamaForCausalLM(LlamaConfig(**SMOLLM2_135M, attn_implementation="sdpa")).eval()


def model_flops(model: torch.nn.Module, shape: str, batch: int, seq: int) -> int:
    decoder = {"decoder_len": seq} if shape == "smollm2" else {}
    return flops(model, batch, seq, **decoder).total


def time_shape(shape: str, args: argparse.Namespace) -> list[dict]:
    dense = dense_model(shape, args.seed)
    width = hidden_width(dense)
    rng = random.Random(args.seed)
    models = {"dense": dense}
    for ratio in args.ratios:
        m = copy.deepcopy(dense)
        prune_hidden(m, sorted(rng.sample(range(width), width - round(ratio * width))))
        models[f"hidden -{ratio:.0%}"] = m
    vocab = dense.config.vocab_size
    ids = torch.randint(3, vocab, (args.batch, args.seq_len), generator=torch.Generator().manual_seed(1))
    mask = torch.ones_like(ids)
    fns = {name: (lambda m=m: m(input_ids=ids, attention_mask=mask)) for name, m in models.items()}
    t0 = time.perf_counter()
    cmp = compare_latency(fns, warmup=args.warmup, rounds=args.rounds, device="cpu", num_threads=args.threads,
                          reference="dense")
    wall = time.perf_counter() - t0
    base_flops, base_params = model_flops(dense, shape, args.batch, args.seq_len), count_params(dense)
    rows = []
    for name, m in models.items():
        f = model_flops(m, shape, args.batch, args.seq_len)
        ideal = base_flops / f
        st = cmp.stats[name]
        rows.append({"shape": shape, "variant": name, "hidden": hidden_width(m), "params": count_params(m),
                     "params_drop_pct": round(100 * (1 - count_params(m) / base_params), 2),
                     "gflops": round(f / 1e9, 2), "flops_drop_pct": round(100 * (1 - f / base_flops), 2),
                     "median_ms": round(st.median_ms, 1), "p10_ms": round(st.p10_ms, 1), "p90_ms": round(st.p90_ms, 1),
                     "ideal_speedup": round(ideal, 3), "measured_speedup": round(cmp.speedup[name], 3),
                     "paired_speedup": round(cmp.paired_speedup[name], 3),
                     "efficiency": round(cmp.speedup[name] / ideal, 3),
                     "paired_efficiency": round(cmp.paired_speedup[name] / ideal, 3), "timing_wall_s": round(wall, 1)})
    return rows


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--shapes", default=",".join(SHAPES), help=f"comma-separated, of {SHAPES}")
    ap.add_argument("--ratios", default="0.25,0.5", help="fractions of the hidden channels removed, one model each")
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--seq-len", type=int, default=128)
    ap.add_argument("--rounds", type=int, default=8, help="timed rounds (each model once per round)")
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--threads", type=int, default=1, help="torch.set_num_threads while timing")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", type=Path, help="write the results here (after each shape)")
    ap.add_argument("--resume", action="store_true", help="keep the shapes --json already has; time the others")
    args = ap.parse_args(argv)
    args.ratios = [float(r) for r in args.ratios.split(",") if r]
    shapes = [s for s in args.shapes.split(",") if s]
    if not shapes or set(shapes) - set(SHAPES) or not all(0 < r < 1 for r in args.ratios):
        ap.error(f"--shapes must name some of {SHAPES} and --ratios lie in (0, 1)")
    result = {"bench": "hidden_surgery", "command": " ".join(["python", "bench/hidden_surgery.py", *(argv if argv is not None else sys.argv[1:])]),
              "cpu": platform.processor() or platform.machine(), "torch": torch.__version__, "threads": args.threads,
              "batch": args.batch, "seq_len": args.seq_len, "rounds": args.rounds, "warmup": args.warmup, "rows": []}
    if args.resume and args.json and args.json.is_file():
        result["rows"] = json.loads(args.json.read_text())["rows"]
    done = {r["shape"] for r in result["rows"]}
    for shape in shapes:
        if shape in done:
            print(f"{shape}: kept from {args.json}", flush=True)
            continue
        print(f"{shape}: timing dense + {len(args.ratios)} pruned, {args.rounds} interleaved rounds ...", flush=True)
        result["rows"] += time_shape(shape, args)
        if args.json:
            args.json.parent.mkdir(parents=True, exist_ok=True)
            args.json.write_text(json.dumps(result, indent=1))
    print(f"\nbatch {args.batch} x seq {args.seq_len}, CPU {args.threads} thread(s), fp32, SDPA, {args.rounds} rounds")
    print("| shape | variant | hidden | params↓ % | FLOPs↓ % | median ms | p10–p90 ms | ideal | speedup | paired | efficiency | paired eff. |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in result["rows"]:
        if r["shape"] in shapes:
            print(f"| {r['shape']} | {r['variant']} | {r['hidden']} | {r['params_drop_pct']:.2f} | {r['flops_drop_pct']:.2f} "
                  f"| {r['median_ms']:.0f} | {r['p10_ms']:.0f}–{r['p90_ms']:.0f} | {r['ideal_speedup']:.3f} "
                  f"| {r['measured_speedup']:.3f} | {r['paired_speedup']:.3f} | {r['efficiency']:.3f} | {r['paired_efficiency']:.3f} |")
    print("speedup = median(dense) / median(pruned); paired = median over rounds of the within-round ratio; "
          "efficiency = speedup / ideal (analytic FLOPs ratio)")
    return result


if __name__ == "__main__":
    main()

"""Surgery efficiency on a grouped-query decoder-only LLM: SmolLM2-135M's shape, random weights.

SmolLM2-135M (LlamaForCausalLM: 30 layers, hidden 576, 9 query heads in 3 K/V groups of head_dim
64, MLP width 1536, vocabulary 49152, tied embeddings) is built from its config with random
weights (no download) and pruned physically, per variant, in every layer:

- query heads within groups: 1 or 2 of the 3 heads of every K/V group (9 -> 6, 9 -> 3);
- whole K/V groups: 1 or 2 of the 3 groups with their query heads (9 -> 6, 9 -> 3 query heads);
- MLP channels: 25% and 50% of every layer's 1536 (which ones seeded);
- layers: 6 and 10 of 30 dropped (spread over the depth).

Workload: greedy generation with the KV cache (`generate`, `min_new_tokens = max_new_tokens`, so
every variant generates the same number of tokens) of --new tokens after a --prompt-token prompt,
batch --batch. Every variant is timed side by side with the dense model in this process,
interleaved in rotating order (`raykd.measure.compare_latency`), and efficiency = measured speedup
(ratio of medians) / FLOPs-ideal speedup. FLOPs are analytic for the same generation: 2 x the
weights of every Linear (lm_head included) per processed token, plus the attention scores and
weighted sums (2 x 2 x heads x head_dim per key) over the prompt (causal) and each decoding step.

Needs torch + transformers only (no Ray, no download; runs on a GPU machine too):

    python bench/gqa_surgery.py --device cpu --threads 2 --json bench/results/gqa_surgery_smollm2_cpu.json
    python bench/gqa_surgery.py --device cuda --batch 16 --rounds 20 --json gqa_surgery_smollm2_gpu.json
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

from raykd.measure import compare_latency  # noqa: E402
from raykd.structures import drop_layers, prune_ffn, prune_heads  # noqa: E402
from raykd.structures.heads import blocks_by_kind  # noqa: E402

SMOLLM2_135M = dict(vocab_size=49152, hidden_size=576, intermediate_size=1536, num_hidden_layers=30,
                    num_attention_heads=9, num_key_value_heads=3, head_dim=64, max_position_embeddings=2048,
                    tie_word_embeddings=True, rope_theta=100000.0, rms_norm_eps=1e-5)


def dense_model(seed: int) -> torch.nn.Module:
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    return LlamaForCausalLM(LlamaConfig(**SMOLLM2_135M)).eval()


def variants(seed: int) -> dict[str, tuple[str, callable]]:
    """name -> (what was removed, how)."""
    rng = random.Random(seed)
    layers, width = SMOLLM2_135M["num_hidden_layers"], SMOLLM2_135M["intermediate_size"]
    g = SMOLLM2_135M["num_attention_heads"] // SMOLLM2_135M["num_key_value_heads"]

    def within(k: int):  # the last k heads of every group, every layer
        heads = [grp * g + j for grp in range(3) for j in range(g - k, g)]
        return lambda m: prune_heads(m, {"decoder_self": {i: heads for i in range(layers)}})

    def groups(k: int):  # the last k groups, every layer
        heads = [grp * g + j for grp in range(3 - k, 3) for j in range(g)]
        return lambda m: prune_heads(m, {"decoder_self": {i: heads for i in range(layers)}})

    def ffn(ratio: float):
        chosen = {i: sorted(rng.sample(range(width), int(ratio * width))) for i in range(layers)}
        return lambda m: prune_ffn(m, {"decoder_ffn": chosen})

    def depth(n: int):
        drop = sorted({round((i + 0.5) * layers / n) for i in range(n)})
        return lambda m: drop_layers(m, {"decoder_layers": drop})

    return {
        "heads-within-groups 9->6": ("query heads: 1 of 3 per K/V group, every layer", within(1)),
        "heads-within-groups 9->3": ("query heads: 2 of 3 per K/V group, every layer", within(2)),
        "kv-groups 3->2": ("1 of 3 K/V groups (3 query heads + its K/V head), every layer", groups(1)),
        "kv-groups 3->1": ("2 of 3 K/V groups, every layer", groups(2)),
        "ffn 25%": ("25% of every MLP's 1536 channels", ffn(0.25)),
        "ffn 50%": ("50% of every MLP's 1536 channels", ffn(0.5)),
        "layers 6/30": ("6 of 30 layers dropped", depth(6)),
        "layers 10/30": ("10 of 30 layers dropped", depth(10)),
    }


def generation_flops(model: torch.nn.Module, batch: int, prompt: int, new: int) -> int:
    """Analytic FLOPs of generating `new` tokens after `prompt` with a KV cache."""
    linear = sum(m.weight.numel() for m in model.modules() if isinstance(m, torch.nn.Linear))
    tokens = prompt + new - 1  # the prompt, then one token per step after the first
    attention = 0
    for block in blocks_by_kind(model)["decoder_self"]:
        width = block.num_heads * block.head_dim
        keys = prompt * (prompt + 1) // 2 + sum(prompt + s for s in range(1, new))  # causal prefill + each step
        attention += 2 * 2 * width * keys
    return batch * (2 * linear * tokens + attention)


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=0, help="CPU threads (0: torch's default)")
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--prompt", type=int, default=32, help="prompt tokens")
    ap.add_argument("--new", type=int, default=16, help="generated tokens")
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    dense = dense_model(args.seed).to(device)
    ids = torch.randint(0, SMOLLM2_135M["vocab_size"], (args.batch, args.prompt), generator=torch.Generator().manual_seed(1)).to(device)
    mask = torch.ones_like(ids)
    models, about = {"dense": dense}, {"dense": "SmolLM2-135M shape, random weights"}
    for name, (what, change) in variants(args.seed).items():
        m = copy.deepcopy(dense)
        change(m)
        models[name], about[name] = m, what

    def generate(m):
        return lambda: m.generate(input_ids=ids, attention_mask=mask, max_new_tokens=args.new, min_new_tokens=args.new,
                                  do_sample=False, pad_token_id=0)

    t0 = time.perf_counter()
    comparison = compare_latency({n: generate(m) for n, m in models.items()}, warmup=args.warmup, rounds=args.rounds,
                                 device=device, num_threads=args.threads or None)
    wall = time.perf_counter() - t0
    base_flops = generation_flops(dense, args.batch, args.prompt, args.new)
    rows = []
    for name, m in models.items():
        f = generation_flops(m, args.batch, args.prompt, args.new)
        ideal = base_flops / f
        measured = comparison.speedup[name]
        stats = comparison.stats[name]
        rows.append({"variant": name, "removed": about[name], "params": sum(p.numel() for p in m.parameters()),
                     "gflops": round(f / 1e9, 3), "ideal_speedup": round(ideal, 3), "measured_speedup": round(measured, 3),
                     "paired_speedup": round(comparison.paired_speedup.get(name, measured), 3),
                     "efficiency": round(measured / ideal, 3), "median_ms": round(stats.median_ms, 2),
                     "p10_ms": round(stats.p10_ms, 2), "p90_ms": round(stats.p90_ms, 2)})
    result = {"bench": "gqa_surgery", "shape": "SmolLM2-135M (random weights)", "device": str(device),
              "threads": torch.get_num_threads(), "batch": args.batch, "prompt": args.prompt, "new_tokens": args.new,
              "rounds": args.rounds, "order": comparison.order, "wall_s": round(wall, 1), "torch": torch.__version__,
              "machine": platform.processor() or platform.machine(), "rows": rows}
    print(f"{'variant':26} {'params':>11} {'GFLOPs':>8} {'ideal':>6} {'measured':>9} {'eff.':>5}  median ms [p10, p90]")
    for r in rows:
        print(f"{r['variant']:26} {r['params']:>11,} {r['gflops']:>8} {r['ideal_speedup']:>6} {r['measured_speedup']:>9} "
              f"{r['efficiency']:>5}  {r['median_ms']} [{r['p10_ms']}, {r['p90_ms']}]")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=1))
    return result


if __name__ == "__main__":
    main()

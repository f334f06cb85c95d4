"""How well does the latency table predict a pruned model's speedup?

Loads a teacher solver (`--teacher DIR`, e.g. a MiniLM ASDiv-A teacher; default: a tiny teacher
trained here on synthetic:800 for a few steps), builds the latency table on a batch of its valid
split exactly as a sweep does (`build_latency_table`), then draws `--models` random pruned shapes
(every layer of every attention kind keeps a seeded random number of heads, at one of several
overall pruning levels) and times all of them together with the dense teacher in ONE interleaved
comparison (`compare_latency`: round-robin, rotating order, same batch, `--rounds` rounds). Per
model: predicted speedup (table) vs measured speedup (ratio of medians); the summary is the median
and max absolute relative error |predicted / measured - 1|.

Needs only torch + transformers (no Ray):

    python bench/latency_predictor.py --threads 2 --json bench/results/latency_predictor_tiny.json
    python bench/latency_predictor.py --teacher runs/asdiv-teacher --data ../shared/data/asdiv-a --threads 2
    python bench/latency_predictor.py --structures all --threads 1   # heads + FFN widths + dropped layers
    python bench/latency_predictor.py --teacher runs/asdiv-teacher --data ../shared/data/asdiv-a \
        --chain runs/chain-all --chain runs/chain-structured     # a chain's own round models, not random shapes
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import platform
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from raykd.data import load_splits
from raykd.structures import drop_layers, ffn_widths, head_counts, layer_counts, prune_ffn, prune_heads, structure_counts
from raykd.measure import compare_latency
from raykd.measure.latency import build_latency_table
from raykd.task.io import load_solver
from raykd.task.mwp import MWPTask


def random_shapes(counts: dict[str, list[int]], n: int, seed: int) -> list[dict[str, dict[int, list[int]]]]:
    """`n` removal specs: overall level drawn from 10-70% of heads, per layer a random share around it."""
    rng = random.Random(seed)
    specs = []
    for _ in range(n):
        level = rng.uniform(0.1, 0.7)
        spec: dict[str, dict[int, list[int]]] = {}
        for kind, per_layer in counts.items():
            spec[kind] = {}
            for layer, h in enumerate(per_layer):
                remove = min(h, max(0, round(rng.gauss(level, 0.2) * h)))
                if remove:
                    spec[kind][layer] = sorted(rng.sample(range(h), remove))
        specs.append(spec)
    return specs


def prune_ffn_and_layers(model: torch.nn.Module, rng: random.Random) -> None:
    """FFN: per layer a random share removed around a drawn level (0-75%); layers: each stack
    drops a random number of its layers (0 to half), at random positions."""
    level = rng.uniform(0.0, 0.75)
    spec = {}
    for kind, widths in ffn_widths(model).items():
        spec[kind] = {}
        for layer, w in enumerate(widths):
            remove = min(w - 1, max(0, round(rng.gauss(level, 0.15) * w)))
            if remove:
                spec[kind][layer] = sorted(rng.sample(range(w), remove))
    prune_ffn(model, spec)
    drop = {stack: sorted(rng.sample(range(n), rng.randint(0, n // 2))) for stack, n in layer_counts(model).items() if n > 1}
    drop_layers(model, {k: v for k, v in drop.items() if v})


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--teacher", type=Path, help="teacher solver directory (default: train a tiny one here)")
    ap.add_argument("--encoder", help="instead of --teacher: an untrained solver with this pretrained encoder "
                    "(e.g. minilm); latency depends on shapes, not on weight values")
    ap.add_argument("--data", default="synthetic:800", help="data spec whose valid split gives the timing batch")
    ap.add_argument("--batch", type=int, default=8, help="latency batch (the chain's latency_batch)")
    ap.add_argument("--models", type=int, default=16)
    ap.add_argument("--table-rounds", type=int, default=60)
    ap.add_argument("--rounds", type=int, default=60, help="timed rounds of the side-by-side check")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--workload", choices=["decode", "forward"], default="decode",
                    help="what is timed (decode: encoding + cached constrained decoding, what eval/solve run)")
    ap.add_argument("--device", default="cpu", help="cpu or cuda (no Ray needed, runs on a bare GPU box)")
    ap.add_argument("--structures", choices=["heads", "all"], default="heads",
                    help="what the random shapes prune: heads only, or heads + FFN channels + whole layers")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--calibration", type=int, default=8, help="mixed shapes the table is fitted to (0: additive)")
    ap.add_argument("--chain", type=Path, action="append", default=[],
                    help="a chain directory of --teacher: check its round-NN models instead of random shapes (repeatable)")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args(argv)
    if args.chain and args.teacher is None:
        ap.error("--chain needs --teacher: the teacher the chain was pruned from")
    torch.set_num_threads(args.threads)
    splits = load_splits(args.data, seed=0)
    teacher_dir = args.teacher
    if teacher_dir is None and args.encoder:
        from raykd.task.io import save_solver
        from raykd.task.teacher import SolverSpec, build_solver_from_spec

        model, tokenizer = build_solver_from_spec(SolverSpec(encoder=args.encoder), splits["train"], seed=0)
        teacher_dir = save_solver(model, tokenizer, Path(tempfile.mkdtemp(prefix="raykd-bench-")) / "untrained")
    elif teacher_dir is None:
        from raykd.task.teacher import SolverSpec, train_teacher
        from raykd.training import FitConfig

        teacher_dir = Path(tempfile.mkdtemp(prefix="raykd-bench-")) / "tiny"
        train_teacher(splits, SolverSpec(preset="tiny"), FitConfig(epochs=1, max_steps=20, seed=0), teacher_dir, progress=False)
    teacher, tok, _ = load_solver(teacher_dir)
    teacher = teacher.to(args.device).eval()
    task = MWPTask(tok, teacher.vocab, splits)
    batch = {k: v.to(args.device) for k, v in next(iter(task.batches("valid", args.batch))).items()}
    t0 = time.perf_counter()
    table = build_latency_table(task, teacher, batch, rounds=args.table_rounds, threads=args.threads,
                                workload=args.workload, calibration=args.calibration)
    table_s = time.perf_counter() - t0
    models = {"dense": teacher, "dense_copy": load_solver(teacher_dir)[0].to(args.device).eval()}  # control: same shape, fresh copy
    if args.chain:
        for chain in args.chain:
            for rdir in sorted(chain.glob("round-*")):
                if (rdir / "state.json").is_file():
                    models[f"{chain.name}/{rdir.name}"] = load_solver(rdir)[0].to(args.device).eval()
        if len(models) == 2:
            ap.error(f"no round-NN models in {', '.join(map(str, args.chain))}")
    rng = random.Random(args.seed + 1)
    for i, spec in enumerate([] if args.chain else random_shapes(head_counts(teacher), args.models, args.seed)):
        m = load_solver(teacher_dir)[0]
        prune_heads(m, spec)
        if args.structures == "all":
            prune_ffn_and_layers(m, rng)
        models[f"m{i:02d}"] = m.to(args.device).eval()
    t0 = time.perf_counter()
    lat = compare_latency({k: (lambda m=m: task.run(m, batch, args.workload)) for k, m in models.items()},
                          rounds=args.rounds, device=args.device, num_threads=args.threads, reference="dense")
    check_s = time.perf_counter() - t0
    additive = dataclasses.replace(table, scale={})  # the same table without its fitted factors
    rows = []
    for name, m in models.items():
        if name in ("dense", "dense_copy"):
            continue
        predicted, measured = table.predicted_speedup_of(m), lat.speedup[name]
        rows.append({"model": name, "heads": {k: sum(v) for k, v in head_counts(m).items()}, "structures": structure_counts(m),
                     "predicted": round(predicted, 4), "additive": round(additive.predicted_speedup_of(m), 4),
                     "components_ms": table.savings(head_counts(m), ffn_widths(m), layer_counts(m)),
                     "measured": round(measured, 4),
                     "paired_measured": round(lat.paired_speedup[name], 4),
                     "rel_error": round(abs(predicted / measured - 1), 4)})
    errors = [r["rel_error"] for r in rows]
    order_ok = sum(1 for a in rows for b in rows if a is not b and (a["predicted"] > b["predicted"]) == (a["measured"] > b["measured"]))
    out = {
        "what": ("latency-table predicted speedup vs side-by-side measured speedup (ratio of medians) of "
                 + (f"the round models of chain(s) {', '.join(map(str, args.chain))}" if args.chain else "random pruned shapes")),
        "command": "python bench/latency_predictor.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "teacher": str(args.teacher or (f"untrained solver, encoder {args.encoder}" if args.encoder
                                         else "tiny preset, 20 steps on synthetic:800")), "data": args.data,
        "heads": {k: v for k, v in head_counts(teacher).items()},
        "batch_shape": {k: list(v.shape) for k, v in batch.items() if k in ("input_ids", "decoder_input")},
        "structures": args.structures, "workload": args.workload, "device": args.device, "threads": args.threads, "table_rounds": args.table_rounds, "check_rounds": args.rounds,
        "table_s": round(table_s, 1), "check_s": round(check_s, 1), "models": len(rows),
        "median_abs_rel_error": round(statistics.median(errors), 4), "max_abs_rel_error": round(max(errors), 4),
        "pairwise_order_agreement": round(order_ok / max(1, len(rows) * (len(rows) - 1)), 4),
        "control_measured_speedup": round(lat.speedup["dense_copy"], 4),
        "control_paired_speedup": round(lat.paired_speedup["dense_copy"], 4),
        "median_abs_rel_error_paired": round(statistics.median(abs(r["predicted"] / r["paired_measured"] - 1) for r in rows), 4),
        "table_scale": table.scale, "table_calibration": {k: v for k, v in table.meta.get("calibration", {}).items() if k != "rows"},
        "additive_median_abs_rel_error": round(statistics.median(abs(r["additive"] / r["measured"] - 1) for r in rows), 4),
        "additive_max_abs_rel_error": round(max(abs(r["additive"] / r["measured"] - 1) for r in rows), 4),
        "over_predicted": sum(1 for r in rows if r["predicted"] > r["measured"]),
        "dense_ms": round(table.dense_ms, 3), "machine": platform.platform(), "torch": torch.__version__,
        "date": time.strftime("%Y-%m-%d %H:%M"), "rows": rows, "table": table.to_dict(),
    }
    print(json.dumps({k: v for k, v in out.items() if k != "rows"}, indent=1))
    for r in rows:
        print(f"{r['model']}  heads {r['heads']}  predicted {r['predicted']:.3f}x  (additive {r['additive']:.3f}x)  measured {r['measured']:.3f}x  "
              f"error {100 * r['rel_error']:.1f}%")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(out, indent=1))
    return out


if __name__ == "__main__":
    main()

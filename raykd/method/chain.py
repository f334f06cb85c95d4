"""The recursive prune -> distill chain (Algorithm 2), resumable by round.

for r in 1..R:  score the current teacher's heads -> prune a copy to p_r (Eq. 5, cumulative) ->
                train the student against the teacher (task + distillation loss, early stopping)
                -> measure it -> checkpoint -> the student becomes the teacher.

Pure PyTorch over the `Task` interface and a `ModelIO` (how to save/load the task's models), so it
runs in a notebook as well as inside a Ray Train worker. A checkpoint is a directory per round
holding the model and `state.json` (written last, atomically): a chain restarted on the same
directory continues after the last complete round, and a finished chain just returns its records.
"""

from __future__ import annotations

import copy
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Protocol

import torch
from torch import nn

from raykd.structures import capture_attention, head_counts, prune_heads, total_heads
from raykd.errors import ConfigError
from raykd.method.config import ChainConfig
from raykd.method.distill import (
    CapturedAttention,
    LossWeights,
    attention_mse,
    response_kl,
    total_loss,
)
from raykd.method.importance import (
    HeadStats,
    collect_head_stats,
    random_scores,
    scores,
    taylor_scores,
)
from raykd.method.pruner import removal_counts, select_heads
from raykd.method.schedule import pruning_ratio
from raykd.results.stats import accuracy_fields
from raykd.resume import check_resume, model_digest
from raykd.storage import write_bytes_atomic
from raykd.task.base import Batch, Task
from raykd.training import FitConfig, fit

STATE_NAME = "state.json"


class ModelIO(Protocol):
    """How a task's models are written to and read from a directory."""

    def save(self, model: nn.Module, directory: Path, extra: dict[str, Any]) -> None: ...

    def load(self, directory: Path) -> nn.Module: ...


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


def _captured(cap: Any, masks: dict[str, torch.Tensor]) -> dict[tuple[str, int], CapturedAttention]:
    out = {}
    for block in cap.blocks:
        seen = cap.calls.get((block.kind, block.layer))
        if seen:
            out[(block.kind, block.layer)] = CapturedAttention(seen[-1], block.head_ids, masks[block.kind])
    return out


def distillation_loss(teacher: nn.Module, task: Task, config: ChainConfig) -> Callable[[nn.Module, Batch], tuple[torch.Tensor, dict[str, float]]]:
    """L = lambda1 * (tau^2 KL + attention MSE) + lambda2 * task loss, teacher frozen."""
    weights = LossWeights(config.lambda1, config.lambda2, config.tau, config.distill_response, config.distill_feature)
    teacher.eval()
    for p in teacher.parameters():
        p.requires_grad_(False)
    need_teacher = config.lambda1 > 0 and (config.distill_response or config.distill_feature)
    need_maps = config.lambda1 > 0 and config.distill_feature

    def loss(student: nn.Module, batch: Batch) -> tuple[torch.Tensor, dict[str, float]]:
        masks = task.query_masks(batch) if need_maps else {}
        t_out, t_maps = None, {}
        if need_teacher:
            with torch.no_grad():
                if need_maps:
                    with capture_attention(teacher) as tcap:
                        t_out = task.outputs(teacher, batch)
                    t_maps = _captured(tcap, masks)
                else:
                    t_out = task.outputs(teacher, batch)
        if need_maps:
            with capture_attention(student, keep_grad=True) as scap:
                s_out = task.outputs(student, batch)
            attention = attention_mse(t_maps, _captured(scap, masks), config.attention_mapping)
        else:
            s_out = task.outputs(student, batch)
            attention = None
        kl = response_kl(t_out.logits, s_out.logits, s_out.mask, config.tau) if t_out is not None and config.distill_response else None
        return total_loss(s_out.loss, kl, attention, weights)

    return loss


def head_scores(stats: HeadStats, config: ChainConfig, round_index: int) -> dict[tuple[str, int], torch.Tensor]:
    if config.importance == "random":
        return random_scores(stats, seed=config.seed * 1000 + round_index)
    if config.importance == "taylor":
        return taylor_scores(stats, normalisation=config.normalisation)  # type: ignore[arg-type]
    return scores(stats, config.alpha, normalisation=config.normalisation, entropy_sign=config.entropy_sign)  # type: ignore[arg-type]


@dataclass
class Chain:
    """One chain run. `teacher` is the unpruned starting model (also the speed reference)."""

    task: Task
    teacher: nn.Module
    config: ChainConfig
    io: ModelIO
    out_dir: Path
    measure: MeasureFn
    teacher_stats: HeadStats | None = None
    teacher_metrics: dict[str, dict[str, Any]] | None = None  # split -> metrics with correct_bits; evaluated if None
    progress: bool = True
    on_round: Callable[[dict[str, Any], Path], None] | None = None
    log: Callable[[str], None] = print
    _original: dict[str, int] = field(default_factory=dict, init=False)

    def _shared_stats_fit(self, model: nn.Module) -> bool:
        """The shared teacher statistics describe `model` and hold what the importance needs."""
        st = self.teacher_stats
        if st is None or not st.matches(model):
            return False
        return self.config.importance != "taylor" or all(len(b.taylor) == len(b.head_ids) for b in st.blocks.values())

    def _teacher_metrics(self) -> dict[str, dict[str, Any]]:
        """The teacher's valid (and test) metrics, with per-problem bits for the paired tests."""
        if self.teacher_metrics is None:
            splits = ["valid"] + (["test"] if self.task.has_split("test") else [])
            self.teacher_metrics = {s: self.task.evaluate(self.teacher, s) for s in splits}
        return self.teacher_metrics

    def fingerprint(self) -> dict[str, Any]:
        """What this chain's results depend on: its settings, the teacher's weights, the data."""
        return {"config": self.config.to_dict(), "teacher": model_digest(self.teacher), "data": self.task.fingerprint()}

    def run(self) -> ChainResult:
        cfg = self.config
        out = Path(self.out_dir)
        start_round, state = last_complete_round(out)
        fingerprint = self.fingerprint()
        if state is not None:  # older chains stored only their config
            check_resume(state.get("fingerprint") or {"config": state.get("config", {})}, fingerprint,
                         what="chain", where=out)
        out.mkdir(parents=True, exist_ok=True)
        self._original = {k: sum(v) for k, v in head_counts(self.teacher).items()}
        reference = self.teacher.eval()
        example = next(iter(self.task.batches("valid", cfg.latency_batch)))
        records: list[dict[str, Any]] = list(state["records"]) if state else []
        if state and state.get("done"):
            model = self.io.load(round_dir(out, start_round))
            if self.on_round:
                self.on_round(records[-1], round_dir(out, start_round))
            return ChainResult(records, model, out, resumed_from=start_round, teacher_metrics=self._teacher_metrics())
        teacher_metrics = self._teacher_metrics()
        current = self.io.load(round_dir(out, start_round)) if start_round else reference
        if start_round:
            self.log(f"resuming chain after round {start_round}")
        for r in range(start_round + 1, cfg.rounds + 1):
            t0 = time.perf_counter()
            stats = self.teacher_stats if r == 1 and self._shared_stats_fit(current) else None
            shared = stats is not None
            if stats is None:
                stats = collect_head_stats(current, self.task, batches=cfg.calib_batches, batch_size=cfg.calib_batch_size,
                                           taylor=cfg.importance == "taylor")
            stats_s = time.perf_counter() - t0
            ratio = pruning_ratio(r, cfg.rounds, cfg.p_min, cfg.p_max, cfg.n) if cfg.prune else 0.0
            present = {k: sum(v) for k, v in head_counts(current).items()}
            counts = removal_counts(ratio, self._original, present, cfg.ranking)  # type: ignore[arg-type]
            removal = select_heads(head_scores(stats, cfg, r), counts, min_heads_per_block=cfg.min_heads_per_block)
            student = copy.deepcopy(current)
            for p in student.parameters():
                p.requires_grad_(True)
            removed_now = sum(len(h) for layers in removal.values() for h in layers.values())
            if removed_now:
                prune_heads(student, removal)
            fit_cfg = FitConfig(epochs=cfg.epochs_per_round, max_steps=cfg.steps_per_round, batch_size=cfg.batch_size,
                                lr=cfg.lr, head_lr=cfg.head_lr, weight_decay=cfg.weight_decay, patience=cfg.patience,
                                eval_every=cfg.eval_every, seed=cfg.seed + r)
            result = fit(student, self.task, fit_cfg, loss_fn=distillation_loss(current, self.task, cfg),
                         progress=self.progress, description=f"round {r}/{cfg.rounds}")
            record: dict[str, Any] = {
                "round": r,
                "ratio": ratio,
                "heads_removed_now": removed_now,
                "heads_total": total_heads(student),
                "heads_original": sum(self._original.values()),
                "heads_kept": head_counts(student),
                "shared_stats": shared,
                "stats_s": round(stats_s, 3),
                "train_steps": result.steps,
                "train_s": round(result.wall_s, 2),
                "stopped": result.stopped,
                "accuracy": float(result.best_metrics.get(self.task.primary_metric, 0.0)),
                "valid": result.best_metrics,
                **accuracy_fields("accuracy", result.best_metrics, teacher_metrics.get("valid")),
            }
            test = self.task.evaluate(student, "test") if self.task.has_split("test") else None
            record["test_accuracy"] = float(test[self.task.primary_metric]) if test else None
            if test:
                record.update(accuracy_fields("test_accuracy", test, teacher_metrics.get("test")))
            record.update(self.measure(reference, student, example))
            record["round_s"] = round(time.perf_counter() - t0, 2)
            records.append(record)
            rdir = round_dir(out, r)
            self.io.save(student, rdir, {"chain_round": r, "chain_config": cfg.to_dict()})
            _write_json_atomic(rdir / STATE_NAME, {"round": r, "records": records, "done": r == cfg.rounds, "config": cfg.to_dict(),
                                                  "fingerprint": fingerprint})
            if self.on_round:
                self.on_round(record, rdir)
            current = student
        return ChainResult(records, current.eval(), out, resumed_from=start_round, done=True, teacher_metrics=teacher_metrics)

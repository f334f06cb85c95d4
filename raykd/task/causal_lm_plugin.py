"""Decoder-only LLMs on math word problems as a task plug-in (`task: causal-lm`).

Data specs are those of the equation solver (`raykd data check`); the teacher is a causal LM
(`raykd.task.causal_lm_models`: `smollm2`, `tiny`, a hub name or a local directory) fine-tuned
with the causal-LM loss on the target expression, early-stopping on valid accuracy
(`raykd.task.causal_lm`), and saved with its unpruned config and tokenizer (`CausalLMIO`).
Before the fine-tune the base model is evaluated on valid (`zero_shot_valid` in the report) unless
the teacher setting `zero_shot: false` says not to (default: every model but `tiny`).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, ClassVar

import torch

from raykd.data import load_splits, require_splits
from raykd.errors import ConfigError, DataError
from raykd.outputs import atomic_dir
from raykd.task.causal_lm import (
    DISTILL_POSITIONS,
    OUTPUTS,
    WORKLOADS,
    CausalLMTask,
    add_newline_token,
    target_expression,
    workloads_for,
)
from raykd.task.causal_lm_models import SMOLLM2_NOTE, load_causal_lm
from raykd.task.hf_io import CausalLMIO, HFModelIO
from raykd.task.plugin_checks import check_teacher_keys, problems_fingerprint
from raykd.task_interface import LoadedModel, task_plugin
from raykd.traces.derive import derive_trace
from raykd.traces.io import read_traces
from raykd.traces.targets import TRACE_SOURCES, check_trace_strength
from raykd.fit_checkpoint import FitCheckpoint
from raykd.training import FitConfig, fit

TEACHER_KEYS = ("model", "path", "epochs", "lr", "batch_size", "patience", "max_steps", "time_budget_s", "zero_shot")
DEFAULT_TEACHER: dict[str, Any] = {"model": "smollm2", "epochs": 3}
OPTION_LIMITS: dict[str, int] = {"max_new_tokens": 1024, "eval_batch_size": 1 << 16, "max_prompt_len": 8192,
                                 "max_target_len": 1024}
"""Upper bounds of the integer options: a target is one arithmetic expression (tens of tokens)."""


def _workloads() -> dict[str, str]:
    return dict(WORKLOADS)


def zero_shot_wanted(settings: Mapping[str, Any], source: str) -> bool:
    """Whether a teacher's fine-tune first evaluates the base model on valid (`zero_shot_valid`):
    the setting `zero_shot` where given, else for every model but `tiny` (random weights, nothing
    to measure). Off saves a full generation pass over valid (minutes for SmolLM2 writing traces)."""
    return bool(settings["zero_shot"]) if "zero_shot" in settings else source != "tiny"


@task_plugin
@dataclass
class CausalLMPlugin:
    """Options (as `CausalLMTask`'s): `max_new_tokens` (generation length, default 40),
    `eval_batch_size`, `distill_positions` ("answer" or "all"), `use_chat_template` (None: when
    the tokenizer has one), `max_prompt_len`, `max_target_len`, `output` ("expression" or
    "trace": step-by-step reasoning and an answer line), `traces` (trace mode: a JSON file
    mapping problem id -> trace text, the targets of the problems it has; the others' are derived
    from the gold equation), `trace_source` ("file": `traces` then derived, "derived": every
    target from the gold equation; default "file" with `traces`, else "derived") and
    `trace_strength` (in [0, 1]: how hard the students' target traces are pruned, 0 unchanged;
    `raykd.traces.prune.rules_for_strength`). A sweep may search the two trace settings
    (`search: {task.trace_strength: ...}`, `searchable_options`); the teacher always learns the
    source traces unpruned: the students are distilled on the pruned ones."""

    max_new_tokens: int = 40
    eval_batch_size: int = 16
    distill_positions: str = "answer"
    use_chat_template: bool | None = None
    max_prompt_len: int = 192
    max_target_len: int = 48
    output: str = "expression"
    traces: str | None = None
    trace_source: str | None = None
    trace_strength: float = 0.0
    name: str = "causal-lm"
    reads_data_uris: bool = True  # specs as raykd.data reads them: paths or s3://, gs://, file:// URIs
    workloads: dict[str, str] = field(default_factory=_workloads)
    searchable_options: ClassVar[tuple[str, ...]] = ("trace_strength", "trace_source")
    """Options a sweep may search as `task.<option>` (raykd.search.space): the targets' pruning and source."""

    def __post_init__(self) -> None:
        for key in ("max_new_tokens", "eval_batch_size", "max_prompt_len", "max_target_len"):
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"{key} must be an integer >= 1, got {value!r}")
            if value > OPTION_LIMITS[key]:  # (a generation 100,000 tokens long ran for hours on a tiny model)
                shown = f"{value:,}" if value < 10**12 else "more than 10**12"
                raise ConfigError(f"{key} must be at most {OPTION_LIMITS[key]:,}, got {shown}")
        if self.distill_positions not in DISTILL_POSITIONS:
            raise ConfigError(f"distill_positions must be one of {', '.join(DISTILL_POSITIONS)}, got {self.distill_positions!r}")

        if self.output not in OUTPUTS:
            raise ConfigError(f"output must be one of {', '.join(OUTPUTS)}, got {self.output!r}")
        if self.traces is not None:
            if not isinstance(self.traces, str) or not self.traces.strip():
                raise ConfigError(f"traces must be the path of a traces file, got {self.traces!r}")
            if self.output != "trace":
                raise ConfigError("traces needs output: trace (they are the targets of trace mode)")

        if self.trace_source is not None:
            if self.trace_source not in TRACE_SOURCES:
                raise ConfigError(f"trace_source must be one of {', '.join(TRACE_SOURCES)}, got {self.trace_source!r}")
            if self.output != "trace":
                raise ConfigError("trace_source needs output: trace (it selects the targets of trace mode)")
            if self.trace_source == "file" and self.traces is None:
                raise ConfigError("trace_source file needs traces: FILE")
        check_trace_strength(self.trace_strength, self.output)
        if self.output == "trace":
            self.workloads = workloads_for("trace")  # generate-e2e first: the default that speed is timed on

    def trace_targets(self) -> dict[str, str] | None:
        """The `traces` file as problem id -> trace text (None without one, or with
        `trace_source: derived`, which leaves the file unread): a `.jsonl` file as
        `raykd.traces.io` writes it (one record per line), else one JSON object mapping id -> text.
        DataError, one line, for a file that is missing, malformed, or not such a mapping."""
        if self.traces is None or self.trace_source == "derived":
            return None

        if str(self.traces).endswith(".jsonl"):
            records = read_traces(self.traces)
            return {r.id: r.trace.render() for r in records}
        try:
            raw = json.loads(Path(self.traces).read_text(encoding="utf-8"))
        except OSError as exc:
            raise DataError(f"cannot read traces file {self.traces}: {exc.strerror or exc}") from None
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise DataError(f"traces file {self.traces} is not JSON: {exc}") from None
        if not isinstance(raw, dict) or not all(isinstance(k, str) and isinstance(v, str) and v.strip()
                                                for k, v in raw.items()):
            raise DataError(f"traces file {self.traces} must be one JSON object mapping problem id -> trace text")
        return raw

    def task(self, tokenizer: Any, splits: dict[str, Any]) -> Any:
        return CausalLMTask(tokenizer, splits, max_prompt_len=self.max_prompt_len, max_target_len=self.max_target_len,
                            max_new_tokens=self.max_new_tokens, eval_batch_size=self.eval_batch_size,
                            distill_positions=self.distill_positions, use_chat_template=self.use_chat_template,
                            **({"output": "trace", "traces": self.trace_targets(), "trace_strength": self.trace_strength}
                               if self.output == "trace" else {}))

    def teacher_settings(self, raw: Mapping[str, Any] | None) -> dict[str, Any]:
        if raw is None:
            return dict(DEFAULT_TEACHER)
        check_teacher_keys(raw, TEACHER_KEYS, example="{model: smollm2|tiny|NAME|DIR, epochs: N} or {path: DIR}",
                           numbers=("lr", "time_budget_s"))
        if "model" in raw and "path" in raw:
            raise ConfigError("teacher needs exactly one of model (what to fine-tune) or path (a trained teacher)")
        if "path" not in raw:
            raw = {"model": DEFAULT_TEACHER["model"], **raw}  # training settings alone: the default model
        for key in ("model", "path"):
            if key in raw and (not isinstance(raw[key], str) or not raw[key].strip()):
                raise ConfigError(f"teacher.{key} must be a non-empty string")
        if "zero_shot" in raw and not isinstance(raw["zero_shot"], bool):
            raise ConfigError(f"teacher.zero_shot must be true or false, got {raw['zero_shot']!r}")
        return {**({"epochs": DEFAULT_TEACHER["epochs"]} if "model" in raw else {}), **raw}

    def train_teacher(self, data: str, settings: Mapping[str, Any], out: Path, *, seed: int = 0,
                      progress: bool = False, log: Callable[[str], None] = print, device: str = "cpu") -> dict[str, Any]:
        splits = load_splits(data, seed=seed)
        require_splits(splits, data, ("train", "valid"), why="the teacher trains on train and early-stops on valid")
        return self.train_teacher_on(splits, settings, out, seed=seed, progress=progress, device=device, data=data)

    def train_teacher_on(self, splits: Mapping[str, Any], settings: Mapping[str, Any], out: Path, *, seed: int = 0,
                         progress: bool = False, device: str = "cpu", data: str = "",
                         checkpoint: FitCheckpoint | None = None) -> dict[str, Any]:
        """`train_teacher` on given splits (train, valid, optional test): `raykd cv` trains one per
        fold with the recipe a sweep's teacher was trained with. `data` is recorded with it.
        `checkpoint`: the fine-tune resumes from it after a kill (`raykd.fit_checkpoint`); it is
        removed once the teacher is saved."""
        settings = self.teacher_settings(settings)
        splits = dict(splits)
        source = str(settings["model"])
        if self.output == "trace":
            given = self.trace_targets() or {}
            texts = [t for p in splits["train"] for t in (p.text, given.get(p.id) or derive_trace(p, seed=0).render())]
        else:
            texts = [t for p in splits["train"] for t in (p.text, target_expression(p))]
        model, tokenizer = load_causal_lm(source, texts=texts, seed=seed)
        if self.output == "trace" and add_newline_token(tokenizer):  # raykd's tiny WordPiece drops newlines
            model.resize_token_embeddings(len(tokenizer))
        model.to(device)

        task = replace(self, trace_strength=0.0).task(tokenizer, splits)  # the teacher learns the unpruned traces
        zero_shot = task.evaluate(model, "valid") if zero_shot_wanted(settings, source) else None
        fit_config = FitConfig(epochs=int(settings.get("epochs", 3)), batch_size=int(settings.get("batch_size", 8)),
                               lr=float(settings.get("lr", 1e-3 if source == "tiny" else 5e-5)),
                               patience=int(settings.get("patience", 2)), max_steps=int(settings.get("max_steps", 0)),
                               time_budget_s=float(settings.get("time_budget_s", 0.0)), seed=seed)
        t0 = time.perf_counter()
        result = fit(model, task, fit_config, progress=progress, description="teacher", checkpoint=checkpoint)
        wall = time.perf_counter() - t0
        test = task.evaluate(model, "test") if task.has_split("test") else None
        training = {"fit": fit_config.to_dict(), "model": source, "data": data,
                    **({"weights_note": SMOLLM2_NOTE} if source == "smollm2" else {})}
        with atomic_dir(out) as tmp:
            CausalLMIO(model.config.to_dict(), tokenizer).save(model.cpu(), tmp, {"training": training})
        if checkpoint is not None:
            checkpoint.remove()
        return {"valid": result.best_metrics, "test": test, "zero_shot_valid": zero_shot, "steps": result.steps,
                "epochs": round(result.epochs, 2), "stopped": result.stopped, "wall_s": round(wall, 1),
                "threads": torch.get_num_threads(), "model": source}

    def load(self, directory: Path, data: str, *, seed: int = 0) -> LoadedModel:
        return self.load_on(directory, load_splits(data, seed=seed))

    def load_on(self, directory: Path, splits: Mapping[str, Any]) -> LoadedModel:
        """`load` with the task over given splits (a cross-validation fold's)."""
        model, tokenizer, io = HFModelIO.open(directory)
        return LoadedModel(model, self.task(tokenizer, dict(splits)), io)

    def data_fingerprint(self, data: str, *, seed: int = 0) -> str:
        return problems_fingerprint(data, seed=seed)

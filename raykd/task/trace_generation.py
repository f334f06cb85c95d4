"""Source (a) of traces: a teacher LLM's own generations, in this process.

The teacher writes a trace for each problem exactly as trace-mode evaluation does (the causal-LM
task with `output="trace"`: its prompt, greedy decoding with the KV cache until EOS or a complete
answer line, the text cut after that line), so what is kept is what the teacher would answer.
`generate_traces` returns one record per problem, in order; `keep_correct` passes them through
the correctness filter (`raykd.traces.filter`). The Ray Data version
(`raykd.distributed.traces`) runs `TraceWriter` on the same batches, so both give the same traces.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from raykd.data.problem import Problem
from raykd.errors import ConfigError, ModelFormatError
from raykd.task.causal_lm import CausalLMTask
from raykd.task.causal_lm_models import load_causal_lm
from raykd.task.hf_io import HFModelIO
from raykd.traces.filter import filter_traces


@dataclass(frozen=True)
class TraceSettings:
    """How a teacher writes traces (validated on construction)."""

    max_new_tokens: int = 256
    batch_size: int = 8
    max_prompt_len: int = 512
    use_chat_template: bool | None = None

    def __post_init__(self) -> None:
        for key in ("max_new_tokens", "batch_size", "max_prompt_len"):
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"{key} must be an integer >= 1, got {value!r}")


@dataclass(frozen=True)
class GeneratedTrace:
    """One problem's generation: the text up to its answer line, tokens, and whether it is right."""

    id: str
    text: str
    tokens: int
    correct: bool

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def load_teacher(source: str | Path) -> tuple[nn.Module, Any]:
    """(model in eval mode, tokenizer) from a directory raykd saved, else any causal LM
    `raykd.task.causal_lm_models.load_causal_lm` reads (a hub name or a local directory)."""
    try:
        model, tokenizer, _io = HFModelIO.open(source)
    except ModelFormatError:
        model, tokenizer = load_causal_lm(str(source))
    return model.eval(), tokenizer


class TraceWriter:
    """Writes traces for problems with one teacher; called on one batch of problems at a time."""

    def __init__(self, model: nn.Module, tokenizer: Any, settings: TraceSettings) -> None:
        self.model, self.settings = model.eval(), settings
        self.task = CausalLMTask(tokenizer, {}, output="trace", max_new_tokens=settings.max_new_tokens,
                                 max_prompt_len=settings.max_prompt_len, eval_batch_size=settings.batch_size,
                                 use_chat_template=settings.use_chat_template)

    def write(self, problems: Sequence[Problem]) -> list[GeneratedTrace]:
        """Traces for `problems` generated as one batch (at most `settings.batch_size` of them)."""
        if len(problems) > self.settings.batch_size:
            raise ValueError(f"{len(problems)} problems in one batch of at most {self.settings.batch_size}")
        self.task.set_split("batch", problems)
        preds = self.task.predict_with_tokens(self.model, "batch")
        return [GeneratedTrace(p.id, text, n, ok) for p, text, ok, n in preds]


def batches_of(problems: Sequence[Problem], size: int) -> list[list[Problem]]:
    """The batches a teacher writes in, in order (the same in-process and on Ray)."""
    return [list(problems[i:i + size]) for i in range(0, len(problems), size)]


def generate_traces(teacher: str | Path | tuple[nn.Module, Any], problems: Sequence[Problem],
                    settings: TraceSettings | None = None, *, device: str = "cpu") -> list[GeneratedTrace]:
    """One trace per problem, in order, written by `teacher` (a directory or hub name, or a
    (model, tokenizer) pair), greedy, in batches of `settings.batch_size`."""
    settings = settings or TraceSettings()
    model, tokenizer = load_teacher(teacher) if isinstance(teacher, (str, Path)) else teacher
    writer = TraceWriter(model.to(device), tokenizer, settings)
    with torch.inference_mode():
        return [t for batch in batches_of(problems, settings.batch_size) for t in writer.write(batch)]


def keep_correct(traces: Sequence[GeneratedTrace], problems: Sequence[Problem]) -> tuple[dict[str, str], dict[str, int]]:
    """(problem id -> trace text for the generations that reach the gold answer, rejections by
    reason) through raykd's correctness filter; the mapping is what `CausalLMTask(traces=...)` takes."""
    outcome = filter_traces([t.text for t in traces], problems)
    return {problems[i].id: trace.render() for i, trace in outcome.kept}, dict(outcome.rejected)

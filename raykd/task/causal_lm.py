"""The causal-LM math task: a decoder-only LLM reads a problem and writes its equation.

Prompt format. With a chat template (SmolLM2-Instruct, Qwen, Llama-Instruct): one user turn,
"Write one arithmetic expression that computes the answer. Use only numbers and + - * / ^ ( ).
Problem: {text}", then the template's generation prompt; without one: "Problem: {text}\\nExpression:".
The target is " " + the gold equation in infix with the problem's numbers written in (the
placeholders N0.. replaced by their values, `raykd.data.expressions.to_infix`), then the
tokenizer's end-of-sequence token.

Training: the causal-LM loss on the target tokens only. Distillation compares next-token
distributions over the whole vocabulary (`TaskOutput.logits`) at the target positions
(`distill_positions="answer"`, default) or at every real position (`"all"`). Attention maps and
hidden states use every real position (`query_masks`: the `decoder_self` kind).

Evaluation: Transformers' `generate` on left-padded prompts (KV cache, greedy by default), up to
`max_new_tokens`, cut at the first newline; the text is parsed by raykd's safe infix parser
(never `eval`) and its value checked with raykd's answer checker (`answers_match`, the problem's
post-operation applied); where the first line is no expression (an untuned chat model writes
"The answer is 43."), the last number in the text counts. Accuracy with n, its Wilson interval,
per-problem bits (paired tests) and `parse_rate` (how often an expression or number was found).

Workloads: "generate" (default: what evaluation runs, greedy generation of exactly
`max_new_tokens` tokens for the batch, so every shape is timed on the same work), "forward"
(one teacher-forced pass, as training runs it) and "generate-e2e" (greedy generation until every
sequence of the batch has finished, at EOS or its answer line, or `max_new_tokens`: what a user
waits for, so a model that writes fewer tokens is faster on the same weights) and "prefill" (the
prompt's work alone: one forward pass over the prompts filling the KV cache and picking the first
token, `raykd.traces.speed.prefill`; timed beside "generate-e2e" it splits a generation's time into
prompt and decode, `raykd.traces.speed.split_prefill`). Every workload but "forward" reads only the
prompts: `prompt_batch` / `prompt_batches` build such batches, as evaluation does.

Trace mode (`output="trace"`). The instruction asks for step-by-step reasoning, one step a line,
ending in a line `Answer: <number>` (`raykd.traces.format`); the target is a trace's text + EOS,
from `traces` (problem id -> trace text) where it has the problem, else derived from the gold
equation (`raykd.traces.derive.derive_trace`; `target_sources` counts which), then pruned at
`trace_strength` (0: unchanged; `raykd.traces.prune.rules_for_strength` says which rules a
strength applies) where the pruned trace still reaches the gold answer, else kept unpruned and
the rejection counted (`raykd.traces.targets`; `target_record(split)`). Evaluation
generates until EOS or a complete answer line (`LineStop`), cuts there, parses the answer
with raykd's answer parser (never `eval`), applies the post-operation and checks it; besides
accuracy, bits and `parse_rate` it reports the tokens generated per problem (`tokens_mean`,
`tokens_median`, `tokens_p90`, `tokens_max`: generated ids up to the end of the answer line, EOS
excluded, `generated_tokens`). Its default workload is "generate-e2e".
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from tokenizers import AddedToken
from torch import nn

from raykd.data.answers import answers_match, apply_post_op
from raykd.data.augment import augment_problems
from raykd.data.expressions import (
    ExpressionError,
    evaluate,
    from_prefix,
    parse_infix,
    to_infix,
)
from raykd.data.numbers import format_number
from raykd.data.problem import Problem
from raykd.errors import ConfigError, DataError
from raykd.resume import problems_digest
from raykd.stats import accuracy_interval, pack_correct
from raykd.structures.heads import blocks_by_kind
from raykd.task_interface import Batch, TaskOutput, resolve_workload
from raykd.traces.filter import trace_value as answer_of_trace
from raykd.traces.format import ANSWER_PREFIX, cut_at_answer, parse_trace
from raykd.traces.speed import prefill
from raykd.traces.targets import TargetRecord, check_trace_strength, target_text

INSTRUCTION = ("Write one arithmetic expression that computes the answer. Use only numbers and + - * / ^ ( ).\n"
               "Problem: ")
TRACE_INSTRUCTION = ("Solve the problem step by step, one step per line. End with one line "
                     f"'{ANSWER_PREFIX} <number>'.\nProblem: ")
DISTILL_POSITIONS = ("answer", "all")
OUTPUTS = ("expression", "trace")
WORKLOADS: dict[str, str] = {
    "generate": "greedy generation with the KV cache of exactly max_new_tokens tokens for a left-padded batch of prompts",
    "forward": "one teacher-forced forward pass over prompt + target, as training runs it",
    "generate-e2e": "greedy generation with the KV cache until every sequence of the batch has finished (EOS or its "
                    "answer line; a newline in expression mode) or max_new_tokens, on the batch's real prompts",
    "prefill": "the prompt's work alone: one forward pass over the left-padded prompts that fills the KV cache and "
               "picks the first token (greedy generation of one token, raykd.traces.speed.prefill)",
}


def workloads_for(output: str) -> dict[str, str]:
    """The task's workloads, its default first: "generate" for expressions, "generate-e2e" for traces."""
    if output == "trace":
        return {"generate-e2e": WORKLOADS["generate-e2e"], **{k: v for k, v in WORKLOADS.items() if k != "generate-e2e"}}
    return dict(WORKLOADS)


_PLACEHOLDER = re.compile(r"N(\d+)")
_NUMBER = re.compile(r"\d+(?:,\d{3})*(?:\.\d+)?")


def target_expression(problem: Problem) -> str:
    """The gold equation in infix with the problem's numbers in place of N0, N1, ..."""
    infix = to_infix(from_prefix(problem.equation))
    return _PLACEHOLDER.sub(lambda m: format_number(problem.numbers[int(m.group(1))]), infix)


def generated_value(problem: Problem, text: str) -> float | None:
    """The value of what the model generated, or None: the first line's expression (left of any
    "=", whitespace ignored) if it parses, else the last number in the text (an untuned chat
    model answers "The answer is 43."). Parsed by raykd's safe parser, never evaluated as code."""
    line = re.sub(r"\s+", "", text.strip().split("\n", 1)[0]).split("=", 1)[0].rstrip(".")
    value = _value(line, problem) if line else None
    if value is None:
        numbers = _NUMBER.findall(text)
        value = _value(numbers[-1], problem) if numbers else None
    return value


def trace_value(problem: Problem, text: str) -> float | None:
    """The answer of a generated trace, post-operation applied, or None where `text` has no
    answer line or its answer is no number. Digits a tokenizer decoded apart ("1 2") are joined."""
    trace = parse_trace(text)
    return None if trace is None else answer_of_trace(trace, problem)


def answer_line_complete(text: str) -> bool:
    """Whether `text` holds an answer line that a newline has ended (the answer cannot grow)."""
    return parse_trace(text) is not None and len(cut_at_answer(text)) < len(text)


def teacher_targets(predictions: Sequence[tuple[Problem, str, bool]], *, trace: bool) -> dict[str, str]:
    """Problem id -> target text, from a teacher's (problem, generated text, correct) predictions:
    only those that reach the gold answer. A trace is kept as cut at its answer line; an expression
    only where its first line (left of any "=") is itself an expression with the gold value, never
    where the answer came from the last-number fallback ("The answer is 43.")."""
    out: dict[str, str] = {}
    for problem, text, correct in predictions:
        if not correct:
            continue
        if trace:
            out[problem.id] = cut_at_answer(text).strip()
            continue
        line = text.strip().split("\n", 1)[0].split("=", 1)[0].strip().rstrip(".").strip()
        value = _value(re.sub(r"\s+", "", line), problem) if line else None
        if value is not None and answers_match(value, problem.answer, gold_text=problem.answer_text or None):
            out[problem.id] = line
    return out


def _value(expression: str, problem: Problem) -> float | None:
    try:
        return apply_post_op(evaluate(parse_infix(expression), problem.numbers), problem.meta.get("post_op"))
    except (ExpressionError, ValueError, OverflowError):
        return None


@dataclass
class CausalLMTask:
    tokenizer: Any
    splits: dict[str, Sequence[Problem]]
    max_prompt_len: int = 192
    max_target_len: int = 48
    max_new_tokens: int = 40
    eval_batch_size: int = 16
    distill_positions: str = "answer"
    use_chat_template: bool | None = None  # None: when the tokenizer has one
    primary_metric: str = "accuracy"
    output: str = "expression"
    traces: Mapping[str, str] | None = None  # trace mode: problem id -> trace text (else derived)
    trace_strength: float = 0.0  # trace mode: pruning strength of the targets (raykd.traces.prune)
    expressions: Mapping[str, str] | None = None  # expression mode: problem id -> a teacher's expression (else gold)
    augmentation: dict[str, Any] | None = None  # set on a task `augmented` made: what was added, who labelled it
    workloads: dict[str, str] = field(default_factory=dict)
    _encoded: dict[str, list[tuple[list[int], list[int]]]] = field(default_factory=dict, repr=False)
    _prompts: dict[str, list[list[int]]] = field(default_factory=dict, repr=False)
    _records: dict[str, Any] = field(default_factory=dict, repr=False)  # split -> raykd.traces.targets.TargetRecord
    _newline_ids: torch.Tensor | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if self.output not in OUTPUTS:
            raise ConfigError(f"output must be one of {', '.join(OUTPUTS)}, got {self.output!r}")
        if self.traces is not None and self.output != "trace":
            raise ConfigError("traces are targets of output: trace only")
        if self.expressions is not None and self.output != "expression":
            raise ConfigError("expressions are targets of output: expression only")

        check_trace_strength(self.trace_strength, self.output)
        if not self.workloads:
            self.workloads = workloads_for(self.output)
        if self.distill_positions not in DISTILL_POSITIONS:
            raise ValueError(f"distill_positions must be one of {DISTILL_POSITIONS}, got {self.distill_positions!r}")
        if self.tokenizer.eos_token_id is None:
            raise ValueError("the tokenizer has no end-of-sequence token: the target needs one to stop generation")
        if self.tokenizer.pad_token_id is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        if self.use_chat_template is None:
            self.use_chat_template = bool(getattr(self.tokenizer, "chat_template", None))
        if self.output == "trace":
            ids = self.tokenizer("a\nb", add_special_tokens=False)["input_ids"]
            if "\n" not in self.tokenizer.decode(ids):
                raise ConfigError("the tokenizer cannot write a newline, which a trace needs between its steps "
                                 "(add one as a token: raykd.task.causal_lm.add_newline_token)")

    # --- encoding --------------------------------------------------------------------------------
    def prompt(self, problem: Problem) -> str:
        trace = self.output == "trace"
        if self.use_chat_template:
            instruction = TRACE_INSTRUCTION if trace else INSTRUCTION
            return self.tokenizer.apply_chat_template([{"role": "user", "content": instruction + problem.text}],
                                                      add_generation_prompt=True, tokenize=False)
        if trace:
            return f"Problem: {problem.text}\nSolve it step by step, then write '{ANSWER_PREFIX} <number>'.\n"
        return f"Problem: {problem.text}\nExpression:"

    def target_text(self, problem: Problem) -> str:
        """What the model learns to write for `problem` (before EOS)."""
        if self.output == "expression":
            if self.expressions is not None and problem.id in self.expressions:
                return " " + self.expressions[problem.id]
            return " " + target_expression(problem)

        return target_text(problem, self.traces, self.trace_strength)

    def target_sources(self, split: str) -> dict[str, int]:
        """Trace mode: how many targets of `split` came from `traces` ("given") or the gold
        equation ("derived")."""
        record = self.target_record(split)
        return {"given": int(record["given"]), "derived": int(record["derived"])} if record else {}

    def target_record(self, split: str) -> dict[str, float]:
        """Trace mode: what `split`'s targets are (`raykd.traces.targets.TargetRecord.to_dict`:
        sources, `strength`, accepted `pruned` and `rejected` prunes by reason, `tokens_mean`
        without EOS); {} in expression mode."""
        self.encoded(split)
        record = self._records.get(split)
        return record.to_dict() if record is not None else {}

    def encoded(self, split: str) -> list[tuple[list[int], list[int]]]:
        """(prompt ids, target ids) per problem of `split`, truncated to the task's limits
        (a prompt keeps its end, where the question and the generation prompt are)."""
        if split not in self._encoded:
            if split not in self.splits:
                raise KeyError(f"task has no split {split!r} (has {sorted(self.splits)})")

            rows = []
            record = TargetRecord(strength=float(self.trace_strength))
            for p, prompt in zip(self.splits[split], self.prompt_ids(split)):
                trace = self.output == "trace"
                text = target_text(p, self.traces, self.trace_strength, record) if trace else self.target_text(p)
                target = self.tokenizer(text, add_special_tokens=False)["input_ids"]
                if trace:
                    record.tokens.append(len(target))
                    if len(target) + 1 > self.max_target_len:  # a cut trace would lose its answer line
                        raise DataError(f"the trace target of problem {p.id} is {len(target) + 1} tokens with EOS, "
                                         f"over max_target_len {self.max_target_len}: raise max_target_len")
                rows.append((prompt, target[: self.max_target_len - 1] + [self.tokenizer.eos_token_id]))
            self._encoded[split] = rows
            if self.output == "trace":
                self._records[split] = record
        return self._encoded[split]

    def augmented(self, k: int, seed: int, *, teacher: nn.Module | None = None) -> CausalLMTask:
        """This task with `k` number-substituted variants of each "train" problem added to "train"
        (`raykd.data.augment`: variants come only from "train" and none has the text of a problem in
        another split, so nothing held out leaks into training). Each variant's target is gold-derived
        (its expression, or its derived trace), or with `teacher`, what the teacher writes for it
        greedily where that reaches the variant's gold answer: sequence-level distillation (Kim &
        Rush, 2016) on the augmented transfer set. `augmentation` counts who labelled what."""
        originals = list(self.splits.get("train", []))
        others = {p.text for name, problems in self.splits.items() if name != "train" for p in problems}
        problems, short = augment_problems(originals, k, seed, avoid_texts=others)
        variants = problems[len(originals):]
        info: dict[str, Any] = {"k": k, "seed": seed, "originals": len(originals), "variants": len(variants),
                                "short": dict(sorted(short.items())), "labels": "gold" if teacher is None else "teacher"}
        trace = self.output == "trace"
        given = dict((self.traces if trace else self.expressions) or {})
        if teacher is not None and variants:
            probe = dataclasses.replace(self, splits={"variants": variants}, _encoded={}, _prompts={}, _records={})
            written = teacher_targets(probe.predict(teacher, "variants"), trace=trace)
            given.update(written)
            info.update(teacher_labelled=len(written), gold_labelled=len(variants) - len(written))
        targets = {("traces" if trace else "expressions"): given or (self.traces if trace else self.expressions)}
        keep = {"_encoded": {s: v for s, v in self._encoded.items() if s != "train"},
                "_prompts": {s: v for s, v in self._prompts.items() if s != "train"},
                "_records": {s: v for s, v in self._records.items() if s != "train"}}
        return dataclasses.replace(self, splits={**self.splits, "train": problems}, augmentation=info, **targets, **keep)

    def set_split(self, split: str, problems: Sequence[Problem]) -> None:
        """Replace (or add) a split, dropping what was encoded for it (a teacher writing traces
        batch after batch)."""
        self.splits = {**self.splits, split: list(problems)}
        for cache in (self._encoded, self._prompts, self._records):
            cache.pop(split, None)

    def prompt_ids(self, split: str) -> list[list[int]]:
        """Prompt ids per problem of `split` (generation needs no target: none is derived)."""
        if split not in self._prompts:
            if split not in self.splits:
                raise KeyError(f"task has no split {split!r} (has {sorted(self.splits)})")
            self._prompts[split] = [self.tokenizer(self.prompt(p), add_special_tokens=False)["input_ids"][-self.max_prompt_len:]
                                    for p in self.splits[split]]
        return self._prompts[split]

    def prompt_batch(self, split: str, indices: Sequence[int]) -> Batch:
        """The prompts of `split`'s problems at `indices`, without targets, as evaluation batches
        them (left-padded `prompt_ids` / `prompt_mask`, `problem_index`): what the generating
        workloads ("generate", "generate-e2e", "prefill") read. Nothing is derived or pruned."""
        prompts = self.prompt_ids(split)
        index = [int(i) for i in indices]
        if not index:
            raise ValueError("a prompt batch needs at least one problem")
        if not all(0 <= i < len(prompts) for i in index):
            raise IndexError(f"split {split!r} has {len(prompts)} problems: indices {index} are out of range")
        return self._batch([(prompts[i], []) for i in index], index)

    def prompt_batches(self, split: str, batch_size: int, *, limit: int | None = None) -> Iterator[Batch]:
        """`prompt_batch`es of `batch_size` consecutive problems of `split`, in order (the first
        `limit` problems only, where given): the batches `predict` generates on."""
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        n = len(self.prompt_ids(split)) if limit is None else min(limit, len(self.prompt_ids(split)))
        for start in range(0, n, batch_size):
            yield self.prompt_batch(split, range(start, min(start + batch_size, n)))

    def _batch(self, rows: list[tuple[list[int], list[int]]], index: list[int]) -> Batch:
        pad = self.tokenizer.pad_token_id
        full = [p + t for p, t in rows]
        width = max(len(f) for f in full)
        prompt_width = max(len(p) for p, _ in rows)
        ids = torch.full((len(rows), width), pad, dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        target = torch.zeros((len(rows), width), dtype=torch.bool)
        prompt_ids = torch.full((len(rows), prompt_width), pad, dtype=torch.long)
        prompt_mask = torch.zeros((len(rows), prompt_width), dtype=torch.long)
        for i, ((p, t), f) in enumerate(zip(rows, full)):
            ids[i, : len(f)] = torch.tensor(f)
            mask[i, : len(f)] = 1
            target[i, len(p): len(f)] = True
            prompt_ids[i, prompt_width - len(p):] = torch.tensor(p)  # left padding for generation
            prompt_mask[i, prompt_width - len(p):] = 1
        return {"input_ids": ids, "attention_mask": mask, "target_mask": target, "prompt_ids": prompt_ids,
                "prompt_mask": prompt_mask, "problem_index": torch.tensor(index)}

    # --- Task ------------------------------------------------------------------------------------
    def batches(self, split: str, batch_size: int, *, shuffle: bool = False, seed: int = 0) -> Iterator[Batch]:
        rows = self.encoded(split)
        order = torch.randperm(len(rows), generator=torch.Generator().manual_seed(seed)).tolist() if shuffle else list(range(len(rows)))
        for start in range(0, len(order), batch_size):
            index = order[start:start + batch_size]
            yield self._batch([rows[i] for i in index], index)

    def outputs(self, model: nn.Module, batch: Batch) -> TaskOutput:
        device = next(model.parameters()).device
        ids, mask = batch["input_ids"].to(device), batch["attention_mask"].to(device)
        logits = model(input_ids=ids, attention_mask=mask).logits[:, :-1]
        predicts_target = batch["target_mask"].to(device)[:, 1:]  # position t predicts token t + 1
        loss = F.cross_entropy(logits[predicts_target].float(), ids[:, 1:][predicts_target])
        kl_mask = predicts_target if self.distill_positions == "answer" else mask[:, 1:].bool()
        return TaskOutput(logits=logits, mask=kl_mask, loss=loss)

    def loss_units(self, batch: Batch) -> float:
        """The task loss is a mean over answer tokens (raykd.task_interface.loss_units)."""
        return float(batch["target_mask"][:, 1:].sum())

    def query_masks(self, batch: Batch) -> dict[str, torch.Tensor]:
        return {"decoder_self": batch["attention_mask"].bool()}

    def newline_ids(self) -> torch.Tensor:
        """Ids of the tokens whose text holds a newline (the only ones that can end a line)."""
        if self._newline_ids is None:
            texts = self.tokenizer.batch_decode([[i] for i in range(len(self.tokenizer))])
            self._newline_ids = torch.tensor([i for i, t in enumerate(texts) if "\n" in t], dtype=torch.long)
        return self._newline_ids

    def generate(self, model: nn.Module, batch: Batch, *, exact_length: bool = False,
                 until_done: bool = False) -> torch.Tensor:
        """Generated token ids (B, new) for the batch's prompts (greedy, KV cache); `until_done`:
        a sequence also stops at the end of its answer line (trace mode) or first line."""
        from transformers import (
            StoppingCriteriaList,  # deferred: transformers (~2 s), only when generating
        )

        device = next(model.parameters()).device
        ids, mask = batch["prompt_ids"].to(device), batch["prompt_mask"].to(device)
        extra: dict[str, Any] = {"min_new_tokens": self.max_new_tokens} if exact_length else {}
        if until_done:
            extra["stopping_criteria"] = StoppingCriteriaList([LineStop(self, ids.shape[1])])
        out = model.generate(input_ids=ids, attention_mask=mask, max_new_tokens=self.max_new_tokens, do_sample=False,
                             pad_token_id=self.tokenizer.pad_token_id, eos_token_id=self.tokenizer.eos_token_id, **extra)
        return out[:, ids.shape[1]:]

    def predict(self, model: nn.Module, split: str) -> list[tuple[Problem, str, bool]]:
        """(problem, generated text, correct) for every problem of `split`, in order (trace mode:
        the text is cut after its answer line)."""
        return [(p, text, correct) for p, text, correct, _n in self.predict_with_tokens(model, split)]

    def predict_with_tokens(self, model: nn.Module, split: str) -> list[tuple[Problem, str, bool, int]]:
        """(problem, generated text, correct, tokens generated) for every problem of `split`."""
        problems = self.splits[split]
        trace = self.output == "trace"
        was_training = model.training
        model.eval()
        out: list[tuple[Problem, str, bool, int]] = []
        with torch.inference_mode():
            for batch in self.prompt_batches(split, self.eval_batch_size):
                new = self.generate(model, batch, until_done=trace)
                for index, seq in zip(batch["problem_index"].tolist(), new.tolist()):
                    p = problems[index]
                    text = self.tokenizer.decode(seq, skip_special_tokens=True)
                    if trace:
                        text, value, n = cut_at_answer(text), trace_value(p, text), self.generated_tokens(seq)
                    else:
                        value, n = generated_value(p, text), len(seq)
                    ok = value is not None and answers_match(value, p.answer, gold_text=p.answer_text or None)
                    out.append((p, text, ok, n))
        model.train(was_training)
        return out

    def generated_tokens(self, ids: Sequence[int]) -> int:
        """Tokens a generation cost: its ids up to the last one of its answer line (all of them
        before EOS or padding where it has no answer line), EOS excluded."""
        ids = list(ids)
        eos, pad = self.tokenizer.eos_token_id, self.tokenizer.pad_token_id
        if eos in ids:
            ids = ids[: ids.index(eos)]
        while ids and ids[-1] == pad:
            ids.pop()
        text = self.tokenizer.decode(ids, skip_special_tokens=True)
        if parse_trace(text) is None:
            return len(ids)
        cut = cut_at_answer(text).rstrip()

        def reaches(k: int) -> bool:
            prefix = self.tokenizer.decode(ids[:k], skip_special_tokens=True)
            return parse_trace(prefix) is not None and cut_at_answer(prefix).rstrip() == cut

        k = len(ids)
        while k > 0 and reaches(k - 1):
            k -= 1
        return k

    def evaluate(self, model: nn.Module, split: str) -> dict[str, Any]:
        if self.output == "trace":
            return self._evaluate_traces(model, split)
        preds = self.predict(model, split)
        flags = [c for _p, _t, c in preds]
        parsed = [generated_value(p, t) is not None for p, t, _c in preds]
        return {**accuracy_interval(flags), "parse_rate": sum(parsed) / len(parsed) if parsed else 0.0,
                "correct_bits": pack_correct(flags)}

    def _evaluate_traces(self, model: nn.Module, split: str) -> dict[str, Any]:
        preds = self.predict_with_tokens(model, split)
        flags = [c for _p, _t, c, _n in preds]
        parsed = [trace_value(p, t) is not None for p, t, _c, _n in preds]
        return {**accuracy_interval(flags), "parse_rate": sum(parsed) / len(parsed) if parsed else 0.0,
                "correct_bits": pack_correct(flags), **token_stats([n for *_x, n in preds])}

    def num_examples(self, split: str) -> int:
        return len(self.splits.get(split, ()))

    def has_split(self, split: str) -> bool:
        return bool(self.splits.get(split))

    def fingerprint(self) -> str:
        digest = problems_digest(self.splits)
        if self.output == "expression":
            if self.expressions:  # a teacher's targets: another run
                given = json.dumps(sorted(self.expressions.items()), ensure_ascii=False)
                return hashlib.sha256(f"{digest}\nexpressions\n{given}".encode()).hexdigest()
            return digest

        traces = json.dumps(sorted((self.traces or {}).items()), ensure_ascii=False)  # other targets: another run
        pruned = f"\nstrength {float(self.trace_strength)!r}" if self.trace_strength else ""  # (0: as before pruning)
        return hashlib.sha256(f"{digest}\ntrace\n{traces}{pruned}".encode()).hexdigest()

    def run(self, model: nn.Module, batch: Batch, workload: str = "default") -> Any:
        name = resolve_workload(self, workload)
        if name == "forward":
            return model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])
        if name == "generate-e2e":
            return self.generate(model, batch, until_done=True)
        if name == "prefill":  # the same call as raykd.traces.speed.prefill: one forward, KV cache, first token
            return prefill(model, batch, pad_token_id=self.tokenizer.pad_token_id, eos_token_id=self.tokenizer.eos_token_id)
        return self.generate(model, batch, exact_length=True)

    def flops(self, model: nn.Module, batch: Batch) -> int:
        """2 x every Linear's weights per real token, plus causal attention scores and sums."""
        lengths = batch["attention_mask"].sum(1).tolist()
        linear = sum(m.weight.numel() for m in model.modules() if isinstance(m, nn.Linear))
        width = sum(b.num_heads * b.head_dim for b in blocks_by_kind(model).get("decoder_self", []))
        return int(sum(2 * linear * n + 2 * 2 * width * n * (n + 1) // 2 for n in lengths))


def token_stats(counts: Sequence[int]) -> dict[str, float]:
    """Mean, median, 90th percentile (nearest rank) and max of tokens generated per problem."""
    if not counts:
        return {"tokens_mean": 0.0, "tokens_median": 0.0, "tokens_p90": 0.0, "tokens_max": 0.0}
    xs = sorted(counts)
    n = len(xs)
    median = xs[n // 2] if n % 2 else (xs[n // 2 - 1] + xs[n // 2]) / 2
    p90 = xs[max(0, -(-9 * n // 10) - 1)]
    return {"tokens_mean": sum(xs) / n, "tokens_median": float(median), "tokens_p90": float(p90), "tokens_max": float(xs[-1])}


class LineStop:
    """A `generate` stopping criterion: a sequence is done once its generated text holds a
    complete answer line (trace mode) or, for expressions, a first line ended by a newline. Only
    rows whose last token holds a newline are decoded, so a step costs one `isin` otherwise."""

    def __init__(self, task: CausalLMTask, prompt_len: int) -> None:
        self.task, self.prompt_len = task, prompt_len
        self.newlines = task.newline_ids()
        self.done: torch.Tensor | None = None

    def __call__(self, input_ids: torch.Tensor, scores: Any, **kwargs: Any) -> torch.Tensor:
        if self.done is None:
            self.done = torch.zeros(input_ids.shape[0], dtype=torch.bool, device=input_ids.device)
        hit = torch.isin(input_ids[:, -1], self.newlines.to(input_ids.device)) & ~self.done
        for row in hit.nonzero().flatten().tolist():
            text = self.task.tokenizer.decode(input_ids[row, self.prompt_len:], skip_special_tokens=True)
            if answer_line_complete(text) if self.task.output == "trace" else "\n" in text.lstrip():
                self.done[row] = True
        return self.done.clone()


def add_newline_token(tokenizer: Any) -> bool:
    """Give a tokenizer that drops newlines (raykd's tiny WordPiece) a newline token, so it can
    write traces; True if one was added (a model must then be sized to `len(tokenizer)`)."""
    if "\n" in tokenizer.decode(tokenizer("a\nb", add_special_tokens=False)["input_ids"]):
        return False
    tokenizer.add_tokens([AddedToken("\n", normalized=False, special=False)])
    return True

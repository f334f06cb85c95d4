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
`max_new_tokens` tokens for the batch, so every shape is timed on the same work) and "forward"
(one teacher-forced pass, as training runs it).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Iterator, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from raykd.data.answers import answers_match, apply_post_op
from raykd.data.expressions import ExpressionError, evaluate, from_prefix, parse_infix, to_infix
from raykd.data.numbers import format_number
from raykd.data.problem import Problem
from raykd.task_interface import Batch, TaskOutput, resolve_workload

INSTRUCTION = ("Write one arithmetic expression that computes the answer. Use only numbers and + - * / ^ ( ).\n"
               "Problem: ")
DISTILL_POSITIONS = ("answer", "all")
WORKLOADS: dict[str, str] = {
    "generate": "greedy generation with the KV cache of exactly max_new_tokens tokens for a left-padded batch of prompts",
    "forward": "one teacher-forced forward pass over prompt + target, as training runs it",
}
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
    workloads: dict[str, str] = field(default_factory=lambda: dict(WORKLOADS))
    _encoded: dict[str, list[tuple[list[int], list[int]]]] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        if self.distill_positions not in DISTILL_POSITIONS:
            raise ValueError(f"distill_positions must be one of {DISTILL_POSITIONS}, got {self.distill_positions!r}")
        if self.tokenizer.eos_token_id is None:
            raise ValueError("the tokenizer has no end-of-sequence token: the target needs one to stop generation")
        if self.tokenizer.pad_token_id is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        if self.use_chat_template is None:
            self.use_chat_template = bool(getattr(self.tokenizer, "chat_template", None))

    # --- encoding --------------------------------------------------------------------------------
    def prompt(self, problem: Problem) -> str:
        if self.use_chat_template:
            return self.tokenizer.apply_chat_template([{"role": "user", "content": INSTRUCTION + problem.text}],
                                                      add_generation_prompt=True, tokenize=False)
        return f"Problem: {problem.text}\nExpression:"

    def encoded(self, split: str) -> list[tuple[list[int], list[int]]]:
        """(prompt ids, target ids) per problem of `split`, truncated to the task's limits
        (a prompt keeps its end, where the question and the generation prompt are)."""
        if split not in self._encoded:
            if split not in self.splits:
                raise KeyError(f"task has no split {split!r} (has {sorted(self.splits)})")
            rows = []
            for p in self.splits[split]:
                prompt = self.tokenizer(self.prompt(p), add_special_tokens=False)["input_ids"][-self.max_prompt_len:]
                target = self.tokenizer(" " + target_expression(p), add_special_tokens=False)["input_ids"]
                rows.append((prompt, target[: self.max_target_len - 1] + [self.tokenizer.eos_token_id]))
            self._encoded[split] = rows
        return self._encoded[split]

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

    def generate(self, model: nn.Module, batch: Batch, *, exact_length: bool = False) -> torch.Tensor:
        """Generated token ids (B, new) for the batch's prompts (greedy, KV cache)."""
        device = next(model.parameters()).device
        ids, mask = batch["prompt_ids"].to(device), batch["prompt_mask"].to(device)
        extra = {"min_new_tokens": self.max_new_tokens} if exact_length else {}
        out = model.generate(input_ids=ids, attention_mask=mask, max_new_tokens=self.max_new_tokens, do_sample=False,
                             pad_token_id=self.tokenizer.pad_token_id, eos_token_id=self.tokenizer.eos_token_id, **extra)
        return out[:, ids.shape[1]:]

    def predict(self, model: nn.Module, split: str) -> list[tuple[Problem, str, bool]]:
        """(problem, generated text, correct) for every problem of `split`, in order."""
        problems = self.splits[split]
        was_training = model.training
        model.eval()
        out: list[tuple[Problem, str, bool]] = []
        with torch.inference_mode():
            for batch in self.batches(split, self.eval_batch_size):
                new = self.generate(model, batch)
                for index, seq in zip(batch["problem_index"].tolist(), new.tolist()):
                    p = problems[index]
                    text = self.tokenizer.decode(seq, skip_special_tokens=True)
                    value = generated_value(p, text)
                    out.append((p, text, value is not None and answers_match(value, p.answer, gold_text=p.answer_text or None)))
        model.train(was_training)
        return out

    def evaluate(self, model: nn.Module, split: str) -> dict[str, Any]:
        from raykd.results.stats import accuracy_interval, pack_correct

        preds = self.predict(model, split)
        flags = [c for _p, _t, c in preds]
        parsed = [generated_value(p, t) is not None for p, t, _c in preds]
        return {**accuracy_interval(flags), "parse_rate": sum(parsed) / len(parsed) if parsed else 0.0,
                "correct_bits": pack_correct(flags)}

    def num_examples(self, split: str) -> int:
        return len(self.splits.get(split, ()))

    def has_split(self, split: str) -> bool:
        return bool(self.splits.get(split))

    def fingerprint(self) -> str:
        from raykd.resume import problems_digest

        return problems_digest(self.splits)

    def run(self, model: nn.Module, batch: Batch, workload: str = "default") -> Any:
        if resolve_workload(self, workload) == "forward":
            return model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])
        return self.generate(model, batch, exact_length=True)

    def flops(self, model: nn.Module, batch: Batch) -> int:
        """2 x every Linear's weights per real token, plus causal attention scores and sums."""
        from raykd.structures.heads import blocks_by_kind

        lengths = batch["attention_mask"].sum(1).tolist()
        linear = sum(m.weight.numel() for m in model.modules() if isinstance(m, nn.Linear))
        width = sum(b.num_heads * b.head_dim for b in blocks_by_kind(model).get("decoder_self", []))
        return int(sum(2 * linear * n + 2 * 2 * width * n * (n + 1) // 2 for n in lengths))

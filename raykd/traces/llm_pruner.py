"""The LLM-prompted pruner: a causal LM rewrites a trace keeping only the steps it needs.

DRP has a capable teacher do the pruning; where one is available (any HF causal LM and its
tokenizer, wrapped by `HFGenerator`, or any callable `prompts -> texts`), `llm_prune_traces`
prompts it with the problem and the trace, reads its rewrite with `format.parse_trace`, and keeps
the rewrite only if it passes the same acceptance as the rule-based pruner (`prune.reaches_gold`)
and is shorter than the original. Anything else - no answer line, a wrong answer, wrong
arithmetic, a longer text - is rejected and counted, and the original trace is kept.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from raykd.data.problem import Problem
from raykd.traces.filter import read_generation
from raykd.traces.format import ANSWER_PREFIX, Trace
from raykd.traces.prune import PruneOutcome, accept

Generator = Callable[[Sequence[str]], list[str]]
"""Prompts in, generated continuations (without the prompt) out, one per prompt."""

PROMPT = (
    "Shorten the solution below. Keep only the steps needed to reach the answer, each written as "
    "its computation only (for example: 12 - 5 = 7), one per line. Drop restatements of the "
    "problem and checks. End with the line '" + ANSWER_PREFIX + " <number>'.\n\n"
    "Problem: {problem}\n\nSolution:\n{trace}\n\nShortened solution:\n"
)


def pruning_prompt(problem: Problem, trace: Trace) -> str:
    """The instruction a pruning model is given for one trace."""
    return PROMPT.format(problem=" ".join(problem.text.split()), trace=trace.render())


@dataclass
class HFGenerator:
    """Greedy generation with an HF causal LM (KV cache, left-padded batches): a `Generator`."""

    model: Any
    tokenizer: Any
    max_new_tokens: int = 256
    batch_size: int = 8
    use_chat_template: bool | None = None  # None: when the tokenizer has one

    def __post_init__(self) -> None:
        if self.max_new_tokens < 1 or self.batch_size < 1:
            raise ValueError(f"max_new_tokens and batch_size must be >= 1, got {self.max_new_tokens}, {self.batch_size}")
        if self.tokenizer.pad_token_id is None:
            if self.tokenizer.eos_token_id is None:
                raise ValueError("the tokenizer has neither a padding nor an end-of-sequence token")
            self.tokenizer.pad_token = self.tokenizer.eos_token
        if self.use_chat_template is None:
            self.use_chat_template = bool(getattr(self.tokenizer, "chat_template", None))

    def _text(self, prompt: str) -> str:
        if self.use_chat_template:
            return self.tokenizer.apply_chat_template([{"role": "user", "content": prompt}],
                                                      add_generation_prompt=True, tokenize=False)
        return prompt

    def __call__(self, prompts: Sequence[str]) -> list[str]:
        import torch  # deferred: torch; raykd.traces is the torch-free text form

        tok, model = self.tokenizer, self.model
        side, tok.padding_side = tok.padding_side, "left"
        device = next(model.parameters()).device
        was_training = model.training
        model.eval()
        out: list[str] = []
        try:
            with torch.inference_mode():
                for start in range(0, len(prompts), self.batch_size):
                    batch = [self._text(p) for p in prompts[start : start + self.batch_size]]
                    enc = tok(batch, return_tensors="pt", padding=True, add_special_tokens=False).to(device)
                    ids = model.generate(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"],
                                         max_new_tokens=self.max_new_tokens, do_sample=False,
                                         pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id)
                    out.extend(tok.batch_decode(ids[:, enc["input_ids"].shape[1] :], skip_special_tokens=True))
        finally:
            tok.padding_side = side
            model.train(was_training)
        return out


def llm_prune_traces(traces: Sequence[Trace], problems: Sequence[Problem], generate: Generator) -> PruneOutcome:
    """Have `generate` shorten each trace (one per problem, in order); keep a rewrite only where it
    parses, reaches the gold answer and is shorter, else keep the original and count why not."""
    if len(traces) != len(problems):
        raise ValueError(f"{len(traces)} traces for {len(problems)} problems")
    texts = generate([pruning_prompt(p, t) for t, p in zip(traces, problems)])
    if len(texts) != len(traces):
        raise ValueError(f"the generator returned {len(texts)} texts for {len(traces)} prompts")
    outcome = PruneOutcome()
    for trace, problem, text in zip(traces, problems, texts):
        candidate = read_generation(text)
        if candidate is None:
            outcome.traces.append(trace)
            outcome.pruned.append(False)
            outcome.rejected["no-answer-line"] += 1
        elif len(candidate.render()) >= len(trace.render()):
            outcome.traces.append(trace)
            outcome.pruned.append(False)
            outcome.rejected["not-shorter"] += 1
        else:
            accept(trace, candidate, problem, outcome)
    return outcome

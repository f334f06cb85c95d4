"""The speed of a model that writes traces: generation time per problem, priced per token.

A reasoning model's user waits for prompt + tokens x time per token. A latency table
(`raykd.measure.latency`) prices a *shape*: timed on the `generate` workload (exactly
`max_new_tokens` tokens a call), its figure for a shape is that shape's cost per call, so its
ratio to the teacher's is the per-token speedup of the shape. It cannot see how many tokens a
model writes, which trace pruning changes on the same weights. The trial's own validation
generations can (`tokens_mean`, reported by the trace task's evaluation), so

    time per problem  ~  price(shape) x (prompt_tokens + tokens written)
    speedup           =  table speedup x (prompt_tokens + teacher's tokens) / (prompt_tokens + model's tokens)

with `prompt_tokens` the prompt's cost in decode steps of the same shape (0: the prefill is
spread over the timed tokens, inside the per-token price). Same tokens: the table's figure;
fewer tokens at the same price: faster. A missing token count is an error, never the table's
figure alone: that would put shape-only and token-priced figures on one front.

`prompt_tokens` can be measured rather than assumed: `prefill` runs a generation's prompt work
alone (one token, so the prefill and nothing after it), and `split_prefill` takes it apart from a
timed end-to-end generation of the same batch: decode time per token, and the prompt's cost in
decode steps of that shape (the `prompt_tokens` above).

No torch or Ray import (`prefill` only calls the model's `generate`): the chain calls
`token_priced_fields` after its measure; timing is the caller's (`raykd.measure.compare_latency`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from raykd.errors import ConfigError

TOKEN_PRICED_SOURCE = "latency table x tokens"
"""The `speedup_source` of a token-priced figure (the table's per-token price x the trial's tokens)."""
TABLE_SOURCE = "latency table"  # what raykd.method's measure writes when a table priced the shape
PRICED_WORKLOAD = "generate"
"""The workload a table must be timed on to price a shape per token: exactly max_new_tokens a call
(`generate-e2e` lets each untrained variant of the table stop when it likes)."""


class TokenCountError(ValueError):
    """A token count that cannot price a generation (missing, negative, not finite)."""


def _tokens(value: Any, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
        raise TokenCountError(f"{what} must be a finite number of tokens >= 0, got {value!r}")
    return float(value)


def token_priced_speedup(table_speedup: float, reference_tokens: float, model_tokens: float, *,
                         prompt_tokens: float = 0.0) -> float:
    """End-to-end generation speedup of a model over its teacher: the table's per-token speedup
    of the model's shape times the ratio of (prompt + tokens written) per problem, teacher over
    model. `prompt_tokens`: the prompt's cost in decode steps (0: inside the per-token price)."""
    if isinstance(table_speedup, bool) or not isinstance(table_speedup, (int, float)) or not (
            math.isfinite(table_speedup) and table_speedup > 0):
        raise ValueError(f"the table speedup must be a finite number > 0, got {table_speedup!r}")
    ref = _tokens(reference_tokens, "the teacher's tokens per problem")
    own = _tokens(model_tokens, "the model's tokens per problem")
    prompt = _tokens(prompt_tokens, "the prompt's cost in tokens")
    if ref + prompt <= 0 or own + prompt <= 0:
        raise TokenCountError(f"a generation of {own:g} tokens against the teacher's {ref:g}, with no prompt cost, has "
                              "no time to compare")
    return float(table_speedup) * (prompt + ref) / (prompt + own)


def generates_traces(task: Any) -> bool:
    """Whether `task`'s speed is generation time per problem: the causal-LM task in trace mode."""
    return getattr(task, "output", None) == "trace"


END_TO_END_WORKLOAD = "generate-e2e"
"""What measures a trace model's generation time directly: generation until every answer is done."""


def retime_workload(task: Any, workload: str) -> str:
    """The workload that re-times a front side by side (`raykd.analysis.retime`): for a trace task
    priced per token, end-to-end generation, which measures what the token-priced figure
    estimates; otherwise the sweep's own `workload`."""
    return END_TO_END_WORKLOAD if generates_traces(task) and workload == PRICED_WORKLOAD else workload


def check_priced_workload(workload: Any) -> None:
    """ConfigError unless a latency table timed on `workload` prices a trace model's shape per token."""
    if workload != PRICED_WORKLOAD:
        raise ConfigError(f"a latency table timed on {workload!r} cannot price a trace model per token: time it on "
                          f"{PRICED_WORKLOAD!r} (exactly max_new_tokens a call; a sweep: fixed.latency_workload: "
                          f"{PRICED_WORKLOAD}), or use measured speed (speed: {{source: measured}})")


def token_priced_fields(task: Any, measured: Mapping[str, Any], model_valid: Mapping[str, Any] | None,
                        teacher_valid: Mapping[str, Any] | None, *, prompt_tokens: float = 0.0) -> dict[str, Any]:
    """The fields that replace a round's table-priced `speedup` for a trace task (nothing for any
    other task, or where no table priced the shape: a measured `generate-e2e` figure already
    counts the tokens). `measured`: the measure's record; `model_valid` / `teacher_valid`: the
    round's and the teacher's valid metrics, whose `tokens_mean` are the tokens written.
    TokenCountError where either has no token count; ConfigError where the table was not timed
    on `generate`."""
    if not generates_traces(task) or measured.get("speedup_source") != TABLE_SOURCE:
        return {}
    check_priced_workload(measured.get("latency_workload"))
    own = (model_valid or {}).get("tokens_mean")
    ref = (teacher_valid or {}).get("tokens_mean")
    if own is None or ref is None:
        whose = " and ".join(w for w, v in (("the model's", own), ("the teacher's", ref)) if v is None)
        raise TokenCountError(f"{whose} valid metrics hold no tokens_mean: a trace model's speed is priced per token "
                              "written, and without the count it has none")
    return {"table_speedup": measured["speedup"],
            "speedup": token_priced_speedup(measured["speedup"], ref, own, prompt_tokens=prompt_tokens),
            "speedup_source": TOKEN_PRICED_SOURCE, "speedup_tokens": float(own), "speedup_reference_tokens": float(ref),
            "speedup_prompt_tokens": float(prompt_tokens)}


def prefill(model: Any, batch: Mapping[str, Any], *, pad_token_id: int, eos_token_id: int | None = None) -> Any:
    """A generation's prompt work alone: greedy generation of ONE token for the batch's left-padded
    prompts (`prompt_ids`, `prompt_mask`), i.e. the forward pass over the prompts that fills the KV
    cache and picks the first token, through the very code path `generate` takes before its first
    decode step (no second forward). Returns the (B, prompt width + 1) ids. Time it beside the
    task's `generate-e2e` workload on the same batch and give both to `split_prefill`."""
    device = next(model.parameters()).device
    return model.generate(input_ids=batch["prompt_ids"].to(device), attention_mask=batch["prompt_mask"].to(device),
                          max_new_tokens=1, do_sample=False, pad_token_id=pad_token_id, eos_token_id=eos_token_id)


def split_prefill(e2e_ms: float, prefill_ms: float, generated: int) -> dict[str, float]:
    """A timed end-to-end generation of a batch taken apart: `e2e_ms` the whole generation,
    `prefill_ms` the prompt work alone (`prefill`, same batch), `generated` the tokens the batch
    generated (its longest answer: a batch decodes until its last sequence is done). The prefill
    gives the first token; each of the other `generated - 1` costs one decode step, so

        decode_ms_per_token = (e2e_ms - prefill_ms) / (generated - 1)
        prompt_tokens       = prefill_ms / decode_ms_per_token - 1

    (e2e = decode_ms_per_token x (prompt_tokens + generated): the prompt's cost in decode steps
    beyond its first token's own, at least 0), which is what `token_priced_speedup` takes: with
    it, the token-priced figure of two generations of one shape is their measured time ratio.
    TokenCountError where the figures cannot be split: fewer than 2 tokens generated (no decode
    step to price), or a prefill timed no faster than the whole generation (noise on a short one)."""
    for value, what in ((e2e_ms, "the end-to-end time"), (prefill_ms, "the prefill time")):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
            raise TokenCountError(f"{what} must be a finite number of ms > 0, got {value!r}")
    if isinstance(generated, bool) or not isinstance(generated, int) or generated < 2:
        raise TokenCountError(f"a generation of {generated!r} tokens has no decode step to price: the prompt's cost "
                              "cannot be told from the tokens'")
    if e2e_ms <= prefill_ms:
        raise TokenCountError(f"the prefill ({prefill_ms:.3g} ms) timed no faster than the whole generation "
                              f"({e2e_ms:.3g} ms) of {generated} tokens: time more repeats or longer generations")
    per_token = (e2e_ms - prefill_ms) / (generated - 1)
    return {"e2e_ms": float(e2e_ms), "prefill_ms": float(prefill_ms), "decode_ms": float(e2e_ms - prefill_ms),
            "decode_ms_per_token": per_token, "generated": generated,
            "prompt_tokens": max(0.0, prefill_ms / per_token - 1.0),
            "prefill_share": prefill_ms / e2e_ms}

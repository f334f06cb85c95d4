"""The speed of a model that writes traces: generation time per problem, priced per token.

A reasoning model's user waits for prompt + tokens x time per token. A latency table
(`raykd.method.latency_table`) prices a *shape*: timed on the `generate` workload (exactly
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

Pure Python (no torch, no Ray): the chain calls `token_priced_fields` after its measure.
"""

from __future__ import annotations

import math
from typing import Any, Mapping

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

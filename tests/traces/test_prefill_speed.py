"""The prompt's cost measured apart from the generated tokens' (`raykd.traces.speed.prefill`,
`split_prefill`): issue 37 asks for end-to-end generation time with the prompt (prefill) cost
measured separately.

`prefill` on a real tiny random Llama runs one forward pass over the prompts (the KV cache filled,
the first token picked) and nothing after it, and picks the first token `generate-e2e` writes;
`split_prefill` on hand-computed timings, whose `prompt_tokens` makes the token-priced speedup
equal the measured time ratio. No timing here (speed figures belong in bench/)."""

from __future__ import annotations

import pytest
from trace_models import tiny_llama, trace_tokenizer

from raykd.data import load_splits
from raykd.task.causal_lm import CausalLMTask
from raykd.traces.speed import (
    TokenCountError,
    prefill,
    split_prefill,
    token_priced_speedup,
)


@pytest.fixture(scope="module")
def task():
    splits = load_splits("synthetic:24", seed=0)
    return CausalLMTask(trace_tokenizer(splits), splits, output="trace", max_target_len=400, max_new_tokens=12)


def _prompts(task: CausalLMTask, n: int):
    return task.prompt_batch("valid", range(n))


def test_prefill_is_one_forward_over_the_prompts_and_gives_the_first_generated_token(task):
    model = tiny_llama(len(task.tokenizer)).eval()
    eos = task.tokenizer.eos_token_id
    model.generation_config.suppress_tokens = [eos, *task.newline_ids().tolist()]  # the e2e run writes all 12
    batch = _prompts(task, 3)
    calls: list[int] = []
    hook = model.register_forward_hook(lambda _m, args, kwargs, _out: calls.append(kwargs["input_ids"].shape[1]),
                                       with_kwargs=True)
    try:
        first = prefill(model, batch, pad_token_id=task.tokenizer.pad_token_id, eos_token_id=eos)
        prefill_calls = list(calls)
        calls.clear()
        full = task.run(model, batch, "generate-e2e")
    finally:
        hook.remove()
    width = batch["prompt_ids"].shape[1]
    assert prefill_calls == [width]  # one pass, over the whole prompt: no decode step
    assert first.shape == (3, width + 1)
    assert full.shape[1] == 12 and len(calls) == 12 and calls[0] == width and set(calls[1:]) == {1}
    assert first[:, width].tolist() == full[:, 0].tolist()  # the same first token as the full generation


def test_split_prefill_takes_a_generation_apart():
    split = split_prefill(100.0, 20.0, 9)  # 8 decode steps after the prefill's own token
    assert split["decode_ms"] == 80.0 and split["decode_ms_per_token"] == 10.0
    assert split["prompt_tokens"] == 1.0  # 20 ms = 2 decode steps, one of them the first token's own
    assert split["prefill_share"] == 0.2
    assert split_prefill(50.0, 5.0, 10)["prompt_tokens"] == 0.0  # a prefill as cheap as one step: no extra cost


def test_the_measured_prompt_cost_makes_the_token_priced_speedup_the_measured_ratio():
    """Two generations of one shape (same prefill, same cost per token), 40 and 10 tokens."""
    prefill_ms, per_token = 30.0, 5.0
    long_ms, short_ms = prefill_ms + 39 * per_token, prefill_ms + 9 * per_token
    prompt = split_prefill(long_ms, prefill_ms, 40)["prompt_tokens"]
    assert split_prefill(short_ms, prefill_ms, 10)["prompt_tokens"] == pytest.approx(prompt)
    assert token_priced_speedup(1.0, 40, 10, prompt_tokens=prompt) == pytest.approx(long_ms / short_ms)
    assert token_priced_speedup(1.0, 40, 10) > long_ms / short_ms  # prefill ignored: the token cut overstated


@pytest.mark.parametrize("e2e, pre, n, match", [
    (100.0, 20.0, 1, "no decode step"), (100.0, 20.0, True, "no decode step"), (100.0, 20.0, 2.5, "no decode step"),
    (20.0, 20.0, 9, "timed no faster"), (10.0, 20.0, 9, "timed no faster"), (0.0, 20.0, 9, "end-to-end time"),
    (float("nan"), 20.0, 9, "end-to-end time"), (100.0, -1.0, 9, "prefill time"), (100.0, None, 9, "prefill time"),
])
def test_figures_that_cannot_be_split_are_an_error(e2e, pre, n, match):
    with pytest.raises(TokenCountError, match=match):
        split_prefill(e2e, pre, n)

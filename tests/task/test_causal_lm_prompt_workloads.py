"""The causal-LM task's public prompt-only batches and its `prefill` workload (issue 37's gaps).

`prompt_batch` / `prompt_batches` are the batches evaluation generates on (the benchmark's side-by-
side timing builds them too); `prefill` is a workload like the others, so `make_measure`, a latency
table or `compare_latency` time the prompt's cost by name, through the very call
`raykd.traces.speed.prefill` makes. Real parts: raykd's WordPiece with a newline token and a tiny
random Llama. No timing is asserted (speed figures belong in bench/)."""

from __future__ import annotations

import pytest
import torch
from trace_models import tiny_llama, trace_tokenizer

from raykd.data import load_splits
from raykd.errors import ConfigError
from raykd.measure import compare_latency
from raykd.method.round_cost import make_measure
from raykd.task.causal_lm import CausalLMTask
from raykd.task.causal_lm_plugin import CausalLMPlugin
from raykd.task_interface import resolve_workload
from raykd.traces.format import cut_at_answer
from raykd.traces.speed import prefill

NEW = 6


@pytest.fixture(scope="module")
def splits():
    return load_splits("synthetic:30", seed=0)


@pytest.fixture(scope="module")
def tokenizer(splits):
    return trace_tokenizer(splits)


@pytest.fixture(scope="module", params=["expression", "trace"])
def task(request, splits, tokenizer):
    extra = {"max_target_len": 400} if request.param == "trace" else {}
    return CausalLMTask(tokenizer, splits, output=request.param, max_new_tokens=NEW, eval_batch_size=4, **extra)


@pytest.fixture(scope="module")
def model(tokenizer):
    return tiny_llama(len(tokenizer)).eval()


def test_a_prompt_batch_holds_the_prompts_left_padded_without_targets(task):
    prompts = task.prompt_ids("valid")
    batch = task.prompt_batch("valid", [2, 0])
    width = max(len(prompts[2]), len(prompts[0]))
    assert batch["problem_index"].tolist() == [2, 0]
    assert batch["prompt_ids"].shape == (2, width) and not batch["target_mask"].any()
    for row, i in enumerate((2, 0)):
        real = batch["prompt_mask"][row].bool()
        assert batch["prompt_ids"][row][real].tolist() == prompts[i]
        assert not real[: width - len(prompts[i])].any() and real[width - len(prompts[i]):].all()  # padding on the left
        assert batch["input_ids"][row][: len(prompts[i])].tolist() == prompts[i]


def test_prompt_batches_cover_the_split_in_order_and_stop_at_the_limit(task):
    n = task.num_examples("valid")
    seen = [b["problem_index"].tolist() for b in task.prompt_batches("valid", 4)]
    assert [i for b in seen for i in b] == list(range(n)) and all(len(b) == 4 for b in seen[:-1])
    assert [b["problem_index"].tolist() for b in task.prompt_batches("valid", 2, limit=3)] == [[0, 1], [2]]
    assert [b["problem_index"].tolist() for b in task.prompt_batches("valid", 8, limit=10**6)] == [
        list(range(s, min(s + 8, n))) for s in range(0, n, 8)]


@pytest.mark.parametrize("indices, error", [([], ValueError), ([0, 999], IndexError), ([-1], IndexError)])
def test_a_prompt_batch_of_no_problem_or_one_outside_the_split_is_an_error(task, indices, error):
    with pytest.raises(error):
        task.prompt_batch("valid", indices)
    with pytest.raises(KeyError):
        task.prompt_batch("nosuch", [0])


def test_evaluation_generates_on_the_public_prompt_batches(task, model):
    """What `predict` writes for a problem is what `generate` writes on its prompt batch."""
    texts = [t for _p, t, _ok in task.predict(model, "valid")]
    with torch.inference_mode():
        for batch in task.prompt_batches("valid", task.eval_batch_size):
            new = task.generate(model, batch, until_done=task.output == "trace")
            for i, seq in zip(batch["problem_index"].tolist(), new.tolist()):
                text = task.tokenizer.decode(seq, skip_special_tokens=True)
                assert texts[i] == (cut_at_answer(text) if task.output == "trace" else text)


def test_prefill_is_a_workload_of_both_outputs_after_the_default(task):
    names = list(task.workloads)
    assert "prefill" in names and names[0] == ("generate-e2e" if task.output == "trace" else "generate")
    assert resolve_workload(task, "prefill") == "prefill"
    with pytest.raises(ConfigError, match=r"is not one of this task's workloads: default, .*prefill"):
        resolve_workload(task, "warp")
    plugin = CausalLMPlugin(output=task.output)
    assert "prefill" in plugin.workloads and next(iter(plugin.workloads)) == names[0]


def test_the_prefill_workload_is_the_prefill_function(task, model):
    """One forward over the prompts (KV cache, first token), the same ids as raykd.traces.speed.prefill."""
    batch = task.prompt_batch("valid", [0, 1, 2])
    calls: list[int] = []
    hook = model.register_forward_hook(lambda _m, _a, kwargs, _o: calls.append(kwargs["input_ids"].shape[1]),
                                       with_kwargs=True)
    try:
        with torch.inference_mode():
            out = task.run(model, batch, "prefill")
    finally:
        hook.remove()
    width = batch["prompt_ids"].shape[1]
    assert calls == [width] and out.shape == (3, width + 1)
    with torch.inference_mode():
        same = prefill(model, batch, pad_token_id=task.tokenizer.pad_token_id, eos_token_id=task.tokenizer.eos_token_id)
        first = task.run(model, batch, "generate")[:, 0]
    assert torch.equal(out, same) and out[:, width].tolist() == first.tolist()


def test_the_prefill_workload_is_timed_by_name(task, model):
    batch = task.prompt_batch("valid", [0, 1])
    record = make_measure(task, repeats=1, warmup=0, threads=1, workload="prefill")(model, model, batch)
    assert record["latency_workload"] == "prefill" and record["latency_ms"] > 0
    lat = compare_latency({"e2e": lambda: task.run(model, batch, "generate-e2e"),
                           "prefill": lambda: task.run(model, batch, "prefill")}, warmup=0, rounds=1, num_threads=1)
    assert set(lat.stats) == {"e2e", "prefill"}

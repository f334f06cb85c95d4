"""The causal-LM math task on a tiny random Llama (no download): the gold target is judged right
by the answer checker and a wrong one wrong, the loss covers target tokens only, evaluation
generates with a KV cache and returns n, interval and pairable bits, the timed workload generates
a fixed number of tokens, and one structured prune -> distill round runs through the chain."""

from __future__ import annotations

import pytest
import torch
from transformers import LlamaConfig, LlamaForCausalLM

from raykd.data import load_splits
from raykd.method.chain import Chain
from raykd.method.config import ChainConfig
from raykd.structures import head_counts, layer_counts
from raykd.task.causal_lm import CausalLMTask, generated_value, target_expression
from raykd.task.hf_io import CausalLMIO
from raykd.task.encoders import train_tiny_tokenizer


@pytest.fixture(scope="module")
def splits():
    return load_splits("synthetic:80", seed=0)


@pytest.fixture(scope="module")
def tokenizer(splits):
    texts = [p.text for s in splits.values() for p in s] + [target_expression(p) for s in splits.values() for p in s]
    tok = train_tiny_tokenizer(texts + ["Problem: Expression: + - * / ^ ( ) . 0 1 2 3 4 5 6 7 8 9"], vocab_size=400)
    tok.eos_token = "[SEP]"
    return tok


def _llama(vocab: int) -> LlamaForCausalLM:
    torch.manual_seed(0)
    return LlamaForCausalLM(LlamaConfig(vocab_size=vocab, hidden_size=48, intermediate_size=64, num_hidden_layers=3,
                                        num_attention_heads=6, num_key_value_heads=2, head_dim=8,
                                        max_position_embeddings=256, pad_token_id=0))


def test_the_gold_expression_is_right_a_wrong_one_is_wrong_and_nothing_is_evaluated_as_code(splits):
    p = splits["train"][0]
    assert generated_value(p, " " + target_expression(p) + "\nmore text") == pytest.approx(p.answer)
    assert generated_value(p, "1 + 1") == 2.0
    assert generated_value(p, "15 + 48 = 92\nso 92 were sold") == 63.0  # the expression, not the claimed result
    assert generated_value(p, "The answer is 43.") == 43.0  # no expression: the last number
    assert generated_value(p, "__import__('os')") is None and generated_value(p, "") is None


def test_batches_mark_target_tokens_only_and_left_pad_prompts(splits, tokenizer):
    task = CausalLMTask(tokenizer, splits)
    batch = next(task.batches("train", 4))
    prompt, target = task.encoded("train")[0]
    assert batch["target_mask"][0].sum() == len(target) and target[-1] == tokenizer.eos_token_id
    assert batch["input_ids"][0, : len(prompt)].tolist() == prompt
    assert batch["prompt_mask"][:, -1].all()  # every prompt ends at the right edge (left padding)
    assert tokenizer.decode(target, skip_special_tokens=True).replace(" ", "") == target_expression(splits["train"][0]).replace(" ", "")


def test_training_lowers_the_target_loss_and_evaluation_generates_with_n_interval_and_bits(splits, tokenizer):
    task = CausalLMTask(tokenizer, splits, max_new_tokens=12)
    model = _llama(len(tokenizer))
    batch = next(task.batches("train", 16))
    with torch.no_grad():
        before = float(task.outputs(model, batch).loss)
    optimiser = torch.optim.Adam(model.parameters(), lr=3e-3)
    for _ in range(30):  # the task's loss is a trainable target-token loss
        optimiser.zero_grad()
        task.outputs(model, batch).loss.backward()
        optimiser.step()
    with torch.no_grad():
        after = float(task.outputs(model.eval(), batch).loss)
    assert after < before * 0.5
    metrics = task.evaluate(model, "valid")
    assert metrics["n"] == len(splits["valid"]) and 0 <= metrics["ci_low"] <= metrics["accuracy"] <= metrics["ci_high"]
    assert isinstance(metrics["correct_bits"], str) and 0.0 <= metrics["parse_rate"] <= 1.0
    timed = task.run(model.eval(), next(task.batches("valid", 2)))
    assert timed.shape == (2, 12)  # the default workload generates exactly max_new_tokens


def test_one_structured_round_prunes_a_gqa_llm_and_distills_it_on_the_math_task(splits, tokenizer, tmp_path):
    task = CausalLMTask(tokenizer, splits, max_new_tokens=8)
    model = _llama(len(tokenizer)).eval()
    cfg = ChainConfig(p_min=0.34, p_max=0.34, ffn_p_min=0.25, ffn_p_max=0.25, layer_p_min=0.34, layer_p_max=0.34, rounds=1,
                      lambda3=1.0, epochs_per_round=1, batch_size=8, lr=1e-3, calib_batches=2, calib_batch_size=8)
    result = Chain(task, model, cfg, CausalLMIO(model.config.to_dict()), tmp_path / "chain", measure=lambda r, m, b: {},
                   progress=False, log=lambda _m: None).run()
    assert layer_counts(result.model) == {"decoder_layers": 2}
    # floor(0.34 x 12) = 4 of the surviving layers' 12 heads, in within-group units of 2 (one per K/V group)
    assert sum(head_counts(result.model)["decoder_self"]) == 8
    assert all(h % 2 == 0 for h in head_counts(result.model)["decoder_self"])
    assert result.final["accuracy_n"] == len(splits["valid"]) and "accuracy_p_vs_teacher" in result.final

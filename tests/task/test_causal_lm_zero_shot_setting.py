"""The causal-LM teacher's zero-shot evaluation is a setting (`teacher: {zero_shot: BOOL}`).

Before it, `CausalLMPlugin.train_teacher_on` evaluated every non-tiny base model on valid before
training (for SmolLM2 writing traces: minutes of generation on CPU), with no way to turn it off.
Real parts: the `tiny` causal LM, fine-tuned for one step, and a tiny Llama saved as a local model
directory."""

from __future__ import annotations

import pytest

from raykd.data import load_splits
from raykd.errors import ConfigError
from raykd.task.causal_lm import target_expression
from raykd.task.causal_lm_models import tiny_causal_lm
from raykd.task.causal_lm_plugin import CausalLMPlugin, zero_shot_wanted


@pytest.fixture(scope="module")
def plugin():
    return CausalLMPlugin(max_new_tokens=3, eval_batch_size=16)


@pytest.fixture(scope="module")
def splits():
    return {k: v[:8] for k, v in load_splits("synthetic:40", seed=0).items() if k in ("train", "valid")}


@pytest.mark.parametrize("value", ["no", 0, 1, None, "false"])
def test_zero_shot_must_be_a_boolean(plugin, value):
    with pytest.raises(ConfigError, match=r"^teacher\.zero_shot must be true or false, got "):
        plugin.teacher_settings({"model": "tiny", "zero_shot": value})


def test_zero_shot_is_only_in_the_settings_where_given(plugin):
    assert plugin.teacher_settings({"model": "tiny", "zero_shot": False}) == {"model": "tiny", "epochs": 3,
                                                                            "zero_shot": False}
    assert "zero_shot" not in plugin.teacher_settings({"model": "tiny"})  # the default: settings as before
    assert plugin.teacher_settings(None) == {"model": "smollm2", "epochs": 3}


def test_the_default_is_todays_behaviour():
    assert zero_shot_wanted({}, "smollm2") and zero_shot_wanted({}, "/some/dir") and not zero_shot_wanted({}, "tiny")
    assert not zero_shot_wanted({"zero_shot": False}, "smollm2") and zero_shot_wanted({"zero_shot": True}, "tiny")


def test_the_teacher_report_follows_the_setting(plugin, splits, tmp_path):
    on = plugin.train_teacher_on(splits, {"model": "tiny", "max_steps": 1, "zero_shot": True}, tmp_path / "tiny")
    assert on["zero_shot_valid"]["n"] == len(splits["valid"])  # asked for: evaluated, even for tiny
    model, tokenizer = tiny_causal_lm([t for p in splits["train"] for t in (p.text, target_expression(p))])
    model.save_pretrained(tmp_path / "base")
    tokenizer.save_pretrained(tmp_path / "base")
    base = str(tmp_path / "base")  # a local model directory: evaluated by default, as before
    default = plugin.train_teacher_on(splits, {"model": base, "max_steps": 1}, tmp_path / "default")
    off = plugin.train_teacher_on(splits, {"model": base, "max_steps": 1, "zero_shot": False}, tmp_path / "off")
    assert default["zero_shot_valid"]["n"] == len(splits["valid"]) and "accuracy" in default["zero_shot_valid"]
    assert off["zero_shot_valid"] is None
    assert off["valid"]["n"] == len(splits["valid"])  # the fine-tune itself is unchanged: still early-stops on valid

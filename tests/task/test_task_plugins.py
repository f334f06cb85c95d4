"""raykd's two task plug-ins and the example plug-in behind one interface: a teacher trained from
a data spec, saved, loaded back as (model, task, IO) with identical outputs, its data fingerprint
equal to the task's, settings validated by name; the CLI's teacher and chain run any of them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from raykd.errors import ConfigError, ModelFormatError
from raykd.task.registry import load_task_plugin

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


@pytest.fixture(scope="module")
def lm_teacher(tmp_path_factory):
    plugin = load_task_plugin({"name": "causal-lm", "max_new_tokens": 12, "eval_batch_size": 8})
    out = tmp_path_factory.mktemp("lm") / "teacher"
    report = plugin.train_teacher("synthetic:60", {"model": "tiny", "epochs": 1}, out, seed=0, log=lambda _m: None)
    return plugin, out, report


def test_a_causal_lm_teacher_trains_saves_and_loads_back_with_its_task(lm_teacher, tmp_path):
    plugin, out, report = lm_teacher
    assert report["valid"]["n"] == 6 and 0 <= report["valid"]["accuracy"] <= 1 and "correct_bits" in report["valid"]
    config = json.loads((out / "config.json").read_text())
    assert config["model_kind"] == "raykd-causal-lm" and config["auto_class"] == "AutoModelForCausalLM"
    assert config["training"]["model"] == "tiny" and len(config["weights_sha256"]) == 64
    loaded = plugin.load(out, "synthetic:60")
    assert loaded.task.max_new_tokens == 12 and loaded.task.fingerprint() == plugin.data_fingerprint("synthetic:60")
    assert plugin.data_fingerprint("synthetic:61") != plugin.data_fingerprint("synthetic:60")
    batch = next(loaded.task.batches("valid", 4))
    loaded.io.save(loaded.model, tmp_path / "copy", {"note": "round trip"})
    again = loaded.io.load(tmp_path / "copy")
    with torch.no_grad():
        a = loaded.model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
        b = again(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
    assert torch.equal(a, b)


def test_a_torn_weights_file_is_refused_by_its_checksum(lm_teacher, tmp_path):
    import shutil

    plugin, out, _ = lm_teacher
    copy = tmp_path / "torn"
    shutil.copytree(out, copy)
    data = bytearray((copy / "model.safetensors").read_bytes())
    data[-1] ^= 0xFF  # same size and header: only the checksum can tell
    (copy / "model.safetensors").write_bytes(bytes(data))
    with pytest.raises(ModelFormatError, match="does not match the checksum"):
        plugin.load(copy, "synthetic:60")


@pytest.mark.parametrize("task, raw, message", [
    ("causal-lm", {"model": "tiny", "path": "x"}, "exactly one of model (what to fine-tune) or path"),
    ("causal-lm", {"model": "tiny", "epoch": 2}, "teacher has unknown key(s) epoch"),
    ("causal-lm", {"model": "tiny", "lr": "fast"}, "teacher.lr must be a non-negative number"),
    ("mwp", {"preset": "tiny", "encoder": "minilm"}, "teacher needs exactly one of preset, encoder, path"),
    ("mwp", {"preset": "big"}, "teacher.preset must be tiny"),
])
def test_teacher_settings_are_validated_by_the_task(task, raw, message):
    with pytest.raises(ConfigError) as info:
        load_task_plugin(task).teacher_settings(raw)
    assert message in str(info.value)


def test_defaults_differ_by_task():
    assert load_task_plugin("mwp").teacher_settings(None) == {"preset": "tiny", "epochs": 20}
    assert load_task_plugin("causal-lm").teacher_settings(None) == {"model": "smollm2", "epochs": 3}
    assert load_task_plugin("causal-lm").teacher_settings({"model": "tiny"}) == {"model": "tiny", "epochs": 3}
    assert load_task_plugin("causal-lm").teacher_settings({"epochs": 1}) == {"model": "smollm2", "epochs": 1}


def test_the_cli_trains_and_chains_a_user_plugin(tmp_path, capsys, monkeypatch):
    from raykd.cli import main

    monkeypatch.syspath_prepend(str(EXAMPLES))
    task = ["--task", "majority_task:make_task"]
    assert main(["teacher", *task, "--data", "majority:300", "--epochs", "3", "--out", str(tmp_path / "t"), "--quiet",
                 "--set", "hidden_size=32", "--set", "heads=2", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["task"] == "majority" and report["valid"]["n"] == 30
    assert main(["chain", *task, "--teacher", str(tmp_path / "t"), "--data", "majority:300", "--out", str(tmp_path / "c"),
                 "--set", "rounds=1", "--set", "p_max=0.5", "--set", "ffn_p_max=0.5", "--set", "latency_repeats=2",
                 "--quiet", "--json"]) == 0
    chain = json.loads(capsys.readouterr().out)
    (record,) = chain["rounds"]
    assert chain["task"] == "majority" and record["heads_total"] == 2 < record["heads_original"] == 4
    assert record["structures"]["ffn_channels"] < record["structures_original"]["ffn_channels"]
    assert record["accuracy_n"] == 30 and record["accuracy_p_vs_teacher"] is not None  # the paired test ran


@pytest.mark.parametrize("argv, message", [
    (["--task", "causal-lm", "--model", "tiny", "--encoder-layers", "3"], "--encoder-layers is for the mwp teacher only"),
    (["--model", "tiny"], "--model is for --task causal-lm or a plug-in"),
    (["--task", "causal-lm", "--set", "epoch=2"], "teacher has unknown key(s) epoch"),
    (["--task", "causal-lm", "--model", "./no/such/dir"], "model path ./no/such/dir does not exist"),
])
def test_the_teacher_cli_refuses_flags_of_another_task_in_one_line(tmp_path, capsys, argv, message):
    from raykd.cli import main

    code = main(["teacher", "--data", "synthetic:40", "--out", str(tmp_path / "t"), "--quiet", *argv])
    err = capsys.readouterr().err
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "t").exists() and not [p for p in tmp_path.iterdir() if p.name.startswith(".t")]


def test_a_causal_lm_pruned_by_the_cli_exports_as_a_stock_model_that_generates_the_same_tokens(lm_teacher, tmp_path, capsys):
    from transformers import AutoModelForCausalLM

    from raykd.cli import main
    from raykd.structures import ffn_widths, head_counts, layer_counts

    plugin, out, _ = lm_teacher
    assert main(["prune", "--task", "causal-lm", "--model", str(out), "--calib", "synthetic:60", "--ratio", "0.5",
                 "--ffn-ratio", "0.25", "--uniform", "--calib-batches", "2", "--out", str(tmp_path / "pruned"), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["heads"] == {"decoder_self": [2, 2]} and summary["ffn"] == {"decoder_ffn": [96, 96]}
    pruned = plugin.load(tmp_path / "pruned", "synthetic:60")
    assert head_counts(pruned.model) == {"decoder_self": [2, 2]} and layer_counts(pruned.model) == {"decoder_layers": 2}
    assert main(["export", "--model", str(tmp_path / "pruned"), "--hf", "--out", str(tmp_path / "hf"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["hf_shape"]["num_attention_heads"] == 2
    stock = AutoModelForCausalLM.from_pretrained(str(tmp_path / "hf")).eval()  # plain transformers, no raykd
    assert stock.config.num_key_value_heads == 2 and ffn_widths(stock) == {"decoder_ffn": [96, 96]}
    batch = next(pruned.task.batches("valid", 4))
    assert torch.equal(pruned.task.generate(stock, batch), pruned.task.generate(pruned.model, batch))

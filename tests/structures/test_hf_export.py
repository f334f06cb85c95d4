"""`raykd export --hf`: a uniformly pruned encoder as a stock Transformers directory, loaded in a
Python that never imports raykd, giving raykd's outputs; shapes a stock config cannot hold are
refused by name, with nothing written."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch

from raykd.cli import main
from raykd.structures import drop_layers, prune_ffn, prune_heads
from raykd.task.io import load_solver, save_solver

STOCK_LOADER = r"""
import json, sys
import torch
from transformers import AutoModel
model = AutoModel.from_pretrained(sys.argv[1]).eval()
batch = json.loads(open(sys.argv[2]).read())
with torch.no_grad():
    out = model(input_ids=torch.tensor(batch["input_ids"]), attention_mask=torch.tensor(batch["attention_mask"]))
assert not any(name == "raykd" or name.startswith("raykd.") for name in sys.modules), "raykd was imported"
json.dump({"hidden": out.last_hidden_state.tolist(), "layers": model.config.num_hidden_layers,
           "intermediate": model.config.intermediate_size, "class": type(model).__name__}, open(sys.argv[3], "w"))
"""


def _pruned_solver(tiny_teacher_dir, tmp_path, change):
    model, tok, _ = load_solver(tiny_teacher_dir)
    change(model)
    save_solver(model, tok, tmp_path / "solver")
    return model, tok


def _uniform(model):
    drop_layers(model, {"encoder_layers": [0], "decoder_layers": [1]})
    w = model.encoder.config.intermediate_size
    prune_ffn(model, {"encoder_ffn": {0: list(range(0, w, 2))}, "decoder_ffn": {0: [0, 1, 2]}})


def test_an_exported_uniform_encoder_loads_with_plain_transformers_and_gives_the_same_outputs(tiny_teacher_dir, tmp_path, capsys):
    model, tok = _pruned_solver(tiny_teacher_dir, tmp_path, _uniform)
    out = tmp_path / "hf"
    assert main(["export", "--hf", "--model", str(tmp_path / "solver"), "--out", str(out), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["hf_shape"] == {"num_hidden_layers": 1, "intermediate_size": model.encoder.config.intermediate_size // 2}
    enc = tok(["Tom has 3 apples and buys 5 more.", "A train goes 60 km in 2 hours; how far in 5 hours?"],
              padding=True, return_tensors="pt")
    (tmp_path / "batch.json").write_text(json.dumps({k: enc[k].tolist() for k in ("input_ids", "attention_mask")}))
    (tmp_path / "load.py").write_text(STOCK_LOADER)
    # -I: isolated mode, so neither the working directory nor PYTHONPATH can put raykd on the path
    subprocess.run([sys.executable, "-I", str(tmp_path / "load.py"), str(out), str(tmp_path / "batch.json"),
                    str(tmp_path / "stock.json")], check=True, timeout=300)
    stock = json.loads((tmp_path / "stock.json").read_text())
    assert stock["layers"] == 1 and stock["class"] == type(model.encoder).__name__
    with torch.no_grad():
        ours = model.encoder.eval()(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"]).last_hidden_state
    assert torch.allclose(torch.tensor(stock["hidden"]), ours, atol=1e-5)
    assert json.loads((out / "config.json").read_text())["raykd_export"]["layer_map"] == [1]
    # replacing needs --force, and works with it (the directory says raykd wrote it)
    assert main(["export", "--hf", "--model", str(tmp_path / "solver"), "--out", str(out)]) == 2
    assert main(["export", "--hf", "--model", str(tmp_path / "solver"), "--out", str(out), "--force"]) == 0


@pytest.mark.parametrize("change, message", [
    (lambda m: prune_heads(m, {"encoder_self": {0: [0]}}), "heads were pruned"),
    (lambda m: prune_ffn(m, {"encoder_ffn": {0: [0, 1, 2]}}), "FFN widths differ across layers"),
])
def test_shapes_a_stock_config_cannot_hold_are_refused_by_name(tiny_teacher_dir, tmp_path, capsys, change, message):
    _pruned_solver(tiny_teacher_dir, tmp_path, change)
    capsys.readouterr()
    out = tmp_path / "hf"
    assert main(["export", "--hf", "--model", str(tmp_path / "solver"), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0]
    assert not out.exists()


def test_export_arguments_are_checked(tmp_path, capsys):
    (tmp_path / "model").mkdir()
    assert main(["export", "--model", str(tmp_path / "model"), "--out", str(tmp_path / "x")]) == 2
    assert "--hf" in capsys.readouterr().err
    assert main(["export", "--out", str(tmp_path / "x")]) == 2
    assert "RUN" in capsys.readouterr().err

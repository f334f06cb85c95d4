"""`raykd prune`, `raykd chain`, `raykd bench` end to end on the session's tiny teacher."""

import json

import pytest
import torch

from raykd.cli import main
from raykd.structures import head_counts, total_heads
from raykd.method.importance import collect_head_stats
from raykd.task.io import load_solver
from raykd.task.mwp import MWPTask


def test_prune_removes_the_asked_fraction_per_kind_and_saves_a_loadable_model(tiny_teacher_dir, tmp_path, capsys):
    out = tmp_path / "pruned"
    rc = main(["prune", "--model", str(tiny_teacher_dir), "--ratio", "0.5", "--alpha", "0.5",
               "--calib", "synthetic:64:1", "--out", str(out), "--json"])
    assert rc == 0
    summary = json.loads(capsys.readouterr().out)
    teacher, _, _ = load_solver(tiny_teacher_dir)
    pruned, _, _ = load_solver(out)
    for kind, layers in head_counts(teacher).items():
        assert sum(head_counts(pruned)[kind]) == sum(layers) - int(0.5 * sum(layers))
    assert summary["params_after"] < summary["params_before"]
    assert total_heads(pruned) == sum(sum(v) for v in summary["heads"].values())


def test_prune_removes_ffn_channels_and_layers_uniformly_and_the_result_exports(tiny_teacher_dir, tmp_path, capsys):
    from raykd.structures import ffn_widths, layer_counts

    out = tmp_path / "shallow"
    assert main(["prune", "--model", str(tiny_teacher_dir), "--ratio", "0", "--ffn-ratio", "0.5", "--layer-ratio", "0.5",
                 "--uniform", "--calib", "synthetic:64:1", "--out", str(out), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    teacher, _, _ = load_solver(tiny_teacher_dir)
    pruned, _, _ = load_solver(out)
    assert layer_counts(pruned) == {"encoder_layers": 1, "decoder_layers": 1} == summary["layers"]
    for kind, widths in ffn_widths(pruned).items():
        assert widths == [ffn_widths(teacher)[kind][0] // 2]
    assert head_counts(pruned) == {k: v[:1] for k, v in head_counts(teacher).items()}  # heads untouched
    assert main(["export", "--hf", "--model", str(out), "--out", str(tmp_path / "hf")]) == 0
    assert (tmp_path / "hf" / "model.safetensors").is_file()


@pytest.mark.parametrize("ratio", ["1.0", "-0.1", "1.5"])
def test_prune_rejects_impossible_ratios(tiny_teacher_dir, tmp_path, capsys, ratio):
    assert main(["prune", "--model", str(tiny_teacher_dir), "--ratio", ratio, "--calib", "synthetic:20",
                 "--out", str(tmp_path / "p")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "ratio" in err[0]
    assert not (tmp_path / "p").exists()


def test_prune_refuses_a_directory_that_is_not_a_model(tmp_path, capsys):
    (tmp_path / "notamodel").mkdir()
    assert main(["prune", "--model", str(tmp_path / "notamodel"), "--ratio", "0.2", "--calib", "synthetic:20",
                 "--out", str(tmp_path / "p")]) == 2
    assert "not a raykd model directory" in capsys.readouterr().err


def test_chain_cli_runs_one_round_and_prints_json(tiny_teacher_dir, tmp_path, capsys):
    cfg = tmp_path / "chain.yaml"
    cfg.write_text("rounds: 1\np_min: 0.25\np_max: 0.25\nepochs_per_round: 1\nsteps_per_round: 4\ncalib_batches: 1\n"
                   "latency_batch: 2\nlatency_repeats: 2\n")
    rc = main(["chain", "--teacher", str(tiny_teacher_dir), "--data", "synthetic:400:7", "--config", str(cfg),
               "--out", str(tmp_path / "c"), "--json"])
    assert rc == 0
    out = json.loads(capsys.readouterr().out)
    assert [r["round"] for r in out["rounds"]] == [1] and out["rounds"][0]["ratio"] == 0.25
    assert (tmp_path / "c" / "round-01" / "state.json").is_file()
    bad = tmp_path / "bad.yaml"
    bad.write_text("p_max: 1.0\n")
    assert main(["chain", "--teacher", str(tiny_teacher_dir), "--data", "synthetic:50", "--config", str(bad),
                 "--out", str(tmp_path / "c2")]) == 2
    assert "p_max" in capsys.readouterr().err


def test_bench_reports_params_flops_latency_and_both_speedups(tiny_teacher_dir, tmp_path, capsys):
    main(["prune", "--model", str(tiny_teacher_dir), "--ratio", "0.5", "--calib", "synthetic:32", "--out", str(tmp_path / "p"), "--json"])
    capsys.readouterr()
    rc = main(["bench", "--model", str(tmp_path / "p"), "--baseline", str(tiny_teacher_dir), "--batch", "2",
               "--seq-len", "16", "--decoder-len", "4", "--repeats", "2", "--json"])
    assert rc == 0
    out = json.loads(capsys.readouterr().out)
    for key in ("params", "flops", "latency_ms", "speedup", "ideal_speedup"):
        assert out[key] > 0, key
    assert out["ideal_speedup"] > 1.0 and out["flops"] < out["baseline"]["flops"]
    assert main(["bench", "--model", str(tiny_teacher_dir), "--batch", "0"]) == 2


def test_taylor_and_entropy_statistics_on_a_real_model(tiny_teacher_dir, synthetic_splits):
    model, tok, _ = load_solver(tiny_teacher_dir)
    task = MWPTask(tok, model.vocab, synthetic_splits)
    stats = collect_head_stats(model, task, batches=2, batch_size=16, taylor=True)
    assert set(k for k, _ in stats.blocks) == {"encoder_self", "decoder_self", "decoder_cross"}
    for (kind, layer), b in stats.blocks.items():
        assert len(b.norm) == len(b.entropy) == len(b.taylor) == len(b.head_ids)
        assert all(t >= 0 for t in b.taylor) and any(t > 0 for t in b.taylor)
        assert all(0 <= h <= torch.log(torch.tensor(512.0)) for h in b.entropy)
    assert stats.matches(model)
    assert all(p.grad is None for p in model.parameters())  # Taylor's backward passes leave no gradients behind

"""Bad input across every command: one `raykd: error:` line naming the problem, exit code 2, no
traceback, and the filesystem exactly as it was (nothing half-written, nothing replaced).

Commands run in-process (`raykd.cli.main`), so the suite costs the work each case does, not an
interpreter start. Each case builds what it needs in its own workspace (damaged copies of the
session's tiny teacher, user files, bad data and YAML) and snapshots workspace and teacher
before and after. docs/errors.md lists the classes covered.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path
from typing import Callable

import pytest
import torch

from raykd.cli import main

Setup = Callable[[Path, Path], None]  # (workspace, teacher copy) -> None


def snapshot(*roots: Path) -> dict[str, tuple[int, str]]:
    """Every file and directory under `roots`: size and content hash (directories: -1, ''; a
    symbolic link, which may lead nowhere or to itself: -2 and its target)."""
    out: dict[str, tuple[int, str]] = {}
    for root in roots:
        for dirpath, dirnames, filenames in os.walk(root):
            for d in dirnames:
                p = os.path.join(dirpath, d)
                out[p] = (-2, os.readlink(p)) if os.path.islink(p) else (-1, "")
            for f in filenames:
                p = os.path.join(dirpath, f)
                if os.path.islink(p):
                    out[p] = (-2, os.readlink(p))
                    continue
                data = Path(p).read_bytes()
                out[p] = (len(data), hashlib.sha256(data).hexdigest())
    return out


def run_cli(capsys, argv: list[str]) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(argv)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def assert_one_clear_error(code: int, err: str, message: str) -> None:
    assert code == 2, err
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("raykd: error: "), err
    assert message in lines[0], f"{message!r} not in {lines[0]!r}"


def assert_refused_changing_nothing(capsys, root: Path, argv: list[str], message: str) -> str:
    """Run `argv` in-process: exit 2, one clear line holding `message`, and nothing under `root`
    changed (the shared check of every bad-input case); returns stderr for further checks."""
    before = snapshot(root)
    code, _, err = run_cli(capsys, argv)
    assert_one_clear_error(code, err, message)
    assert snapshot(root) == before
    return err


# --- workspace builders ------------------------------------------------------------------------


def user_dir(name: str) -> Setup:
    def setup(ws: Path, _t: Path) -> None:
        (ws / name / "sub").mkdir(parents=True)
        (ws / name / "keep.txt").write_text("the user's own file")

    return setup


def a_file(name: str, text: str = "not a directory") -> Setup:
    def setup(ws: Path, _t: Path) -> None:
        (ws / name).write_text(text)

    return setup


def damaged_model(change: Callable[[Path], None]) -> Setup:
    def setup(ws: Path, teacher: Path) -> None:
        shutil.copytree(teacher, ws / "m")
        change(ws / "m")

    return setup


def truncate(d: Path) -> None:
    w = d / "model.safetensors"
    w.write_bytes(w.read_bytes()[: w.stat().st_size // 2])


def zero_bytes(d: Path) -> None:
    (d / "model.safetensors").write_bytes(b"")


def random_bytes(d: Path) -> None:
    (d / "model.safetensors").write_bytes(os.urandom(4096))


def flip_last_byte(d: Path) -> None:  # header intact, one weight changed: only the checksum sees it
    w = d / "model.safetensors"
    data = bytearray(w.read_bytes())
    data[-1] ^= 0xFF
    w.write_bytes(bytes(data))


def no_tokenizer(d: Path) -> None:
    (d / "tokenizer.json").unlink()


def nested_config(d: Path) -> None:
    (d / "config.json").write_text("[" * 100_000 + "]" * 100_000)


def wrong_shape(d: Path) -> None:  # a config whose head map no longer matches the stored weights
    cfg = json.loads((d / "config.json").read_text())
    kind, layers = next(iter(cfg["head_map"].items()))
    layers[0] = layers[0][:-1]
    (d / "config.json").write_text(json.dumps(cfg))


def write(name: str, text: str) -> Setup:
    def setup(ws: Path, _t: Path) -> None:
        (ws / name).write_text(text)

    return setup


def raykd_png(name: str) -> Setup:
    def setup(ws: Path, _t: Path) -> None:
        from matplotlib.figure import Figure

        Figure().savefig(ws / name)  # a PNG, but matplotlib's, not raykd's

    return setup


def nothing(_ws: Path, _t: Path) -> None:
    pass


CHAIN_YAML = "rounds: 1\np_min: 0.2\np_max: 0.2\nepochs_per_round: 1\nsteps_per_round: 2\ncalib_batches: 1\nlatency_batch: 2\nlatency_repeats: 1\n"
SPACE_BAD_RANGE = "search:\n  alpha: {low: 2, high: 3}\n"
PYTHON_TAG = "alpha: !!python/object/apply:os.system ['echo pwned']\n"
NO_CUDA = torch.cuda.is_available()

# (id, setup, argv with {ws} and {t} placeholders, message)
CASES: list[tuple[str, Setup, list[str], str]] = [
    # 1. never destroy a user's files
    ("teacher-out-user-dir", user_dir("x"), ["teacher", "--data", "synthetic:40", "--out", "{ws}/x"], "holds files raykd did not write (keep.txt, sub)"),
    ("teacher-out-user-dir-force", user_dir("x"), ["teacher", "--data", "synthetic:40", "--out", "{ws}/x", "--force"], "even with --force"),
    ("teacher-out-raykd-model", nothing, ["teacher", "--data", "synthetic:40", "--out", "{t}"], "already holds a raykd model; use --force"),
    ("teacher-out-file", a_file("f"), ["teacher", "--data", "synthetic:40", "--out", "{ws}/f"], "is a file, not a directory"),
    ("teacher-out-below-file", a_file("f"), ["teacher", "--data", "synthetic:40", "--out", "{ws}/f/sub"], "is a file, not a directory"),
    ("teacher-out-empty", nothing, ["teacher", "--data", "synthetic:40", "--out", ""], "--out is empty"),
    ("prune-out-is-model", nothing, ["prune", "--model", "{t}", "--ratio", "0.2", "--calib", "synthetic:20", "--out", "{t}", "--force"], "overlaps --model"),
    ("prune-out-inside-model", nothing, ["prune", "--model", "{t}", "--ratio", "0.2", "--calib", "synthetic:20", "--out", "{t}/sub"], "overlaps --model"),
    ("prune-out-user-dir", user_dir("x"), ["prune", "--model", "{t}", "--ratio", "0.2", "--calib", "synthetic:20", "--out", "{ws}/x"], "holds files raykd did not write"),
    ("chain-out-user-dir", user_dir("x"), ["chain", "--teacher", "{t}", "--data", "synthetic:40", "--out", "{ws}/x"], "not a raykd chain (keep.txt, sub)"),
    ("chain-out-file", a_file("f"), ["chain", "--teacher", "{t}", "--data", "synthetic:40", "--out", "{ws}/f"], "is a file"),
    ("reproduce-out-user-dir", user_dir("x"), ["reproduce", "--teacher", "{t}", "--data", "synthetic:40", "--out", "{ws}/x"], "not a raykd reproduction"),
    ("pareto-png-user-file", a_file("plot.png", "my picture"), ["pareto", "{ws}/nosweep", "--png", "{ws}/plot.png"], "raykd did not write it; use --force"),
    ("pareto-png-foreign-png", raykd_png("plot.png"), ["pareto", "{ws}/nosweep", "--png", "{ws}/plot.png"], "raykd did not write it"),
    ("pareto-png-dir", user_dir("plot.png"), ["pareto", "{ws}/nosweep", "--png", "{ws}/plot.png"], "is a directory, not a file"),
    # 3. bounded specs fail fast
    ("synthetic-huge", nothing, ["data", "check", "synthetic:99999999999999999999"], "at most 100,000 problems"),
    ("synthetic-negative-seed", nothing, ["data", "check", "synthetic:5:-1"], "SEED must be in"),
    ("synthetic-unicode-digit", nothing, ["data", "check", "synthetic:\u00b2"], "bad synthetic spec"),
    # 4. damaged model directories, in every command that loads one
    ("eval-truncated-weights", damaged_model(truncate), ["eval", "--model", "{ws}/m", "--data", "synthetic:10"], "not a readable safetensors file"),
    ("solve-zero-byte-weights", damaged_model(zero_bytes), ["solve", "--model", "{ws}/m", "Tom has 3 apples and 4 pears."], "not a readable safetensors file"),
    ("bench-random-weights", damaged_model(random_bytes), ["bench", "--model", "{ws}/m", "--repeats", "1"], "not a readable safetensors file"),
    ("bench-damaged-baseline", damaged_model(truncate), ["bench", "--model", "{t}", "--baseline", "{ws}/m", "--repeats", "1"], "not a readable safetensors file"),
    ("prune-flipped-weight", damaged_model(flip_last_byte), ["prune", "--model", "{ws}/m", "--ratio", "0.2", "--calib", "synthetic:20", "--out", "{ws}/p"], "does not match the checksum"),
    ("chain-truncated-teacher", damaged_model(truncate), ["chain", "--teacher", "{ws}/m", "--data", "synthetic:40", "--out", "{ws}/c"], "not a readable safetensors file"),
    ("reproduce-truncated-teacher", damaged_model(truncate), ["reproduce", "--teacher", "{ws}/m", "--data", "synthetic:40", "--out", "{ws}/r"], "not a readable safetensors file"),
    ("eval-no-tokenizer", damaged_model(no_tokenizer), ["eval", "--model", "{ws}/m", "--data", "synthetic:10"], "has no tokenizer.json"),
    ("eval-nested-config", damaged_model(nested_config), ["eval", "--model", "{ws}/m", "--data", "synthetic:10"], "config.json is not valid JSON"),
    ("eval-shape-mismatch", damaged_model(wrong_shape), ["eval", "--model", "{ws}/m", "--data", "synthetic:10"], "has shape"),
    ("eval-missing-model", nothing, ["eval", "--model", "{ws}/nope", "--data", "synthetic:10"], "model directory {ws}/nope does not exist"),
    ("eval-model-is-file", a_file("f"), ["eval", "--model", "{ws}/f", "--data", "synthetic:10"], "is a file, not a model directory"),
    # 4. flags out of range, before any work
    ("threads-negative", nothing, ["eval", "--model", "{t}", "--data", "synthetic:10", "--threads", "-1"], "argument --threads: must be an integer in 0..1024, got -1"),
    ("device-bogus", nothing, ["eval", "--model", "{t}", "--data", "synthetic:10", "--device", "bogus"], "unknown device 'bogus'"),
    ("device-cpu-index", nothing, ["teacher", "--out", "{ws}/o", "--device", "cpu:1"], "the CPU device takes no index"),
    ("eval-batch-zero", nothing, ["eval", "--model", "{t}", "--data", "synthetic:10", "--batch-size", "0"], "argument --batch-size: must be an integer"),
    ("bench-seq-len-too-long", nothing, ["bench", "--model", "{t}", "--seq-len", "100000", "--repeats", "1"], "--seq-len 100000 exceeds the 512 positions"),
    ("bench-decoder-len-too-long", nothing, ["bench", "--model", "{t}", "--decoder-len", "5000", "--repeats", "1"], "exceeds the --model decoder's max_len"),
    ("bench-warmup-negative", nothing, ["bench", "--model", "{t}", "--warmup", "-1"], "argument --warmup"),
    ("prune-calib-batches-zero", nothing, ["prune", "--model", "{t}", "--ratio", "0.2", "--calib", "synthetic:20", "--out", "{ws}/p", "--calib-batches", "0"], "argument --calib-batches"),
    ("prune-ratio-one", nothing, ["prune", "--model", "{t}", "--ratio", "1", "--calib", "synthetic:20", "--out", "{ws}/p"], "argument --ratio: must be in [0, 1)"),
    ("teacher-lr-nan", nothing, ["teacher", "--out", "{ws}/o", "--lr", "nan"], "argument --lr: must be a finite number"),
    ("teacher-epochs-zero", nothing, ["teacher", "--out", "{ws}/o", "--epochs", "0"], "argument --epochs"),
    ("reproduce-repeats-zero", nothing, ["reproduce", "--out", "{ws}/r", "--repeats", "0"], "argument --repeats"),
    ("sweep-num-samples-zero", nothing, ["sweep", "--num-samples", "0"], "argument --num-samples"),
    ("chain-set-broken-yaml", nothing, ["chain", "--teacher", "{t}", "--data", "synthetic:40", "--out", "{ws}/c", "--set", "p_max=[1"], "--set 'p_max=[1' is not valid YAML"),
    ("chain-set-no-key", nothing, ["chain", "--teacher", "{t}", "--data", "synthetic:40", "--out", "{ws}/c", "--set", "=3"], "--set needs KEY=VALUE"),
    ("chain-set-unknown-workload", nothing, ["chain", "--teacher", "{t}", "--data", "synthetic:40", "--out", "{ws}/c", "--set", "latency_workload=warp"], "latency_workload 'warp' is not one of this task's workloads: default, decode, forward"),
    ("data-synthetic-two-sizes", nothing, ["data", "check", "synthetic:10/10"], "expected synthetic:N, synthetic:N:SEED or synthetic:TRAIN/VALID/TEST[:SEED]"),
    ("chain-set-unknown-key", nothing, ["chain", "--teacher", "{t}", "--data", "synthetic:40", "--out", "{ws}/c", "--set", "alpah=0.3"], "unknown chain setting(s): alpah"),
    ("data-nested-json", write("deep.json", "[" * 100_000 + "]" * 100_000), ["data", "check", "{ws}/deep.json"], "nested too deeply"),
    # 5. invalid values
    ("solve-empty-text", nothing, ["solve", "--model", "{t}", ""], "the problem text is empty"),
    ("solve-blank-text", nothing, ["solve", "--model", "{t}", "   \t "], "the problem text is empty"),
    ("solve-beam-zero", nothing, ["solve", "--model", "{t}", "--beam-size", "0", "Tom has 3 apples."], "argument --beam-size"),
    ("eval-beam-negative", nothing, ["eval", "--model", "{t}", "--data", "synthetic:10", "--beam-size", "-2"], "argument --beam-size"),
    ("solve-huge-number", nothing, ["solve", "--model", "{t}", "Tom has " + "9" * 400 + " apples and eats 2."], "is too large to compute with"),
    ("data-show-negative-n", nothing, ["data", "show", "synthetic:10", "--n", "-3"], "argument --n"),
    ("data-json-object", write("obj.json", json.dumps({"problems": [{"Body": "a", "Question": "b"}]}, indent=1)), ["data", "check", "{ws}/obj.json"], "holds one JSON object (keys 'problems'), not a list of problems"),
    ("sweep-name-traversal", nothing, ["sweep", "--name", "../../etc"], "is not a sweep name"),
    ("sweep-name-dot", nothing, ["sweep", "--name", "."], "is not a sweep name"),
    ("sweep-name-dotdot", nothing, ["sweep", "--name", ".."], "is not a sweep name"),
    ("sweep-resume-with-name", nothing, ["sweep", "--resume", "{ws}/s", "--name", "other"], "--resume takes the sweep stored at DIR"),
    ("pareto-reference-nan", nothing, ["pareto", "{ws}/nosweep", "--reference", "accuracy=nan"], "must be a finite number"),
    ("pareto-png-suffix", nothing, ["pareto", "{ws}/nosweep", "--png", "{ws}/front.jpg"], "must end in .png"),
    ("teacher-no-valid-split", nothing, ["teacher", "--data", "synthetic:8", "--out", "{ws}/o"], "gives no valid problems"),
    ("chain-no-valid-split", nothing, ["chain", "--teacher", "{t}", "--data", "synthetic:8", "--out", "{ws}/c"], "gives no valid examples"),
    # 6. clear messages
    ("teacher-missing-encoder-path", nothing, ["teacher", "--encoder", "./no/such/encoder", "--out", "{ws}/o"], "encoder path ./no/such/encoder does not exist"),
    ("teacher-encoder-is-file", a_file("enc"), ["teacher", "--encoder", "{ws}/enc", "--out", "{ws}/o"], "is a file, not a model directory"),
    ("sweep-space-error-names-file", write("space.yaml", SPACE_BAD_RANGE), ["sweep", "--space", "{ws}/space.yaml"], "{ws}/space.yaml: search.alpha"),
    ("sweep-space-python-tag", write("space.yaml", PYTHON_TAG), ["sweep", "--space", "{ws}/space.yaml"], "refuses on purpose"),
    ("sweep-space-missing", nothing, ["sweep", "--space", "{ws}/none.yaml"], "search space {ws}/none.yaml does not exist"),
    ("chain-config-python-tag", write("c.yaml", PYTHON_TAG), ["chain", "--teacher", "{t}", "--data", "synthetic:40", "--config", "{ws}/c.yaml", "--out", "{ws}/c"], "!!python/object/apply:os.system, which raykd refuses on purpose"),
    ("chain-config-bad-value-names-file", write("c.yaml", "p_max: 1.5\n"), ["chain", "--teacher", "{t}", "--data", "synthetic:40", "--config", "{ws}/c.yaml", "--out", "{ws}/c"], "{ws}/c.yaml: p_max must be in [0, 1)"),
    ("eval-no-usable-problems", write("bad.json", json.dumps([{"Body": "x", "Question": "y", "Formula": "", "Answer": ""}])), ["eval", "--model", "{t}", "--data", "asdiv-a:{ws}/bad.json"], "no usable"),
]
if not NO_CUDA:
    CASES.append(("device-cuda-without-cuda", nothing, ["eval", "--model", "{t}", "--data", "synthetic:10", "--device", "cuda"], "use --device cpu"))


@pytest.fixture
def workspace(tmp_path: Path, tiny_teacher_dir: Path) -> tuple[Path, Path]:
    """A fresh directory and a private copy of the tiny teacher (cases may point --out at it)."""
    ws = tmp_path / "ws"
    ws.mkdir()
    teacher = tmp_path / "teacher"
    shutil.copytree(tiny_teacher_dir, teacher)
    return ws, teacher


@pytest.mark.parametrize("setup, argv, message", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_is_one_line_exit_2_and_changes_nothing(workspace, capsys, setup, argv, message):
    ws, teacher = workspace
    setup(ws, teacher)
    fill = lambda s: s.replace("{ws}", str(ws)).replace("{t}", str(teacher))  # noqa: E731
    assert_refused_changing_nothing(capsys, ws.parent, [fill(a) for a in argv], fill(message))


def test_the_suite_covers_at_least_forty_cases_across_the_commands():
    commands = {argv[0] for _, _, argv, _ in CASES}
    assert len(CASES) >= 40
    assert commands >= {"data", "teacher", "eval", "solve", "prune", "chain", "bench", "reproduce", "sweep", "pareto"}

"""Issue 33: paths, YAML, echoed input and storage URIs that once crashed, hung or destroyed.

Each case, like tests/cli/test_bad_input.py: in-process, exit code 2, one `raykd: error:` line
holding the expected message, no traceback, and a byte-identical workspace (teacher included).

- paths: a symlink loop or a name over the filesystem's 255-byte limit as `--out`, `--png`,
  `--storage`, `--resume`, a sweep or a data path (RuntimeError / OSError tracebacks before; a 4 KB
  `teacher --out` trained first, then crashed leaving empty directories);
- data loss: `--out` equal to, inside or around an input model or sweep, for every command that
  writes (`export --hf --model M --out M --force` replaced the solver before);
- safe YAML: alias bombs, self-referencing aliases and oversized documents (a 1.5 KB file once gave
  a 622 MB error);
- echoed input: one error line is at most a few hundred characters, whatever it quotes;
- storage URIs: a `gs://` URI whose server does not answer (every one hung before), an S3 bucket
  whose region cannot be resolved in `sweep --storage` / `--resume` (a traceback before);
- smaller: `--pick max-drop=inf` (accepted before), `pareto A --retime --with ./A/` (re-timed one
  sweep as two), `solve` text with a terminal colour escape (its digits read as numbers),
  `pareto file://...` of a real sweep (said "not a raykd sweep").
"""

from __future__ import annotations

import os
import socket
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Callable

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "results"))  # sweep_factory

from test_bad_input import assert_one_clear_error, assert_refused_changing_nothing, run_cli, snapshot, workspace  # noqa: E402,F401  (workspace: the shared fixture)

Setup = Callable[[Path, Path], None]  # (workspace, teacher copy) -> None
LONG = "n" * 300  # one name over the 255-byte limit of every common filesystem
DEEP = "/".join(["d" * 200] * 21)  # 21 names of 200 bytes: each within the limit, the path over 4 KB
TEACH = ["teacher", "--data", "synthetic:40", "--epochs", "1", "--max-steps", "1", "--quiet"]


def loops(ws: Path, _t: Path) -> None:
    """`loop` -> itself; `a` -> `b` -> `a`."""
    (ws / "loop").symlink_to("loop")
    (ws / "a").symlink_to("b")
    (ws / "b").symlink_to("a")


def nothing(_ws: Path, _t: Path) -> None:
    pass


def a_dir(name: str) -> Setup:
    def setup(ws: Path, _t: Path) -> None:
        (ws / name).mkdir(parents=True)

    return setup


def write(name: str, text: str) -> Setup:
    def setup(ws: Path, _t: Path) -> None:
        (ws / name).write_text(text)

    return setup


def alias_bomb(levels: int) -> str:
    """The classic "billion laughs": 9 lists of 9 references, `levels` deep (9**levels values)."""
    lines = ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, levels + 1)]
    return "\n".join(lines) + "\n"


def sweep_copy(ws: Path, teacher: Path) -> None:
    """A real stored sweep (tests/results/sweep_factory.py: rows, checkpoints) at {ws}/sweep."""
    from sweep_factory import make_sweep

    make_sweep(ws, "sweep", solver_dir=teacher, study=False)


CASES: list[tuple[str, Setup, list[str], str]] = [
    # symlink loops, wherever a path is named
    ("teacher-out-loop", loops, [*TEACH, "--out", "{ws}/loop/x"], "--out {ws}/loop/x: a symlink loop"),
    ("teacher-out-two-link-loop", loops, [*TEACH, "--out", "{ws}/a"], "--out {ws}/a: a symlink loop"),
    ("prune-out-loop", loops, ["prune", "--model", "{t}", "--ratio", "0.2", "--calib", "synthetic:20", "--out", "{ws}/loop"], "a symlink loop"),
    ("chain-out-loop", loops, ["chain", "--teacher", "{t}", "--data", "synthetic:40", "--out", "{ws}/loop"], "a symlink loop"),
    ("reproduce-out-loop", loops, ["reproduce", "--teacher", "{t}", "--data", "synthetic:40", "--out", "{ws}/a"], "a symlink loop"),
    ("export-out-loop", loops, ["export", "--hf", "--model", "{t}", "--out", "{ws}/loop"], "--out {ws}/loop: a symlink loop"),
    ("export-run-loop", loops, ["export", "{ws}/loop", "--trial", "t1", "--out", "{ws}/o"], "a symlink loop"),
    ("pareto-run-loop", loops, ["pareto", "{ws}/loop"], "{ws}/loop: a symlink loop"),
    ("pareto-png-loop", loops, ["pareto", "{ws}/nosweep", "--png", "{ws}/loop/p.png"], "--png {ws}/loop/p.png: a symlink loop"),
    ("sweep-storage-loop", loops, ["sweep", "--storage", "{ws}/loop"], "a symlink loop"),
    ("sweep-resume-loop", loops, ["sweep", "--resume", "{ws}/a"], "a symlink loop"),
    ("data-check-loop", loops, ["data", "check", "asdiv-a:{ws}/loop"], "a symlink loop"),
    # names over the filesystem's limit, refused before any work
    ("data-check-long-name", nothing, ["data", "check", f"{{ws}}/{LONG}.json"], "is 305 bytes, over the filesystem's limit"),
    ("teacher-out-long-name", nothing, [*TEACH, "--out", f"{{ws}}/{LONG}"], "over the filesystem's limit"),
    ("teacher-out-4kb-path", nothing, [*TEACH, "--out", f"{{ws}}/{DEEP}"], "bytes, over the limit of 4095"),
    ("pareto-png-long-name", nothing, ["pareto", "{ws}/nosweep", "--png", f"{{ws}}/{LONG}.png"], "over the filesystem's limit"),
    ("sweep-storage-long-name", nothing, ["sweep", "--storage", f"{{ws}}/{LONG}"], "over the filesystem's limit"),
    ("export-out-long-name", nothing, ["export", "--hf", "--model", "{t}", "--out", f"{{ws}}/{LONG}"], "over the filesystem's limit"),
    ("chain-config-long-name", nothing, ["chain", "--teacher", "{t}", "--data", "synthetic:40", "--config", f"{{ws}}/{LONG}.yaml", "--out", "{ws}/c"], "over the filesystem's limit"),
    # --out never equal to, inside or around an input, in every command that writes
    ("export-hf-out-is-model-force", nothing, ["export", "--hf", "--model", "{t}", "--out", "{t}", "--force"], "overlaps --model {t} (the same directory"),
    ("export-hf-out-inside-model", nothing, ["export", "--hf", "--model", "{t}", "--out", "{t}/hf"], "overlaps --model {t} (inside it"),
    ("export-out-inside-sweep", a_dir("sweep/results"), ["export", "{ws}/sweep", "--trial", "t1", "--out", "{ws}/sweep/x"], "overlaps RUN {ws}/sweep (inside it"),
    ("export-out-around-sweep", a_dir("s/sweep/results"), ["export", "{ws}/s/sweep", "--trial", "t1", "--out", "{ws}/s", "--force"], "overlaps RUN {ws}/s/sweep (around it"),
    ("teacher-out-inside-encoder", nothing, ["teacher", "--encoder", "{t}", "--out", "{t}/sub"], "overlaps --encoder {t}"),
    ("teacher-out-is-model", nothing, [*TEACH, "--task", "causal-lm", "--model", "{t}", "--out", "{t}", "--force"], "overlaps --model {t}"),
    ("prune-out-is-model", nothing, ["prune", "--model", "{t}", "--ratio", "0.2", "--calib", "synthetic:20", "--out", "{t}", "--force"], "overlaps --model {t} (the same directory"),
    ("chain-out-inside-teacher", nothing, ["chain", "--teacher", "{t}", "--data", "synthetic:40", "--out", "{t}/c"], "overlaps --teacher {t} (inside it"),
    ("reproduce-out-inside-teacher", nothing, ["reproduce", "--teacher", "{t}", "--data", "synthetic:40", "--out", "{t}/r"], "overlaps --teacher {t}"),
    # safe YAML
    ("sweep-space-alias-bomb", write("bomb.yaml", alias_bomb(9)), ["sweep", "--space", "{ws}/bomb.yaml"], "{ws}/bomb.yaml expands to more than 100,000 values through its aliases"),
    ("sweep-space-alias-bomb-7", write("bomb.yaml", alias_bomb(7)), ["sweep", "--space", "{ws}/bomb.yaml"], "expands to more than 100,000 values"),
    ("chain-config-alias-bomb", write("c.yaml", alias_bomb(8)), ["chain", "--teacher", "{t}", "--data", "synthetic:40", "--config", "{ws}/c.yaml", "--out", "{ws}/c"], "expands to more than 100,000 values"),
    ("sweep-space-self-alias", write("s.yaml", "search: &s {alpha: *s}\n"), ["sweep", "--space", "{ws}/s.yaml"], "has an alias inside its own anchor"),
    ("chain-set-self-alias", nothing, ["chain", "--teacher", "{t}", "--data", "synthetic:40", "--out", "{ws}/c", "--set", "p_max=&a [*a]"], "has an alias inside its own anchor"),
    ("sweep-space-too-large", write("big.yaml", "# padding\n" * 120_000 + "name: x\n"), ["sweep", "--space", "{ws}/big.yaml"], "larger than 1024 KiB: not a configuration file"),
    ("sweep-space-python-tag-kept", write("p.yaml", "alpha: !!python/name:os.system\n"), ["sweep", "--space", "{ws}/p.yaml"], "refuses on purpose"),
    # echoed input is capped (the whole line: see test_an_error_line_never_echoes_more_than_a_few_hundred_characters)
    ("chain-set-huge-value", nothing, ["chain", "--teacher", "{t}", "--data", "synthetic:40", "--out", "{ws}/c", "--set", "w" * 200_000 + "=1"], "characters)…"),
    ("solve-huge-beam", nothing, ["solve", "--model", "{t}", "--beam-size", "9" * 100_000, "Tom has 3 apples."], "characters)…"),
    # smaller
    ("export-pick-inf", sweep_copy, ["export", "{ws}/sweep", "--pick", "max-drop=inf", "--out", "{ws}/o"], "max-drop must be a finite number >= 0, got 'inf'"),
    ("export-pick-negative", sweep_copy, ["export", "{ws}/sweep", "--pick", "max-drop=-1", "--out", "{ws}/o"], "max-drop must be a finite number >= 0"),
    ("pareto-retime-with-itself", sweep_copy, ["pareto", "{ws}/sweep", "--retime", "--with", "{ws}/./sweep/"], "is the same sweep as RUN {ws}/sweep"),
    ("solve-ansi-escape", nothing, ["solve", "--model", "{t}", "Tom has \x1b[31m3\x1b[0m apples. How many?"], "contains a terminal escape sequence"),
    ("solve-control-character", nothing, ["solve", "--model", "{t}", "Tom has 3\x00 apples."], "contains a control character"),
]


def _fill(ws: Path, teacher: Path) -> Callable[[str], str]:
    return lambda s: s.replace("{ws}", str(ws)).replace("{t}", str(teacher))


@pytest.mark.parametrize("setup, argv, message", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_path_is_one_line_exit_2_and_changes_nothing(workspace, capsys, setup, argv, message):
    ws, teacher = workspace
    setup(ws, teacher)
    fill = _fill(ws, teacher)
    assert_refused_changing_nothing(capsys, ws.parent, [fill(a) for a in argv], fill(message))


def test_an_error_line_never_echoes_more_than_a_few_hundred_characters(workspace, capsys):
    ws, teacher = workspace
    huge = "w" * 200_000 + "\n" + "\x1b[31m"
    for argv in (["chain", "--teacher", str(teacher), "--data", "synthetic:40", "--out", str(ws / "c"), "--set", f"{huge}=1"],
                 ["data", "check", "synthetic:" + "9" * 100_000],
                 ["solve", "--model", str(teacher), "--beam-size", huge, "Tom has 3 apples."]):
        code, _, err = run_cli(capsys, argv)
        assert code == 2 and len(err.strip().splitlines()) == 1, err[:300]
        assert len(err) < 1000 and "\x1b" not in err


def test_an_alias_bomb_is_refused_in_well_under_a_second_with_a_short_message():
    from raykd.errors import ConfigError
    from raykd.yaml_io import parse_yaml

    start = time.perf_counter()
    with pytest.raises(ConfigError, match="expands to more than") as info:
        parse_yaml(alias_bomb(20), "bomb.yaml")  # 9**20 values if expanded
    assert time.perf_counter() - start < 1.0 and len(str(info.value)) < 200
    shared = "base: &b {lr: 0.001, epochs: 2}\nchains: [*b, *b, *b]\n"  # ordinary aliases still work
    assert parse_yaml(shared, "ok.yaml")["chains"][2] == {"lr": 0.001, "epochs": 2}


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # closed again when the block ends: nothing listens there


GCS_CASES = [
    ("data-check", ["data", "check", "gs://bucket/rows.json"]),
    ("pareto", ["pareto", "gs://bucket/sweep"]),
    ("export", ["export", "gs://bucket/sweep", "--trial", "t1", "--out", "{ws}/o"]),
    ("sweep-storage", ["sweep", "--storage", "gs://bucket/sweeps"]),
]


@pytest.mark.parametrize("argv", [c[1] for c in GCS_CASES], ids=[c[0] for c in GCS_CASES])
def test_a_gs_uri_whose_server_does_not_answer_is_one_line_in_seconds(tmp_path, capsys, monkeypatch, argv):
    """The GCS server (here an emulator address where nothing listens; offline, storage.googleapis.com
    does not resolve) is asked once with a short timeout: every gs:// URI hung before."""
    ws, teacher = tmp_path / "ws", tmp_path / "teacher"
    ws.mkdir()
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", f"http://127.0.0.1:{_closed_port()}")
    import pyarrow.fs  # noqa: F401  (imports are not what is timed)

    import raykd.analysis  # noqa: F401
    import raykd.data.readers  # noqa: F401

    before = snapshot(ws.parent)
    start = time.perf_counter()
    code, _, err = run_cli(capsys, [_fill(ws, teacher)(a) for a in argv])
    assert time.perf_counter() - start < 10
    assert_one_clear_error(code, err, "127.0.0.1:")  # sweep's preflight or raykd.storage: either names the server
    assert snapshot(ws.parent) == before


@pytest.fixture
def dead_s3_endpoint(monkeypatch) -> Iterator[str]:
    """An S3 endpoint that accepts connections and closes them at once (a proxy or server gone
    wrong): reachable, yet every request pyarrow sends fails; no region in the environment."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(64)

    def serve() -> None:
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            conn.close()

    threading.Thread(target=serve, daemon=True).start()
    endpoint = f"http://127.0.0.1:{server.getsockname()[1]}"
    for key, value in {"AWS_ENDPOINT_URL": endpoint, "AWS_ACCESS_KEY_ID": "raykd-test", "AWS_SECRET_ACCESS_KEY": "raykd-test",
                       "AWS_CONFIG_FILE": os.devnull}.items():
        monkeypatch.setenv(key, value)
    for key in ("AWS_REGION", "AWS_DEFAULT_REGION"):
        monkeypatch.delenv(key, raising=False)
    yield endpoint
    server.close()


@pytest.mark.parametrize("flag", ["--storage", "--resume"])
def test_sweep_on_an_s3_store_that_cannot_be_opened_is_one_line(tmp_path, capsys, dead_s3_endpoint, flag):
    """`sweep --storage s3://...` / `--resume s3://...` where pyarrow cannot open the bucket (no region,
    failing requests) is one line before Ray starts, as the same URI already was in `data`, `pareto`
    and `export`; it was an OSError traceback."""
    ws = tmp_path / "ws"
    ws.mkdir()
    before = snapshot(ws.parent)
    code, _, err = run_cli(capsys, ["sweep", flag, "s3://bucket-raykd/sweeps"])
    assert_one_clear_error(code, err, f"{flag} s3://bucket-raykd/sweeps: ")
    assert snapshot(ws.parent) == before


def test_pareto_reads_a_sweep_given_as_a_file_uri(workspace, capsys):
    ws, teacher = workspace
    sweep_copy(ws, teacher)
    code, out, err = run_cli(capsys, ["pareto", f"file://{ws / 'sweep'}", "--json"])
    assert code == 0, err
    import json

    assert json.loads(out)["sweep"] == "sweep"


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads and writes through any permission bits")
def test_unwritable_and_unreadable_directories_are_one_line(workspace, capsys):
    ws, teacher = workspace
    locked = ws / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        code, _, err = run_cli(capsys, [*TEACH, "--out", str(locked / "o")])
        assert_one_clear_error(code, err, "permission denied")
        code, _, err = run_cli(capsys, ["sweep", "--storage", str(locked / "s")])
        assert_one_clear_error(code, err, "permission denied")
        locked.chmod(0o000)
        code, _, err = run_cli(capsys, ["data", "check", str(locked / "rows.json")])
        assert_one_clear_error(code, err, "permission denied")
    finally:
        locked.chmod(0o700)

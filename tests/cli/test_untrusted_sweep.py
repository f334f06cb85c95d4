"""A sweep directory is data, never code (issue 33; docs/security.md).

Two classes, each case one `raykd: error:` line, exit code 2, no traceback, a byte-identical
workspace, and no file from a planted `os:system` task:

- code execution from data: a task named `os:system` (or any unmarked callable, or a module whose
  import has side effects) in a space file, in a stored sweep read by `pareto --retime` and by
  `sweep --resume`, and on the command line (`teacher --task`) is refused before it is called;
- path escape from a stored sweep: a checkpoint, teacher or data path outside the sweep, or a
  symbolic link in it leading out, is refused by every command that reads sweeps (`pareto`,
  `pareto --retime`, `export --trial`, `export --pick`, `sweep --resume`) before anything is
  copied, loaded or started.

The stored sweep is the factory sweep of the analysis tests (tests/results/sweep_factory.py:
real rows, real tiny solvers as checkpoints) with a teacher and a stored space, copied into each
case's workspace before it is tampered with. Nothing here starts Ray: every case is refused first.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path
from typing import Callable

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "results"))  # sweep_factory
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # sweep_spaces

from test_bad_input import assert_one_clear_error, assert_refused_changing_nothing, run_cli, snapshot  # noqa: E402

Tamper = Callable[[Path, Path], None]  # (workspace, the sweep's copy in it) -> None


@pytest.fixture(scope="module")
def stored_sweep(tmp_path_factory) -> Path:
    """A complete stored sweep: rows with checkpoints, results/sweep.json with the space as stored
    (a built-in task, synthetic data) and the teacher in `<sweep>/teacher` (untrained tiny solvers,
    saved as the chain saves them: nothing here measures accuracy). Read-only: copied."""
    from sweep_factory import make_sweep
    from sweep_spaces import small_space

    from raykd.data import generate_problems
    from raykd.task.io import save_solver
    from raykd.task.teacher import SolverSpec, build_solver_from_spec

    model, tokenizer = build_solver_from_spec(SolverSpec(preset="tiny"), generate_problems(50))
    solver = save_solver(model, tokenizer, tmp_path_factory.mktemp("solver") / "round-02")
    root = tmp_path_factory.mktemp("stored")
    sweep = make_sweep(root, "s", solver_dir=solver, study=False)
    shutil.copytree(solver, sweep / "teacher")
    meta_path = sweep / "results" / "sweep.json"
    meta = json.loads(meta_path.read_text())
    raw = small_space(sweep / "teacher", root, name="s")
    raw["teacher"] = {"preset": "tiny", "epochs": 1}
    meta.update(space_raw=raw, teacher={**meta["teacher"], "dir": str(sweep / "teacher")}, data=raw["data"])
    meta_path.write_text(json.dumps(meta))
    return sweep


@pytest.fixture
def workspace(tmp_path: Path, stored_sweep: Path) -> tuple[Path, Path]:
    ws = tmp_path / "ws"
    (ws / "outside").mkdir(parents=True)
    (ws / "outside" / "secret.txt").write_text("not the sweep's")
    copy = ws / "sweep"
    shutil.copytree(stored_sweep, copy)
    return ws, copy


def marker(ws: Path) -> Path:
    return ws / "MARKER"


# --- tampering -------------------------------------------------------------------------------------


def edit_meta(change: Callable[[dict, Path, Path], None]) -> Tamper:
    def tamper(ws: Path, sweep: Path) -> None:
        path = sweep / "results" / "sweep.json"
        meta = json.loads(path.read_text())
        change(meta, ws, sweep)
        path.write_text(json.dumps(meta))

    return tamper


def task(name: str, **options: object) -> Tamper:
    def change(meta: dict, ws: Path, _s: Path) -> None:
        opts = {k: str(v).replace("{marker}", str(marker(ws))) for k, v in options.items()}
        meta["space_raw"]["task"] = meta["task"] = {"name": name, **opts}

    return edit_meta(change)


def teacher_dir(value: str) -> Tamper:
    def change(meta: dict, ws: Path, _s: Path) -> None:
        meta["teacher"]["dir"] = value.replace("{ws}", str(ws))

    return edit_meta(change)


def data(value: str) -> Tamper:
    def change(meta: dict, ws: Path, _s: Path) -> None:
        (ws / "outside" / "data.json").write_text(json.dumps([{"Body": "Tom has 3 apples.", "Question": "How many?",
                                                               "Formula": "3=3", "Answer": "3"}] * 12))
        meta["space_raw"]["data"] = meta["data"] = value.replace("{ws}", str(ws))

    return edit_meta(change)


def checkpoints(value: str) -> Tamper:
    """Every trial's checkpoint_path (so whichever trial a command picks names it)."""
    def tamper(ws: Path, sweep: Path) -> None:
        from raykd.results.store import read_trials, write_trial

        for row in read_trials(sweep).to_pylist():
            if row.get("checkpoint_path"):
                write_trial(sweep, {**row, "checkpoint_path": value.replace("{ws}", str(ws))})

    return tamper


def link_in_checkpoints(ws: Path, sweep: Path) -> None:
    """A file inside every checkpoint replaced by a link to a file outside the sweep."""
    for ck in (sweep / "train").glob("*/checkpoint_*"):
        (ck / "config.json").unlink()
        (ck / "config.json").symlink_to(ws / "outside" / "secret.txt")


def linked_out(part: str) -> Tamper:
    """`<sweep>/<part>` moved outside the sweep and a link left in its place."""
    def tamper(ws: Path, sweep: Path) -> None:
        shutil.move(str(sweep / part), str(ws / "outside" / part.replace("/", "-")))
        (sweep / part).symlink_to(ws / "outside" / part.replace("/", "-"), target_is_directory=True)

    return tamper


# --- the cases -----------------------------------------------------------------------------------

PLANTED = {"command": "touch {marker}"}
PARETO = ["pareto", "{sweep}"]
RETIME = ["pareto", "{sweep}", "--retime", "--rounds", "2", "--sessions", "1"]
EXPORT = ["export", "{sweep}", "--trial", "t0", "--out", "{ws}/exported"]
PICK = ["export", "{sweep}", "--pick", "max-drop=5", "--out", "{ws}/exported"]
RESUME = ["sweep", "--resume", "{sweep}", "--quiet"]
OUTSIDE = "lies outside the sweep directory"
LINK = "leads out of the sweep directory"

# (id, tamper, argv, message)
CASES = [
    # code execution from a stored sweep: refused before anything is imported
    ("retime-planted-os-system", task("os:system", **PLANTED), RETIME, "names the task 'os:system' by import path"),
    ("resume-planted-os-system", task("os:system", **PLANTED), RESUME, "names the task 'os:system' by import path"),
    ("retime-planted-import-path", task("majority_task:make_task"), RETIME, "if you made this sweep, pass --trust-sweep"),
    ("resume-planted-subprocess", task("subprocess:call", args="touch {marker}"), RESUME, "'subprocess:call' by import path"),
    # a checkpoint path outside the sweep: refused before anything is copied or loaded
    ("export-checkpoint-etc", checkpoints("/etc"), EXPORT, f"checkpoint_path '/etc' {OUTSIDE}"),
    ("export-pick-checkpoint-etc", checkpoints("/etc"), PICK, f"checkpoint_path '/etc' {OUTSIDE}"),
    ("export-checkpoint-root", checkpoints("/"), EXPORT, f"checkpoint_path '/' {OUTSIDE}"),
    ("export-checkpoint-dotdot", checkpoints("../outside"), EXPORT, f"checkpoint_path '../outside' {OUTSIDE}"),
    ("export-checkpoint-sweep-itself", checkpoints("."), EXPORT, "names the sweep directory itself"),
    ("export-checkpoint-uri", checkpoints("s3://elsewhere/ck"), EXPORT, f"checkpoint_path 's3://elsewhere/ck' {OUTSIDE}"),
    ("retime-checkpoint-etc", checkpoints("/etc"), RETIME, f"checkpoint_path '/etc' {OUTSIDE}"),
    # the teacher outside the sweep
    ("retime-teacher-etc", teacher_dir("/etc"), RETIME, f"the teacher's dir '/etc' {OUTSIDE}"),
    ("resume-teacher-etc", teacher_dir("/etc"), RESUME, f"the teacher's dir '/etc' {OUTSIDE}"),
    ("retime-teacher-outside", teacher_dir("{ws}/outside"), RETIME, OUTSIDE),
    # data outside the sweep (a stored sweep reads nothing outside itself unless --trust-sweep)
    ("retime-data-outside", data("asdiv-a:{ws}/outside/data.json"), RETIME, "if you made this sweep, pass --trust-sweep"),
    ("resume-data-outside", data("asdiv-a:{ws}/outside/data.json"), RESUME, "if you made this sweep, pass --trust-sweep"),
    ("retime-data-etc", data("/etc/passwd"), RETIME, f"data '/etc/passwd' {OUTSIDE}"),
    ("resume-data-file-uri", data("file:///etc/passwd"), RESUME, f"data '/etc/passwd' {OUTSIDE}"),
    ("retime-data-hub", data("hf:someone/dataset"), RETIME, "is a hub dataset, not data inside the sweep"),
    # a symbolic link inside the sweep that leads out of it
    ("export-link-in-checkpoint", link_in_checkpoints, EXPORT, f"holds a symbolic link 'config.json' that {LINK}"),
    ("export-pick-link-in-checkpoint", link_in_checkpoints, PICK, LINK),
    ("retime-link-in-checkpoint", link_in_checkpoints, RETIME, LINK),
    ("resume-link-in-checkpoint", link_in_checkpoints, RESUME, LINK),
    ("retime-teacher-linked-out", linked_out("teacher"), RETIME, LINK),
    ("resume-teacher-linked-out", linked_out("teacher"), RESUME, LINK),
    ("export-checkpoint-dir-linked-out", linked_out("train/t0"), EXPORT, OUTSIDE),
    ("pareto-results-linked-out", linked_out("results"), PARETO, f"results/ is a symbolic link that {LINK}"),
    ("retime-results-linked-out", linked_out("results"), RETIME, f"results/ is a symbolic link that {LINK}"),
    ("export-results-linked-out", linked_out("results"), EXPORT, f"results/ is a symbolic link that {LINK}"),
    ("pick-results-linked-out", linked_out("results"), PICK, f"results/ is a symbolic link that {LINK}"),
    ("resume-results-linked-out", linked_out("results"), RESUME, LINK),
]


@pytest.mark.parametrize("tamper, argv, message", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_a_crafted_sweep_is_refused_before_anything_runs(workspace, capsys, tamper, argv, message):
    ws, sweep = workspace
    tamper(ws, sweep)
    fill = lambda s: s.replace("{ws}", str(ws)).replace("{sweep}", str(sweep))  # noqa: E731
    assert_refused_changing_nothing(capsys, ws.parent, [fill(a) for a in argv], fill(message))
    assert not marker(ws).exists()


def test_every_command_that_reads_sweeps_is_covered_for_every_kind_of_escape():
    kinds = {"checkpoint": [], "teacher": [], "data": [], "link": [], "task": []}
    for case_id, _t, argv, _m in CASES:
        command = "resume" if "--resume" in argv else "retime" if "--retime" in argv else \
            "pick" if "--pick" in argv else argv[0]
        for kind in kinds:
            if kind in case_id or (kind == "task" and ("planted" in case_id)):
                kinds[kind].append(command)
    assert {"export", "pick", "retime"} <= set(kinds["checkpoint"])
    assert {"retime", "resume"} <= set(kinds["teacher"]) and {"retime", "resume"} <= set(kinds["data"])
    assert {"pareto", "export", "pick", "retime", "resume"} <= set(kinds["link"])
    assert {"retime", "resume"} <= set(kinds["task"])


def test_an_untampered_copy_reads_its_own_files(workspace, capsys):
    """The control: the same sweep copied elsewhere exports and re-times (its stored absolute paths
    name the original, and are read at the same place in the copy), so the cases above fail for
    the reason they name."""
    ws, sweep = workspace
    code, _, err = run_cli(capsys, ["export", str(sweep), "--trial", "t0", "--out", str(ws / "exported")])
    assert code == 0, err
    record = json.loads((ws / "exported" / "export.json").read_text())
    assert record["checkpoint_path"].startswith(str(sweep.resolve()) + os.sep)
    code, _, err = run_cli(capsys, RETIME[:1] + [str(sweep)] + RETIME[2:])
    assert code == 0, err


# --- code execution from a space file and from the command line ---------------------------------


def test_a_space_file_naming_os_system_runs_nothing(tmp_path, capsys):
    import yaml
    from sweep_spaces import small_space

    ws = tmp_path / "ws"
    ws.mkdir()
    raw = small_space(tmp_path / "no-teacher", ws / "runs", teacher={"preset": "tiny"})
    raw["teacher"] = {"preset": "tiny"}
    raw["task"] = {"name": "os:system", "command": f"touch {marker(ws)}"}
    (ws / "space.yaml").write_text(yaml.safe_dump(raw))
    before = snapshot(ws)
    code, _, err = run_cli(capsys, ["sweep", "--space", str(ws / "space.yaml"), "--quiet"])
    assert_one_clear_error(code, err, "os:system is not a raykd task plug-in, so nothing of 'os' is run")
    assert snapshot(ws) == before and not marker(ws).exists()


def test_a_space_file_naming_an_unmarked_module_does_not_import_it(tmp_path, capsys, monkeypatch):
    """Importing a module runs its top-level code: a module whose source does not declare the
    factory as a plug-in is never imported (no marker, no __pycache__)."""
    import yaml
    from sweep_spaces import small_space

    ws = tmp_path / "ws"
    (ws / "code").mkdir(parents=True)
    (ws / "code" / "noisy_tasks_33.py").write_text(f"open({str(marker(ws))!r}, 'w').close()\ndef make(**o):\n    pass\n")
    monkeypatch.syspath_prepend(str(ws / "code"))
    raw = small_space(tmp_path / "no-teacher", ws / "runs", teacher={"preset": "tiny"})
    raw["teacher"] = {"preset": "tiny"}
    raw["task"] = "noisy_tasks_33:make"
    (ws / "space.yaml").write_text(yaml.safe_dump(raw))
    before = snapshot(ws)
    code, _, err = run_cli(capsys, ["sweep", "--space", str(ws / "space.yaml"), "--quiet"])
    assert_one_clear_error(code, err, "noisy_tasks_33:make is not a raykd task plug-in")
    assert snapshot(ws) == before and not marker(ws).exists()


@pytest.mark.parametrize("name, option", [("os:system", "command"), ("posix:system", "command"),
                                          ("subprocess:getoutput", "cmd"), ("os:popen", "cmd")])
def test_teacher_task_naming_a_shell_runs_nothing(tmp_path, capsys, name, option):
    ws = tmp_path / "ws"
    ws.mkdir()
    before = snapshot(ws)
    code, _, err = run_cli(capsys, ["teacher", "--task", name, "--task-option", f"{option}=touch {marker(ws)}",
                                    "--data", "synthetic:40", "--out", str(ws / "t")])
    assert_one_clear_error(code, err, f"task '{name}'")
    assert snapshot(ws) == before and not marker(ws).exists()


def test_trust_sweep_is_only_for_resume(tmp_path, capsys):
    code, _, err = run_cli(capsys, ["sweep", "--trust-sweep", "--space", str(tmp_path / "s.yaml")])
    assert_one_clear_error(code, err, "--trust-sweep is for --resume DIR")


# --- --resume and Ray Tune's pickled state --------------------------------------------------------


class _Planted:
    """Unpickling this runs `touch MARKER` (what a crafted tune/ state could do)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self):
        return (os.system, (f"touch {self.path}",))


def _plant_tune_state(ws: Path, sweep: Path) -> None:
    import pickle

    tune = sweep / "tune"
    tune.mkdir(exist_ok=True)
    for name in ("tuner.pkl", "searcher-state-default.pkl", "experiment_state-0.json"):
        (tune / name).write_bytes(pickle.dumps(_Planted(marker(ws))))


def test_a_sweep_made_under_another_key_is_not_resumed_and_its_pickles_are_never_loaded(workspace, capsys, monkeypatch):
    """Every stored input is fine, but the sweep was not signed with this user's key (a
    downloaded sweep): `--resume` would hand its tune/ directory to Tuner.restore, which
    unpickles it, so it is refused before Ray starts; the planted pickle never runs."""
    monkeypatch.setenv("RAYKD_SWEEP_KEY", "this user's key")
    ws, sweep = workspace
    _plant_tune_state(ws, sweep)
    from raykd import provenance

    path = sweep / "results" / "sweep.json"
    meta = json.loads(path.read_text())
    monkeypatch.setenv("RAYKD_SWEEP_KEY", "someone else's key")
    path.write_text(json.dumps({**meta, "signature": provenance.sign(meta)}))
    monkeypatch.setenv("RAYKD_SWEEP_KEY", "this user's key")
    err = assert_refused_changing_nothing(capsys, ws.parent, ["sweep", "--resume", str(sweep), "--quiet"],
                                          "was not made under this user's raykd key")
    assert "pass --trust-sweep only for a sweep you made or trust" in err
    assert not marker(ws).exists()


def test_the_signature_is_this_user_s_and_covers_what_identifies_the_sweep(monkeypatch, tmp_path):
    from raykd import provenance

    monkeypatch.delenv("RAYKD_SWEEP_KEY", raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "cfg"))
    meta = {"name": "s", "created": "2026-12-07T10:00:00+0000", "data": "synthetic:10", "seed": 0}
    signed = {**meta, "signature": provenance.sign(meta)}
    key = tmp_path / "cfg" / "raykd" / "sweep.key"
    assert key.stat().st_mode & 0o777 == 0o600 and len(key.read_bytes()) == 32
    assert provenance.signed_here(signed)
    assert not provenance.signed_here(meta)  # unsigned (made before signatures, or stripped)
    assert not provenance.signed_here({**signed, "data": "synthetic:11"})
    key.write_bytes(b"another user's key")
    assert not provenance.signed_here(signed)

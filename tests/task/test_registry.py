"""Tasks by name or import path: raykd's own resolve with their options, a user's plug-in is found
by module:factory or by an installed entry point, every way of naming a task wrongly is one
ConfigError line naming it, and nothing unmarked (os:system, builtins:eval, any callable) is ever
called, nor a module imported that does not declare the factory (docs/security.md)."""

from __future__ import annotations

from pathlib import Path

import pytest

from raykd.errors import ConfigError
from raykd.task.registry import TaskSpec, load_task_plugin, worker_pythonpath
from raykd.task_interface import TaskPlugin

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def test_builtin_tasks_resolve_by_name_with_their_options():
    mwp = load_task_plugin("mwp")
    assert isinstance(mwp, TaskPlugin) and mwp.name == "mwp" and "decode" in mwp.workloads
    lm = load_task_plugin({"name": "causal-lm", "max_new_tokens": 24})
    assert lm.name == "causal-lm" and lm.max_new_tokens == 24 and list(lm.workloads)[0] == "generate"
    assert load_task_plugin(None).name == "mwp"  # no task: the equation solver, as before


def test_a_plugin_resolves_by_import_path_and_its_directory_reaches_local_workers(monkeypatch):
    monkeypatch.syspath_prepend(str(EXAMPLES))
    plugin = load_task_plugin({"name": "majority_task:make_task", "eval_batch_size": 8})
    assert plugin.name == "majority" and plugin.eval_batch_size == 8
    monkeypatch.setenv("PYTHONPATH", "/elsewhere")
    assert worker_pythonpath(TaskSpec("majority_task:make_task")).split(":") == [str(EXAMPLES), "/elsewhere"]
    assert worker_pythonpath(TaskSpec("mwp")) is None


@pytest.mark.parametrize("raw, message", [
    ("nosuch", "task 'nosuch' is neither one of raykd's tasks (mwp, causal-lm) nor an import path"),
    ("no_such_module_xyz:make", "task 'no_such_module_xyz:make': cannot import 'no_such_module_xyz'"),
    ("raykd.task.registry:no_such_factory", "raykd.task.registry:no_such_factory is not a raykd task plug-in"),
    ("raykd.task.registry:", "an import path is module:factory"),
    ("raykd.task.registry:TaskSpec", "raykd.task.registry:TaskSpec is not a raykd task plug-in"),
    ("raykd.task.registry:load_task_plugin", "is not a raykd task plug-in"),
    ("os:system", "os:system is not a raykd task plug-in, so nothing of 'os' is run"),
    ("builtins:eval", "cannot import 'builtins' (no Python source for it"),
    ("subprocess:run", "subprocess:run is not a raykd task plug-in"),
    ("raykd.task.mwp_plugin:MWPPlugin.__init__", "an import path is module:factory"),
    ("x" * 5000 + ":f", "..."),
    ({"name": "causal-lm", "max_new_token": 3}, "task 'causal-lm' cannot be made with options {'max_new_token': 3}"),
    ({"name": "causal-lm", "distill_positions": "some"}, "task 'causal-lm': distill_positions must be one of answer, all"),
    ({"max_new_tokens": 3}, "task as a mapping needs a name"),
    (3, "task must be a name, an import path or a mapping with a name, got int"),
])
def test_every_wrong_task_is_one_line_naming_it(raw, message):
    with pytest.raises(ConfigError) as info:
        load_task_plugin(raw)
    assert message in str(info.value) and "\n" not in str(info.value)


def test_the_cli_refuses_an_unknown_task_with_exit_2(tmp_path, capsys):
    from raykd.cli import main

    (tmp_path / "teacher").mkdir()
    code = main(["chain", "--task", "nosuch", "--teacher", str(tmp_path / "teacher"), "--data", "synthetic:40",
                 "--out", str(tmp_path / "c")])
    err = capsys.readouterr().err
    assert code == 2 and "task 'nosuch' is neither" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "c").exists()


def test_the_code_docs_tasks_md_shows_is_the_example_plugins_own():
    import re

    docs = (Path(__file__).resolve().parents[2] / "docs" / "tasks.md").read_text()
    example = (EXAMPLES / "majority_task.py").read_text()
    blocks = re.findall(r"```python\n(.*?)```", docs, flags=re.S)
    assert len(blocks) == 3
    for block in blocks:
        assert block in example, block.splitlines()[0]


# --- plug-ins by registration, never by arbitrary callable (issue 33) ----------------------------

def test_a_planted_os_system_task_runs_nothing(tmp_path):
    """The shell command a task's options would pass to os.system never runs: refused by name."""
    marker = tmp_path / "MARKER"
    for raw in ({"name": "os:system", "command": f"touch {marker}"}, {"name": "posix:system", "command": f"touch {marker}"},
                {"name": "subprocess:call", "args": ["touch", str(marker)]}, {"name": "builtins:exec", "source": "1"}):
        with pytest.raises(ConfigError) as info:
            load_task_plugin(raw)
        assert "\n" not in str(info.value) and raw["name"][:6] in str(info.value)
    assert not marker.exists()


def _module(root: Path, name: str, body: str) -> None:
    root.mkdir(parents=True, exist_ok=True)
    (root / f"{name}.py").write_text(body)


def test_a_module_is_imported_only_when_its_source_declares_the_marked_factory(tmp_path, monkeypatch):
    marker = tmp_path / "IMPORTED"
    code = tmp_path / "code"
    side_effect = f"from pathlib import Path\nPath({str(marker)!r}).touch()\n"
    _module(code, "noisy_unmarked", side_effect + "def make(**o):\n    return None\n")
    _module(code, "noisy_assigned", side_effect + "from raykd.task_interface import task_plugin\n"
                                                  "def _f(**o):\n    return None\nmake = task_plugin(_f)\n")
    monkeypatch.syspath_prepend(str(code))
    for name in ("noisy_unmarked:make", "noisy_assigned:make", "noisy_unmarked:Path"):
        with pytest.raises(ConfigError, match="is not a raykd task plug-in, so nothing of"):
            load_task_plugin(name)
    assert not marker.exists()  # refused from the parsed source: the module's top-level code never ran


def test_the_mark_is_checked_on_the_object_too(tmp_path, monkeypatch):
    """A source that only spells the decorator's name (its own `task_plugin`) passes the parse but
    not the check on the imported object, which comes before the call."""
    marker = tmp_path / "CALLED"
    code = tmp_path / "code"
    _module(code, "fake_mark", "def task_plugin(f):\n    return f\n"
                               f"@task_plugin\ndef make(**o):\n    open({str(marker)!r}, 'w').close()\n")
    monkeypatch.syspath_prepend(str(code))
    with pytest.raises(ConfigError, match="fake_mark:make is not marked as a raykd task plug-in, so it is not called"):
        load_task_plugin("fake_mark:make")
    assert not marker.exists()


def test_a_marked_factory_or_a_taskplugin_subclass_is_a_plugin(tmp_path, monkeypatch):
    code = tmp_path / "code"
    _module(code, "own_tasks", "from raykd.task.mwp_plugin import MWPPlugin\n"
                               "from raykd import task_interface\n"
                               "@task_interface.task_plugin\ndef make(**o):\n    return MWPPlugin(**o)\n"
                               "class Sub(MWPPlugin, task_interface.TaskPlugin):\n    pass\n")
    monkeypatch.syspath_prepend(str(code))
    assert load_task_plugin({"name": "own_tasks:make", "beam_size": 2}).beam_size == 2
    assert load_task_plugin("own_tasks:Sub").name == "mwp"


def _install_entry_points(root: Path, lines: str) -> None:
    """A real installed distribution (a .dist-info on sys.path) with `raykd.tasks` entry points."""
    info = root / "raykd_test_tasks-1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: raykd-test-tasks\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[raykd.tasks]\n" + lines)


def test_an_installed_entry_point_is_a_task_name_and_a_stored_sweep_may_name_it(tmp_path, monkeypatch):
    from raykd.task.registry import check_stored_task

    marker = tmp_path / "MARKER"
    _install_entry_points(tmp_path / "site", "majority = majority_task:make_task\nshell = os:system\n")
    monkeypatch.syspath_prepend(str(EXAMPLES))
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    plugin = load_task_plugin({"name": "majority", "eval_batch_size": 4})
    assert plugin.name == "majority" and plugin.eval_batch_size == 4
    assert worker_pythonpath(TaskSpec("majority")) is None  # installed: workers have it as the driver does
    check_stored_task({"name": "majority"}, "a sweep")  # installed: allowed in a stored sweep
    check_stored_task("causal-lm", "a sweep")
    with pytest.raises(ConfigError, match="task 'shell': the entry point 'os:system' is not marked"):
        load_task_plugin({"name": "shell", "command": f"touch {marker}"})
    assert not marker.exists()


def test_a_stored_sweep_may_not_name_an_import_path_unless_trusted():
    from raykd.task.registry import check_stored_task

    with pytest.raises(ConfigError) as info:
        check_stored_task({"name": "majority_task:make_task"}, "/runs/s (stored space)")
    text = str(info.value)
    assert "names the task 'majority_task:make_task' by import path" in text and "--trust-sweep" in text
    check_stored_task({"name": "majority_task:make_task"}, "s", trusted=True)

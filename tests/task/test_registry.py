"""Tasks by name or import path: raykd's own resolve with their options, a user's plug-in is found
by module:factory, and every way of naming a task wrongly is one ConfigError line naming it."""

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
    ("raykd.task.registry:no_such_factory", "module 'raykd.task.registry' has no callable 'no_such_factory'"),
    ("raykd.task.registry:", "an import path is module:factory"),
    ("raykd.task.registry:TaskSpec", "did not make a task plug-in (missing: teacher_settings"),
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

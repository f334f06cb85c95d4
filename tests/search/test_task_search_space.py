"""A space searches task settings as `task.<setting>` keys: only the settings the task plug-in
lists as searchable, each end or choice checked by the plug-in's own validation at parse time;
a trial's task is the space's task with its sampled settings. Every mistake is one line on
stderr, exit 2, nothing written (as tests/distributed/test_space.py checks for chain settings)."""

from __future__ import annotations

import pytest
import yaml
from sweep_spaces import small_space

from raykd.cli import main
from raykd.search.space import parse_space

TRACE_TASK = {"name": "causal-lm", "output": "trace", "max_target_len": 256}


def _raw(tmp_path, search, task=TRACE_TASK, teacher=None):
    raw = small_space(tmp_path / "teacher", tmp_path / "runs")
    raw.update(task=task, teacher=teacher or {"model": "tiny"})
    raw["speed"] = {**raw["speed"], "source": "measured"}  # a trace table must time `generate` (raykd.traces.speed)
    raw["search"] = {**raw["search"], **search}
    return raw


def test_a_space_searches_trace_strength_and_source_beside_the_chain(tmp_path):
    space = parse_space(_raw(tmp_path, {"task.trace_strength": {"low": 0.0, "high": 1.0},
                                        "task.trace_source": {"choices": ["derived"]}}))
    by = {p.name: p for p in space.search}
    assert by["task.trace_strength"].bounds == (0.0, 1.0) and by["task.trace_source"].choices == ("derived",)
    sampled = {"alpha": 0.3, "p_max": 0.2, "task.trace_strength": 0.75, "task.trace_source": "derived"}
    assert space.task_for(sampled) == {**TRACE_TASK, "trace_strength": 0.75, "trace_source": "derived"}
    assert space.task == TRACE_TASK  # the teacher's task: no sampled setting
    assert space.chain_config(sampled).alpha == 0.3  # task settings are no chain settings
    choices = parse_space(_raw(tmp_path, {"task.trace_strength": {"choices": [0.0, 0.5, 1.0]}}))
    assert choices.task_for({"task.trace_strength": 0.5})["trace_strength"] == 0.5


BAD = [
    ({"task.trace_strength": {"low": 0.0, "high": 1.5}},
     "search.task.trace_strength.high: task 'causal-lm': trace_strength: pruning strength must be a number in [0, 1], got 1.5"),
    ({"task.trace_strength": {"low": -0.5, "high": 1.0}}, "search.task.trace_strength.low: task 'causal-lm': trace_strength"),
    ({"task.trace_strength": {"choices": [0.0, True]}}, "search.task.trace_strength.choices: task 'causal-lm': trace_strength"),
    ({"task.trace_strength": {"low": 0.8, "high": 0.2}}, "search.task.trace_strength: empty range"),
    ({"task.trace_strength": 0.5}, "search.task.trace_strength: expected a mapping like {low: 0, high: 1}"),
    ({"task.trace_source": {"choices": ["derived", "file"]}},
     "search.task.trace_source.choices: task 'causal-lm': trace_source file needs traces: FILE"),
    ({"task.trace_source": {"choices": ["teacher"]}}, "trace_source must be one of derived, file, got 'teacher'"),
    ({"task.max_new_tokens": {"low": 8, "high": 16}},
     ("search.task.max_new_tokens: the causal-lm task has no searchable setting 'max_new_tokens' "
      "(searchable: task.trace_strength, task.trace_source)")),
    ({"task.trace_strenght": {"low": 0.0, "high": 1.0}}, "has no searchable setting 'trace_strenght'"),
]


@pytest.mark.parametrize("search, message", BAD)
def test_bad_task_search_keys_exit_2_with_one_line(search, message, tmp_path, capsys):
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(_raw(tmp_path, search)))
    assert main(["sweep", "--space", str(path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("raykd: error: ") and message in err[0], err
    assert not (tmp_path / "runs").exists()  # nothing half-written


@pytest.mark.parametrize("task, teacher, message", [
    ({"name": "causal-lm"}, None, "search.task.trace_strength.high: task 'causal-lm': trace_strength needs output: trace"),
    ({**TRACE_TASK, "trace_strength": 0.5}, None, "search.task.trace_strength: trace_strength is both given in task and searched"),
    ("mwp", {"preset": "tiny"}, ("search.task.trace_strength: the mwp task has no searchable setting 'trace_strength' "
                                 "(searchable: none)")),
])
def test_a_searched_task_setting_must_fit_the_task(task, teacher, message, tmp_path, capsys):
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(_raw(tmp_path, {"task.trace_strength": {"low": 0.0, "high": 1.0}}, task, teacher)))
    assert main(["sweep", "--space", str(path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0], err
    assert not (tmp_path / "runs").exists()

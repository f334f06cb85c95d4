"""Tasks by name or by import path: what `task:` in a sweep and `--task` on the CLI resolve to.

A task is given as a name (`mwp`, `causal-lm`: raykd's own) or as `package.module:factory`, a
callable that takes the task's options as keyword arguments and returns a `TaskPlugin`
(`raykd.task_interface`; a class is such a callable). In a sweep, options sit beside the name:
`task: {name: causal-lm, max_new_tokens: 24}`. Every failure to resolve is one `ConfigError` line
naming the task; nothing is imported from data (the module named is the user's own code).
"""

from __future__ import annotations

import importlib
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from raykd.errors import ConfigError, first_line
from raykd.task_interface import TaskPlugin

BUILTIN_TASKS: dict[str, str] = {
    "mwp": "raykd.task.mwp_plugin:MWPPlugin",
    "causal-lm": "raykd.task.causal_lm_plugin:CausalLMPlugin",
}
"""raykd's own tasks: name -> the factory's import path."""

PLUGIN_METHODS = ("teacher_settings", "train_teacher", "load", "data_fingerprint")


@dataclass(frozen=True)
class TaskSpec:
    """Which task, and the options its factory is called with (JSON-able, so it travels to Ray
    workers and into the sweep's stored space)."""

    name: str = "mwp"
    options: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name.strip():
            raise ConfigError("task must be a name (mwp, causal-lm) or an import path module:factory")
        if ":" not in self.name and self.name not in BUILTIN_TASKS:
            raise ConfigError(f"task {self.name!r} is neither one of raykd's tasks ({', '.join(BUILTIN_TASKS)}) "
                              "nor an import path module:factory")

    @classmethod
    def parse(cls, raw: Any) -> "TaskSpec":
        """From a sweep's `task:` value: a name or path, or a mapping of `name` and options."""
        if raw is None:
            return cls()
        if isinstance(raw, str):
            return cls(raw.strip())
        if isinstance(raw, Mapping):
            if "name" not in raw:
                raise ConfigError("task as a mapping needs a name (e.g. {name: causal-lm, max_new_tokens: 24})")
            return cls(raw["name"], {str(k): v for k, v in raw.items() if k != "name"})
        raise ConfigError(f"task must be a name, an import path or a mapping with a name, got {type(raw).__name__}")

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, **self.options}

    @property
    def import_path(self) -> str:
        return BUILTIN_TASKS.get(self.name, self.name)

    @property
    def is_builtin(self) -> bool:
        return self.name in BUILTIN_TASKS


def load_task_plugin(spec: TaskSpec | str | Mapping[str, Any] | None) -> TaskPlugin:
    """The plug-in `spec` names, made with its options; ConfigError (one line) if it cannot be."""
    spec = spec if isinstance(spec, TaskSpec) else TaskSpec.parse(spec)
    factory = _factory(spec)
    try:
        plugin = factory(**spec.options)
    except ConfigError as exc:
        raise ConfigError(f"task {spec.name!r}: {exc}") from None
    except (TypeError, ValueError) as exc:  # unknown or invalid options
        raise ConfigError(f"task {spec.name!r} cannot be made with options {spec.options}: {first_line(exc)}") from None
    missing = [m for m in PLUGIN_METHODS if not callable(getattr(plugin, m, None))]
    if missing or not isinstance(getattr(plugin, "workloads", None), dict) or not getattr(plugin, "workloads"):
        what = ", ".join(missing) if missing else "a non-empty workloads dict"
        raise ConfigError(f"task {spec.name!r} did not make a task plug-in (missing: {what}; see docs/tasks.md)")
    return plugin


def _factory(spec: TaskSpec) -> Any:
    module_name, _, attr = spec.import_path.partition(":")
    if not module_name or not attr:
        raise ConfigError(f"task {spec.name!r}: an import path is module:factory, e.g. mypkg.tasks:make_task")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigError(f"task {spec.name!r}: cannot import {module_name!r} ({first_line(exc)}); it must be "
                          "importable here and on every Ray worker (installed, or on PYTHONPATH)") from None
    factory = getattr(module, attr, None)
    if not callable(factory):
        raise ConfigError(f"task {spec.name!r}: module {module_name!r} has no callable {attr!r}")
    return factory


def worker_pythonpath(spec: TaskSpec) -> str | None:
    """The directory a local Ray cluster's workers need on PYTHONPATH to import a user's task
    plug-in that the driver found through its own sys.path (a checkout, a notebook's folder),
    prepended to the driver's PYTHONPATH; None for raykd's tasks and installed packages.
    A remote cluster gets the code with the job (`ray job submit --working-dir`, or installed)."""
    if spec.is_builtin:
        return None
    top = spec.import_path.partition(":")[0].split(".")[0]
    module = sys.modules.get(top) or importlib.import_module(top)
    origin = getattr(module, "__file__", None)
    if origin is None:
        return None
    path = Path(origin).resolve()
    root = path.parent.parent if path.name == "__init__.py" else path.parent
    if "site-packages" in root.parts or "dist-packages" in root.parts:
        return None
    return os.pathsep.join([str(root)] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p])


def require_task_splits(task: Any, data: str, names: tuple[str, ...], *, why: str) -> None:
    """DataError (one line, exit 2, before any training) naming the data spec and every split
    the task has no examples in (as `raykd.data.require_splits` says it for problems)."""
    from raykd.errors import DataError

    empty = [n for n in names if not task.has_split(n)]
    if empty:
        raise DataError(f"{data} gives no {' and no '.join(empty)} examples ({why}): add the split or use more data")

"""Tasks by name or by import path: what `task:` in a sweep and `--task` on the CLI resolve to.

A task is given as a name (`mwp`, `causal-lm`: raykd's own; or a plug-in installed under the
entry-point group `raykd.tasks`) or as `package.module:factory`, a factory that takes the task's
options as keyword arguments and returns a `TaskPlugin` (`raykd.task_interface`). In a sweep,
options sit beside the name: `task: {name: causal-lm, max_new_tokens: 24}`. Every failure to
resolve is one `ConfigError` line naming the task.

A name is never enough to call something (docs/security.md). A factory is called only when it is
marked as a plug-in (`raykd.task_interface.task_plugin`, or a class subclassing `TaskPlugin`), and
a module named by import path is imported only when its source, found and parsed without running
it, defines that factory with the mark: `os:system`, `builtins:eval`, `subprocess:run` or a module
whose import has side effects are refused before anything of theirs runs. A stored sweep is data:
`check_stored_task` lets it name only raykd's own tasks and installed entry points.
"""

from __future__ import annotations

import ast
import importlib
import importlib.machinery
import importlib.metadata
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from raykd.errors import ConfigError, DataError, first_line, shown
from raykd.task_interface import TaskPlugin, is_task_plugin

BUILTIN_TASKS: dict[str, str] = {
    "mwp": "raykd.task.mwp_plugin:MWPPlugin",
    "causal-lm": "raykd.task.causal_lm_plugin:CausalLMPlugin",
}
"""raykd's own tasks: name -> the factory's import path (marked like any plug-in's)."""

ENTRY_POINT_GROUP = "raykd.tasks"
"""Installed plug-ins: `[project.entry-points."raykd.tasks"] NAME = "pkg.module:factory"`."""

MARKS = ("task_plugin",)  # the decorator's name as the parsed source spells it (bare or dotted)
BASES = ("TaskPlugin",)


def _shown(text: Any, limit: int = 120) -> str:
    return shown(text, limit)


def entry_points() -> dict[str, Any]:
    """name -> EntryPoint of every installed plug-in in the group `raykd.tasks`."""
    return {ep.name: ep for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)}


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
        if ":" not in self.name and self.name not in BUILTIN_TASKS and self.name not in entry_points():
            installed = "".join(f", {n}" for n in sorted(entry_points()))
            raise ConfigError(f"task {_shown(self.name)} is neither one of raykd's tasks ({', '.join(BUILTIN_TASKS)}"
                              f"{installed}) nor an import path module:factory")

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

    @property
    def is_installed(self) -> bool:
        """raykd's own or a plug-in installed under the entry-point group (not an import path)."""
        return self.is_builtin or (":" not in self.name and self.name in entry_points())


def load_task_plugin(spec: TaskSpec | str | Mapping[str, Any] | None) -> TaskPlugin:
    """The plug-in `spec` names, made with its options; ConfigError (one line) if it cannot be."""
    spec = spec if isinstance(spec, TaskSpec) else TaskSpec.parse(spec)
    factory = _factory(spec)
    try:
        plugin = factory(**spec.options)
    except ConfigError as exc:
        raise ConfigError(f"task {_shown(spec.name)}: {exc}") from None
    except (TypeError, ValueError) as exc:  # unknown or invalid options
        raise ConfigError(f"task {_shown(spec.name)} cannot be made with options {_shown(spec.options, 200)}: {first_line(exc)}") from None
    missing = [m for m in PLUGIN_METHODS if not callable(getattr(plugin, m, None))]
    if missing or not isinstance(getattr(plugin, "workloads", None), dict) or not getattr(plugin, "workloads"):
        what = ", ".join(missing) if missing else "a non-empty workloads dict"
        raise ConfigError(f"task {_shown(spec.name)} did not make a task plug-in (missing: {what}; see docs/tasks.md)")
    return plugin


def check_stored_task(raw: Any, where: str, *, trusted: bool = False) -> None:
    """A stored sweep (`where`) may name raykd's tasks or installed entry points only: an import
    path in a sweep.json someone else wrote would import a module of their choosing. `trusted`
    (`--trust-sweep`: the user made this sweep) lets its import path through to `load_task_plugin`,
    which still calls only a marked factory. ConfigError (one line) otherwise; nothing is imported."""
    spec = TaskSpec.parse(raw)
    if spec.is_installed or trusted:
        return
    raise ConfigError(f"{where} names the task {_shown(spec.name)} by import path, and a stored sweep is data: it may "
                      f"load only raykd's tasks or plug-ins installed under the entry-point group {ENTRY_POINT_GROUP} "
                      "(docs/security.md); if you made this sweep, pass --trust-sweep")


def _factory(spec: TaskSpec) -> Any:
    """The marked factory `spec` names; ConfigError before anything unmarked is called (or,
    for an import path, before a module that does not declare the factory is imported)."""
    if ":" not in spec.name and not spec.is_builtin:  # an installed entry point: its package is the user's
        ep = entry_points()[spec.name]
        try:
            factory = ep.load()
        except Exception as exc:  # an installed plug-in that fails to import: one line naming it
            raise ConfigError(f"task {_shown(spec.name)}: cannot load the entry point {ep.value!r} "
                              f"({type(exc).__name__}: {first_line(exc)})") from None
        where = f"the entry point {ep.value!r}"
    else:
        module_name, _, attr = spec.import_path.partition(":")
        if not module_name or not attr:
            raise ConfigError(f"task {_shown(spec.name)}: an import path is module:factory, e.g. mypkg.tasks:make_task")
        _check_declared(spec, module_name, attr)
        try:
            module = importlib.import_module(module_name)
        except ImportError as exc:
            raise ConfigError(f"task {_shown(spec.name)}: cannot import {module_name!r} ({first_line(exc)}); it must be "
                              "importable here and on every Ray worker (installed, or on PYTHONPATH)") from None
        factory = getattr(module, attr, None)
        where = f"{module_name}:{attr}"
    if not is_task_plugin(factory):
        raise ConfigError(f"task {_shown(spec.name)}: {where} is not marked as a raykd task plug-in, so it is not "
                          "called: decorate the factory with @raykd.task_interface.task_plugin (docs/tasks.md)")
    return factory


def _check_declared(spec: TaskSpec, module_name: str, attr: str) -> None:
    """Before `module_name` is imported (importing runs its top-level code): its source must
    define `attr` at top level as a function or class decorated with `task_plugin`, or as a class
    listing `TaskPlugin` among its bases. The source is found and parsed, never run."""
    if not all(part.isidentifier() for part in module_name.split(".")) or not attr.isidentifier():
        raise ConfigError(f"task {_shown(spec.name)}: an import path is module:factory, e.g. mypkg.tasks:make_task")
    source = _source_of(module_name)
    if source is None:
        raise ConfigError(f"task {_shown(spec.name)}: cannot import {module_name!r} (no Python source for it on the "
                          "import path); it must be importable here and on every Ray worker (installed, or on PYTHONPATH)")
    try:
        tree = ast.parse(source.read_bytes(), filename=str(source))
    except (OSError, SyntaxError, ValueError) as exc:
        raise ConfigError(f"task {_shown(spec.name)}: cannot read {source} ({first_line(exc)})") from None
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and node.name == attr:
            if any(_tail(d) in MARKS for d in node.decorator_list):
                return
            if isinstance(node, ast.ClassDef) and any(_tail(b) in BASES for b in node.bases):
                return
    raise ConfigError(f"task {_shown(spec.name)}: {module_name}:{attr} is not a raykd task plug-in, so nothing of "
                      f"{module_name!r} is run: a plug-in's module defines the factory decorated with "
                      "@raykd.task_interface.task_plugin (docs/tasks.md)")


def _tail(node: ast.expr) -> str | None:
    """`task_plugin` of `task_plugin`, `raykd.task_interface.task_plugin` or `task_plugin(...)`."""
    if isinstance(node, ast.Call):
        return _tail(node.func)
    if isinstance(node, ast.Attribute):
        return node.attr
    if isinstance(node, ast.Name):
        return node.id
    return None


def _source_of(module_name: str) -> Path | None:
    """The .py file `module_name` would be imported from, found as the import system finds it
    (sys.path, then each parent package's __path__) without importing the module or its parents."""
    loaded = sys.modules.get(module_name)
    if loaded is not None:
        origin = getattr(loaded, "__file__", None)
        return Path(origin) if origin and origin.endswith(".py") else None
    parts = module_name.split(".")
    search: Any = None
    spec = None
    for i in range(len(parts)):
        name = ".".join(parts[: i + 1])
        parent = sys.modules.get(name)
        if parent is not None and i < len(parts) - 1:
            search = getattr(parent, "__path__", None)
        else:
            spec = importlib.machinery.PathFinder.find_spec(name, search)
            if spec is None:
                return None
            search = spec.submodule_search_locations
        if i < len(parts) - 1 and search is None:
            return None  # a parent that is not a package
    origin = spec.origin if spec is not None else None
    return Path(origin) if origin and origin.endswith(".py") and Path(origin).is_file() else None


def worker_pythonpath(spec: TaskSpec) -> str | None:
    """The directory a local Ray cluster's workers need on PYTHONPATH to import a user's task
    plug-in that the driver found through its own sys.path (a checkout, a notebook's folder),
    prepended to the driver's PYTHONPATH; None for raykd's tasks and installed packages.
    A remote cluster gets the code with the job (`ray job submit --working-dir`, or installed)."""
    if spec.is_installed:
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
    empty = [n for n in names if not task.has_split(n)]
    if empty:
        raise DataError(f"{data} gives no {' and no '.join(empty)} examples ({why}): add the split or use more data")

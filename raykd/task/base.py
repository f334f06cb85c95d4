"""The `Task` interface moved to `raykd.task_interface` (below the task package, so the training
loop and the method use it without importing a task); this name stays for existing imports."""

from raykd.task_interface import Batch, Task, TaskOutput, resolve_workload  # noqa: F401

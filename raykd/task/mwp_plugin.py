"""The equation solver as a task plug-in (`task: mwp`, the default): data specs as `raykd data
check` reads them, teachers as `raykd teacher` trains them, solvers as `raykd.task.io` saves them."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

from raykd.data import load_splits, require_splits
from raykd.errors import ConfigError
from raykd.task.io import SolverIO, load_solver
from raykd.task.mwp import WORKLOADS, MWPTask
from raykd.task.plugin_checks import check_teacher_keys, problems_fingerprint
from raykd.task.teacher import SolverSpec, train_teacher
from raykd.task_interface import LoadedModel, task_plugin
from raykd.training import FitConfig

TEACHER_KEYS = ("preset", "encoder", "path", "epochs", "lr", "head_lr", "batch_size", "patience", "max_steps",
                "time_budget_s")
DEFAULT_TEACHER: dict[str, Any] = {"preset": "tiny", "epochs": 20}


def _workloads() -> dict[str, str]:
    return dict(WORKLOADS)


@task_plugin
@dataclass
class MWPPlugin:
    """Options: `beam_size` (evaluation beam, default 1: greedy)."""

    beam_size: int = 1
    name: str = "mwp"
    reads_data_uris: bool = True  # specs as raykd.data reads them: paths or s3://, gs://, file:// URIs
    workloads: dict[str, str] = field(default_factory=_workloads)

    def __post_init__(self) -> None:
        if isinstance(self.beam_size, bool) or not isinstance(self.beam_size, int) or self.beam_size < 1:
            raise ConfigError(f"beam_size must be an integer >= 1, got {self.beam_size!r}")

    def teacher_settings(self, raw: Mapping[str, Any] | None) -> dict[str, Any]:
        if raw is None:
            return dict(DEFAULT_TEACHER)
        check_teacher_keys(raw, TEACHER_KEYS, example="{preset: tiny}, {encoder: NAME} or {path: DIR}",
                           numbers=("lr", "head_lr", "time_budget_s"))
        sources = [k for k in ("preset", "encoder", "path") if k in raw]
        if len(sources) != 1:
            raise ConfigError("teacher needs exactly one of preset, encoder, path")
        if "preset" in raw and raw["preset"] != "tiny":
            raise ConfigError("teacher.preset must be tiny")
        return dict(raw)

    def train_teacher(self, data: str, settings: Mapping[str, Any], out: Path, *, seed: int = 0,
                      progress: bool = False, log: Callable[[str], None] = print, device: str = "cpu") -> dict[str, Any]:
        splits = load_splits(data, seed=seed)
        require_splits(splits, data, ("train", "valid"), why="the teacher trains on train and early-stops on valid")
        spec, fit = teacher_recipe(settings, seed=seed)
        report = train_teacher(splits, spec, fit, out, device=device, beam_size=self.beam_size, progress=progress,
                               extra_config={"data": data})
        return report.to_dict()

    def load(self, directory: Path, data: str, *, seed: int = 0) -> LoadedModel:
        model, tokenizer, _ = load_solver(directory)
        task = MWPTask(tokenizer, model.vocab, load_splits(data, seed=seed), beam_size=self.beam_size)
        return LoadedModel(model, task, SolverIO(tokenizer))

    def data_fingerprint(self, data: str, *, seed: int = 0) -> str:
        return problems_fingerprint(data, seed=seed)


def teacher_recipe(settings: Mapping[str, Any], *, seed: int = 0) -> tuple[Any, Any]:
    """(SolverSpec, FitConfig) of a space's `teacher:` settings (a preset or an encoder, not a
    path): the one place they are read, by the sweep's teacher and by `raykd cv --from` (which
    trains the same recipe once per fold). ValueError on values the configs refuse."""
    spec = SolverSpec(preset=settings.get("preset"), encoder=settings.get("encoder"))
    pretrained = "encoder" in settings
    fit = FitConfig(
        epochs=int(settings.get("epochs", 20)), batch_size=int(settings.get("batch_size", 32)),
        lr=float(settings.get("lr", 5e-5 if pretrained else 1e-3)),
        head_lr=float(settings.get("head_lr", 1e-3 if pretrained else 0.0)),
        patience=int(settings.get("patience", 5)), max_steps=int(settings.get("max_steps", 0)),
        time_budget_s=float(settings.get("time_budget_s", 0.0)), seed=seed,
    )
    return spec, fit

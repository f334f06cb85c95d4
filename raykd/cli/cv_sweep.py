"""`raykd cv --from RUN --trial ID`: the settings of one stored sweep trial, read as data.

A sweep selects on its cheap objective (accuracy on the valid split); its front points are then
confirmed by cross-validation with the same data, teacher recipe and chain settings, taken from
the sweep in one command (no settings copied by hand). A stored sweep can come from anyone, so it
is read under the rules of every other command that opens one (`raykd.analysis.confine`,
docs/security.md): its task must be raykd's or an installed entry point, its data must lie inside
it and no link in it may lead out, unless the user says it is theirs (`--trust-sweep`). What CV
cannot do from a sweep is refused in one line rather than done differently: a task other than
raykd's own (the equation solver, greedy; the causal-LM task), and a teacher given by path (there is
no recipe to retrain per fold, and the given teacher has seen every fold).

The trial's task is the sweep's task with the trial's sampled `task.<setting>` values, made by the
function the sweep's workers use (`SweepSpace.task_for`): a trial of a trace sweep at pruning
strength 1 is cross-validated at strength 1, never at the space's default.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from raykd.cli.common import parse_assignments
from raykd.errors import ConfigError, shown
from raykd.method.config import ChainConfig
from raykd.search.space import TASK_PREFIX, parse_space
from raykd.task.encoders import PACKAGED_ENCODERS, check_encoder_source

SHOWN = 120  # at most this many characters of a stored value in a message
CV_TASKS = ("mwp", "causal-lm")
"""The tasks `raykd cv` trains per fold: raykd's own (a plug-in's teacher cannot be trained on a fold's splits)."""
PACKAGED_MODELS = ("tiny", "smollm2")
"""Causal-LM teachers a stored sweep may name without --trust-sweep (others are a hub name or a path)."""


@dataclass(frozen=True)
class SweepTrial:
    """What `raykd cv` takes from a sweep's trial: data spec, seed, teacher recipe (mwp: `spec` and
    `fit`, as `raykd cv` records its own; causal-lm: the space's teacher `settings`), the trial's
    chain settings (fixed + searched) and its task (None: the equation solver with greedy
    decoding, what `raykd cv` runs without --from; else name and options with the trial's
    sampled `task.<setting>` values)."""

    sweep: str  # the sweep as opened (a local path or a storage URI)
    trial_id: str
    status: str
    data: str
    seed: int
    teacher: dict[str, Any]
    chain: dict[str, Any]
    task: dict[str, Any] | None = None


def read_sweep_trial(run: str, trial_id: str, *, trusted: bool = False) -> SweepTrial:
    """The settings of `trial_id` in the sweep `run`; one-line errors (exit 2) for a missing sweep
    or trial, a sweep that names data or code outside itself (unless `trusted`), and what CV
    cannot run. Nothing is trained, downloaded or imported beyond raykd's own task."""
    from raykd.analysis import open_sweep  # deferred: torch (~3 s) at `raykd` start-up
    from raykd.analysis.confine import check_stored_inputs
    from raykd.task.registry import TaskSpec

    sw = open_sweep(run)
    row = sw.trial(trial_id)  # "no trial 'x' in sweep NAME (trials: ...)"
    where = f"sweep {run}"
    raw = sw.meta.get("space_raw")
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{where} records no search space (results/sweep.json has no space_raw): its data and teacher "
                          "settings are unknown, so its trials cannot be cross-validated from it")
    task = TaskSpec.parse(raw.get("task"))  # nothing is imported yet
    if task.name not in CV_TASKS:
        raise ConfigError(f"{where}: its task is {shown(task.name, SHOWN)}; raykd cv runs raykd's own tasks "
                          f"({', '.join(CV_TASKS)}) only")
    if task.name == "mwp" and task.options not in ({}, {"beam_size": 1}):
        raise ConfigError(f"{where}: its task options {shown(json.dumps(task.options, sort_keys=True), SHOWN)} are not "
                          "raykd cv's (mwp, greedy decoding: beam_size 1)")
    check_stored_inputs(sw.meta, sw.uri, where=f"{run} (stored space)", trusted=trusted)  # data inside, no links out
    space = parse_space(raw, f"{run} (stored space)")
    trial_task = _trial_task(space, sw.hyperparameters(trial_id), where, trial_id, trusted=trusted)
    if trial_task is None:
        teacher = _teacher(space.teacher, where, trusted=trusted, seed=space.seed)
    else:
        teacher = _model_teacher(space.teacher, where, trusted=trusted)
    chain = _chain(row, where, trial_id)
    return SweepTrial(sw.uri, str(trial_id), str(row.get("status")), space.data, space.seed, teacher, chain, trial_task)


def _trial_task(space: Any, sampled: Mapping[str, Any], where: str, trial_id: str, *,
                trusted: bool) -> dict[str, Any] | None:
    """The trial's task exactly as the sweep's workers made it (`SweepSpace.task_for` over the
    trial's sampled values), checked by making its plug-in; None for the equation solver with
    greedy decoding (what raykd cv runs without --from)."""
    from raykd.task.registry import load_task_plugin  # deferred: torch (~3 s) at `raykd` start-up

    searched = [p.name for p in space.search if p.name.startswith(TASK_PREFIX)]
    missing = [name for name in searched if sampled.get(name) is None]
    if missing:
        raise ConfigError(f"{where}: trial {shown(trial_id, SHOWN)} records no value for {', '.join(missing)}: the task it "
                          "ran is unknown")
    task = space.task_for({name: sampled[name] for name in searched})
    if task.get("name") == "mwp" and set(task) <= {"name", "beam_size"} and task.get("beam_size", 1) == 1:
        return None
    if "traces" in task and not trusted:
        raise ConfigError(f"{where}: its task reads the traces file {shown(task['traces'], SHOWN)}: a stored sweep is "
                          "data, and cross-validating it would read that path; if you made this sweep, pass --trust-sweep")
    load_task_plugin(task)  # the plug-in's own validation of the trial's values, one line
    return task


def _model_teacher(settings: Mapping[str, Any], where: str, *, trusted: bool) -> dict[str, Any]:
    """A causal-LM sweep's teacher settings (what the plug-in fine-tunes, and how), trained afresh
    per fold by the plug-in's own `train_teacher_on`."""
    if "path" in settings:
        raise ConfigError(f"{where}: its teacher was given by path (teacher.path), not trained from settings: raykd cv "
                          "trains a teacher per fold and has no recipe for this one (and the given teacher has seen "
                          "every fold)")
    model = settings.get("model")
    if not trusted and model not in PACKAGED_MODELS:
        raise ConfigError(f"{where}: teacher.model {shown(model, SHOWN)} is not one of raykd's packaged models "
                          f"({', '.join(PACKAGED_MODELS)}): a stored sweep is data, and training from it would read that "
                          "path or download that model; if you made this sweep, pass --trust-sweep")
    return {"settings": dict(settings)}


def _teacher(settings: Mapping[str, Any], where: str, *, trusted: bool, seed: int) -> dict[str, Any]:
    """The sweep's teacher recipe as `raykd cv` records it ({"spec", "fit"}), through the same
    reader the sweep's own teacher used (`raykd.task.mwp_plugin.teacher_recipe`)."""
    from raykd.task.mwp_plugin import teacher_recipe  # deferred: torch (~3 s) at `raykd` start-up

    if "path" in settings:
        raise ConfigError(f"{where}: its teacher was given by path (teacher.path), not trained from settings: raykd cv "
                          "trains a teacher per fold and has no recipe for this one (and the given teacher has seen "
                          "every fold); run raykd cv --data ... with the teacher's settings instead")
    encoder = settings.get("encoder")
    if encoder is not None:
        if not isinstance(encoder, str) or not encoder.strip():
            raise ConfigError(f"{where}: teacher.encoder {shown(encoder, SHOWN)} is not a name")
        if not trusted and encoder.lower() not in PACKAGED_ENCODERS:
            raise ConfigError(f"{where}: teacher.encoder {shown(encoder, SHOWN)} is not one of raykd's packaged encoders "
                              f"({', '.join(PACKAGED_ENCODERS)}): a stored sweep is data, and training from it would "
                              "read that path or download that model; if you made this sweep, pass --trust-sweep")
        check_encoder_source(encoder)
    try:
        spec, fit = teacher_recipe(settings, seed=seed)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{where}: teacher settings: {exc}") from None
    return {"spec": dict(spec.__dict__), "fit": fit.to_dict()}


def _chain(row: Any, where: str, trial_id: str) -> dict[str, Any]:
    """The trial's chain settings as the sweep recorded them (fixed + searched, checked again by
    `ChainConfig.from_dict` when the caller builds the config)."""
    text = row.get("chain_config_json")
    try:
        chain = json.loads(text) if isinstance(text, str) else None
    except ValueError:
        chain = None
    if not isinstance(chain, dict) or not chain or "invalid" in chain:
        why = f": {shown(chain['invalid'], SHOWN)}" if isinstance(chain, dict) and "invalid" in chain else ""
        raise ConfigError(f"{where}: trial {shown(trial_id, SHOWN)} records no valid chain settings{why}")
    return chain


def reseeded(trial: SweepTrial, seed: int) -> SweepTrial:
    """The trial with the teacher trained under another seed (`--seed` beside `--from`; a causal-LM
    teacher is trained under the CV's seed already)."""
    if "fit" not in trial.teacher:
        return trial
    return dataclasses.replace(trial, teacher={**trial.teacher, "fit": {**trial.teacher["fit"], "seed": seed}})


def trial_chain_config(trial: SweepTrial, overrides: list[str]) -> Any:
    """The trial's chain config, scored every round on the held-out fold (a sweep scores the test
    split after the last round only; that changes no training), with --set over it."""
    try:
        base = ChainConfig.from_dict({**trial.chain, "test_every_round": True})
    except ConfigError as exc:
        raise ConfigError(f"sweep {trial.sweep}: the chain settings of trial {shown(trial.trial_id, SHOWN)}: {exc}") from None
    try:
        return ChainConfig.from_dict({**base.to_dict(), **parse_assignments(overrides, "--set")})
    except ConfigError as exc:
        raise ConfigError(f"--set: {exc}") from None

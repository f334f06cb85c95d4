"""`raykd cv --from RUN --trial ID`: the settings of one stored sweep trial, read as data.

A sweep selects on its cheap objective (accuracy on the valid split); its front points are then
confirmed by cross-validation with the same data, teacher recipe and chain settings, taken from
the sweep in one command (no settings copied by hand). A stored sweep can come from anyone, so it
is read under the rules of every other command that opens one (`raykd.analysis.confine`,
docs/security.md): its task must be raykd's or an installed entry point, its data must lie inside
it and no link in it may lead out, unless the user says it is theirs (`--trust-sweep`). What CV
cannot do from a sweep is refused in one line rather than done differently: a task other than the
equation solver (mwp, greedy), and a teacher given by path (there is no recipe to retrain per fold,
and the given teacher has seen every fold).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from raykd.errors import ConfigError, shown

SHOWN = 120  # at most this many characters of a stored value in a message


@dataclass(frozen=True)
class SweepTrial:
    """What `raykd cv` takes from a sweep's trial: data spec, seed, teacher recipe (`spec` and
    `fit`, as `raykd cv` records its own) and the trial's chain settings (fixed + searched)."""

    sweep: str  # the sweep as opened (a local path or a storage URI)
    trial_id: str
    status: str
    data: str
    seed: int
    teacher: dict[str, Any]
    chain: dict[str, Any]


def read_sweep_trial(run: str, trial_id: str, *, trusted: bool = False) -> SweepTrial:
    """The settings of `trial_id` in the sweep `run`; one-line errors (exit 2) for a missing sweep
    or trial, a sweep that names data or code outside itself (unless `trusted`), and what CV
    cannot run. Nothing is trained, downloaded or imported beyond raykd's own task."""
    from raykd.analysis import open_sweep
    from raykd.analysis.confine import check_stored_inputs
    from raykd.search.space import parse_space
    from raykd.task.registry import TaskSpec

    sw = open_sweep(run)
    row = sw.trial(trial_id)  # "no trial 'x' in sweep NAME (trials: ...)"
    where = f"sweep {run}"
    raw = sw.meta.get("space_raw")
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{where} records no search space (results/sweep.json has no space_raw): its data and teacher "
                          "settings are unknown, so its trials cannot be cross-validated from it")
    task = TaskSpec.parse(raw.get("task"))  # nothing is imported yet
    if task.name != "mwp":
        raise ConfigError(f"{where}: its task is {shown(task.name, SHOWN)}; raykd cv runs the equation-solver task "
                          "(mwp) only")
    if task.options not in ({}, {"beam_size": 1}):
        raise ConfigError(f"{where}: its task options {shown(json.dumps(task.options, sort_keys=True), SHOWN)} are not "
                          "raykd cv's (mwp, greedy decoding: beam_size 1)")
    check_stored_inputs(sw.meta, sw.uri, where=f"{run} (stored space)", trusted=trusted)  # data inside, no links out
    space = parse_space(raw, f"{run} (stored space)")
    teacher = _teacher(space.teacher, where, trusted=trusted, seed=space.seed)
    chain = _chain(row, where, trial_id)
    return SweepTrial(sw.uri, str(trial_id), str(row.get("status")), space.data, space.seed, teacher, chain)


def _teacher(settings: Mapping[str, Any], where: str, *, trusted: bool, seed: int) -> dict[str, Any]:
    """The sweep's teacher recipe as `raykd cv` records it ({"spec", "fit"}), through the same
    reader the sweep's own teacher used (`raykd.task.mwp_plugin.teacher_recipe`)."""
    from raykd.task.encoders import PACKAGED_ENCODERS, check_encoder_source
    from raykd.task.mwp_plugin import teacher_recipe

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
    """The trial with the teacher trained under another seed (`--seed` beside `--from`)."""
    import dataclasses

    return dataclasses.replace(trial, teacher={**trial.teacher, "fit": {**trial.teacher["fit"], "seed": seed}})


def trial_chain_config(trial: SweepTrial, overrides: list[str]) -> Any:
    """The trial's chain config, scored every round on the held-out fold (a sweep scores the test
    split after the last round only; that changes no training), with --set over it."""
    from raykd.cli.common import parse_assignments
    from raykd.method.config import ChainConfig

    try:
        base = ChainConfig.from_dict({**trial.chain, "test_every_round": True})
    except ConfigError as exc:
        raise ConfigError(f"sweep {trial.sweep}: the chain settings of trial {shown(trial.trial_id, SHOWN)}: {exc}") from None
    try:
        return ChainConfig.from_dict({**base.to_dict(), **parse_assignments(overrides, "--set")})
    except ConfigError as exc:
        raise ConfigError(f"--set: {exc}") from None

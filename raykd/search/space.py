"""Sweep definitions: a YAML search space, validated before anything starts; the Optuna sampler it names.

Ray-free: `raykd.analysis` (re-timing), `raykd.search.preflight` and the in-process benchmarks
read spaces without starting Ray; the Ray Tune side (`tune_space`) is `raykd.distributed.space`.

A space file has these top-level keys (all optional except `search`; see search_spaces/):

    name: default                 # sweep name (directory under storage)
    task: mwp                     # or causal-lm, or mypkg.tasks:make_task; options: {name: causal-lm, max_new_tokens: 24}
    data: synthetic:800           # data spec, read by the task (mwp/causal-lm: see `raykd data check`)
    teacher: {preset: tiny, epochs: 20}     # the task's teacher settings; mwp: or {path: DIR} or {encoder: minilm, epochs: ...}
    search:                       # hyperparameters Optuna samples (ChainConfig fields, task.<setting>)
      alpha: {low: 0.0, high: 1.0}
      n: {low: 0.5, high: 3.0, log: true}
      rounds: {low: 1, high: 3, type: int}
      importance: {choices: [combined, random]}
      p_max: {low: 0.1, high: 0.6}
      p_min_fraction: {low: 0.0, high: 0.5}   # p_min = p_min_fraction * p_max (also ffn_, layer_)
      task.trace_strength: {choices: [0.0, 0.5, 1.0]}   # a task setting its plug-in lists as searchable
    fixed: {epochs_per_round: 2}  # ChainConfig fields held constant
    objectives: [{metric: accuracy, mode: max}, {metric: speedup, mode: max}]
    sampler: {type: tpe, seed: 0}          # tpe (multi-objective TPE), nsga2, gp (Optuna's GPSampler, logEHVI), random
    num_samples: 6
    early_stop: {accuracy_floor: 0.2, after_round: 1}   # optional; or {type: mo-successive-halving, eta: 3, min_rounds: 1}
    constraints: [{metric: speedup, min: 1.5}]          # optional (raykd.search.constraints)
    resources: {workers: 2, cpus_per_worker: 1, gpus_per_worker: 0, concurrent_trials: 1}
    storage: ~/raykd_runs          # local path, s3://bucket/prefix or gs://bucket/prefix

Every mistake (unknown key, wrong type, empty range, p_max >= 1, p_min ranges above p_max
ranges, a number past its upper bound: `MAX_NUM_SAMPLES`, `CHAIN_LIMITS`, `TEACHER_LIMITS`,
`RESOURCE_LIMITS`) raises ConfigError naming the key, so `raykd sweep` exits 2 before starting
Ray; what a parsed space names (data, teacher, storage, constraints) is checked next, also
before Ray, by `raykd.search.preflight`. The shape of each section (its keys, types and fixed
ranges) is a pydantic model in `raykd.search.schema`, which words its errors as raykd does; this
module checks what needs the rest of raykd: chain and task settings, and settings that constrain
each other.

A schedule's start (p_min: Eq. 5 at t = 0, so round 1 removes p_min + (p_max - p_min) * (1/T)^n)
is searched as a fraction of its end, `p_min_fraction` in [0, 1]: every sampled pair is then a
valid schedule, and the sampler is told the value the trial used. Searching p_min and p_max
themselves is refused where their ranges overlap: a sampled p_min above p_max would have to be
changed behind the sampler's back.

A key `task.<setting>` in `search:` searches a setting of the task rather than of the chain: one
the task plug-in lists in its `searchable_options` (causal-lm: `trace_strength`, `trace_source`),
not also given among the task's options, each end or choice checked by making the plug-in with it
(its own validation, one line). A trial's task is the space's task with its sampled settings
(`SweepSpace.task_for`); the teacher is made from the space's task alone.
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from raykd.errors import ConfigError
from raykd.method.config import ChainConfig, plugin_setting_types, schedule_pairs
from raykd.method.optional_kinds import activate_for_settings
from raykd.search.constraints import FORECAST_METRICS, parse_constraints
from raykd.search.successive_halving import SCHEDULER_TYPE, HalvingConfig
from raykd.search.vocabulary import MAX_NUM_SAMPLES, SPEED_DEFAULTS, number_text
from raykd.yaml_io import load_yaml_file, parse_yaml

CHAIN_FIELDS = {f.name: f for f in dataclasses.fields(ChainConfig) if f.name != "plugin_settings"}


def fractions() -> dict[str, tuple[str, str]]:
    """Searched schedule starts, one per registered structure kind: `p_min_fraction` sets
    p_min = p_min_fraction * p_max (likewise ffn_, layer_, and a plug-in kind's)."""
    return {f"{low}_fraction": (low, high) for _, low, high in schedule_pairs()}


FRACTIONS = fractions()
"""The built-in kinds' `fractions()`, fixed at import (the name other code reads)."""


def is_chain_setting(name: str) -> bool:
    """A `ChainConfig` field, or a setting of a registered plug-in structure kind."""
    return name in CHAIN_FIELDS or name in plugin_setting_types()


def _default(name: str) -> Any:
    """The chain's default for setting `name` (a plug-in kind's too)."""
    return ChainConfig().setting(name)


CHAIN_LIMITS: dict[str, int] = {
    "rounds": 100, "epochs_per_round": 10_000, "steps_per_round": 10_000_000, "batch_size": 1 << 16, "patience": 10_000,
    "eval_every": 10_000_000, "calib_batches": 10_000, "calib_batch_size": 1 << 16, "latency_batch": 1 << 16,
    "latency_repeats": 100_000, "min_heads_per_block": 100_000, "min_ffn_per_block": 10_000_000,
    "final_epochs": 10_000, "layer_start_round": 100}
"""Upper bounds on chain settings that `ChainConfig` bounds only from below: a space is data, and
a value no sweep could finish (`rounds: 1e9`, an hour per epoch times 10**12) is refused up front."""
TEACHER_LIMITS: dict[str, int] = {"epochs": 10_000, "batch_size": 1 << 16, "patience": 10_000, "max_steps": 1_000_000_000}
"""The same for the training settings a space's `teacher:` may give (built-in and plug-in tasks alike)."""
TASK_PREFIX = "task."
"""A searched key naming a task setting: `task.trace_strength` (see the module doc)."""


@dataclass(frozen=True)
class TaskSearch:
    """What a space may search of its task: the settings its plug-in lists in `searchable_options`,
    each value checked by making the plug-in with it (so the plug-in's own validation applies)."""

    spec: Any  # raykd.task.registry.TaskSpec
    searchable: tuple[str, ...] = ()

    def check_name(self, name: str) -> None:
        option = name[len(TASK_PREFIX):]
        if option not in self.searchable:
            known = ", ".join(TASK_PREFIX + o for o in self.searchable) or "none"
            raise ConfigError(f"search.{name}: the {self.spec.name} task has no searchable setting {option!r} "
                              f"(searchable: {known})")
        if option in self.spec.options:
            raise ConfigError(f"search.{name}: {option} is both given in task and searched")

    def check_value(self, where: str, name: str, value: Any) -> None:
        from raykd.task.registry import TaskSpec, load_task_plugin  # deferred: imports torch (~2 s)

        try:
            load_task_plugin(TaskSpec(self.spec.name, {**self.spec.options, name[len(TASK_PREFIX):]: value}))
        except ConfigError as exc:
            raise ConfigError(f"{where}: {exc}") from None


@dataclass(frozen=True)
class Param:
    """One searched hyperparameter: a float/int range or a categorical choice."""

    name: str
    low: float | None = None
    high: float | None = None
    log: bool = False
    integer: bool = False
    choices: tuple[Any, ...] = ()

    @classmethod
    def parse(cls, name: str, spec: Any, task: TaskSearch | None = None) -> "Param":
        """`task` checks a `task.<setting>` key and its values (without it such keys are refused)."""
        if isinstance(name, str) and name.startswith(TASK_PREFIX) and task is not None:
            task.check_name(name)
            check = task.check_value
        elif not is_chain_setting(name) and name not in fractions():
            known = sorted([*CHAIN_FIELDS, *plugin_setting_types(), *fractions()])
            raise ConfigError(f"search.{name}: not a chain setting (known: {', '.join(known)}; "
                              f"or {TASK_PREFIX}<setting> for a task's searchable settings)")
        else:
            check = _check_value
        own_type = CHAIN_FIELDS[name].type if name in CHAIN_FIELDS else plugin_setting_types().get(name)
        parsed = _shape("ParamSpec", spec, f"search.{name}", type=own_type)  # its shape (raykd.search.schema)
        if parsed.choices is not None:
            for c in parsed.choices:  # each choice must make a valid chain (or task) setting
                check(f"search.{name}.choices", name, c)
            return cls(name, choices=tuple(parsed.choices))
        low, high, log, kind = parsed.low, parsed.high, parsed.log, parsed.kind(own_type)
        for key, v in (("low", low), ("high", high)):  # both ends must be valid chain (or task) settings
            check(f"search.{name}.{key}", name, int(v) if kind == "int" else float(v))
        return cls(name, float(low), float(high), log, kind == "int")

    @property
    def bounds(self) -> tuple[Any, Any]:
        """Smallest and largest value this parameter can take."""
        if self.choices:
            try:
                return min(self.choices), max(self.choices)
            except TypeError:
                return self.choices[0], self.choices[-1]
        if self.integer:
            return int(self.low), int(self.high)  # type: ignore[arg-type]
        return self.low, self.high

    def to_optuna(self) -> Any:
        """The Optuna distribution of this parameter: the one Ray's OptunaSearch makes from
        `raykd.distributed.space.tune_param` (integer ranges include `high`), so Ray-free studies sample the same space."""
        from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

        if self.choices:
            return CategoricalDistribution(list(self.choices))
        if self.integer:
            return IntDistribution(int(self.low), int(self.high))  # type: ignore[arg-type]
        return FloatDistribution(float(self.low), float(self.high), log=self.log)  # type: ignore[arg-type]


def check_limits(where: str, values: Mapping[str, Any], limits: Mapping[str, int]) -> None:
    """ConfigError when a number in `values` is not finite or exceeds its entry in `limits`
    (`where` prefixes the key: "fixed.", "search.rounds.high: ")."""
    for name, value in values.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            continue  # (types are ChainConfig's and the plug-in's to check)
        if isinstance(value, float) and not math.isfinite(value):
            raise ConfigError(f"{where}{name} must be a finite number, got {value!r}")
        limit = limits.get(name)
        if limit is not None and value > limit:
            raise ConfigError(f"{where}{name} must be at most {limit:,}, got {number_text(value)}")


def _check_value(where: str, name: str, value: Any) -> None:
    if name in fractions():  # a share of the final ratio
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value <= 1.0:
            raise ConfigError(f"{where}: {name} is a fraction of {fractions()[name][1]} and must be in [0, 1], got {value!r}")
        return
    check_limits(f"{where}: ", {name: value}, CHAIN_LIMITS)
    try:
        ChainConfig.from_dict(_alone(name, value))
    except ConfigError as exc:
        raise ConfigError(f"{where}: {exc}") from None


def _alone(name: str, value: Any) -> dict[str, Any]:
    """`{name: value}` plus neutral partners, so one end of a range is checked on its own
    (p_min and p_max constrain each other; their joint ranges are checked separately)."""
    for _, low, high in schedule_pairs():
        if name == low and isinstance(value, (int, float)) and 0 <= value < 1:
            return {low: value, high: value}
        if name == high:
            return {high: value, low: 0.0}
    return {name: value}


@dataclass(frozen=True)
class Objective:
    metric: str
    mode: str


RESOURCE_LIMITS: dict[str, int] = {"workers": 4096, "cpus_per_worker": 4096, "gpus_per_worker": 64,
                                   "concurrent_trials": MAX_NUM_SAMPLES}
"""Far above any cluster raykd has run on, well below what would make Ray queue work forever."""


@dataclass(frozen=True)
class Resources:
    workers: int = 1
    cpus_per_worker: float = 1.0
    gpus_per_worker: float = 0.0
    concurrent_trials: int = 1
    # Ray starts its worker processes at niceness 15, below its own daemons (raylet, GCS, agents)
    # and anything else on the node, which slows a chain by ~9% on a busy node (BENCHMARKS §5);
    # raykd's default 0 runs chains at normal priority, null keeps Ray's 15. Applied when raykd
    # starts the local Ray; cluster nodes get it from RAY_worker_niceness (cluster/ sets 0).
    worker_niceness: int | None = 0

    def __post_init__(self) -> None:
        if self.workers < 1:
            raise ConfigError("resources.workers must be >= 1")
        check_limits("resources.", dataclasses.asdict(self), RESOURCE_LIMITS)
        if self.worker_niceness is not None and (not isinstance(self.worker_niceness, int) or not 0 <= self.worker_niceness <= 19):
            raise ConfigError(f"resources.worker_niceness must be an integer in 0..19, got {self.worker_niceness!r}")
        if self.cpus_per_worker <= 0 or self.gpus_per_worker < 0:
            raise ConfigError("resources.cpus_per_worker must be > 0 and gpus_per_worker >= 0")
        if self.concurrent_trials < 1:
            raise ConfigError("resources.concurrent_trials must be >= 1")

    @property
    def per_trial(self) -> dict[str, float]:
        return {"CPU": self.workers * self.cpus_per_worker, "GPU": self.workers * self.gpus_per_worker}


@dataclass(frozen=True)
class SweepSpace:
    name: str = "default"
    # the task, by name or import path with its options (raykd.task.registry): {"name": "mwp"}
    task: dict[str, Any] = field(default_factory=lambda: {"name": "mwp"})
    data: str = "synthetic:800"
    teacher: dict[str, Any] = field(default_factory=lambda: {"preset": "tiny", "epochs": 20})
    search: tuple[Param, ...] = ()
    fixed: dict[str, Any] = field(default_factory=dict)
    objectives: tuple[Objective, ...] = (Objective("accuracy", "max"), Objective("speedup", "max"))
    sampler: dict[str, Any] = field(default_factory=lambda: {"type": "tpe", "seed": 0})
    num_samples: int = 6
    early_stop: dict[str, Any] = field(default_factory=dict)
    constraints: tuple[Any, ...] = ()  # raykd.search.constraints.Constraint
    resources: Resources = field(default_factory=Resources)
    storage: str = "~/raykd_runs"
    seed: int = 0
    # where the `speedup` objective comes from: "table" (the sweep's latency table, deterministic per
    # shape; every trial still records `measured_speedup`) or "measured" (each trial's own timing)
    # retime_rounds: at the end of the sweep, re-time the front and its runners-up side by side with
    # the teacher for this many interleaved rounds (`raykd pareto --retime`); 0 skips it
    # retime_sessions: the re-timing's rounds split over this many fresh processes, so that its
    # intervals carry the variation between processes (raykd.analysis.retime)
    # table_cache: reuse the table this machine measured before for the same architecture and batch
    # (raykd.measure.latency.cache: the same machine then predicts the same figures in every sweep)
    # calibration: mixed shapes timed with the table, to fit one factor per structure type (0: additive)
    speed: dict[str, Any] = field(default_factory=lambda: dict(SPEED_DEFAULTS))

    @property
    def metrics(self) -> list[str]:
        return [o.metric for o in self.objectives]

    @property
    def modes(self) -> list[str]:
        return [o.mode for o in self.objectives]

    @property
    def task_spec(self) -> Any:
        from raykd.task.registry import TaskSpec  # deferred: the task registry imports torch (~2 s); parsing a space does not

        return TaskSpec.parse(self.task)

    def task_plugin(self) -> Any:
        """The sweep's `TaskPlugin` (made afresh: plug-ins hold options, nothing trained)."""
        from raykd.task.registry import load_task_plugin  # deferred: imports torch (~2 s)

        return load_task_plugin(self.task_spec)

    @property
    def halving(self) -> Any:
        """The successive-halving settings (`raykd.search.successive_halving.HalvingConfig`), or None."""
        if self.early_stop.get("type") != SCHEDULER_TYPE:
            return None
        coords = []
        for o in self.objectives:  # a speed or size objective is ranked by the final model's forecast
            if o.metric == "speedup" and self.speed["source"] != "table":
                coords.append(("forecast_ideal_speedup", o.mode))
            else:
                coords.append((FORECAST_METRICS.get(o.metric, o.metric), o.mode))
        return HalvingConfig(int(self.early_stop.get("eta", 3)), int(self.early_stop.get("min_rounds", 1)), tuple(coords))

    @property
    def accuracy_floor(self) -> tuple[float, int] | None:
        """(floor, after_round) of the accuracy-floor stopper, or None."""
        if "accuracy_floor" not in self.early_stop:
            return None
        return float(self.early_stop["accuracy_floor"]), int(self.early_stop.get("after_round", 1))

    def task_for(self, sampled: Mapping[str, Any]) -> dict[str, Any]:
        """The task (name and options, as `task`) of one trial: the space's task with the trial's
        sampled `task.<setting>` values."""
        return {**self.task, **{k[len(TASK_PREFIX):]: v for k, v in sampled.items() if k.startswith(TASK_PREFIX)}}

    def chain_config(self, sampled: Mapping[str, Any]) -> ChainConfig:
        """The chain config of one trial: fixed settings + the sampled ones."""
        activate_for_settings([*self.fixed, *sampled])  # a trial's process starts without the optional kinds it names
        values = {**self.fixed, **{k: v for k, v in sampled.items() if is_chain_setting(k)}}
        for name, (low, high) in fractions().items():  # the start as a share of the end: always <= it
            if name in sampled:
                values[low] = float(sampled[name]) * float(values.get(high, _default(high)))
        return ChainConfig.from_dict(values)  # a p_min above its p_max is an error, never lowered quietly

    def to_dict(self) -> dict[str, Any]:
        """The space as a record (every field, search entries as dataclass fields: `integer`, not
        `type`): what a sweep stores to compare on resume. `to_raw` is the form `parse_space` reads."""
        d = dataclasses.asdict(self)
        d["search"] = {p.name: {k: v for k, v in dataclasses.asdict(p).items() if k != "name"} for p in self.search}
        d["constraints"] = [c.to_dict() for c in self.constraints]
        return d

    def to_raw(self) -> dict[str, Any]:
        """The space as a mapping `parse_space` accepts and parses back to an equal space (what
        `--resume` re-validates, and what a user can write out as YAML)."""
        d = self.to_dict()
        search: dict[str, Any] = {}
        for p in self.search:
            if p.choices:
                search[p.name] = {"choices": list(p.choices)}
            else:
                search[p.name] = {"low": int(p.low) if p.integer else p.low, "high": int(p.high) if p.integer else p.high,
                                  "log": p.log, "type": "int" if p.integer else "float"}
        d["search"] = search
        d["objectives"] = list(d["objectives"])  # asdict gives a tuple; the parser wants a YAML list
        return d


def make_sampler(space: SweepSpace, seed: int | None = None) -> Any:
    """The Optuna sampler a sweep of `space` uses (`optuna.samplers.BaseSampler`), without Ray.

    tpe: multivariate multi-objective TPE with `sampler.n_startup_trials` (default 4) random
    trials first; nsga2: NSGA-II with `sampler.population_size` (default 4); gp: Optuna's
    Gaussian-process sampler (multi-objective: log expected hypervolume improvement) after
    n_startup_trials random ones; random: uniform. With constraints, tpe/nsga2/gp model
    feasibility from the violations raykd sets on each trial (`Trial.set_constraint`).
    `seed` replaces the space's `sampler.seed` (itself defaulting to the space's `seed`)."""
    import optuna  # deferred: `raykd sweep --help` and space validation need no Optuna

    s = space.sampler
    seed = int(s.get("seed", space.seed)) if seed is None else int(seed)
    startup = int(s.get("n_startup_trials", 4))
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)  # GPSampler
    if s["type"] == "tpe":
        return optuna.samplers.TPESampler(seed=seed, multivariate=True, n_startup_trials=startup)
    if s["type"] == "nsga2":
        return optuna.samplers.NSGAIISampler(seed=seed, population_size=int(s.get("population_size", 4)))
    if s["type"] == "gp":
        return optuna.samplers.GPSampler(seed=seed, n_startup_trials=startup)
    return optuna.samplers.RandomSampler(seed=seed)  # (blind to constraints: they only reject and filter)


def parse_space(raw: Any, source: str = "space") -> SweepSpace:
    """A validated space; every error names `source` (the file, or the stored sweep)."""
    try:
        return _parse_space(raw, source)
    except ConfigError as exc:
        if str(exc).startswith(source):
            raise
        raise ConfigError(f"{source}: {exc}") from None


def _shape(model: str, raw: Any, where: str = "", **context: Any) -> Any:
    """`raw` as the pydantic model `model` of `raykd.search.schema`, which checks a section's keys and
    types; ConfigError with one line, naming the key, at its first mistake."""
    from raykd.search import schema  # deferred: pydantic and the models cost 0.2-0.4 s, and every command imports this module

    return schema.validate(getattr(schema, model), raw, where, **context)


def _parse_space(raw: Any, source: str) -> SweepSpace:
    top = _shape("SpaceFile", raw)  # the keys and their shapes (raykd.search.schema); what they name is checked below
    kw: dict[str, Any] = {k: getattr(top, k) for k in ("name", "data", "storage", "num_samples", "seed")
                          if k in top.model_fields_set}
    from raykd.task.registry import TaskSpec, load_task_plugin  # deferred: imports torch (~2 s)

    task_spec = TaskSpec.parse(raw.get("task"))
    plugin = load_task_plugin(task_spec)  # a task that cannot be imported or made fails here, not on a worker
    kw["task"] = task_spec.to_dict()
    kw["teacher"] = plugin.teacher_settings(raw.get("teacher"))
    check_limits("teacher.", kw["teacher"], TEACHER_LIMITS)
    task_search = TaskSearch(task_spec, tuple(getattr(plugin, "searchable_options", ()) or ()))
    activate_for_settings([*top.search, *top.fixed])  # an optional kind's settings (hidden_p_max) register it
    params = tuple(Param.parse(k, v, task_search) for k, v in top.search.items())
    kw["search"] = params
    fixed = top.fixed
    both = set(fixed) & {p.name for p in params}
    if both:
        raise ConfigError(f"{source}: {', '.join(sorted(both))} both fixed and searched")
    ChainConfig.from_dict(fixed)  # every fixed value must be valid on its own
    check_limits("fixed.", fixed, CHAIN_LIMITS)
    if "latency_workload" in {p.name for p in params}:
        raise ConfigError(f"{source}: latency_workload cannot be searched: the sweep's speed figures must all time one workload")
    workload = fixed.get("latency_workload", "default")
    if workload != "default" and workload not in plugin.workloads:
        raise ConfigError(f"{source}: fixed.latency_workload {workload!r} is not one of the {task_spec.name} task's "
                          f"workloads: default, {', '.join(plugin.workloads)}")
    kw["fixed"] = dict(fixed)
    _check_joint_ranges(params, dict(fixed), source)
    _check_fractions(params, dict(fixed), source)
    kw["objectives"] = _objectives(top.objectives, source) if "objectives" in top.model_fields_set else SweepSpace.objectives
    kw["sampler"] = _sampler(raw.get("sampler", {"type": "tpe"}), top.seed)
    kw["early_stop"] = _early_stop(raw.get("early_stop") or {}, source)
    kw["constraints"] = parse_constraints(raw.get("constraints"), source)
    kw["resources"] = _resources(raw.get("resources") or {})
    kw["speed"] = _speed(raw.get("speed") or {})
    if kw["speed"]["source"] == "table" and getattr(plugin, "output", None) == "trace":  # priced per token
        from raykd.traces.speed import check_priced_workload

        try:
            check_priced_workload(next(iter(plugin.workloads)) if workload == "default" else workload)
        except ConfigError as exc:
            raise ConfigError(f"{source}: speed.source table with output: trace: {exc}") from None
    if kw["speed"]["source"] == "table" and "latency_batch" in {p.name for p in params}:
        raise ConfigError(f"{source}: latency_batch cannot be searched while speed.source is table: the sweep's latency "
                          "table is timed on one batch, so other batches would need measured speed beside predicted "
                          "speed on one front; fix latency_batch under fixed, or set speed: {source: measured}")
    return SweepSpace(**kw)


def load_space(path: str | Path | None) -> SweepSpace:
    """Parse a YAML space file (None: the embedded default, search_spaces/default.yaml)."""
    if path is None:
        return parse_space(parse_yaml(DEFAULT_SPACE_YAML, "embedded default space"), "embedded default space")
    return parse_space(load_yaml_file(path, "search space"), str(path))


def _objectives(raw: list[Any], source: str) -> tuple[Objective, ...]:
    out = [Objective(o.metric, o.mode) for o in (_shape("ObjectiveSpec", o) for o in raw)]
    if len({o.metric for o in out}) != len(out):
        raise ConfigError(f"{source}: an objective metric is listed twice")
    return tuple(out)


def _sampler(raw: Any, seed: int) -> dict[str, Any]:
    _shape("SamplerSpec", raw, "sampler")
    return {"seed": seed, **raw}


def _early_stop(raw: Any, source: str) -> dict[str, Any]:
    """`{accuracy_floor, after_round}` (a floor), `{type: mo-successive-halving, eta, min_rounds}`,
    or both in one mapping (the floor then stops what halving lets through)."""
    _shape("EarlyStopSpec", raw, "early_stop")
    if "type" in raw:
        try:
            HalvingConfig(raw.get("eta", 3), raw.get("min_rounds", 1))
        except ConfigError as exc:
            raise ConfigError(f"{source}: {exc}") from None
    return dict(raw)


def _speed(raw: Any) -> dict[str, Any]:
    _shape("SpeedSpec", raw, "speed")
    return {**SPEED_DEFAULTS, **raw}


def _resources(raw: Any) -> Resources:
    _shape("ResourcesSpec", raw, "resources")  # types; Resources checks the bounds
    return Resources(**raw)


def _check_fractions(params: tuple[Param, ...], fixed: dict[str, Any], source: str) -> None:
    """A schedule's start is searched one way: as `p_min_fraction`, or as p_min where no sampled
    p_min can exceed a sampled p_max (ranges that overlap would need a sampled value changed)."""
    by = {p.name: p for p in params}
    for name, (low, high) in fractions().items():
        if name in by and (low in by or low in fixed):
            raise ConfigError(f"{source}: search.{name} sets {low} (= {name} x {high}): remove {low} from "
                              f"{'search' if low in by else 'fixed'}")
        if low in by and high in by and by[low].bounds[1] > by[high].bounds[0]:
            lo, hi = by[low].bounds[1], by[high].bounds[0]
            raise ConfigError(f"{source}: search.{low} (up to {lo}) overlaps search.{high} (from {hi}): a sampled {low} "
                              f"above {high} cannot be run as sampled; search {name}: {{low: 0.0, high: "
                              f"{_fraction_hint(by[low], by[high])}}} instead ({low} = {name} x {high})")


def _fraction_hint(low: Param, high: Param) -> float:
    """A fraction range's top that keeps the old range's largest start at the final ratio's middle."""
    top = float(low.bounds[1]) / max(float(sum(high.bounds)) / 2, 1e-9)
    return round(min(1.0, max(0.05, top)), 2)


def _check_joint_ranges(params: tuple[Param, ...], fixed: dict[str, Any], source: str) -> None:
    """Settings that constrain each other: each structure's p_min can never exceed its p_max
    (a start searched as a fraction of its end never does)."""
    by = {p.name: p for p in params}
    for _, low, high in schedule_pairs():
        if f"{low}_fraction" in by:
            continue
        lo = by[low].bounds[0] if low in by else fixed.get(low, _default(low))
        hi = by[high].bounds[1] if high in by else fixed.get(high, _default(high))
        if lo > hi:
            raise ConfigError(f"{source}: {low} can never be <= {high} (smallest {low} {lo} > largest {high} {hi})")


DEFAULT_SPACE_YAML = """\
# The embedded default sweep: synthetic data, tiny preset, local Ray. `raykd sweep` with no
# arguments runs this; search_spaces/default.yaml is the same file for reading and copying.
# It searches heads, FFN channels and whole layers together (search_spaces/paper.yaml: heads only).
name: default
data: synthetic:640/1100/1100  # 1100 valid and 1100 test problems: 95% Wilson half-width <= 2.95 points at any accuracy
teacher: {preset: tiny, epochs: 22, patience: 8}
search:
  alpha: {low: 0.0, high: 1.0}
  n: {low: 0.5, high: 3.0, log: true}
  tau: {low: 1.0, high: 4.0}
  lambda1: {low: 0.1, high: 1.0}
  lambda2: {low: 0.1, high: 1.0}
  lambda3: {low: 0.0, high: 1.0}
  p_max: {low: 0.05, high: 0.75}
  ffn_p_max: {low: 0.0, high: 0.75}
  layer_p_max: {choices: [0.0, 0.5]}  # the tiny preset has 2 encoder and 2 decoder layers: 0.5 drops one of each
# augment: 4 number-substituted variants of each training problem, labelled by the teacher for the
# distillation terms: at 1.5-2.4x it turns a 4-16 point loss into none (BENCHMARKS 19a). Two epochs a
# round over the 5x larger transfer set and 8 trials, two at a time: a 2.01x student non-inferior at 2
# points in 12:31 on 2 cores with a fresh latency table (BENCHMARKS 19e; one epoch and 12 trials:
# 1.31x in 9:35, 19b; search_spaces/default-2x.yaml: 12 trials, 13-17 min).
fixed: {p_min: 0.05, rounds: 2, epochs_per_round: 2, augment: 4, batch_size: 32, lr: 0.0005, patience: 2,
        calib_batches: 4, latency_batch: 32, latency_repeats: 10, test_every_round: false}
speed: {rounds: 30}  # the latency table's interleaved rounds (23 variants + 16 calibration shapes); cached per machine
objectives:
  - {metric: accuracy, mode: max}
  - {metric: speedup, mode: max}
sampler: {type: gp, seed: 0, n_startup_trials: 4}  # GP: best hypervolume at 12 trials, 9 of 10 seeds (BENCHMARKS 17e)
num_samples: 8
resources: {workers: 1, cpus_per_worker: 1, gpus_per_worker: 0, concurrent_trials: 2}
storage: ~/raykd_runs
"""

"""The structure of a space YAML's sections as pydantic models, and the one line each mistake gets.

pydantic checks what is only shape (unknown keys, types, ranges, fixed choices); `raykd.search.space`
keeps what needs the rest of raykd (chain settings, the task plug-in, ranges that constrain each
other). A model's fields are checked in the order they are written, and only the first mistake is
reported, so a field's place in its model is the order its section's checks run in.

Every error reads as raykd's messages always have (docs/errors.md), not as pydantic's: a field says
its own message in `rule(...)`, a validator raises `fail(...)`, and `validate` turns the first error
into that text. A message is a template: `{key}` is the dotted key (`speed.rounds`; the section
itself for a model-level check), `{got}` the refused value's repr, `{number}` the value as
`number_text` shows it (short even for 10**1000). Unknown keys come first, all of them in one line.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, ClassVar, Literal, NoReturn, TypeVar

from pydantic import (AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, ValidationInfo,
                      field_validator, model_validator)
from pydantic_core import PydanticCustomError

from raykd.errors import ConfigError
from raykd.search.successive_halving import SCHEDULER_TYPE
from raykd.search.vocabulary import (MAX_NUM_SAMPLES, OBJECTIVE_METRICS, SAMPLERS, SEED_MAX, SPEED_DEFAULTS, SPEED_SOURCES,
                                     TOP_LEVEL, number_text)
from raykd.storage import is_run_name

CUSTOM = "raykd"
"""The pydantic error type of `fail`: its message is raykd's own."""
UNKNOWN_KEY = ("extra_forbidden", "invalid_key")  # (invalid_key: a key that is no string, e.g. YAML's `1:`)


class Section(BaseModel):
    """A mapping in a space file: only its own keys, strict types (no `"3"` for 3, no `true` for 1)."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)
    unknown: ClassVar[str] = "{key} has unknown key(s) {keys}"
    """The message for keys the section does not have (`{keys}`: all of them, sorted)."""
    not_a_mapping: ClassVar[str] = "{key} must be a mapping"
    """The message for a section that is no mapping."""


S = TypeVar("S", bound=Section)


def rule(default: Any, message: str, **constraints: Any) -> Any:
    """A field whose every type or range error reads `message` (pydantic `Field` constraints)."""
    return Field(default, json_schema_extra={"message": message}, **constraints)


def fail(message: str) -> NoReturn:
    """Refuse a value in a validator with raykd's own `message` (a template, as in `rule`)."""
    raise PydanticCustomError(CUSTOM, "{message}", {"message": message})


def validate(model: type[S], raw: Any, where: str = "", **context: Any) -> S:
    """`raw` as `model`, or ConfigError with the first mistake's one line (`where`: the section's
    dotted key, "" at the top level; `context` reaches validators as `info.context`)."""
    try:
        return model.model_validate(raw, context=context)
    except ValidationError as exc:
        raise ConfigError(message(model, exc, where)) from None


def message(model: type[Section], exc: ValidationError, where: str) -> str:
    """The one line of a `ValidationError` of `model` (see the module doc)."""
    errors = exc.errors(include_url=False)
    unknown = sorted(str(e["loc"][0]) for e in errors if e["type"] in UNKNOWN_KEY and e["loc"])
    if unknown:
        return _fill(model.unknown, where, None, keys=", ".join(unknown))
    error = errors[0]
    field = str(error["loc"][0]) if error["loc"] else None  # (a union's member is named after it: low.int)
    key = ".".join(k for k in (where, field) if k)
    if error["type"] == CUSTOM:
        template = error["ctx"]["message"]
    elif field is None:
        template = model.not_a_mapping
    else:
        extra = model.model_fields[field].json_schema_extra
        template = extra["message"] if isinstance(extra, dict) else "{key}: " + error["msg"]  # (a field without a rule)
    return _fill(template, key, error.get("input"))


def _fill(template: str, key: str, value: Any, keys: str = "") -> str:
    # one pass over the four names, not str.format: messages quote YAML such as {low: 0, high: 1},
    # and a key or value from the file that holds "{got}" stays as written
    shown = {"key": lambda: key, "keys": lambda: keys, "got": lambda: repr(value), "number": lambda: number_text(value)}
    return _PLACEHOLDER.sub(lambda m: shown[m.group(1)](), template)


_PLACEHOLDER = re.compile(r"\{(key|keys|got|number)\}")


def at_most(limit: int) -> AfterValidator:
    """An upper bound with raykd's message for it (`check_limits` says the same of `fixed:`)."""
    def check(value: Any) -> Any:
        if value > limit:
            fail(f"{{key}} must be at most {limit:,}, got {{number}}")
        return value

    return AfterValidator(check)


def _empty_is_nothing(value: Any) -> Any:
    return value or {}  # (`fixed:` with nothing after it, or null: no fixed settings)


# --- the sections of a space file (raykd.search.space's module doc shows one) -----------------

class SpaceFile(Section):
    """The top level: what is checked here is shape only; `task`, `teacher`, `constraints` and the
    sections with models of their own are checked by their owners."""

    unknown: ClassVar[str] = "unknown key(s) {keys} (known: " + ", ".join(TOP_LEVEL) + ")"
    not_a_mapping: ClassVar[str] = "a search space must be a YAML mapping"
    name: str = rule("default", "{key} must be a non-empty string", min_length=1)
    data: str = rule("synthetic:800", "{key} must be a non-empty string", min_length=1)
    storage: str = rule("~/raykd_runs", "{key} must be a non-empty string", min_length=1)
    num_samples: int = rule(6, "{key} must be an integer in 1..10000, got {number}", ge=1, le=MAX_NUM_SAMPLES)
    seed: int = rule(0, f"{{key}} must be an integer in 0..{SEED_MAX}, got {{number}}", ge=0, le=SEED_MAX)
    search: dict[Any, Any] = rule(..., "{key} must map at least one chain setting to a range", min_length=1)
    fixed: Annotated[dict[Any, Any], BeforeValidator(_empty_is_nothing)] = rule({}, "{key} must be a mapping of chain settings")
    objectives: list[Any] = rule([], "{key} must be a non-empty list of {metric, mode}", min_length=1)
    task: Any = None
    teacher: Any = None
    sampler: Any = None
    early_stop: Any = None
    constraints: Any = None
    resources: Any = None
    speed: Any = None

    @field_validator("name")
    @classmethod
    def _one_directory(cls, name: str) -> str:
        if not is_run_name(name):
            fail("{key} {got} must be one directory level: letters, digits, '-', '_', '.', "
                 "starting with a letter or digit, at most 128 characters")
        return name


class ParamSpec(Section):
    """One entry of `search:`: `{low, high, log, type}` or `{choices}`; whether its values fit the
    chain (or the task) is `raykd.search.space.Param`'s to check. Context: `type`, the setting's
    own type (int or float) when the entry names none."""

    unknown: ClassVar[str] = "{key}: unknown key(s) {keys}"
    not_a_mapping: ClassVar[str] = "{key}: expected a mapping like {low: 0, high: 1} or {choices: [...]}"
    choices: list[Any] = rule(None, "{key} must be a non-empty list", min_length=1)
    low: int | float = rule(None, "{key} must be a number, got {got}")
    high: int | float = rule(None, "{key} must be a number, got {got}")
    type: Literal["int", "float"] = rule(None, "{key} must be int or float, got {got}")
    log: bool = rule(False, "{key} must be true or false")

    @field_validator("low", "high")
    @classmethod
    def _not_huge(cls, value: int | float) -> int | float:
        if isinstance(value, int) and abs(value) > 2**63:  # (float() of a 400-digit int overflows)
            fail("{key} is too large: {number}")
        return value

    @model_validator(mode="after")
    def _a_range(self, info: ValidationInfo) -> "ParamSpec":
        if self.choices is not None:
            return self  # (a range's keys beside choices are checked, then unused)
        if self.low is None or self.high is None:
            fail("{key}: needs low and high (or choices)")
        integer = float(self.low).is_integer() and float(self.high).is_integer()
        if self.kind((info.context or {}).get("type")) == "int" and not integer:
            fail("{key}: integer range needs integer bounds")
        if not self.low < self.high:
            fail(f"{{key}}: empty range (low {self.low} must be below high {self.high})")
        if self.log and self.low <= 0:
            fail("{key}: a log range needs low > 0")
        return self

    def kind(self, default: str | None) -> str:
        """int or float: the entry's `type`, else the setting's own (`default`), else float."""
        return self.type or ("int" if default == "int" else "float")


class ObjectiveSpec(Section):
    """One entry of `objectives:` (`raykd.search.space.Objective`)."""

    unknown: ClassVar[str] = "each objective needs exactly metric and mode"
    not_a_mapping: ClassVar[str] = unknown
    metric: Literal[OBJECTIVE_METRICS] = rule(  # type: ignore[valid-type]
        None, "unknown objective metric {got} (known: " + ", ".join(OBJECTIVE_METRICS) + ")")
    mode: Literal["max", "min"] = rule(None, "objective mode must be max or min, got {got}")

    @model_validator(mode="before")
    @classmethod
    def _both(cls, data: Any) -> Any:
        if not isinstance(data, dict) or set(data) != {"metric", "mode"}:  # (before the values: a missing mode first)
            fail(cls.unknown)
        return data


class SamplerSpec(Section):
    """The Optuna sampler (`raykd.search.space.make_sampler`) and its options."""

    not_a_mapping: ClassVar[str] = "{key}.type must be one of " + ", ".join(SAMPLERS)
    type: Literal[SAMPLERS] = rule(..., "{key} must be one of " + ", ".join(SAMPLERS))  # type: ignore[valid-type]
    seed: Annotated[int, at_most(SEED_MAX)] = rule(0, "{key} must be a non-negative integer", ge=0)
    n_startup_trials: Annotated[int, at_most(MAX_NUM_SAMPLES)] = rule(4, "{key} must be a non-negative integer", ge=0)
    population_size: Annotated[int, at_most(MAX_NUM_SAMPLES)] = rule(4, "{key} must be a non-negative integer", ge=0)

    @model_validator(mode="before")
    @classmethod
    def _type_first(cls, data: Any) -> Any:
        if not isinstance(data, dict) or data.get("type") not in SAMPLERS:  # (the sampler is named before its options)
            fail(cls.not_a_mapping)
        return data


class EarlyStopSpec(Section):
    """An accuracy floor, successive halving, or both (HalvingConfig checks eta and min_rounds)."""

    not_a_mapping: ClassVar[str] = ("{key} must be a mapping like {accuracy_floor: 0.3, after_round: 1} or "
                                    f"{{type: {SCHEDULER_TYPE}, eta: 3, min_rounds: 1}}")
    type: Literal[SCHEDULER_TYPE] = rule(None, f"{{key}} must be {SCHEDULER_TYPE}, got {{got}}")  # type: ignore[valid-type]
    eta: Any = None
    min_rounds: Any = None
    accuracy_floor: float = rule(None, "{key} must be a number in [0, 1], got {got}", ge=0.0, le=1.0)
    after_round: Any = None

    @model_validator(mode="after")
    def _together(self) -> "EarlyStopSpec":
        given = self.model_fields_set
        if given & {"eta", "min_rounds"} and "type" not in given:
            fail(f"{{key}}.eta and min_rounds need type: {SCHEDULER_TYPE}")
        if "after_round" in given and "accuracy_floor" not in given:
            fail("{key}.after_round needs accuracy_floor")
        return self


class SpeedSpec(Section):
    """Where the speedup objective comes from, and the end-of-sweep re-timing (`SweepSpace.speed`)."""

    not_a_mapping: ClassVar[str] = ("{key} must be a mapping like {source: table, rounds: 60, retime_rounds: 30, "
                                    "retime_sessions: 3, table_cache: true, calibration: 16}")
    table_cache: bool = rule(SPEED_DEFAULTS["table_cache"], "{key} must be true or false, got {got}")
    source: Literal[SPEED_SOURCES] = rule(SPEED_DEFAULTS["source"],  # type: ignore[valid-type]
                                          f"{{key}} must be one of {SPEED_SOURCES}, got {{got}}")
    rounds: int = rule(SPEED_DEFAULTS["rounds"], "{key} must be an integer in 1..10000, got {got}", ge=1, le=10_000)
    calibration: int = rule(SPEED_DEFAULTS["calibration"], "{key} must be an integer in 0..64 (mixed shapes the latency "
                            "table is fitted to; 0: additive), got {got}", ge=0, le=64)
    retime_rounds: int = rule(SPEED_DEFAULTS["retime_rounds"], "{key} must be 0 (off) or an integer in 2..10000, got {got}",
                              ge=0, le=10_000)
    retime_sessions: int = rule(SPEED_DEFAULTS["retime_sessions"], "{key} must be an integer in 1..16, got {got}", ge=1, le=16)

    @field_validator("retime_rounds")
    @classmethod
    def _not_one(cls, rounds: int) -> int:
        if rounds == 1:
            raise ValueError("one round")  # (the field's message)
        return rounds

    @model_validator(mode="after")
    def _two_rounds_a_session(self) -> "SpeedSpec":
        if self.retime_rounds and self.retime_rounds < 2 * self.retime_sessions:
            fail(f"{{key}}.retime_rounds ({self.retime_rounds}) must give each of the {self.retime_sessions} "
                 "retime_sessions at least 2 rounds")
        return self


class ResourcesSpec(Section):
    """The types of `resources:` (its bounds are `raykd.search.space.Resources`'s, which has these fields)."""

    workers: int | float = rule(1, "{key} must be a number")
    cpus_per_worker: int | float = rule(1.0, "{key} must be a number")
    gpus_per_worker: int | float = rule(0.0, "{key} must be a number")
    concurrent_trials: int | float = rule(1, "{key} must be a number")
    worker_niceness: int | float | None = rule(0, "{key} must be a number")  # null: Ray's default

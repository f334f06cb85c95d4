"""`ChainConfig`: every hyperparameter of one prune -> distill chain, validated on construction.

The sweep searches over these fields; a YAML file for `raykd chain --config` holds a subset of
them (unknown keys are an error, so a typo never silently falls back to a default).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from raykd.errors import ConfigError
from raykd.precision import PRECISIONS
from raykd.structures.registry import StructureKind, structure_kind, structure_kinds

IMPORTANCE = ("combined", "random", "taylor")
LAYER_IMPORTANCE = ("influence", "random", "distill-loss")
FINAL_TEACHERS = ("original", "previous")  # the final recovery phase distils from the unpruned teacher or the last round's
AUGMENT_LABELS = ("gold", "teacher")  # "teacher": sequence-level targets a generating task's teacher writes
RANKING = ("per-kind", "global")


def schedule_pairs() -> tuple[tuple[str, str, str], ...]:
    """(structure, its start p_min, its final ratio p_max) of every registered structure kind
    (`raykd.structures.registry`): one Eq. 5 schedule per structure, one n. p_min is the schedule
    at t = 0, not a ratio any round ends at: round 1 of T removes p_min + (p_max - p_min) * (1/T)^n
    (`raykd.method.schedule`)."""
    return tuple((k.name, k.p_min, k.p_max) for k in structure_kinds())


SCHEDULE_PAIRS: tuple[tuple[str, str, str], ...] = schedule_pairs()
"""The built-in kinds' pairs (heads, ffn, layers), fixed at import; `schedule_pairs()` includes plug-ins."""


def plugin_setting_types() -> dict[str, str]:
    """Chain settings that registered plug-in kinds name but `ChainConfig` has no field for, with
    their types: `<kind>_p_min`/`_p_max` are numbers, a floor or a start round an integer."""
    own = {f.name for f in fields(ChainConfig)}
    out = {}
    for k in structure_kinds():
        for name, kind in ((k.p_min, "float"), (k.p_max, "float"), (k.floor_field, "int"), (k.start_round_field, "int")):
            if name is not None and name not in own:
                out[name] = kind
    return out


_PLUGIN_DEFAULTS = {"float": 0.0, "int": 0}
MAPPING = ("kept", "mean")
GQA_MODES = ("within-groups", "groups")  # (raykd.method.gqa)
NORMALISATION = ("minmax", "zscore", "rank", "none")


@dataclass(frozen=True)
class ChainConfig:
    # importance (Eq. 4) and head selection
    alpha: float = 0.5
    importance: str = "combined"  # combined (alpha), random, taylor
    normalisation: str = "minmax"
    entropy_sign: int = 1
    ranking: str = "per-kind"
    min_heads_per_block: int = 0
    gqa_heads: str = "within-groups"  # grouped-query attention: heads within every K/V group, or whole groups
    prune: bool = True  # False: distillation without pruning (ablation)
    # FFN channels and whole layers (0 = not pruned: the paper's heads-only method)
    ffn_alpha: float = 0.5  # S = ffn_alpha * norm(weight norm) + (1 - ffn_alpha) * norm(mean |activation|)
    min_ffn_per_block: int = 1  # 0 lets an FFN block lose every channel (it then adds only its bias)
    layer_importance: str = "influence"  # Block Influence (1 - cos(in, out)), random, or distill-loss (KL when skipped)
    uniform_shape: bool = False  # every layer of a kind keeps the same heads and FFN width (HF-exportable)
    # schedule (Eq. 5), one per structure, one growth exponent n
    p_min: float = 0.1
    p_max: float = 0.25
    ffn_p_min: float = 0.0
    ffn_p_max: float = 0.0
    layer_p_min: float = 0.0
    layer_p_max: float = 0.0
    n: float = 1.0
    rounds: int = 3
    layer_start_round: int = 1  # layers go only from this round on (width before depth); 1: every round
    max_step_ratio: float = 0.0  # refuse a schedule removing more than this share of what remains in a round; 0: off
    # distillation loss: lambda1 * (KL + attention MSE) + lambda3 * hidden MSE + lambda2 * task
    tau: float = 2.0
    lambda1: float = 1.0
    lambda2: float = 1.0
    lambda3: float = 0.0
    distill_response: bool = True
    distill_feature: bool = True
    distill_hidden: bool = True
    attention_mapping: str = "kept"
    # training budget per round
    epochs_per_round: int = 3
    steps_per_round: int = 0  # 0: epochs only
    augment: int = 0  # number-substituted variants of each training problem (raykd.data.augment); 0: off
    augment_labels: str = "gold"  # who labels the variants for the task loss: "gold" equation, or "teacher" (its generations)
    batch_size: int = 32
    lr: float = 5e-5
    head_lr: float = 0.0
    weight_decay: float = 0.01
    patience: int = 3
    eval_every: int = 0
    warmup_ratio: float = 0.1  # every round (and the final phase) restarts warm-up then linear decay
    # final recovery phase after the last round (0: none): the last student trains on against final_teacher
    final_epochs: int = 0
    final_teacher: str = "original"  # "original": the unpruned starting teacher; "previous": the last round's
    mixed_precision: str = "auto"  # bf16 autocast: "auto" (on CUDA), "bf16" (any device), "fp32" (raykd.training)
    test_every_round: bool = True  # False: the test split only after the last round (a sweep selects on valid)
    # statistics and measurement
    calib_batches: int = 8
    calib_batch_size: int = 32
    latency_batch: int = 8
    latency_repeats: int = 15
    latency_workload: str = "default"  # what speed is timed on: the task's default (MWP: cached decoding) or a named one
    seed: int = 0
    # settings of structure kinds registered beyond the built-ins ((name, value) pairs, sorted): a
    # YAML file or `from_dict` gives them by name like any other (`<kind>_p_max: 0.25`)
    plugin_settings: tuple[tuple[str, Any], ...] = ()

    def setting(self, name: str) -> Any:
        """The value of chain setting `name`: a field, or a plug-in kind's setting (0 when unset;
        a start round: 1)."""
        if name in self.__dataclass_fields__ and name != "plugin_settings":
            return getattr(self, name)
        known = plugin_setting_types()
        if name not in known:
            raise AttributeError(f"no chain setting {name!r}")
        default = 1 if any(k.start_round_field == name for k in structure_kinds()) else _PLUGIN_DEFAULTS[known[name]]
        return dict(self.plugin_settings).get(name, default)

    def __post_init__(self) -> None:
        checks = [
            (0.0 <= self.alpha <= 1.0, f"alpha must be in [0, 1], got {self.alpha}"),
            (self.importance in IMPORTANCE, f"importance must be one of {IMPORTANCE}, got {self.importance!r}"),
            (self.normalisation in NORMALISATION, f"normalisation must be one of {NORMALISATION}, got {self.normalisation!r}"),
            (self.entropy_sign in (1, -1), f"entropy_sign must be 1 or -1, got {self.entropy_sign}"),
            (self.ranking in RANKING, f"ranking must be one of {RANKING}, got {self.ranking!r}"),
            (self.min_heads_per_block >= 0, "min_heads_per_block must be >= 0"),
            (self.gqa_heads in GQA_MODES, f"gqa_heads must be one of {GQA_MODES}, got {self.gqa_heads!r}"),
            *self._schedule_checks(),
            (0.0 <= self.ffn_alpha <= 1.0, f"ffn_alpha must be in [0, 1], got {self.ffn_alpha}"),
            (self.min_ffn_per_block >= 0, "min_ffn_per_block must be >= 0"),
            (self.layer_importance in LAYER_IMPORTANCE,
             f"layer_importance must be one of {LAYER_IMPORTANCE}, got {self.layer_importance!r}"),
            (not (self.uniform_shape and self.ranking == "global"),
             "uniform_shape prunes every layer alike, which a global ranking cannot: use ranking: per-kind"),
            (self.n > 0, f"schedule exponent n must be > 0, got {self.n}"),
            (self.rounds >= 1, f"rounds must be >= 1, got {self.rounds}"),
            (self.tau > 0, f"tau must be > 0, got {self.tau}"),
            (self.lambda1 >= 0 and self.lambda2 >= 0 and self.lambda3 >= 0, "lambda1, lambda2 and lambda3 must be >= 0"),
            (self.lambda1 + self.lambda2 + self.lambda3 > 0, "lambda1, lambda2 and lambda3 cannot all be 0"),
            (self.lambda2 > 0 or (self.lambda1 > 0 and (self.distill_response or self.distill_feature))
             or (self.lambda3 > 0 and self.distill_hidden), "the loss has no term left"),
            (self.attention_mapping in MAPPING, f"attention_mapping must be one of {MAPPING}"),
            (self.epochs_per_round >= 1, "epochs_per_round must be >= 1"),
            (self.steps_per_round >= 0, "steps_per_round must be >= 0"),
            (isinstance(self.augment, int) and 0 <= self.augment <= 32, f"augment must be an integer in [0, 32], got {self.augment!r}"),
            (self.augment_labels in AUGMENT_LABELS, f"augment_labels must be one of {AUGMENT_LABELS}, got {self.augment_labels!r}"),
            (self.batch_size >= 1, "batch_size must be >= 1"),
            (self.lr > 0 and self.head_lr >= 0, "lr must be > 0 and head_lr >= 0"),
            (self.weight_decay >= 0, "weight_decay must be >= 0"),
            (self.mixed_precision in PRECISIONS, f"mixed_precision must be one of {PRECISIONS}, got {self.mixed_precision!r}"),
            (self.patience >= 1, "patience must be >= 1"),
            (self.eval_every >= 0, "eval_every must be >= 0"),
            (0.0 <= self.warmup_ratio < 1.0, f"warmup_ratio must be in [0, 1), got {self.warmup_ratio}"),
            (self.final_epochs >= 0, f"final_epochs must be >= 0, got {self.final_epochs}"),
            (self.final_teacher in FINAL_TEACHERS, f"final_teacher must be one of {FINAL_TEACHERS}, got {self.final_teacher!r}"),
            (1 <= self.layer_start_round <= self.rounds,
             f"layer_start_round must be in 1..rounds ({self.rounds}), got {self.layer_start_round}"),
            (0.0 <= self.max_step_ratio <= 1.0, f"max_step_ratio must be in [0, 1], got {self.max_step_ratio}"),
            (self.calib_batches >= 1 and self.calib_batch_size >= 1, "calib_batches and calib_batch_size must be >= 1"),
            (self.latency_batch >= 1 and self.latency_repeats >= 1, "latency_batch and latency_repeats must be >= 1"),
            (isinstance(self.latency_workload, str) and bool(self.latency_workload.strip()), "latency_workload must name a workload (or 'default')"),
        ]
        for ok, message in checks:
            if not ok:
                raise ConfigError(message)
        self._check_plugin_settings()
        self._check_step_sizes()

    def _check_plugin_settings(self) -> None:
        known = plugin_setting_types()
        unknown = sorted(name for name, _ in self.plugin_settings if name not in known)
        if unknown:
            raise ConfigError(f"unknown chain setting(s): {', '.join(unknown)}")
        for kind in structure_kinds():
            if kind.floor_field is not None and self.setting(kind.floor_field) < 0:
                raise ConfigError(f"{kind.floor_field} must be >= 0")
            if kind.start_round_field is not None and kind.start_round_field in known:
                start = self.setting(kind.start_round_field)
                if not 1 <= start <= self.rounds:
                    raise ConfigError(f"{kind.start_round_field} must be in 1..rounds ({self.rounds}), got {start}")
            if kind.narrows_hidden_states and self.lambda3 > 0 and self.distill_hidden and self.prunes.get(kind.name):
                raise ConfigError(f"lambda3 (the hidden-state term) compares teacher and student hidden states, which "
                                  f"{kind.unit} pruning makes of different widths: set lambda3: 0 or {kind.p_max}: 0")

    def _check_step_sizes(self) -> None:
        """max_step_ratio (ModelOpt's "prune <= 30% a step, distill, repeat"): no round may remove more
        than that share of a structure's units still present, judged on the schedule's ratios (before
        rounding to whole units). `raykd.method.schedule.fewest_rounds` says how many rounds suffice."""
        if not self.max_step_ratio:
            return
        from raykd.method.schedule import step_fractions

        for structure, on in self.prunes.items():
            if not on:
                continue
            cumulative = [self.structure_ratio(structure, r) for r in range(1, self.rounds + 1)]
            for r, share in enumerate(step_fractions(cumulative), start=1):
                if share > self.max_step_ratio + 1e-9:
                    raise ConfigError(f"{structure}: round {r} removes {share:.1%} of what remains, more than "
                                      f"max_step_ratio {self.max_step_ratio:g}: use more rounds or a smaller ratio")

    def structure_ratio(self, structure: str, round_index: int) -> float:
        """The cumulative Eq. 5 ratio of `structure` after round `round_index` (0 when not pruned);
        layers follow their own schedule from `layer_start_round` to the last round."""
        from raykd.method.schedule import delayed_ratio

        if not self.prunes[structure]:
            return 0.0
        kind = structure_kind(structure)
        start = self.setting(kind.start_round_field) if kind.start_round_field else 1
        return delayed_ratio(round_index, self.rounds, start, self.setting(kind.p_min), self.setting(kind.p_max), self.n)

    def floor(self, kind: StructureKind) -> int:
        """Units of `kind` every block keeps by this configuration (its `floor_field`; 0 if none)."""
        return int(self.setting(kind.floor_field)) if kind.floor_field else 0

    def _schedule_checks(self) -> list[tuple[bool, str]]:
        out = []
        for _, low, high in schedule_pairs():
            lo, hi = self.setting(low), self.setting(high)
            out += [(0.0 <= lo < 1.0, f"{low} must be in [0, 1), got {lo}"),
                    (0.0 <= hi < 1.0, f"{high} must be in [0, 1), got {hi}"),
                    (lo <= hi, f"{low} ({lo}) must not exceed {high} ({hi})")]
        return out

    @property
    def prunes(self) -> dict[str, bool]:
        """Which structures this chain removes: {"heads": .., "ffn": .., "layers": .., plug-ins: ..}."""
        return {s: self.prune and self.setting(high) > 0 for s, _, high in schedule_pairs()}

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> ChainConfig:
        known = {f.name: f for f in fields(cls) if f.name != "plugin_settings"}
        plugin = plugin_setting_types()
        unknown = sorted(set(values) - set(known) - set(plugin))
        if unknown:
            raise ConfigError(f"unknown chain setting(s): {', '.join(unknown)}")
        typed: dict[str, Any] = {}
        extra = {}
        for key, value in values.items():
            if key in known:
                typed[key] = _coerce(key, value, known[key].type)
            else:
                extra[key] = _coerce(key, value, plugin[key])
        if extra:
            typed["plugin_settings"] = tuple(sorted(extra.items()))
        return cls(**typed)

    @classmethod
    def from_yaml(cls, path: str | Path) -> ChainConfig:
        from raykd.yaml_io import load_yaml_file

        return cls.from_file_data(load_yaml_file(path, "chain config"), path)

    @classmethod
    def from_file_data(cls, data: Any, path: str | Path) -> ChainConfig:
        """A config from the parsed contents of the YAML file at `path` (errors name the file)."""
        if data is None:
            data = {}
        if not isinstance(data, dict):
            raise ConfigError(f"{path} must hold a mapping of chain settings")
        try:
            return cls.from_dict(data)
        except ConfigError as exc:
            raise ConfigError(f"{path}: {exc}") from None

    def to_dict(self) -> dict[str, Any]:
        """Every setting by name (plug-in kinds' settings flattened in, so `from_dict` reads it back;
        without plug-in settings exactly the fields, as chains and sweeps have always recorded)."""
        out = dataclasses.asdict(self)
        out.update(out.pop("plugin_settings"))
        return out


def _coerce(key: str, value: Any, annotation: Any) -> Any:
    """Check a value's type against the field annotation (ints are accepted for floats)."""
    kind = annotation if isinstance(annotation, str) else getattr(annotation, "__name__", str(annotation))
    if kind == "bool":
        if not isinstance(value, bool):
            raise ConfigError(f"{key} must be true or false, got {value!r}")
        return value
    if kind == "int":
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{key} must be an integer, got {value!r}")
        return value
    if kind == "float":
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{key} must be a number, got {value!r}")
        return float(value)
    if kind == "str":
        if not isinstance(value, str):
            raise ConfigError(f"{key} must be a string, got {value!r}")
        return value
    return value

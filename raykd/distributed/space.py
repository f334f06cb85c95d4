"""A sweep space as Ray Tune sees it: Tune's search-space objects for the searched parameters.

The space itself (YAML schema, validation, the Optuna sampler) is Ray-free and lives in
`raykd.search.space`; only the translation into `ray.tune` sits here, under `raykd.distributed`,
so nothing outside this package imports Ray (the import-linter contract in pyproject.toml).
"""

from __future__ import annotations

from typing import Any

from ray import tune

from raykd.search.space import Param, SweepSpace


def tune_param(param: Param) -> Any:
    """The Tune domain of one searched parameter; Ray's OptunaSearch turns it back into exactly
    `param.to_optuna()` (integer ranges include `high`: tests/distributed/test_samplers.py)."""
    if param.choices:
        return tune.choice(list(param.choices))
    if param.integer:
        return tune.randint(int(param.low), int(param.high) + 1)  # type: ignore[arg-type]
    return (tune.loguniform if param.log else tune.uniform)(param.low, param.high)


def tune_space(space: SweepSpace) -> dict[str, Any]:
    """The `param_space` a `Tuner` of `space` is given: every searched parameter by name."""
    return {p.name: tune_param(p) for p in space.search}

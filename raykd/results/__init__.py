"""raykd's results store (Parquet, one file per trial) and the Pareto maths over it. No Ray import.

See docs/results.md for the layout, the row schema and the front/hypervolume conventions.
"""

from raykd.results.pareto import (
    UnknownObjectiveError,
    check_objectives,
    default_reference,
    format_objectives,
    hypervolume,
    metric_columns,
    pareto_mask,
    parse_objectives,
    resolve_reference,
)
from raykd.results.store import (
    STATUSES,
    TRIAL_COLUMNS,
    EmptySweepError,
    NotASweepError,
    meta_uri,
    pareto_uri,
    read_pareto,
    read_sweep_meta,
    read_trials,
    sweep_objectives,
    trial_uri,
    update_pareto,
    write_atomic,
    write_sweep_meta,
    write_trial,
)

__all__ = [
    "STATUSES", "TRIAL_COLUMNS", "EmptySweepError", "NotASweepError", "UnknownObjectiveError", "check_objectives",
    "default_reference", "format_objectives", "hypervolume", "meta_uri", "metric_columns", "pareto_mask",
    "pareto_uri", "parse_objectives", "read_pareto", "read_sweep_meta", "read_trials", "resolve_reference",
    "sweep_objectives", "trial_uri", "update_pareto", "write_atomic", "write_sweep_meta", "write_trial",
]

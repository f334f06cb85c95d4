"""The results store of a sweep: one Parquet file per trial, the Pareto front beside them.

Layout under the sweep directory ``<storage>/<name>/`` (local path, ``s3://`` or ``gs://``)::

    results/sweep.json               the sweep's description (objectives, teacher, space, data, seed)
    results/trials/<trial_id>.parquet  ONE row per trial (see TRIAL_COLUMNS), rewritten in place
    results/pareto.parquet           the non-dominated complete trials, same columns

Every file is written whole or not at all: locally into a hidden temporary sibling that is then
renamed over the target (rename is atomic on POSIX), on object stores as a single upload that only
becomes visible when it completes. Readers skip hidden files, so a crash at any moment leaves the
previous version of a file (or none), never a torn one. Writing the same trial id again replaces
its row, so a resumed sweep never duplicates a point.

No Ray import here: the worker, the driver and a notebook all use this module.
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import os
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from raykd import storage
from raykd.errors import RaykdInputError
from raykd.results.columns import kind_int_columns
from raykd.results.pareto import pareto_mask, parse_objectives

RESULTS_DIR = "results"
TRIALS_DIR = "trials"
SWEEP_META = "sweep.json"
PARETO_FILE = "pareto.parquet"
FORMAT_VERSION = "1"
STATUSES = ("complete", "pruned", "failed", "running", "rejected")  # rejected: infeasible before training

STRING_COLUMNS = ("sweep", "task", "trial_id", "status", "error", "chain_config_json", "rounds_json", "checkpoint_path",
                  "finished_at", "accuracy_correct", "test_accuracy_correct", "speedup_source",
                  "latency_workload", "retimed_device", "retimed_workload", "retimed_at", "retimed_beside", "node_id", "stopped_by")
FLOAT_COLUMNS = ("accuracy", "test_accuracy", "speedup", "ideal_speedup", "latency_ms", "params_reduction",
                 "flops_reduction", "memory_reduction", "wall_s", "measured_speedup", "retimed_speedup", "retimed_low", "retimed_high",
                 "retimed_reference_ms", "retimed_wall_s", "constraint_violation", "forecast_speedup", "forecast_ideal_speedup",
                 "forecast_params_reduction", "forecast_flops_reduction", "accuracy_ci_low", "accuracy_ci_high",
                 "accuracy_p_vs_teacher", "test_accuracy_ci_low", "test_accuracy_ci_high", "test_accuracy_p_vs_teacher",
                 "accuracy_diff", "accuracy_diff_low", "accuracy_diff_high", "test_accuracy_diff", "test_accuracy_diff_low",
                 "test_accuracy_diff_high")
INT_COLUMNS = ("params", "flops", "memory_bytes", "rounds_done", "rounds", "world_size",
               "accuracy_n", "accuracy_lost", "accuracy_gained", "test_accuracy_n", "test_accuracy_lost",
               "test_accuracy_gained", "forecast_params", "forecast_flops", "retimed_threads", "retimed_rounds", "retimed_sessions", "retimed_with", "restored_from_round")
# ... and every registered structure kind's counts (heads_total, ffn_channels_original, forecast_layers_total, ...)


def int_columns() -> tuple[str, ...]:
    """The integer columns: INT_COLUMNS and the registered structure kinds' (`raykd.results.columns`)."""
    return INT_COLUMNS + kind_int_columns()


# Column order of a trial row; hp_<name> columns come after "error", extra columns (a structure
# kind's counts among them) sorted at the end. heads_total and heads_original keep the place they
# have had in every file since format 1.
_HEAD = ("sweep", "trial_id", "status", "error")
_TAIL = ("chain_config_json", "accuracy", "test_accuracy", "speedup", "ideal_speedup", "params", "flops",
         "memory_bytes", "latency_ms", "params_reduction", "flops_reduction", "memory_reduction", "heads_total",
         "heads_original", "rounds_done", "rounds", "rounds_json", "checkpoint_path", "wall_s", "finished_at")
TRIAL_COLUMNS = _HEAD + _TAIL


class NotASweepError(RaykdInputError):
    """A path that holds no raykd sweep (no results/sweep.json)."""


class EmptySweepError(RaykdInputError):
    """A sweep with no trial rows yet."""


# -- paths ---------------------------------------------------------------------------------------

def results_uri(sweep_uri: str | os.PathLike, *parts: str) -> str:
    return storage.join(storage.resolve(sweep_uri), RESULTS_DIR, *parts)


def trial_uri(sweep_uri: str | os.PathLike, trial_id: str) -> str:
    _check_trial_id(trial_id)
    return results_uri(sweep_uri, TRIALS_DIR, f"{trial_id}.parquet")


def pareto_uri(sweep_uri: str | os.PathLike) -> str:
    return results_uri(sweep_uri, PARETO_FILE)


def meta_uri(sweep_uri: str | os.PathLike) -> str:
    return results_uri(sweep_uri, SWEEP_META)


# -- sweep.json ----------------------------------------------------------------------------------

def write_sweep_meta(sweep_uri: str | os.PathLike, meta: Mapping[str, Any]) -> str:
    """Write results/sweep.json atomically (objectives are checked and normalised to dicts)."""
    out = dict(meta)
    if "objectives" in out:
        out["objectives"] = [{"metric": m, "mode": d} for m, d in parse_objectives(out["objectives"])]
    uri = meta_uri(sweep_uri)
    write_atomic(uri, json.dumps(out, indent=2, sort_keys=True, default=_json_default).encode())
    return uri


def read_sweep_meta(sweep_uri: str | os.PathLike) -> dict[str, Any]:
    """results/sweep.json as a dict; NotASweepError when the path is not a raykd sweep."""
    uri = meta_uri(sweep_uri)
    try:
        present = storage.exists(uri)
    except OSError as exc:  # unreachable bucket, bad credentials, malformed URI
        raise RaykdInputError(f"cannot read {sweep_uri}: {_first_line(exc)}") from None
    if not present:
        raise NotASweepError(f"{sweep_uri} is not a raykd sweep (no {RESULTS_DIR}/{SWEEP_META})")
    try:
        meta = json.loads(storage.read_bytes(uri))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise RaykdInputError(f"{uri} is not valid JSON: {exc}") from None
    if not isinstance(meta, dict):
        raise RaykdInputError(f"{uri} does not hold a JSON object")
    return meta


def sweep_objectives(meta: Mapping[str, Any]) -> list[tuple[str, str]]:
    """The sweep's objectives from its meta (default: accuracy max, speedup max)."""
    return parse_objectives(meta.get("objectives") or "accuracy:max,speedup:max")


# -- trial rows ----------------------------------------------------------------------------------

def normalise_row(row: Mapping[str, Any]) -> dict[str, Any]:
    """A trial row with every known column present and typed (None for missing values).

    `chain_config_json` and `rounds_json` may be given as a dict / list and are JSON-encoded.
    Raises ValueError/TypeError for a malformed row (a programming error, not user input)."""
    if not isinstance(row, Mapping):
        raise TypeError(f"a trial row must be a mapping, got {type(row).__name__}")
    out: dict[str, Any] = {k: None for k in TRIAL_COLUMNS}
    out.update(row)
    for key in ("sweep", "trial_id"):
        if not isinstance(out[key], str) or not out[key]:
            raise ValueError(f"trial row needs a non-empty string {key!r}, got {out[key]!r}")
    _check_trial_id(out["trial_id"])
    if out["status"] not in STATUSES:
        raise ValueError(f"trial {out['trial_id']}: status must be one of {STATUSES}, got {out['status']!r}")
    for key in ("chain_config_json", "rounds_json"):
        if out[key] is not None and not isinstance(out[key], str):
            out[key] = json.dumps(out[key], sort_keys=True, default=_json_default)
    if out["finished_at"] is None:
        out["finished_at"] = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    ints = int_columns()
    typed = [k for k in (*STRING_COLUMNS, *FLOAT_COLUMNS, *ints) if k not in TRIAL_COLUMNS]
    for key in typed:  # typed columns beyond TRIAL_COLUMNS (statistics, re-timing): null when a row lacks them
        out.setdefault(key, None)
    for key in STRING_COLUMNS:
        if out[key] is not None and not isinstance(out[key], str):
            out[key] = str(out[key])
    for key in FLOAT_COLUMNS:
        out[key] = _to_float(out[key], key)
    for key in ints:
        out[key] = _to_int(out[key], key)
    for key, value in list(out.items()):
        if key in TRIAL_COLUMNS:
            continue
        if hasattr(value, "item") and callable(value.item):  # numpy scalars
            value = out[key] = value.item()
        if value is not None and not isinstance(value, (bool, int, float, str)):
            raise TypeError(f"trial {out['trial_id']}: column {key!r} must hold a scalar (bool/int/float/str/None), "
                            f"got {type(value).__name__}")
        if isinstance(value, float) and math.isnan(value):
            out[key] = None
    return out


def row_table(row: Mapping[str, Any]) -> Any:
    """A one-row pyarrow Table with raykd's column order and types."""
    import pyarrow as pa  # deferred: pyarrow (~0.3 s); `raykd` start-up imports raykd.results

    norm = normalise_row(row)
    hp = sorted(k for k in norm if k.startswith("hp_"))
    extra = sorted(k for k in norm if k not in TRIAL_COLUMNS and not k.startswith("hp_"))
    order = [*_HEAD, *hp, *_TAIL, *extra]
    fields = [pa.field(name, _arrow_type(name, norm[name])) for name in order]
    schema = pa.schema(fields, metadata={"raykd_results_version": FORMAT_VERSION})
    return pa.Table.from_pylist([{k: norm[k] for k in order}], schema=schema)


def write_trial(sweep_uri: str | os.PathLike, row: Mapping[str, Any]) -> str:
    """Write (or replace) the one-row Parquet file of `row["trial_id"]`, atomically; returns its URI."""
    import pyarrow as pa  # deferred: pyarrow (~0.3 s); `raykd` start-up imports raykd.results
    import pyarrow.parquet as pq

    table = row_table(row)
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink)
    uri = trial_uri(sweep_uri, table.column("trial_id")[0].as_py())
    write_atomic(uri, sink.getvalue().to_pybytes())
    return uri


def read_trials(sweep_uri: str | os.PathLike) -> Any:
    """Every trial row of the sweep as one pyarrow Table (empty, with the known columns, if none).

    Rows are ordered by finish time, then trial id. Types are unified across files (an int
    hyperparameter that is float in another trial becomes float; all-null columns take the type
    seen elsewhere)."""
    import pyarrow as pa  # deferred: pyarrow (~0.3 s); `raykd` start-up imports raykd.results
    import pyarrow.fs as pafs

    fs, base = storage.filesystem(results_uri(sweep_uri, TRIALS_DIR))
    try:
        infos = fs.get_file_info(pafs.FileSelector(base, allow_not_found=True))
    except OSError as exc:
        raise RaykdInputError(f"cannot list {base}: {_first_line(exc)}") from None
    paths = sorted(i.path for i in infos
                   if i.type == pafs.FileType.File and i.base_name.endswith(".parquet") and not i.base_name.startswith("."))
    if not paths:
        return _empty_table()
    tables = _read_many(fs, paths)
    try:
        table = pa.concat_tables(tables, promote_options="permissive")
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        raise RaykdInputError(f"trial files under {base} disagree on column types: {_first_line(exc)}") from None
    if table.num_rows > 1:
        table = table.sort_by([("finished_at", "ascending"), ("trial_id", "ascending")])
    return table


def update_pareto(sweep_uri: str | os.PathLike, objectives: Any = None) -> Any:
    """Recompute the front of the complete trials and write results/pareto.parquet atomically.

    `objectives` defaults to sweep.json's. Returns the front as a pyarrow Table (possibly empty).
    Call it after each `write_trial`, from one process (the sweep driver): concurrent callers each
    write a correct front of what they read, and the last one wins."""
    import pyarrow as pa  # deferred: pyarrow (~0.3 s); `raykd` start-up imports raykd.results
    import pyarrow.parquet as pq

    objs = parse_objectives(objectives) if objectives is not None else sweep_objectives(read_sweep_meta(sweep_uri))
    table = read_trials(sweep_uri)
    df = table.to_pandas()
    mask = pareto_mask(df, objs) if table.num_rows else []
    front = table.filter(pa.array(mask, type=pa.bool_())) if table.num_rows else table
    meta = dict(front.schema.metadata or {})
    meta[b"raykd_objectives"] = json.dumps([{"metric": m, "mode": d} for m, d in objs]).encode()
    front = front.replace_schema_metadata(meta)
    sink = pa.BufferOutputStream()
    pq.write_table(front, sink)
    write_atomic(pareto_uri(sweep_uri), sink.getvalue().to_pybytes())
    return front


def read_pareto(sweep_uri: str | os.PathLike) -> Any:
    """results/pareto.parquet as written by the last `update_pareto` (a pyarrow Table)."""
    import pyarrow.parquet as pq  # deferred: pyarrow (~0.3 s); `raykd` start-up imports raykd.results

    uri = pareto_uri(sweep_uri)
    if not storage.exists(uri):
        raise RaykdInputError(f"{sweep_uri} has no {RESULTS_DIR}/{PARETO_FILE} yet")
    fs, path = storage.filesystem(uri)
    return pq.read_table(path, filesystem=fs)


# -- atomic writes -------------------------------------------------------------------------------

write_atomic = storage.write_bytes_atomic  # one implementation, shared with the sweep driver


# -- helpers -------------------------------------------------------------------------------------

def _read_many(fs: Any, paths: list[str]) -> list[Any]:
    import pyarrow as pa  # deferred: pyarrow (~0.3 s); `raykd` start-up imports raykd.results
    import pyarrow.parquet as pq

    def one(path: str) -> Any:
        try:
            return pq.read_table(path, filesystem=fs)
        except (OSError, pa.ArrowInvalid) as exc:
            raise RaykdInputError(f"{path} is not a readable trial file: {_first_line(exc)}") from None

    if len(paths) < 8:
        return [one(p) for p in paths]

    with ThreadPoolExecutor(max_workers=16) as pool:  # object stores: one request per file
        return list(pool.map(one, paths))


def _empty_table() -> Any:
    import pyarrow as pa  # deferred: pyarrow (~0.3 s); `raykd` start-up imports raykd.results

    return pa.schema([pa.field(n, _arrow_type(n, None)) for n in TRIAL_COLUMNS],
                     metadata={"raykd_results_version": FORMAT_VERSION}).empty_table()


def _arrow_type(name: str, value: Any) -> Any:
    import pyarrow as pa  # deferred: pyarrow (~0.3 s); `raykd` start-up imports raykd.results

    if name in STRING_COLUMNS:
        return pa.string()
    if name in FLOAT_COLUMNS:
        return pa.float64()
    if name in int_columns():
        return pa.int64()
    if isinstance(value, bool):
        return pa.bool_()
    if isinstance(value, int):
        return pa.int64()
    if isinstance(value, float):
        return pa.float64()
    if isinstance(value, str):
        return pa.string()
    return pa.null()


def _to_float(value: Any, key: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool):
        raise TypeError(f"column {key!r} must be a number, got {value!r}")
    try:
        f = float(value)
    except (TypeError, ValueError):
        raise TypeError(f"column {key!r} must be a number, got {value!r}") from None
    return None if math.isnan(f) else f


def _to_int(value: Any, key: str) -> int | None:
    f = _to_float(value, key)
    if f is None:
        return None
    if not f.is_integer():
        raise ValueError(f"column {key!r} must be an integer, got {value!r}")
    return int(f)


def _check_trial_id(trial_id: Any) -> None:
    if (not isinstance(trial_id, str) or not trial_id or trial_id.startswith(".")
            or any(c in trial_id for c in "/\\\0") or trial_id in (".", "..")):
        raise ValueError(f"trial id {trial_id!r} cannot name a file (no '/', '\\', leading '.')")


def _json_default(obj: Any) -> Any:
    if hasattr(obj, "item") and callable(obj.item):
        return obj.item()
    if hasattr(obj, "tolist"):
        return obj.tolist()
    if isinstance(obj, (set, tuple)):
        return list(obj)
    return str(obj)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def status_counts(statuses: Sequence[Any]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for s in statuses:
        counts[str(s)] = counts.get(str(s), 0) + 1
    return counts

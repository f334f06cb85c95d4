"""Export one trial's model to a standalone directory with a README.

The trial's `checkpoint_path` (the final round's solver directory, local or s3:// / gs://) is
first resolved inside the sweep (`raykd.analysis.confine`: a stored sweep is data), then copied file by file into a hidden temporary sibling of the target, verified to load as a raykd
solver (`load_solver`: checksum, shapes, tokenizer), given README.md and export.json, and then
renamed into place.
The chain's resume file state.json is left out: the export is a model, not a chain to continue
(its per-round records are in README.md and export.json).
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import os
import shutil
from pathlib import Path
from typing import Any

from raykd import __version__, storage
from raykd.analysis.confine import inside, recorded_root
from raykd.errors import ModelFormatError, RaykdInputError
from raykd.method.optional_kinds import activate_for_model_dir
from raykd.outputs import atomic_dir, check_model_dir, is_model_dir
from raykd.results.columns import count_columns

DROPPED = ("state.json",)
PICK_KEYS = {"max-drop": "max_drop", "min-speedup": "min_speedup", "max-params": "max_params",
             "max-flops": "max_flops", "min-accuracy": "min_accuracy", "not-worse-at": "not_worse_at",
             "not-worse-by": "not_worse_by", "by": "by"}


def parse_pick(spec: str) -> dict[str, Any]:
    """"max-drop=0.5" / "min-speedup=1.2" / "max-drop=1,max-params=2e6" / "...,by=params:min"
    -> keyword arguments of Sweep.query."""
    out: dict[str, Any] = {}
    for part in [p.strip() for p in str(spec).split(",") if p.strip()]:
        key, sep, value = part.partition("=")
        key = key.strip()
        if not sep or key not in PICK_KEYS:
            raise RaykdInputError(f"bad --pick {spec!r}: expected KEY=VALUE with KEY one of {', '.join(PICK_KEYS)}")
        if key == "by":
            out["by"] = value.strip()
            continue
        try:
            out[PICK_KEYS[key]] = float(value)
        except ValueError:
            raise RaykdInputError(f"bad --pick {spec!r}: {key} needs a number, got {value!r}") from None
        if not math.isfinite(out[PICK_KEYS[key]]) or out[PICK_KEYS[key]] < 0:  # as --max-drop refuses inf, nan, -1
            raise RaykdInputError(f"bad --pick {spec!r}: {key} must be a finite number >= 0, got {value.strip()!r}")
    if not out or set(out) == {"by"}:
        raise RaykdInputError(f"bad --pick {spec!r}: give at least one constraint, e.g. max-drop=0.5 or min-speedup=1.2")
    out.setdefault("max_drop", None)
    return out


def export_trial(sweep: Any, out: str | os.PathLike, trial_id: str | None = None, force: bool = False,
                 selected_by: str | None = None, **query: Any) -> Path:
    """Copy the model of `trial_id` (or of `sweep.query(**query)`) to `out`; returns `out`.

    `out` must not exist or be empty; `force` replaces a raykd model there, never other files
    (`raykd.outputs`). The copy is verified as `load_solver` verifies a model (weights readable,
    checksum and shapes as the config says, tokenizer present) before it is moved into place."""
    sw = sweep  # a Sweep (raykd.analysis.export_trial opens a path or URI first)
    if trial_id is None:
        row = sw.query(**query)
        selected_by = selected_by or "query(" + ", ".join(f"{k}={v!r}" for k, v in query.items()) + ")"
    else:
        row = sw.trial(trial_id)
        selected_by = selected_by or f"trial id {trial_id}"
    src = _checkpoint_uri(sw, row)
    target = Path(out).expanduser().resolve()
    if not storage.is_remote(src):
        s = Path(src).resolve()
        if target == s or s in target.parents or target in s.parents:
            raise RaykdInputError(f"--out {target} overlaps the checkpoint directory {s}")
    check_model_dir(target, force=force)
    with atomic_dir(target, may_replace=lambda p: force and is_model_dir(p)) as tmp:
        tmp.rmdir()  # copytree wants to create it
        _copy_dir(src, tmp)
        for name in DROPPED:
            (tmp / name).unlink(missing_ok=True)
        _check_solver_dir(tmp, src)
        record = _record(sw, row, src, selected_by)
        (tmp / "export.json").write_text(json.dumps(record, indent=2, sort_keys=True, default=str))
        (tmp / "README.md").write_text(readme(sw, row, src, selected_by))
    return target


def _checkpoint_uri(sw: Any, row: Any) -> str:
    """The trial's checkpoint as stored, resolved inside the sweep (`raykd.analysis.confine`:
    a stored sweep is data, so a `checkpoint_path` of /etc or one whose files link out of the
    sweep is refused here, before anything is copied or loaded)."""
    ck = row.get("checkpoint_path")
    tid = row["trial_id"]
    if not isinstance(ck, str) or not ck:
        raise RaykdInputError(f"trial {tid} ({row.get('status')}) has no checkpoint_path: nothing to export")
    path = inside(sw.uri, ck, what=f"trial {tid}'s checkpoint_path", recorded=recorded_root(sw.meta))
    try:
        if storage.exists(path):
            return path
    except OSError:
        pass
    raise RaykdInputError(f"checkpoint of trial {tid} not found at {ck}")


def _copy_dir(src: str, dst: Path) -> None:
    if storage.is_remote(src):
        storage.download_dir(src, dst)
        return
    if not Path(src).is_dir():
        raise RaykdInputError(f"checkpoint {src} is not a directory")
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns(*DROPPED))


def load_saved_model(d: str | Path) -> tuple[Any, Any]:
    """(model, tokenizer or None) of any model directory raykd writes: a solver (`raykd.task.io`)
    or a Transformers model of any shape (`raykd.task.hf_io`: causal LMs, plug-ins' models)."""
    from raykd.task.hf_io import BASE_CONFIG, HFModelIO  # deferred: torch, transformers; raykd.analysis reads sweeps without them
    from raykd.task.io import load_solver

    activate_for_model_dir(d)  # a model pruned in an optional kind (hidden_map) rebuilds with it
    try:
        config = json.loads((Path(d) / "config.json").read_text())
    except (OSError, ValueError):
        config = None
    if isinstance(config, dict) and isinstance(config.get(BASE_CONFIG), dict):
        model, tokenizer, _io = HFModelIO.open(d, tokenizer=(Path(d) / "tokenizer.json").is_file())
        return model, tokenizer
    model, tokenizer, _ = load_solver(d)
    return model, tokenizer


def _check_solver_dir(d: Path, src: str) -> None:
    """The copied checkpoint must load as a raykd model; one line naming the problem if not."""
    try:
        load_saved_model(d)
    except ModelFormatError as exc:
        raise ModelFormatError(f"cannot export this trial's checkpoint: {str(exc).replace(str(d), src)}") from None


def json_safe(v: Any) -> Any:
    """A plain JSON value: numpy scalars unwrapped, NaN/inf as None."""
    if hasattr(v, "item") and callable(v.item):
        v = v.item()
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v


def _record(sw: Any, row: Any, src: str, selected_by: str) -> dict[str, Any]:
    rounds = sw.rounds(str(row["trial_id"]))
    return {
        "sweep": sw.name, "sweep_uri": sw.uri, "trial_id": str(row["trial_id"]), "status": str(row.get("status")),
        "checkpoint_path": src, "selected_by": selected_by, "objectives": [f"{m}:{d}" for m, d in sw.objectives],
        "on_front": bool(row.get("on_front", False)), "hyperparameters": sw.hyperparameters(str(row["trial_id"])),
        "chain_config": sw.chain_config(str(row["trial_id"])),
        "metrics": {k: json_safe(row.get(k)) for k in _metrics() if k in row.index},
        "teacher": sw.teacher, "data": sw.meta.get("data"), "seed": sw.meta.get("seed"),
        "rounds": json.loads(rounds.to_json(orient="records")) if len(rounds) else [],
        "exported_at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "raykd_version": __version__,
    }


_METRICS = ("accuracy", "accuracy_drop", "test_accuracy", "speedup", "measured_speedup", "speedup_source", "ideal_speedup",
            "accuracy_n", "accuracy_ci_low", "accuracy_ci_high", "accuracy_p_vs_teacher", "accuracy_lost", "accuracy_gained", "params", "flops", "memory_bytes",
            "latency_ms", "params_reduction", "flops_reduction", "memory_reduction", "rounds_done", "rounds", "wall_s",
            "finished_at")


def _metrics() -> tuple[str, ...]:
    """The figures an export's metrics.json names: _METRICS with every registered structure kind's
    final and original totals after memory_reduction (heads_total, heads_original, ffn_channels_total, ...)."""
    at = _METRICS.index("rounds_done")
    return _METRICS[:at] + count_columns() + _METRICS[at:]


def readme(sw: Any, row: Any, src: str, selected_by: str) -> str:
    """README.md of an exported model: what it is, its figures, hyperparameters and provenance."""
    tid = str(row["trial_id"])
    t = sw.teacher

    def pct(v: Any) -> str:
        v = json_safe(v)
        return "–" if v is None else f"{100 * float(v):.2f}%"

    def num(v: Any, fmt: str = "{:,.0f}") -> str:
        v = json_safe(v)
        return "–" if v is None else fmt.format(float(v))

    mem = json_safe(row.get("memory_bytes"))
    heads = (f"{num(row.get('heads_total'))}/{num(row.get('heads_original'))}"
             if json_safe(row.get("heads_total")) is not None else "–")
    lines = [
        f"# raykd solver: sweep `{sw.name}`, trial `{tid}`",
        "",
        (f"A pruned and distilled math-word-problem solver exported by `raykd export` from the sweep "
         f"`{sw.name}` ({sw.uri}), trial `{tid}` (status {row.get('status')}), selected by {selected_by}."),
        "",
        ("Load it with `raykd eval --model DIR --data SPEC`, `raykd solve --model DIR \"...\"` or "
         "`raykd.task.io.load_solver(DIR)`."),
        "",
        "## Measured figures",
        "",
        "| figure | this model | teacher |",
        "|---|---|---|",
        f"| answer accuracy (valid) | {pct(row.get('accuracy'))} | {pct(t.get('accuracy'))} |",
        f"| accuracy drop vs teacher | {num(row.get('accuracy_drop'), '{:.2f} pt')} | |",
        f"| answer accuracy (test) | {pct(row.get('test_accuracy'))} | {pct(t.get('test_accuracy'))} |",
        f"| speedup ({row.get('speedup_source') or 'measured'}) | {num(row.get('speedup'), '{:.3f}x')} | 1.000x |",
        f"| measured speedup (latency ratio, side by side) | {num(row.get('measured_speedup', row.get('speedup')), '{:.3f}x')} | 1.000x |",
        (f"| answer accuracy (valid), 95% CI, n | {pct(row.get('accuracy_ci_low'))}–{pct(row.get('accuracy_ci_high'))}, "
         f"n {num(row.get('accuracy_n'))} | |"),
        (f"| vs teacher (exact McNemar, valid) | p {num(row.get('accuracy_p_vs_teacher'), '{:.3g}')}, "
         f"lost {num(row.get('accuracy_lost'))}, gained {num(row.get('accuracy_gained'))} | |"),
        f"| ideal speedup (FLOPs ratio) | {num(row.get('ideal_speedup'), '{:.3f}x')} | 1.000x |",
        f"| parameters | {num(row.get('params'))} | {num(t.get('params'))} |",
        f"| FLOPs (analytic, per benchmark batch) | {num(row.get('flops'))} | {num(t.get('flops'))} |",
        f"| memory (weights + peak activations) | {num(mem / 2**20 if mem is not None else None, '{:.1f} MiB')} | |",
        f"| latency | {num(row.get('latency_ms'), '{:.2f} ms')} | |",
        (f"| params / FLOPs / memory reduction | {pct(row.get('params_reduction'))} / "
         f"{pct(row.get('flops_reduction'))} / {pct(row.get('memory_reduction'))} | |"),
        f"| attention heads kept | {heads} | |",
        f"| rounds done | {num(row.get('rounds_done'))}/{num(row.get('rounds'))} | |",
        (f"| on the Pareto front ({', '.join(f'{m}:{d}' for m, d in sw.objectives)}) | "
         f"{'yes' if bool(row.get('on_front', False)) else 'no'} | |"),
        "",
        "## Hyperparameters (searched)",
        "",
        "| hyperparameter | value |",
        "|---|---|",
        *[f"| {k} | {_fmt_value(v)} |" for k, v in sw.hyperparameters(tid).items()],
        "",
    ]
    rounds = sw.rounds(tid)
    if len(rounds):
        cols = [c for c in ("round", "ratio", "heads_total", "accuracy", "speedup", "ideal_speedup", "params", "flops")
                if c in rounds.columns]
        lines += ["## Per-round trajectory", "", "| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
        for _, r in rounds.iterrows():
            lines.append("| " + " | ".join(_fmt_value(json_safe(r[c])) for c in cols) + " |")
        lines.append("")
    cfg = sw.chain_config(tid)
    if cfg:
        lines += ["## All chain settings", "", "```json", json.dumps(cfg, indent=2, sort_keys=True), "```", ""]
    lines += [
        "## Provenance",
        "",
        f"- sweep: `{sw.name}` at `{sw.uri}`",
        f"- trial id: `{tid}`",
        f"- checkpoint copied from: `{src}`",
        f"- data: `{sw.meta.get('data')}`, sweep seed {sw.meta.get('seed')}",
        f"- teacher: `{t.get('dir')}`",
        (f"- trial finished at {row.get('finished_at')}; exported "
         f"{_dt.datetime.now(_dt.timezone.utc).isoformat(timespec='seconds')} with raykd {__version__}"),
        "",
        ("Speedups are measured latency ratios against the unpruned teacher on the sweep's device; see "
         "export.json for every figure in machine-readable form."),
        "",
    ]
    return "\n".join(lines)


def _fmt_value(v: Any) -> str:
    if v is None:
        return "–"
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)

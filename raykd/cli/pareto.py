"""`raykd pareto`: a sweep's trials marked on/off the Pareto front, its hypervolume, a pick, a plot."""

from __future__ import annotations

import argparse
import math
from typing import Any

from raykd.analysis.export import json_safe
from raykd.cli.args import NON_NEGATIVE_NUMBER, THREADS, add_device, int_at_least, number
from raykd.cli.common import add_json_flag, add_output, print_json


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("pareto", help="show a sweep's Pareto front (table, hypervolume, pick, plot)", description=__doc__)
    p.add_argument("run", metavar="RUN", help="the sweep directory: <storage>/<name>, a local path or s3:// / gs:// URI")
    p.add_argument("--objectives", help="METRIC:MODE,... (default: the sweep's own, e.g. accuracy:max,speedup:max)")
    p.add_argument("--max-drop", type=NON_NEGATIVE_NUMBER, metavar="PT",
                   help="also pick the fastest complete trial at most PT accuracy points below the teacher")
    p.add_argument("--reference", metavar="M=V,...",
                   help="hypervolume reference point, e.g. accuracy=0.5,speedup=1 (default: accuracy 0, speedup 1.0)")
    p.add_argument("--not-worse-at", type=number(0.0, 1.0, low_open=True, high_open=True), metavar="A",
                   help="also pick (or restrict the --max-drop pick to) trials whose accuracy is not significantly "
                        "below the teacher's: exact McNemar p >= A on the same valid problems, e.g. 0.05")
    p.add_argument("--retime", action="store_true",
                   help="first time the teacher, the front and its runners-up together (interleaved, in --sessions fresh "
                        "processes one after another) and store each point's measured speedup with a 95%% bootstrap interval")
    p.add_argument("--rounds", type=int_at_least(2, 100_000), default=30,
                   help="--retime: interleaved timing rounds in all, split over the sessions")
    p.add_argument("--sessions", type=int_at_least(1, 16), default=3,
                   help="--retime: fresh processes the rounds are split over (1: this process alone); the interval "
                        "then covers the variation between processes, which one process's rounds understate")
    p.add_argument("--with", dest="with_", action="append", default=[], metavar="OTHER",
                   help="--retime: also re-time sweep OTHER's front in the same interleaved rounds (repeatable), each "
                        "against its own teacher, and store its figures in OTHER: figures from separate re-timings "
                        "differ by the machine's state at the time; timed together they compare")
    add_device(p)
    p.add_argument("--threads", type=THREADS, default=0,
                   help="--retime on CPU: torch threads (default 0: the sweep's trials' count, which its latency table and "
                        "speedups were timed with)")
    add_output(p, "--png", kind="file", required=False, metavar="FILE", help="write the accuracy-vs-speedup plot (PNG) to FILE")
    add_json_flag(p)
    p.set_defaults(func=run)


def parse_reference(text: str | None) -> dict[str, float] | None:
    from raykd.errors import RaykdInputError

    if not text:
        return None
    out: dict[str, float] = {}
    for part in [p.strip() for p in text.split(",") if p.strip()]:
        key, sep, value = part.partition("=")
        try:
            out[key.strip()] = float(value)
        except ValueError:
            raise RaykdInputError(f"bad --reference {text!r}: expected METRIC=NUMBER,...") from None
        if not math.isfinite(out[key.strip()]):
            raise RaykdInputError(f"bad --reference {text!r}: {key.strip()} must be a finite number")
        if not sep or not key.strip():
            raise RaykdInputError(f"bad --reference {text!r}: expected METRIC=NUMBER,...")
    return out


def run(args: argparse.Namespace) -> int:
    from raykd.analysis import NoCompleteTrialError, open_sweep
    from raykd.errors import RaykdInputError
    from raykd.results import format_objectives

    if args.png and not args.png.lower().endswith(".png"):
        raise RaykdInputError(f"--png {args.png}: the file name must end in .png")
    reference = parse_reference(args.reference)
    if args.with_ and not args.retime:
        raise RaykdInputError("--with re-times other sweeps' fronts beside this one's: it needs --retime")
    if args.retime:
        from raykd.analysis.retime import retime_fronts

        retime_fronts([args.run, *args.with_], rounds=args.rounds, sessions=args.sessions, device=args.device,
                      threads=args.threads or None, objectives=args.objectives, log=(lambda _m: None) if args.json else print)
    sw = open_sweep(args.run)
    objs = sw.resolve_objectives(args.objectives)
    front = sw.front(objs)  # NoCompleteTrialError (exit 2) when nothing is complete
    mask = sw.pareto_mask(objs)
    hv = sw.hypervolume(objs, reference)
    ref = sw.reference_point(objs, reference)
    pick, pick_error = None, None
    picking = args.max_drop is not None or args.not_worse_at is not None
    if picking:
        try:
            pick = sw.query(max_drop=args.max_drop, not_worse_at=args.not_worse_at)
        except NoCompleteTrialError as exc:
            pick_error = str(exc)
    png = None
    if args.png:
        sw.plot_front(args.png, objectives=objs, max_drop=args.max_drop, pick=pick, reference=reference)
        png = args.png
    if args.json:
        df = sw.df.assign(on_front=mask)
        print_json({
            "sweep": sw.name, "uri": sw.uri, "objectives": [{"metric": m, "mode": d} for m, d in objs],
            "counts": sw.counts, "teacher": sw.teacher, "reference_point": ref, "hypervolume": hv,
            "front": _records(front.assign(on_front=True)), "trials": _records(df),
            "pick": _record(pick) if pick is not None else None, "pick_error": pick_error,
            "max_drop": args.max_drop, "not_worse_at": args.not_worse_at, "png": png,
        })
        return 0
    print_table(sw, objs, mask)
    t = sw.teacher
    teacher_bits = [f"valid accuracy {_pct(t.get('accuracy'))}"]
    if _finite(t.get("test_accuracy")):
        teacher_bits.append(f"test {_pct(t.get('test_accuracy'))}")
    teacher_bits.append("speedup 1.00x")
    if _finite(t.get("params")):
        teacher_bits.append(f"params {int(t['params']):,}")
    print(f"teacher      {', '.join(teacher_bits)}")
    counts = ", ".join(f"{v} {k}" for k, v in sw.counts.items())
    print(f"front        {int(mask.sum())} of {len(sw.df)} trials ({counts}); objectives {format_objectives(objs)}")
    print(f"hypervolume  {hv:.4f} (reference: {', '.join(f'{m} {v:g}' for m, v in ref.items())})")
    constraints = (sw.meta.get("space") or {}).get("constraints") or []
    if constraints and "feasible" in sw.df.columns:
        from raykd.search.constraints import Constraint

        texts = "; ".join(Constraint(**c).text() for c in constraints)
        feasible = sw.df[sw.df["feasible"].fillna(False).astype(bool)]
        rejected = int((sw.df["status"] == "rejected").sum())
        print(f"constraints  {texts}: {len(feasible)} feasible trial(s), {rejected} configuration(s) rejected before "
              "training; the front above is the feasible front")
        if len(feasible):
            first, mode = objs[0]
            best = feasible.sort_values(first, ascending=(mode == "min"), kind="stable").iloc[0]
            print(f"best         feasible trial {best['trial_id']}: {first} {best[first]:.4g}"
                  + "".join(f", {m} {best[m]:.4g}" for m, _ in objs[1:] if _finite(best[m])))
    if picking:
        rule = " and ".join(([f"within {args.max_drop:g} pt of the teacher"] if args.max_drop is not None else [])
                            + ([f"no significant drop at {args.not_worse_at:g}"] if args.not_worse_at is not None else []))
        if pick is not None:
            print(f"pick         trial {pick['trial_id']} — fastest {rule}: "
                  f"accuracy {_pct(pick['accuracy'])} (drop {pick['accuracy_drop']:.2f} pt), "
                  f"speedup {pick['speedup']:.3f}x, params {_int(pick.get('params'))}")
            print(f"             checkpoint {pick.get('checkpoint_path')}")
            print(f"             export: raykd export {args.run} --trial {pick['trial_id']} --out DIR")
        else:
            print(f"pick         none: {pick_error}")
    if png:
        print(f"plot         {png}")
    return 0


def print_table(sw: Any, objs: list[tuple[str, str]], mask: Any, *, front_only: bool = False) -> None:
    """The trials (front first, ★) with accuracy intervals, paired tests and re-timed speedups."""
    import numpy as np
    from rich.console import Console
    from rich.table import Table

    df = sw.df.assign(on_front=mask)
    if front_only:
        df = df[df["on_front"]]
    status_rank = {"complete": 0, "pruned": 1, "running": 2, "failed": 3}
    m0, d0 = objs[0]
    key = df[m0].astype(float) * (-1 if d0 == "max" else 1)
    df = df.assign(_front=~df["on_front"], _status=df["status"].map(status_rank).fillna(9), _key=key.fillna(np.inf))
    df = df.sort_values(["_front", "_status", "_key", "trial_id"], kind="stable")
    hps = sw.hp_columns
    stats = "accuracy_ci_low" in df and df["accuracy_ci_low"].notna().any()
    measured = "measured_speedup" in df and df["measured_speedup"].notna().any()
    retimed = "retimed_speedup" in df and df["retimed_speedup"].notna().any()
    metric_cols = ["accuracy", *(["accuracy_ci", "accuracy_p_vs_teacher"] if stats else []), "accuracy_drop", "speedup",
                   *(["measured_speedup"] if measured else []), *(["retimed"] if retimed else []), "ideal_speedup", "params", "heads_total", "rounds_done"]
    if "layers_total" in df and df["layers_total"].notna().any():  # structured sweeps: layers and FFN width too
        metric_cols.insert(metric_cols.index("heads_total") + 1, "layers_total")
        metric_cols.insert(metric_cols.index("layers_total") + 1, "ffn_channels_total")
    metric_cols += [m for m, _ in objs if m not in metric_cols]
    shown = f"the {len(df)} trials of its Pareto front" if front_only else f"{len(df)} trials, ★ = on the Pareto front"
    table = Table(title=f"sweep {sw.name}: {shown} ({', '.join(f'{m}:{d}' for m, d in objs)})")
    table.add_column("", justify="center")
    table.add_column("trial")
    table.add_column("status")
    for h in hps:
        table.add_column(h[3:], justify="right")
    heads = {"accuracy": "accuracy", "accuracy_ci": "95% CI", "accuracy_p_vs_teacher": "p vs teacher", "accuracy_drop": "drop pt", "measured_speedup": "measured", "retimed": "re-timed [95% CI]", "speedup": "speedup", "ideal_speedup": "ideal",
             "params": "params", "heads_total": "heads", "layers_total": "layers", "ffn_channels_total": "FFN",
             "rounds_done": "rounds"}
    for c in metric_cols:
        table.add_column(heads.get(c, c), justify="right")
    table.add_column("note", overflow="fold", max_width=40)
    for _, r in df.iterrows():
        cells = ["★" if r["on_front"] else "", str(r["trial_id"]), str(r["status"])]
        cells += [_cell(r[h]) for h in hps]
        for c in metric_cols:
            v = r.get(c)
            if c == "accuracy":
                cells.append(_pct(v))
            elif c == "accuracy_ci":
                lo, hi = r.get("accuracy_ci_low"), r.get("accuracy_ci_high")
                cells.append("–" if not (_finite(lo) and _finite(hi)) else f"{100 * lo:.1f}–{100 * hi:.1f}")
            elif c == "retimed":
                v, lo, hi = r.get("retimed_speedup"), r.get("retimed_low"), r.get("retimed_high")
                cells.append("–" if not _finite(v) else f"{v:.3f}x [{lo:.3f}, {hi:.3f}] {r.get('retimed_device')}")
            elif c == "accuracy_p_vs_teacher":
                cells.append("–" if not _finite(v) else f"{v:.2g} (-{_int(r.get('accuracy_lost'))}/+{_int(r.get('accuracy_gained'))})")
            elif c == "accuracy_drop":
                cells.append("–" if not _finite(v) else f"{v:.2f}")
            elif c in ("speedup", "ideal_speedup", "measured_speedup"):
                cells.append("–" if not _finite(v) else f"{v:.3f}x")
            elif c in ("heads_total", "layers_total", "ffn_channels_total"):
                original = r.get(c.replace("_total", "_original"))
                cells.append("–" if not _finite(v) else f"{int(v)}/{_int(original)}")
            elif c == "rounds_done":
                cells.append("–" if not _finite(v) else f"{int(v)}/{_int(r.get('rounds'))}")
            elif c in ("params", "flops", "memory_bytes"):
                cells.append(_int(v))
            else:
                cells.append(_cell(v))
        note = r.get("error") if isinstance(r.get("error"), str) else ("not final: stopped early" if r["status"] == "pruned" else "")
        cells.append(" ".join(str(note).split())[:120])
        table.add_row(*cells, style="bold" if r["on_front"] else ("dim" if r["status"] != "complete" else None))
    Console(width=200).print(table)


def _finite(v: Any) -> bool:
    try:
        return v is not None and math.isfinite(float(v))
    except (TypeError, ValueError):
        return False


def _pct(v: Any) -> str:
    return "–" if not _finite(v) else f"{100 * float(v):.2f}%"


def _int(v: Any) -> str:
    return "–" if not _finite(v) else f"{int(v):,}"


def _cell(v: Any) -> str:
    if isinstance(v, float):
        return "–" if not math.isfinite(v) else f"{v:.3g}"
    return "–" if v is None else str(v)


def _record(row: Any) -> dict[str, Any]:
    return {k: json_safe(v) for k, v in row.items() if not k.startswith("_")}


def _records(df: Any) -> list[dict[str, Any]]:
    return [_record(r) for _, r in df.iterrows()]

"""`raykd pareto`: a sweep's trials marked on/off the Pareto front, its hypervolume, a pick, a plot."""

from __future__ import annotations

import argparse
import math
import sys
from typing import Any

from raykd import storage
from raykd.cli.args import NON_NEGATIVE_NUMBER, THREADS, add_device, int_at_least, number
from raykd.cli.common import add_json_flag, add_output, print_json
from raykd.errors import RaykdInputError
from raykd.results import format_objectives
from raykd.search.constraints import Constraint


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
    p.add_argument("--not-worse-by", type=number(0.0, 100.0, high_open=True), metavar="PT",
                   help="also pick (or restrict the other picks to) the fastest complete trial shown non-inferior at a "
                        "margin of PT accuracy points: the 95%% interval of its paired difference from the teacher "
                        "(Newcombe, same valid problems) lies above -PT, e.g. 2; marks the table as --margin PT does")
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
    p.add_argument("--trust-sweep", action="store_true",
                   help="--retime: these sweeps are yours: import the plug-in their space names by import path and read "
                        "their data where it says, outside the sweep (a stored sweep is data otherwise: docs/security.md)")
    add_device(p)
    p.add_argument("--threads", type=THREADS, default=0,
                   help="--retime on CPU: torch threads (default 0: the sweep's trials' count, which its latency table and "
                        "speedups were timed with)")
    add_output(p, "--png", kind="file", required=False, metavar="FILE", help="write the accuracy-vs-speedup plot (PNG) to FILE")
    view = p.add_mutually_exclusive_group()
    view.add_argument("--params", dest="view", action="store_const", const="params", default="default",
                      help="also show each trial's searched hyperparameters (a second table)")
    view.add_argument("--wide", dest="view", action="store_const", const="wide",
                      help="show every stored column (in as many tables as the width needs)")
    p.add_argument("--format", dest="fmt", choices=("table", "csv", "json", "markdown"), default="table",
                   help="the trials table as text for people (table, the default; markdown) or for scripts (csv, "
                        "json: the raw values behind the chosen columns); non-table formats print the table only "
                        "(--json prints the whole report)")
    p.add_argument("--margin", type=number(0.0, 100.0, high_open=True), metavar="PT",
                   help="non-inferiority margin in accuracy points: mark trials whose paired 95%% interval of the "
                        "difference from the teacher lies above -PT, and draw the band teacher - PT on --png")
    add_json_flag(p)
    p.set_defaults(func=run)


def parse_reference(text: str | None) -> dict[str, float] | None:
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


def _refuse_same_sweep_twice(run: str, others: list[str]) -> None:
    """RUN and each --with must be different sweeps (compared as resolved paths, not as strings:
    `A` and `./A/` are one sweep, which would be re-timed as two)."""
    seen = {storage.resolve(run, "RUN").rstrip("/"): f"RUN {run}"}
    for other in others:
        key = storage.resolve(other, "--with").rstrip("/")
        if key in seen:
            raise RaykdInputError(f"--with {other} is the same sweep as {seen[key]} ({key}): give each sweep once")
        seen[key] = f"--with {other}"


def run(args: argparse.Namespace) -> int:
    from raykd.analysis import NoCompleteTrialError, open_sweep  # deferred: pandas, pyarrow (~0.7 s) at `raykd` start-up

    if args.png and not args.png.lower().endswith(".png"):
        raise RaykdInputError(f"--png {args.png}: the file name must end in .png")
    if args.json and args.fmt != "table":
        raise RaykdInputError(f"--json prints the whole report; --format {args.fmt} the trials table alone: choose one")
    quiet = args.json or args.fmt != "table"
    margin = margin_points(args)
    reference = parse_reference(args.reference)
    if args.with_ and not args.retime:
        raise RaykdInputError("--with re-times other sweeps' fronts beside this one's: it needs --retime")
    _refuse_same_sweep_twice(args.run, args.with_)
    if args.retime:
        from raykd.analysis.retime import retime_fronts

        retime_fronts([args.run, *args.with_], rounds=args.rounds, sessions=args.sessions, device=args.device,
                      threads=args.threads or None, objectives=args.objectives, log=(lambda _m: None) if quiet else print,
                      trusted=args.trust_sweep)
    sw = open_sweep(args.run)
    objs = sw.resolve_objectives(args.objectives)
    front = sw.front(objs)  # NoCompleteTrialError (exit 2) when nothing is complete
    mask = sw.pareto_mask(objs)
    hv = sw.hypervolume(objs, reference)
    ref = sw.reference_point(objs, reference)
    pick, pick_error = None, None
    picking = args.max_drop is not None or args.not_worse_at is not None or args.not_worse_by is not None
    if picking:
        try:
            pick = sw.query(max_drop=args.max_drop, not_worse_at=args.not_worse_at, not_worse_by=args.not_worse_by)
        except NoCompleteTrialError as exc:
            pick_error = str(exc)
    png = None
    if args.png:
        sw.plot_front(args.png, objectives=objs, max_drop=args.max_drop, pick=pick, reference=reference, margin=margin)
        png = args.png
    if args.json:
        df = sw.df.assign(on_front=mask)
        print_json({
            "sweep": sw.name, "uri": sw.uri, "objectives": [{"metric": m, "mode": d} for m, d in objs],
            "counts": sw.counts, "teacher": sw.teacher, "reference_point": ref, "hypervolume": hv,
            "front": _records(front.assign(on_front=True)), "trials": _records(df),
            "pick": _record(pick) if pick is not None else None, "pick_error": pick_error,
            "max_drop": args.max_drop, "not_worse_at": args.not_worse_at, "not_worse_by": args.not_worse_by, "png": png,
        })
        return 0
    if args.fmt != "table":
        print_table(sw, objs, mask, columns=args.view, fmt=args.fmt, margin=margin)
        return 0
    print_table(sw, objs, mask, columns=args.view, margin=margin)
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
                            + ([f"no significant drop at {args.not_worse_at:g}"] if args.not_worse_at is not None else [])
                            + ([f"non-inferior at {args.not_worse_by:g} pt (95% CI of the difference above "
                                f"-{args.not_worse_by:g} pt)"] if args.not_worse_by is not None else []))
        if pick is not None:
            print(f"pick         trial {pick['trial_id']} — fastest {rule}: "
                  f"accuracy {_pct(pick['accuracy'])} (drop {pick['accuracy_drop']:.2f} pt), "
                  f"speedup {pick['speedup']:.3f}x{_retimed(pick)}, params {_int(pick.get('params'))}")
            print(f"             checkpoint {pick.get('checkpoint_path')}")
            print(f"             export: raykd export {args.run} --trial {pick['trial_id']} --out DIR")
        else:
            print(f"pick         none: {pick_error}")
    if png:
        print(f"plot         {png}")
    return 0


def margin_points(args: argparse.Namespace) -> float | None:
    """The non-inferiority margin in accuracy points: --margin, else --not-worse-by where the
    parser has it (points), else None."""
    for name in ("margin", "not_worse_by"):
        value = getattr(args, name, None)
        if value is not None and _finite(value):
            return float(value)
    return None


def print_table(sw: Any, objs: list[tuple[str, str]], mask: Any, *, front_only: bool = False, columns: str = "default",
                fmt: str = "table", margin: float | None = None, width: int | None = None) -> None:
    """The trials (the teacher, then the front, ★) in the readable view of raykd.results.view:
    accuracy, the difference from the teacher and speed with their intervals, params, shape."""
    from raykd.results.view import render_front  # deferred: pandas, pyarrow (~0.7 s) at `raykd` start-up

    df = sw.df.assign(on_front=mask)
    if front_only:
        df = df[df["on_front"]]
    shown = f"the {len(df)} trials of its Pareto front" if front_only else f"{len(df)} trials, ★ = on the Pareto front"
    title = f"sweep {sw.name}: {shown} ({', '.join(f'{m}:{d}' for m, d in objs)})" if fmt in ("table", "markdown") else None
    sys.stdout.write(render_front(df, teacher=sw.teacher, columns=columns, fmt=fmt, width=width, margin=margin, title=title))
    sys.stdout.flush()


def _finite(v: Any) -> bool:
    try:
        return v is not None and math.isfinite(float(v))
    except (TypeError, ValueError):
        return False


def _pct(v: Any) -> str:
    return "–" if not _finite(v) else f"{100 * float(v):.2f}%"


def _int(v: Any) -> str:
    return "–" if not _finite(v) else f"{int(v):,}"


def _record(row: Any) -> dict[str, Any]:
    from raykd.analysis.export import json_safe  # deferred: raykd.analysis imports pandas (~0.6 s) at `raykd` start-up

    return {k: json_safe(v) for k, v in row.items() if not k.startswith("_")}


def _records(df: Any) -> list[dict[str, Any]]:
    return [_record(r) for _, r in df.iterrows()]


def _retimed(row: Any) -> str:
    """" (re-timed side by side: 2.03x [1.97-2.11])" where the sweep re-timed the pick, so the
    line agrees with the front above it (the pick is ranked by the objective's own speedup)."""
    value = row.get("retimed_speedup")
    if not _finite(value):
        return ""
    low, high = row.get("retimed_low"), row.get("retimed_high")
    interval = f" [{low:.2f}-{high:.2f}]" if _finite(low) and _finite(high) else ""
    return f" (re-timed side by side: {value:.2f}x{interval})"

"""What a sweep prints: one line per trial event and a bar over trials; Ray Tune's own output in a log.

Tune's console (a 26-column status table every 30 s, a 40-row box per trial result) is written, as
it is, to the sweep's `tune.log`; `raykd sweep --verbose` shows it on the console too. What the
console gets instead is one line when a trial starts (its searched settings), one per round (the
objectives) and one when it ends (finished, stopped and by what, or failed and why), above a
progress bar over the sweep's trials with an ETA (tqdm; hidden when stdout is not a terminal).

The Tune callback (`ConsoleEvents`) is stateless and forwards to the console active in this
process, because Tune pickles its callbacks into the sweep's `tuner.pkl` and `--resume` restores
them from there: the restored callback then prints to the resuming process's console.
"""

from __future__ import annotations

import contextlib
import logging
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, TextIO

from ray.tune import Callback
from tqdm import tqdm

LOG_NAME = "tune.log"
# the results row's `stopped_by` as a person reads it
STOPPED_BY = {"accuracy-floor": "the accuracy floor", "mo-successive-halving": "successive halving"}
_ACTIVE: SweepConsole | None = None  # where ConsoleEvents prints
_OUTSIDE: TextIO | None = None  # the console while tune_output sends stdout to the log


def _number(value: Any, name: str) -> str:
    """A figure as a person reads it: accuracies in %, speedups as 1.23x, others to 3 digits."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        return str(value)
    if "accuracy" in name and 0 <= v <= 1:
        return f"{100 * v:.1f}%"
    if "speedup" in name:
        return f"{v:.2f}x"
    return f"{v:.3g}"


class SweepConsole:
    """The sweep's lines and bar, written to `stream` (the console as it was before Tune's output
    was sent to the log)."""

    def __init__(self, stream: TextIO, *, params: Sequence[str], objectives: Sequence[str], total: int,
                 done: int = 0, read_row: Callable[[str], Mapping[str, Any] | None] | None = None,
                 bar: bool = True) -> None:
        self.stream, self.params, self.objectives, self.read_row = stream, list(params), list(objectives), read_row
        self.running: set[str] = set()
        self._refreshed = 0.0
        # disable=None: tqdm's convention, no bar when the stream is not a terminal
        self.bar = tqdm(total=total, initial=min(done, total), unit="trial", desc="trials", file=stream,
                        disable=None if bar else True, dynamic_ncols=True, leave=True)

    # --- output -------------------------------------------------------------------------------
    def say(self, line: str) -> None:
        """One line above the bar."""
        with tqdm.external_write_mode(file=self.stream):
            self.stream.write(line + "\n")
            self.stream.flush()

    def close(self) -> None:
        self.bar.close()

    # --- trial events -------------------------------------------------------------------------
    def started(self, trial_id: str, config: Mapping[str, Any]) -> None:
        self.running.add(trial_id)
        settings = " ".join(f"{p}={_number(config[p], p)}" for p in self.params if p in config)
        self.say(f"trial {trial_id} started: {settings}".rstrip())
        self._postfix()

    def round(self, trial_id: str, result: Mapping[str, Any]) -> None:
        if "round" not in result:
            return
        of = f"/{int(result['rounds'])}" if result.get("rounds") else ""
        figures = ", ".join(f"{o} {_number(result[o], o)}" for o in self.objectives if result.get(o) is not None)
        self.say(f"trial {trial_id} round {int(result['round'])}{of}: {figures}")

    def ended(self, trial_id: str, result: Mapping[str, Any], error: str | None = None) -> None:
        self.running.discard(trial_id)
        row = self.read_row(trial_id) if self.read_row else None
        self.say(f"trial {trial_id} {self._ending(row or {}, result, error)}")
        self.bar.update(1)
        self._postfix()

    def retrying(self, trial_id: str, error: str | None) -> None:
        self.say(f"trial {trial_id} failed and is retried: {_last_line(error) or 'unknown error'}")

    def tick(self) -> None:
        """Keeps the bar's elapsed time and ETA moving between trial events."""
        now = time.monotonic()
        if now - self._refreshed >= 1.0:
            self._refreshed = now
            self.bar.refresh()

    def _postfix(self) -> None:
        self.bar.set_postfix_str(f"{len(self.running)} running", refresh=True)

    def _ending(self, row: Mapping[str, Any], result: Mapping[str, Any], error: str | None) -> str:
        """`finished …`, `stopped …` or `failed: …`, from the results store's row (its status and
        cause are the sweep's record) when it can be read, else from Tune's last result."""
        status = row.get("status") or ("failed" if error else "complete" if result.get("chain_done") else "pruned")
        done = row.get("rounds_done") or result.get("round")
        rounds = row.get("rounds") or result.get("rounds")
        took = row.get("wall_s") or result.get("time_total_s")
        source = {**result, **{k: v for k, v in row.items() if v is not None}}
        figures = ", ".join(self._figure(source, o) for o in self.objectives if source.get(o) is not None)
        if status == "complete":
            when = ", ".join(x for x in (f"{int(done)} rounds" if done else "", f"{float(took):.0f} s" if took else "") if x)
            return f"finished{f' ({when})' if when else ''}: {figures}".rstrip(": ")
        if status == "pruned":
            by = STOPPED_BY.get(str(row.get("stopped_by")), str(row.get("stopped_by") or "a stop rule"))
            at = f" after round {int(done)}" + (f" of {int(rounds)}" if rounds else "") if done else ""
            return f"stopped{at} by {by}" + (f": {figures}" if figures else "")
        return f"failed: {_last_line(row.get('error') or error) or 'unknown error'}"

    @staticmethod
    def _figure(source: Mapping[str, Any], name: str) -> str:
        text = f"{name} {_number(source[name], name)}"
        low, high = source.get(f"{name}_ci_low"), source.get(f"{name}_ci_high")
        if low is not None and high is not None and "accuracy" in name:
            text += f" [{100 * float(low):.1f}, {100 * float(high):.1f}]"
        return text


def _last_line(text: Any) -> str:
    lines = [line for line in str(text or "").strip().splitlines() if line.strip()]
    return lines[-1][:300] if lines else ""


class ConsoleEvents(Callback):
    """Tune's trial events, forwarded to the active `SweepConsole` (none: nothing is printed)."""

    def on_trial_start(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        if _ACTIVE is not None:
            _ACTIVE.started(trial.trial_id, trial.config or {})

    def on_trial_result(self, iteration: int, trials: list, trial: Any, result: dict, **info: Any) -> None:
        if _ACTIVE is not None:
            _ACTIVE.round(trial.trial_id, result)

    def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        if _ACTIVE is not None:
            _ACTIVE.ended(trial.trial_id, dict(getattr(trial, "last_result", None) or {}))

    def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        if _ACTIVE is not None:
            _ACTIVE.ended(trial.trial_id, dict(getattr(trial, "last_result", None) or {}),
                          error=str(getattr(trial, "error_msg", None) or "trial failed"))

    def on_trial_recover(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        if _ACTIVE is not None:
            _ACTIVE.retrying(trial.trial_id, getattr(trial, "error_msg", None))

    def on_step_end(self, iteration: int, trials: list, **info: Any) -> None:
        if _ACTIVE is not None:
            _ACTIVE.tick()


@contextlib.contextmanager
def active(console: SweepConsole | None) -> Iterator[SweepConsole | None]:
    """Makes `console` the one `ConsoleEvents` prints to, for the block."""
    global _ACTIVE
    saved, _ACTIVE = _ACTIVE, console
    try:
        yield console
    finally:
        _ACTIVE = saved
        if console is not None:
            console.close()


class ToConsole:
    """`log` (print, by default) writing to the console even while `tune_output` sends Tune's
    output to the log: raykd's own notes during the sweep stay where a person reads them. A class,
    not a closure over the stream: Tune pickles the searcher that holds it into `tuner.pkl`."""

    def __init__(self, log: Callable[[str], Any]) -> None:
        self.log = log

    def __call__(self, message: str) -> None:
        stream = _OUTSIDE
        if stream is None:
            self.log(message)
            return

        with tqdm.external_write_mode(file=stream), contextlib.redirect_stdout(stream):
            self.log(message)


class _Tee:
    """A text stream that writes to several (Tune's output: the log, and the console with --verbose)."""

    def __init__(self, *streams: TextIO) -> None:
        self.streams = streams

    def write(self, text: str) -> int:
        for s in self.streams:
            s.write(text)
        return len(text)

    def flush(self) -> None:
        for s in self.streams:
            s.flush()

    def isatty(self) -> bool:
        return False


@contextlib.contextmanager
def tune_output(log_path: Path, *, verbose: bool) -> Iterator[None]:
    """For the block, Tune's console output (its print()s, and the `ray` logger's driver-side
    warnings) goes to `log_path`, appended; with `verbose` it stays on the console as well."""
    global _OUTSIDE
    log_path.parent.mkdir(parents=True, exist_ok=True)
    ray_logger = logging.getLogger("ray")
    with open(log_path, "a", encoding="utf-8", buffering=1) as log:
        handler = logging.StreamHandler(log)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        saved_handlers = list(ray_logger.handlers)
        ray_logger.handlers = saved_handlers + [handler] if verbose else [handler]
        saved_outside, _OUTSIDE = _OUTSIDE, sys.stdout
        try:
            with contextlib.redirect_stdout(_Tee(log, sys.stdout) if verbose else log):
                yield
        finally:
            ray_logger.handlers = saved_handlers
            _OUTSIDE = saved_outside

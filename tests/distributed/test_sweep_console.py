"""What `raykd sweep` prints: a line per trial event and a bar, Ray Tune's own output in `tune.log`.

The end-to-end check reads the console of the session's real sweep (`real_sweep` captures it), so
it adds no sweep to the suite; `--verbose` is checked where it acts, on `tune_output`, without a
second sweep."""

from __future__ import annotations

import io
import logging
import pickle
import re

import pytest

# Tune's status table and result boxes (drawn with "╭│" or, depending on the stream, "+-|")
TUNE_MARKS = ("Trial status", "Current time:", "╭", "│", "+-----", "View detailed results", "Trial raykd_trial",
              "Logical resource usage", "Configuration for experiment")


@pytest.mark.ray
@pytest.mark.slow
def test_the_sweep_console_has_a_line_per_trial_event_and_tunes_output_goes_to_the_log(real_sweep):
    from raykd.results.store import read_trials

    console = (real_sweep.parent / "console.txt").read_text()
    for mark in TUNE_MARKS:  # no status table, no result box
        assert mark not in console, (mark, console)
    ids = list(read_trials(real_sweep).to_pandas().trial_id)
    assert len(ids) == 2
    lines = console.splitlines()
    for tid in ids:
        mine = [line for line in lines if line.startswith(f"trial {tid} ")]
        started = [line for line in mine if " started: " in line]
        assert len(started) == 1 and "alpha=" in started[0] and "p_max=" in started[0]
        assert [re.match(rf"trial {tid} round (\d)/2: accuracy [\d.]+%, speedup [\d.]+x$", line) is not None
                for line in mine[1:3]] == [True, True]
        ended = [line for line in mine if " finished" in line or " stopped" in line or " failed" in line]
        assert len(ended) == 1 and re.fullmatch(rf"trial {tid} finished \(2 rounds, \d+ s\): accuracy [\d.]+% "
                                                rf"\[[\d.]+, [\d.]+\], speedup [\d.]+x", ended[0]), ended
        assert len(mine) == 4  # started, round 1, round 2, finished: nothing else per trial
    log = real_sweep / "tune.log"
    assert f"Ray Tune's own output: {log} (raykd sweep --verbose shows it here)" in lines[0]
    text = log.read_text()
    for mark in ("Trial status", "Current time:", "Configuration for experiment", "View detailed results"):
        assert mark in text  # Tune's full console, as it was
    assert all(f"Trial raykd_trial_{tid} result" in text for tid in ids)


def test_tune_output_goes_to_the_log_and_with_verbose_to_the_console_too(tmp_path, capsys):
    from raykd.distributed.console import ToConsole, tune_output

    log = tmp_path / "s" / "tune.log"
    note = ToConsole(print)
    ray_logger = logging.getLogger("ray")
    before = list(ray_logger.handlers)  # Ray's console handler (stderr)
    with tune_output(log, verbose=False):
        print("TABLE-A")  # what Tune's reporter does
        logging.getLogger("ray.tune.tune").warning("WARN-A")  # Tune's driver-side warnings
        note("raykd note A")  # raykd's own notes stay on the console
        assert not set(before) & set(ray_logger.handlers)  # Ray's warnings: to the log only
    out = capsys.readouterr()
    assert "TABLE-A" not in out.out + out.err and "WARN-A" not in out.out + out.err
    assert out.out == "raykd note A\n"
    with tune_output(log, verbose=True):
        print("TABLE-B")
        logging.getLogger("ray.tune.tune").warning("WARN-B")
        assert set(before) < set(ray_logger.handlers)  # --verbose: Ray's console handler too, and the log
    out = capsys.readouterr()
    assert "TABLE-B" in out.out
    assert ray_logger.handlers == before
    text = log.read_text()
    assert [t in text for t in ("TABLE-A", "WARN-A", "TABLE-B", "WARN-B")] == [True] * 4  # appended, both runs
    assert "raykd note A" not in text
    print("after")
    assert capsys.readouterr().out == "after\n"  # the console is restored


def test_console_lines_for_stopped_failed_and_retried_trials():
    from raykd.distributed.console import SweepConsole

    rows = {"s1": {"status": "pruned", "stopped_by": "accuracy-floor", "rounds_done": 1, "rounds": 3, "accuracy": 0.2},
            "f1": {"status": "failed", "error": "Traceback ...\nRuntimeError: boom"}}
    out = io.StringIO()
    con = SweepConsole(out, params=["alpha"], objectives=["accuracy", "speedup"], total=3, read_row=rows.get)
    con.started("s1", {"alpha": 0.123456, "other": 1})
    con.round("s1", {"round": 1, "rounds": 3, "accuracy": 0.2, "speedup": 1.5})
    con.ended("s1", {"round": 1})
    con.retrying("f1", "Traceback ...\nWorkerGroupError: node lost")
    con.ended("f1", {}, error="ignored: the row says")
    con.close()
    assert out.getvalue().splitlines() == [
        "trial s1 started: alpha=0.123",
        "trial s1 round 1/3: accuracy 20.0%, speedup 1.50x",
        "trial s1 stopped after round 1 of 3 by the accuracy floor: accuracy 20.0%",
        "trial f1 failed and is retried: WorkerGroupError: node lost",
        "trial f1 failed: RuntimeError: boom",
    ]  # and no bar: the stream is not a terminal


def test_on_a_terminal_a_bar_over_trials_shows_the_count_and_an_eta():
    from raykd.distributed.console import SweepConsole

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    out = Terminal()
    con = SweepConsole(out, params=[], objectives=["accuracy"], total=4, done=1, read_row=None)
    con.started("a", {})
    con.ended("a", {"chain_done": True, "round": 2, "accuracy": 0.5})
    con.close()
    text = out.getvalue()
    assert "trial a finished (2 rounds): accuracy 50.0%\n" in text
    assert re.search(r"trials: +50%.*\| 2/4 \[\d\d:\d\d<\d\d:\d\d", text), text  # done/total [elapsed<ETA]


def test_what_tune_pickles_into_tuner_pkl_pickles():
    # Tune stores the run's callbacks and the searcher (which holds raykd's log) in tuner.pkl
    from raykd.distributed.console import ConsoleEvents, ToConsole

    assert isinstance(pickle.loads(pickle.dumps(ConsoleEvents())), ConsoleEvents)
    assert pickle.loads(pickle.dumps(ToConsole(print))).log is print


def test_raykd_sweep_has_verbose():
    from raykd.cli import build_parser

    assert build_parser().parse_args(["sweep", "--verbose"]).verbose is True
    assert build_parser().parse_args(["sweep"]).verbose is False

"""A real sweep on a local Ray: Tune + Optuna over chains that each run as a Ray Train job."""

import json

import pytest

from raykd.results.store import read_pareto, read_trials

pytestmark = [pytest.mark.ray, pytest.mark.slow]


def test_two_trial_two_round_sweep_writes_results_study_and_front(real_sweep):
    # the session's real sweep: two DDP workers per chain (gloo on CPU), 2 trials x 2 rounds
    root = real_sweep

    trials = read_trials(root).to_pandas()
    assert len(trials) == 2 and trials.trial_id.is_unique
    assert set(trials.status) == {"complete"}
    assert set(trials.world_size) == {2}  # each chain really trained on two DDP workers
    for row in trials.itertuples():
        rounds = json.loads(row.rounds_json)
        assert [r["round"] for r in rounds] == [1, 2]
        assert rounds[0]["shared_stats"] is True  # round 1 reused the sweep's teacher statistics
        assert row.heads_total < row.heads_original
        assert row.layers_total == row.layers_original == 4  # the small space prunes heads only
        assert row.speedup > 0 and row.ideal_speedup > 1 and 0 <= row.accuracy <= 1
        assert (root / "train").is_dir() and row.checkpoint_path.startswith(str(root / "train"))
        assert 0 < row.hp_alpha < 1 and 0.15 <= row.hp_p_max <= 0.5
    front = read_pareto(root).to_pandas()
    from raykd.results.pareto import pareto_mask

    expected = trials.trial_id[pareto_mask(trials, [("accuracy", "max"), ("speedup", "max")])]
    assert sorted(front.trial_id) == sorted(expected)  # exactly the non-dominated trials
    # the sweep re-timed its front and runners-up side by side at the end (speed.retime_rounds 30 in 3 sessions)
    assert trials.retimed_speedup.notna().all() and set(trials.retimed_rounds) == {30} and set(trials.retimed_sessions) == {3}
    assert set(trials.retimed_workload) == {"decode"} and set(trials.latency_workload) == {"decode"}
    assert (front.retimed_low <= front.retimed_speedup).all() and (front.retimed_speedup <= front.retimed_high).all()

    # the speed objective is the sweep's latency table: deterministic per shape, measured kept beside it
    from raykd.measure.latency import LatencyTable
    from raykd.task.io import load_solver

    table = LatencyTable.load(root / "teacher" / "latency_table.json")
    assert table.key["workload"] == "decode" and table.key["threads"] == 1 and table.key["batch_shape"]["input_ids"][0] == 4
    for row in trials.itertuples():
        assert row.speedup_source == "latency table" and row.measured_speedup > 0
        model, _, _ = load_solver(row.checkpoint_path)
        assert row.speedup == table.predicted_speedup_of(model)
        # every accuracy with n, a 95% interval and the paired test against the teacher
        assert row.accuracy_ci_low <= row.accuracy <= row.accuracy_ci_high and row.accuracy_n > 0
        assert 0 <= row.accuracy_p_vs_teacher <= 1 and isinstance(row.accuracy_correct, str)

    # the Optuna study is a journal file with both objectives and both trials complete
    import optuna
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    study = optuna.load_study(study_name="raykd-t", storage=JournalStorage(JournalFileBackend(str(root / "optuna" / "study.journal"))))
    assert [d.name for d in study.directions] == ["MAXIMIZE", "MAXIMIZE"]
    assert sum(t.state.name == "COMPLETE" for t in study.trials) == 2
    meta = json.loads((root / "results" / "sweep.json").read_text())
    assert meta["teacher"]["stats_s"] > 0 and meta["objectives"][0] == {"metric": "accuracy", "mode": "max"}
    assert (root / "tune").is_dir() and (root / "teacher" / "structure_stats.json").is_file()

    # the trial's final checkpoint is a loadable, really pruned solver
    from raykd.structures import total_heads
    from raykd.task.io import load_solver

    best = trials.iloc[0]
    model, _, _ = load_solver(best.checkpoint_path)
    assert total_heads(model) == best.heads_total


def test_starting_the_same_sweep_twice_is_refused(space_file, tmp_path, capsys):
    from raykd.cli import main

    (tmp_path / "runs" / "t" / "results").mkdir(parents=True)
    (tmp_path / "runs" / "t" / "results" / "sweep.json").write_text("{}")
    assert main(["sweep", "--space", str(space_file())]) == 2
    assert "already exists" in capsys.readouterr().err


def test_retiming_the_front_stores_intervals_and_a_failed_retime_changes_nothing(real_sweep, tmp_path, capsys):
    import shutil

    from raykd.cli import main
    from raykd.results.store import write_trial

    copy = tmp_path / "copy"
    # with its checkpoints: a stored sweep is read only inside itself (docs/security.md)
    shutil.copytree(real_sweep, copy, ignore=shutil.ignore_patterns("tune"))
    # more sessions than the rounds can feed: one line, exit 2, nothing timed
    assert main(["pareto", str(copy), "--retime", "--rounds", "4", "--sessions", "3"]) == 2
    assert "at least 2 rounds per session: 4 rounds for 3 sessions" in capsys.readouterr().err
    # two sessions, each in a fresh process
    assert main(["pareto", str(copy), "--retime", "--rounds", "4", "--sessions", "2", "--threads", "1",
                 "--png", str(tmp_path / "f.png")]) == 0
    out = capsys.readouterr().out
    assert "4 interleaved rounds on cpu (2 fresh processes, one after another)" in out
    from raykd.outputs import is_raykd_png

    assert is_raykd_png(tmp_path / "f.png")  # drawn with the re-timed points and their intervals
    assert "re-timing the teacher and 2 trials together" in out and "speed: re-timed side by side with the teacher, 95% interval" in out
    front = read_pareto(copy).to_pandas()
    assert len(front) >= 1
    for row in front.itertuples():
        assert row.retimed_low <= row.retimed_speedup <= row.retimed_high
        assert row.retimed_device == "cpu" and row.retimed_rounds == 4 and row.retimed_sessions == 2 and row.retimed_threads == 1
    trials = read_trials(copy).to_pandas()
    assert trials.retimed_speedup.notna().all()  # the front and its runners-up: both trials here
    assert trials.error.isna().all()  # rows rewritten as stored: a null stays null

    # a re-timing that fails midway (one checkpoint gone) leaves every stored result as it was
    victim = read_trials(copy).to_pylist()[-1]
    write_trial(copy, {**victim, "checkpoint_path": str(copy / "train" / "gone")})
    before = {p.name: p.read_bytes() for p in (copy / "results").rglob("*.parquet")}
    for sessions in ("1", "2"):  # in this process, and in a session's fresh process
        assert main(["pareto", str(copy), "--retime", "--rounds", "4", "--sessions", sessions]) == 2
        assert "not found" in capsys.readouterr().err
    assert {p.name: p.read_bytes() for p in (copy / "results").rglob("*.parquet")} == before


def test_two_fronts_retimed_side_by_side_store_figures_in_both_sweeps(real_sweep, tmp_path, capsys):
    import shutil

    from raykd.cli import main

    a, b = tmp_path / "a", tmp_path / "b"
    for d in (a, b):
        shutil.copytree(real_sweep, d, ignore=shutil.ignore_patterns("tune"))  # a sweep reads only inside itself
    before = {p.relative_to(a): p.read_bytes() for p in (a / "results").rglob("*.parquet")}
    # bad combinations: one line, exit 2, nothing timed or written
    for argv, said in ((["pareto", str(a), "--with", str(b)], "--with re-times other sweeps' fronts beside this one's: it needs --retime"),
                       (["pareto", str(a), "--retime", "--rounds", "6", "--with", str(a)], "is the same sweep as"),
                       (["pareto", str(a), "--retime", "--rounds", "6", "--with", str(tmp_path / "nope")], "nope")):
        assert main(argv) == 2
        assert said in capsys.readouterr().err
    assert {p.relative_to(a): p.read_bytes() for p in (a / "results").rglob("*.parquet")} == before

    assert main(["pareto", str(a), "--retime", "--rounds", "4", "--sessions", "2", "--threads", "1", "--with", str(b)]) == 0
    assert "re-timing 2 sweeps' teachers and 4 trials together: 4 interleaved rounds" in capsys.readouterr().out
    rows = {d: read_trials(d).to_pandas() for d in (a, b)}
    for d, other in ((a, b), (b, a)):
        t = rows[d]
        assert t.retimed_speedup.notna().all() and (t.retimed_low <= t.retimed_speedup).all()
        assert (t.retimed_speedup <= t.retimed_high).all()
        assert set(t.retimed_with) == {4} and set(t.retimed_sessions) == {2} and (t.retimed_reference_ms > 0).all()
        assert {json.dumps([str(other)])} == set(t.retimed_beside)  # which sweep's figures these compare with
        assert read_pareto(d).to_pandas().retimed_speedup.notna().all()
    assert set(rows[a].retimed_at) == set(rows[b].retimed_at)  # one re-timing, stored in both
    # re-timed alone later: the figures no longer say they were taken beside another front; with no
    # --threads, at the trials' thread count (1 here; torch's default on this machine may differ)
    assert main(["pareto", str(b), "--retime", "--rounds", "2", "--sessions", "1"]) == 0
    alone = read_trials(b).to_pandas()
    assert alone.retimed_beside.isna().all() and set(alone.retimed_threads) == {1}


def test_a_new_sweep_never_writes_into_a_directory_it_did_not_create(space_file, tmp_path, capsys):
    from raykd.cli import main

    (tmp_path / "runs" / "t").mkdir(parents=True)
    (tmp_path / "runs" / "t" / "thesis.tex").write_text("mine")
    assert main(["sweep", "--space", str(space_file())]) == 2
    assert "is not a raykd sweep" in capsys.readouterr().err
    assert [p.name for p in (tmp_path / "runs" / "t").iterdir()] == ["thesis.tex"]


def test_resume_uses_the_stored_space_and_refuses_drifted_data_or_teacher(real_sweep, space_file, tmp_path, capsys):
    """An edited space file cannot change a resumed sweep (--resume reads the copy stored at
    creation and refuses --space); what the space points at (data files, the sweep's teacher) is
    fingerprinted at creation and compared before Ray starts."""
    import shutil

    from raykd.cli import main
    from raykd.data import load_splits
    from raykd.resume import problems_digest

    assert main(["sweep", "--resume", str(real_sweep), "--space", str(space_file(num_samples=9))]) == 2
    assert "--resume takes the sweep stored at DIR as it was created" in capsys.readouterr().err
    meta = json.loads((real_sweep / "results" / "sweep.json").read_text())
    assert meta["fingerprint"]["data"] == problems_digest(load_splits(meta["data"], seed=meta["seed"]))
    assert meta["fingerprint"]["teacher"] == json.loads((real_sweep / "teacher" / "config.json").read_text())["weights_sha256"]

    copy = tmp_path / "copy"
    shutil.copytree(real_sweep, copy, ignore=shutil.ignore_patterns("tune", "train"))
    data = tmp_path / "data.json"
    data.write_text(json.dumps([{"Body": f"Tom has {i + 2} apples.", "Question": "He eats 1. How many are left?",
                                 "Formula": f"{i + 2}-1={i + 1}", "Answer": str(i + 1)} for i in range(30)]))
    meta["space_raw"]["data"] = meta["data"] = f"asdiv-a:{data}"
    meta["fingerprint"]["data"] = problems_digest(load_splits(meta["data"], seed=meta["seed"]))
    meta["teacher"]["dir"] = str(copy / "teacher")
    (copy / "results" / "sweep.json").write_text(json.dumps(meta))
    before = (copy / "results" / "sweep.json").read_bytes()

    data.write_text(data.read_text().replace("Tom has 2 apples.", "Tom has 2 apples!"))  # the data set changed
    assert main(["sweep", "--resume", str(copy), "--quiet", "--trust-sweep"]) == 2  # its data lies outside it
    err = capsys.readouterr().err
    assert "cannot be resumed (data: " in err and len(err.strip().splitlines()) == 1

    data.write_text(data.read_text().replace("Tom has 2 apples!", "Tom has 2 apples."))  # restored; now the teacher
    config = json.loads((copy / "teacher" / "config.json").read_text())
    config["weights_sha256"] = "0" * 64
    (copy / "teacher" / "config.json").write_text(json.dumps(config))
    assert main(["sweep", "--resume", str(copy), "--quiet", "--trust-sweep"]) == 2  # its data lies outside it
    assert "cannot be resumed (teacher: " in capsys.readouterr().err
    assert (copy / "results" / "sweep.json").read_bytes() == before


def test_hopeless_chains_are_stopped_early_and_recorded_as_pruned(space_file, tmp_path):
    from raykd.search.space import load_space
    from raykd.distributed.sweep import run_sweep

    # an accuracy floor no chain can reach: the chain is stopped after round 1 of 2
    space = load_space(space_file(name="floor", num_samples=1, early_stop={"accuracy_floor": 1.0, "after_round": 1}))
    run_sweep(space, progress=False, log=lambda _m: None)
    root = tmp_path / "runs" / "floor"
    rows = read_trials(root).to_pandas()
    assert list(rows.status) == ["pruned"] and rows.rounds_done[0] == 1
    assert len(read_pareto(root)) == 0  # a stopped chain never reaches the front

    import optuna
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    study = optuna.load_study(study_name="raykd-floor", storage=JournalStorage(JournalFileBackend(str(root / "optuna" / "study.journal"))))
    assert [t.state.name for t in study.trials] == ["PRUNED"]


def test_hf_export_of_a_sweep_trial_refuses_a_head_pruned_shape_by_name(real_sweep, tmp_path, capsys):
    """`raykd export RUN --trial ID --hf`: the small sweep prunes heads, which no stock BERT config
    can hold; the refusal names it and writes nothing (the solver export of the same trial works)."""
    from raykd.cli import main

    trial = read_trials(real_sweep).to_pandas().trial_id.iloc[0]
    assert main(["export", str(real_sweep), "--trial", trial, "--hf", "--out", str(tmp_path / "hf")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "heads were pruned" in err[0]
    assert not (tmp_path / "hf").exists()
    assert main(["export", str(real_sweep), "--trial", trial, "--out", str(tmp_path / "solver")]) == 0

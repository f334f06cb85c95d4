"""A whole sweep whose storage is a bucket on a real S3 endpoint (moto's server on 127.0.0.1):
the space's local data is copied there once and every trial, the teacher (trained as Ray work)
and the resume read that copy; Ray Tune and Ray Train checkpoint there, raykd's results store
and the Optuna journal live there, `raykd pareto` and `raykd export` read from it, `--resume`
continues from it with the local data gone, and no credential appears in any object the sweep
wrote."""

from __future__ import annotations

import json

import pytest

from raykd.results.store import read_pareto, read_trials

pytestmark = [pytest.mark.ray, pytest.mark.slow]


def test_a_sweep_on_s3_runs_is_queried_exported_resumed_and_stores_no_credentials(s3_bucket, tmp_path, capsys):
    import os
    import shutil

    import boto3
    from asdiv_rows import write_asdiv_dir
    from sweep_spaces import small_space, write_space

    from raykd import storage
    from raykd.cli import main
    from raykd.task.io import load_solver

    root = f"s3://{s3_bucket}/runs/t"
    data = write_asdiv_dir(tmp_path / "asdiv-a")
    raw = small_space(tmp_path, f"s3://{s3_bucket}/runs", data=f"asdiv-a:{data}")
    raw["teacher"] = {"preset": "tiny", "epochs": 2}  # trained by the sweep, on the copied data
    space = write_space(tmp_path / "space.yaml", raw)
    assert main(["sweep", "--space", str(space), "--quiet"]) == 0
    meta = json.loads(storage.read_bytes(f"{root}/results/sweep.json"))
    # the local data went to the bucket once, and the stored space (what trials and --resume read) points there
    assert meta["data_given"] == f"asdiv-a:{data}" and meta["data"] == f"asdiv-a:{root}/data/asdiv-a"
    assert meta["space_raw"]["data"] == meta["data"]
    assert storage.read_bytes(f"{root}/data/asdiv-a/train.json") == (data / "train.json").read_bytes()
    # the teacher was trained by a Ray worker, not by this driver, on the trials' device
    assert meta["teacher"]["trained_here"] and meta["teacher"]["device"] == "cpu"
    assert meta["teacher"]["prepared_by"]["pid"] != os.getpid()
    shutil.rmtree(data)  # from here on nothing may read the submitting machine's copy
    trials = read_trials(root).to_pandas()
    assert len(trials) == 2 and set(trials.status) == {"complete"}
    assert all(p.startswith(f"s3://{s3_bucket}/runs/t/train/") for p in trials.checkpoint_path)
    assert trials.retimed_speedup.notna().all()  # the end-of-sweep re-timing read its checkpoints from the bucket
    front = read_pareto(root).to_pandas()
    capsys.readouterr()

    assert main(["pareto", root, "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert sorted(r["trial_id"] for r in printed["front"]) == sorted(front.trial_id)
    tid = front.trial_id.iloc[0]
    assert main(["export", root, "--trial", tid, "--out", str(tmp_path / "model")]) == 0
    load_solver(tmp_path / "model")

    assert main(["sweep", "--resume", root, "--quiet"]) == 0  # nothing left to run: the same two trials
    assert sorted(read_trials(root).to_pandas().trial_id) == sorted(trials.trial_id)

    s3 = boto3.client("s3")
    keys = [o["Key"] for page in s3.get_paginator("list_objects_v2").paginate(Bucket=s3_bucket) for o in page.get("Contents", [])]
    assert any(k.endswith("results/sweep.json") for k in keys) and any(k.endswith("optuna/study.journal") for k in keys)
    for key in keys:
        body = s3.get_object(Bucket=s3_bucket, Key=key)["Body"].read()
        assert b"raykd-test-secret" not in body and b"raykd-test-key-id" not in body, key

"""The cloud code paths (s3:// URIs) against a real S3 endpoint on this machine (moto's server):
the same HTTP calls raykd makes on S3 (no rename: single-upload writes; listing, reads and
downloads through pyarrow), credentials from the environment only."""

from __future__ import annotations

import json

import pyarrow.fs as pafs
import pytest
from sweep_factory import KNOWN_FRONT, KNOWN_HV, make_row

from raykd import storage
from raykd.analysis import export_trial, open_sweep
from raykd.results import read_pareto, read_trials, update_pareto, write_trial


@pytest.fixture
def uri(s3_bucket, demo_sweep):
    """A copy of the demo sweep in a bucket, its checkpoint paths pointing into the bucket."""
    uri = f"s3://{s3_bucket}/runs/demo"
    storage.upload_dir(demo_sweep, uri)
    for tid in ("t0", "t1", "t2"):  # as the sweep writes them on S3: URIs into the bucket
        write_trial(uri, {**read_trials(uri).to_pandas().set_index("trial_id").loc[tid].to_dict(), "trial_id": tid,
                          "checkpoint_path": f"{uri}/train/{tid}/checkpoint_000002"})
    return uri


def test_open_query_and_importance_from_a_bucket(uri):
    sw = open_sweep(uri)
    assert sw.uri == uri and len(sw.df) == 8
    assert set(sw.front()["trial_id"]) == KNOWN_FRONT and sw.hypervolume() == pytest.approx(KNOWN_HV)
    assert sw.importance("accuracy").sum() == pytest.approx(1.0)  # journal read from the bucket
    assert sw.query()["checkpoint_path"] == f"{uri}/train/t0/checkpoint_000002"


def test_writes_to_a_bucket_leave_no_temporaries_and_update_the_front(uri):
    write_trial(uri, make_row("demo", "t9", "complete", 0.95, 2.0, 500_000))
    update_pareto(uri)
    assert read_pareto(uri).column("trial_id").to_pylist() == ["t9"]
    fs, path = storage.filesystem(f"{uri}/results")
    names = [i.base_name for i in fs.get_file_info(pafs.FileSelector(path, recursive=True))]
    assert names and not [n for n in names if n.endswith(".tmp")]
    assert read_trials(uri).num_rows == 9


def test_export_downloads_the_checkpoint(uri, tmp_path):
    out = export_trial(uri, tmp_path / "model", trial_id="t1")
    assert (out / "model.safetensors").is_file() and not (out / "state.json").exists()
    record = json.loads((out / "export.json").read_text())
    assert record["checkpoint_path"] == f"{uri}/train/t1/checkpoint_000002" and record["sweep_uri"] == uri
    from raykd.task.io import load_solver

    load_solver(out)

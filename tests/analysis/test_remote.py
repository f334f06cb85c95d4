"""The cloud code paths (s3:// URIs) against pyarrow's in-memory filesystem: no network, but the
same calls raykd makes on S3/GCS (no rename: single-upload writes; listing, reads and downloads
through pyarrow)."""

from __future__ import annotations

import json

import pyarrow._fs as pafs_internal
import pyarrow.fs as pafs
import pytest
from sweep_factory import KNOWN_FRONT, KNOWN_HV, make_row

from raykd import storage
from raykd.analysis import export_trial, open_sweep
from raykd.results import read_pareto, read_trials, update_pareto, write_trial

URI = "s3://bucket/runs/demo"


@pytest.fixture
def bucket(monkeypatch, demo_sweep):
    """s3://bucket/... served from memory, holding a copy of the demo sweep whose checkpoint
    paths point into the bucket."""
    mock = pafs_internal._MockFileSystem()
    real = storage.filesystem

    def filesystem(uri):
        text = str(uri)
        return (mock, text[len("s3://"):]) if text.startswith("s3://") else real(uri)

    monkeypatch.setattr(storage, "filesystem", filesystem)
    local = pafs.LocalFileSystem()
    for info in local.get_file_info(pafs.FileSelector(str(demo_sweep), recursive=True)):
        rel = info.path[len(str(demo_sweep)) + 1:]
        if info.type == pafs.FileType.Directory:
            mock.create_dir(f"bucket/runs/demo/{rel}", recursive=True)
        else:
            with mock.open_output_stream(f"bucket/runs/demo/{rel}") as out:
                out.write((demo_sweep / rel).read_bytes())
    for tid in ("t0", "t1", "t2"):  # as the sweep writes them on S3: URIs into the bucket
        write_trial(URI, {**read_trials(URI).to_pandas().set_index("trial_id").loc[tid].to_dict(), "trial_id": tid,
                          "checkpoint_path": f"{URI}/train/{tid}/checkpoint_000002"})
    return mock


def test_open_query_and_importance_from_a_bucket(bucket):
    sw = open_sweep(URI)
    assert sw.uri == URI and len(sw.df) == 8
    assert set(sw.front()["trial_id"]) == KNOWN_FRONT and sw.hypervolume() == pytest.approx(KNOWN_HV)
    assert sw.importance("accuracy").sum() == pytest.approx(1.0)  # journal read from the bucket
    assert sw.query()["checkpoint_path"] == f"{URI}/train/t0/checkpoint_000002"


def test_writes_to_a_bucket_leave_no_temporaries_and_update_the_front(bucket):
    write_trial(URI, make_row("demo", "t9", "complete", 0.95, 2.0, 500_000))
    update_pareto(URI)
    assert read_pareto(URI).column("trial_id").to_pylist() == ["t9"]
    names = [i.base_name for i in bucket.get_file_info(pafs.FileSelector("bucket/runs/demo/results", recursive=True))]
    assert not [n for n in names if n.endswith(".tmp")]
    assert read_trials(URI).num_rows == 9


def test_export_downloads_the_checkpoint(bucket, tmp_path):
    out = export_trial(URI, tmp_path / "model", trial_id="t1")
    assert (out / "model.safetensors").is_file() and not (out / "state.json").exists()
    record = json.loads((out / "export.json").read_text())
    assert record["checkpoint_path"] == f"{URI}/train/t1/checkpoint_000002" and record["sweep_uri"] == URI
    from raykd.task.io import load_solver

    load_solver(out)

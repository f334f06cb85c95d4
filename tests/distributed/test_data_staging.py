"""Local data reaches every node: a sweep on a bucket (a real S3 endpoint, moto's server) copies
a local data file or directory there once and reads that copy; what is not a local path, or a
sweep on local storage, reads the spec as given."""

from __future__ import annotations

from pathlib import Path

from raykd import storage
from raykd.data import load_splits
from raykd.distributed.data_staging import local_data_path, stage_data


def test_which_specs_are_local_paths(tmp_path):
    (tmp_path / "d").mkdir()
    assert local_data_path(str(tmp_path / "d")) == ("", tmp_path / "d")
    assert local_data_path(f"asdiv-a:{tmp_path / 'd'}") == ("asdiv-a", tmp_path / "d")
    for spec in ("synthetic:400:7", "s3://bucket/data", "asdiv-a:s3://bucket/data", f"file://{tmp_path / 'd'}",
                 f"asdiv-a:{tmp_path / 'missing'}", "majority:64"):
        assert local_data_path(spec) is None, spec


def test_a_remote_sweep_copies_local_data_once_and_reads_the_copy(s3_bucket, tmp_path):
    from asdiv_rows import write_asdiv_dir

    data = write_asdiv_dir(tmp_path / "asdiv-a")
    said: list[str] = []
    root = f"s3://{s3_bucket}/sweeps/one"
    staged = stage_data(f"asdiv-a:{data}", root, reads_uris=True, log=said.append)
    assert staged == f"asdiv-a:{root}/data/asdiv-a" and "copied the data" in said[0]
    assert storage.read_bytes(f"{root}/data/asdiv-a/valid.json") == (data / "valid.json").read_bytes()
    local = load_splits(f"asdiv-a:{data}")
    remote = load_splits(staged)
    assert {k: [p.id for p in v] for k, v in remote.items()} == {k: [p.id for p in v] for k, v in local.items()}

    one_file = stage_data(str(data / "train.json"), root, reads_uris=True, log=said.append)
    assert one_file == f"{root}/data/train.json" and len(load_splits(one_file)["train"]) > 0


def test_what_stays_as_given(s3_bucket, tmp_path):
    from asdiv_rows import write_asdiv_dir

    data = write_asdiv_dir(tmp_path / "asdiv-a")
    said: list[str] = []
    assert stage_data(f"asdiv-a:{data}", str(tmp_path / "sweeps"), reads_uris=True, log=said.append) == f"asdiv-a:{data}"
    assert stage_data("synthetic:100", f"s3://{s3_bucket}/s", reads_uris=True, log=said.append) == "synthetic:100"
    assert said == [] and not storage.exists(f"s3://{s3_bucket}/s/data")
    # a plug-in that reads only local paths keeps its path, and the user is told what that needs
    assert stage_data(str(data), f"s3://{s3_bucket}/s", reads_uris=False, log=said.append) == str(data)
    assert len(said) == 1 and "every node that runs a trial must see that path" in said[0]
    assert not storage.exists(f"s3://{s3_bucket}/s/data") and Path(data).is_dir()

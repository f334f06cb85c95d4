"""Data specs that are URIs: ASDiv-A-format files read from a real S3 endpoint (moto's server),
copied once into raykd's cache and fetched again only when an object changes; a missing object or
bucket is one DataError line naming the URI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from raykd.data import load_splits
from raykd.errors import DataError


@pytest.fixture
def asdiv(tmp_path) -> Path:
    from asdiv_rows import write_asdiv_dir

    return write_asdiv_dir(tmp_path / "asdiv-a")


def _upload(bucket: str, prefix: str, root: Path) -> None:
    import boto3

    s3 = boto3.client("s3")
    for name in ("train.json", "valid.json"):
        s3.upload_file(str(root / name), bucket, f"{prefix}/{name}")


def test_a_data_directory_on_s3_reads_as_the_local_one_and_a_change_is_fetched_again(s3_bucket, asdiv, tmp_path, monkeypatch):
    import boto3

    monkeypatch.setenv("RAYKD_CACHE", str(tmp_path / "cache"))
    _upload(s3_bucket, "asdiv-a", asdiv)
    local = load_splits(f"asdiv-a:{asdiv}")
    remote = load_splits(f"asdiv-a:s3://{s3_bucket}/asdiv-a")
    assert {k: [p.id for p in v] for k, v in remote.items()} == {k: [p.id for p in v] for k, v in local.items()}
    assert len(remote["test"]) == 20  # valid.json is held out as test; valid is carved out of train
    copies = list((tmp_path / "cache" / "data").iterdir())
    assert load_splits(f"s3://{s3_bucket}/asdiv-a") and list((tmp_path / "cache" / "data").iterdir()) == copies  # cached

    rows = json.loads((asdiv / "valid.json").read_text())[:12]
    boto3.client("s3").put_object(Bucket=s3_bucket, Key="asdiv-a/valid.json", Body=json.dumps(rows).encode())
    assert len(load_splits(f"asdiv-a:s3://{s3_bucket}/asdiv-a")["test"]) == 12  # the changed object, not the stale copy


@pytest.mark.parametrize("where, message", [
    ("s3://{bucket}/nothing-here", "data s3://{bucket}/nothing-here does not exist"),
    ("asdiv-a:s3://no-such-bucket-raykd/x", "s3://no-such-bucket-raykd/x"),
])
def test_a_missing_object_or_bucket_is_one_line_naming_the_uri(s3_bucket, tmp_path, monkeypatch, where, message):
    monkeypatch.setenv("RAYKD_CACHE", str(tmp_path / "cache"))
    with pytest.raises(DataError) as info:
        load_splits(where.format(bucket=s3_bucket))
    assert message.format(bucket=s3_bucket) in str(info.value) and "\n" not in str(info.value)

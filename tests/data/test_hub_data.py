"""`hf:NAME[:CONFIG]` data specs, read through the real `datasets.load_dataset`.

This machine cannot reach the hub, so NAME is a local directory of Parquet or JSON-lines split
files (the form hub datasets are stored in, read by the same `datasets` loaders); a hub id is
exercised offline (`HF_HUB_OFFLINE=1`), where it must fail with one line and exit code 2."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from raykd import storage
from raykd.data import load_splits
from raykd.data.hub import local_copy, parse_hub_spec
from raykd.distributed.data_staging import stage_data
from raykd.errors import DataError

pytest.importorskip("datasets")


def _gsm8k_rows(n: int, offset: int = 0) -> list[dict[str, str]]:
    rows = []
    for i in range(offset, offset + n):
        a, b = 3 + i, 5 + 2 * i
        rows.append({"question": f"Ann has {a} pens and buys {b} more. How many pens does she have?",
                     "answer": f"She has {a}+{b} = <<{a}+{b}={a + b}>>{a + b} pens.\n#### {a + b}"})
    return rows


def _shard(root: Path, split: str) -> Path:
    """Where the hub keeps a split's rows (`data/<split>-00000-of-00001.parquet`)."""
    return root / "data" / f"{split}-00000-of-00001.parquet"


def _parquet_dataset(root: Path, sizes: dict[str, int]) -> Path:
    (root / "data").mkdir(parents=True)
    offset = 0
    for split, n in sizes.items():
        rows = _gsm8k_rows(n, offset)
        offset += n
        pq.write_table(pa.Table.from_pylist(rows), _shard(root, split))
    return root


def test_a_hub_dataset_reads_as_its_splits(tmp_path):
    data = _parquet_dataset(tmp_path / "gsm8k-like", {"train": 12, "validation": 4, "test": 5})
    splits = load_splits(f"hf:{data}")
    assert {k: len(v) for k, v in splits.items()} == {"train": 12, "valid": 4, "test": 5}
    assert splits["test"][0].answer == 19 + 37  # the 17th row of the whole set (3 + 16, 5 + 32)
    assert splits["train"][0].source.startswith("gsm8k")
    named = load_splits(f"gsm8k:hf:{data}")
    assert [p.id for p in named["valid"]] == [p.id for p in splits["valid"]]


def test_the_copy_is_keyed_by_the_rows(tmp_path):
    data = _parquet_dataset(tmp_path / "d", {"train": 6, "test": 3})
    first, again = local_copy(f"hf:{data}"), local_copy(f"hf:{data}")
    assert first == again and sorted(p.name for p in first.iterdir()) == ["test.jsonl", "train.jsonl"]
    pq.write_table(pa.Table.from_pylist(_gsm8k_rows(7)), _shard(data, "train"))
    changed = local_copy(f"hf:{data}")
    assert changed != first and first.is_dir()
    assert sum(1 for _ in (changed / "train.jsonl").open()) == 7


def test_splits_raykd_does_not_read_are_named(tmp_path):
    data = _parquet_dataset(tmp_path / "d", {"train": 3, "socratic": 3})
    said: list[str] = []
    local_copy(f"hf:{data}", log=said.append)
    assert said == ["hub dataset " + str(data) + ": splits ['socratic'] are not read (raykd reads train, validation, test)"]
    only_other = _parquet_dataset(tmp_path / "o", {"socratic": 2})
    with pytest.raises(DataError, match=r"has splits \['socratic'\], none of train/validation/test"):
        local_copy(f"hf:{only_other}")


@pytest.mark.parametrize(("spec", "message"), [
    ("hf:", "names no dataset"),
    ("hf:bad name!", "NAME must be a hub id"),
    ("hf:owner/name:bad config", "is not a dataset config name"),
])
def test_bad_hub_specs(spec, message):
    with pytest.raises(DataError, match=message):
        parse_hub_spec(spec)


def test_a_config_the_dataset_lacks_is_one_line(tmp_path):
    data = _parquet_dataset(tmp_path / "d", {"train": 3})
    with pytest.raises(DataError, match=r"cannot load hub dataset .*:nope: BuilderConfig 'nope' not found") as info:
        local_copy(f"hf:{data}:nope")
    assert "\n" not in str(info.value)


def test_an_unreachable_hub_dataset_exits_2_with_one_line(tmp_path):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_CACHE": str(tmp_path / "hf"), "RAYKD_CACHE": str(tmp_path / "c")}
    done = subprocess.run([sys.executable, "-m", "raykd", "data", "check", "hf:openai/gsm8k:main"],
                          capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "cannot load hub dataset openai/gsm8k:main" in lines[0], done.stderr
    assert not (tmp_path / "c" / "data" / "hf").exists() or not any((tmp_path / "c" / "data" / "hf").iterdir())


def test_a_remote_sweep_copies_a_hub_dataset_into_its_storage(s3_bucket, tmp_path):
    data = _parquet_dataset(tmp_path / "gsm8k-like", {"train": 8, "validation": 3, "test": 3})
    said: list[str] = []
    root = f"s3://{s3_bucket}/sweeps/hub"
    staged = stage_data(f"gsm8k:hf:{data}", root, reads_uris=True, log=said.append)
    assert staged == f"gsm8k:{root}/data/gsm8k-like" and "copied the data" in said[-1]
    assert storage.exists(f"{root}/data/gsm8k-like/valid.jsonl")
    assert {k: len(v) for k, v in load_splits(staged).items()} == {"train": 8, "valid": 3, "test": 3}
    # on local storage the spec is read as given (each trial loads it through datasets' cache)
    assert stage_data(f"hf:{data}", str(tmp_path / "sweeps"), reads_uris=True, log=said.append) == f"hf:{data}"

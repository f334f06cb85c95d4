"""Data specs that point at object storage (`s3://`, `gs://`, `file://`): a local copy to read.

The readers read local files; a URI is copied once into raykd's cache (`$RAYKD_CACHE/data`,
default `~/.cache/raykd/data`) under a key of the URI and the listing it had (every file's
relative path, size and modification time), so a changed object is fetched again and an
unchanged one is not. Credentials come from the environment only (`raykd.storage`); a non-AWS
endpoint from `AWS_ENDPOINT_URL`. Every failure is one `DataError` line naming the URI.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path

from raykd import storage
from raykd.errors import DataError, first_line
from raykd.paths import checked_path

URI_SCHEMES = ("s3://", "gs://", "gcs://", "file://")


def is_data_uri(text: str) -> bool:
    return text.startswith(URI_SCHEMES)


def cache_root() -> Path:
    return Path(os.environ.get("RAYKD_CACHE", "~/.cache/raykd")).expanduser() / "data"


def local_copy(uri: str) -> Path:
    """A local file or directory with the contents of `uri` (a `file://` URI: the path itself)."""
    if uri.startswith("file://"):
        return checked_path(uri[len("file://"):], "data", resolve=False)
    import pyarrow.fs as pafs  # deferred: pyarrow (~0.3 s); `raykd` start-up imports raykd.data

    try:
        fs, path = storage.filesystem(uri)
        info = fs.get_file_info(path)
        if info.type == pafs.FileType.NotFound:
            raise DataError(f"data {uri} does not exist")
        is_dir = info.type == pafs.FileType.Directory
        entries = fs.get_file_info(pafs.FileSelector(path, recursive=True)) if is_dir else [info]
        files = sorted((e.path[len(path):].lstrip("/") if is_dir else e.base_name, e.size, e.mtime_ns)
                       for e in entries if e.type == pafs.FileType.File)
        key = hashlib.sha256(json.dumps([uri, files]).encode()).hexdigest()[:20]
        name = path.rstrip("/").rsplit("/", 1)[-1] or "data"
        target = cache_root() / key / name
        if target.exists():
            return target
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=".fetch-", dir=target.parent))
        try:
            if is_dir:
                storage.download_dir(uri, tmp / name)
            else:
                (tmp / name).write_bytes(storage.read_bytes(uri))
            os.replace(tmp / name, target)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        return target
    except DataError:
        raise
    except (OSError, ValueError) as exc:  # no such bucket, no credentials, endpoint down, bad URI
        raise DataError(f"cannot read data {uri}: {first_line(exc)}") from None

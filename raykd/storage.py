"""Local paths and cloud URIs (s3://, gs://) behind one small API, via pyarrow filesystems.

Credentials come from the environment (AWS_* variables, GOOGLE_APPLICATION_CREDENTIALS, instance
roles): raykd never passes keys to a filesystem object, so none can end up pickled into Ray's or
raykd's files (see shared ray-notes §4).
"""

from __future__ import annotations

import os
import re
import uuid
from pathlib import Path
from typing import Any

REMOTE_SCHEMES = ("s3://", "gs://", "gcs://")
_RUN_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")


def is_run_name(name: str) -> bool:
    """A name that is exactly one directory level everywhere (never '.', '..' or a path):
    ASCII letters, digits, '-', '_', '.', starting with a letter or digit, at most 128 characters."""
    return isinstance(name, str) and bool(_RUN_NAME.fullmatch(name))


def is_remote(uri: str | os.PathLike) -> bool:
    return str(uri).startswith(REMOTE_SCHEMES)


def resolve(uri: str | os.PathLike) -> str:
    """Absolute local path (with ~ expanded) or the URI unchanged."""
    text = str(uri)
    return text if is_remote(text) else str(Path(text).expanduser().resolve())


def join(base: str | os.PathLike, *parts: str) -> str:
    text = str(base).rstrip("/")
    return "/".join([text, *parts]) if is_remote(text) else str(Path(text, *parts))


def filesystem(uri: str | os.PathLike) -> tuple[Any, str]:
    """(pyarrow filesystem, path within it) for a local path or URI."""
    import pyarrow.fs as pafs

    text = resolve(uri)
    if is_remote(text):
        return pafs.FileSystem.from_uri(text)
    return pafs.LocalFileSystem(), text


def exists(uri: str | os.PathLike) -> bool:
    import pyarrow.fs as pafs

    fs, path = filesystem(uri)
    return fs.get_file_info(path).type != pafs.FileType.NotFound


def write_bytes_atomic(uri: str | os.PathLike, data: bytes) -> None:
    """Write a whole file so readers see the old version or the new one, never a torn one.

    Local: a hidden temporary sibling, fsynced, then `os.replace`d over the target (and removed
    if anything fails). Object stores: one upload, visible only once complete."""
    fs, path = filesystem(uri)
    parent, name = path.rsplit("/", 1)
    fs.create_dir(parent, recursive=True)
    if is_remote(str(uri)):
        with fs.open_output_stream(path) as f:
            f.write(data)
        return
    tmp = os.path.join(parent, f".{name}.{uuid.uuid4().hex}.tmp")
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def read_bytes(uri: str | os.PathLike) -> bytes:
    fs, path = filesystem(uri)
    with fs.open_input_stream(path) as f:
        return f.read()


def download_dir(uri: str | os.PathLike, local: Path) -> Path:
    """A local directory with the contents of `uri`: the path itself when it is local."""
    if not is_remote(str(uri)):
        return Path(resolve(uri))
    import pyarrow.fs as pafs

    fs, path = filesystem(uri)
    local.mkdir(parents=True, exist_ok=True)
    pafs.copy_files(path, str(local), source_filesystem=fs, destination_filesystem=pafs.LocalFileSystem())
    return local


def upload_dir(local: Path, uri: str | os.PathLike) -> str:
    """Copy a local directory to `uri` (no-op when they are the same local place)."""
    target = resolve(uri)
    if not is_remote(target) and Path(target) == Path(local).resolve():
        return target
    import pyarrow.fs as pafs

    fs, path = filesystem(target)
    fs.create_dir(path, recursive=True)
    pafs.copy_files(str(local), path, source_filesystem=pafs.LocalFileSystem(), destination_filesystem=fs)
    return target

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

from raykd.errors import RaykdInputError, first_line

REMOTE_SCHEMES = ("s3://", "gs://", "gcs://")
_RUN_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")
GCS_RETRY_S = 10  # how long pyarrow's GCS client retries a failing request (its default is minutes)
_REACHED: set[tuple[str, int]] = set()  # object-store servers that answered in this process


class StorageError(RaykdInputError):
    """A storage URI that cannot be used here: its server does not answer, its bucket's region cannot
    be resolved, or pyarrow cannot parse it."""


def is_run_name(name: str) -> bool:
    """A name that is exactly one directory level everywhere (never '.', '..' or a path):
    ASCII letters, digits, '-', '_', '.', starting with a letter or digit, at most 128 characters."""
    return isinstance(name, str) and bool(_RUN_NAME.fullmatch(name))


def is_remote(uri: str | os.PathLike) -> bool:
    return str(uri).startswith(REMOTE_SCHEMES)


def resolve(uri: str | os.PathLike, flag: str = "") -> str:
    """Absolute local path (with ~ expanded; a `file://` URI is its path) or the URI unchanged.
    A local path no filesystem call could use (a symlink loop, a name over the filesystem's
    limit) is one `PathError` line naming `flag`."""
    from raykd.paths import checked_path

    text = str(uri)
    if text.startswith("file://"):
        text = text[len("file://"):]
    return text if is_remote(text) else str(checked_path(text, flag))


def join(base: str | os.PathLike, *parts: str) -> str:
    text = str(base).rstrip("/")
    return "/".join([text, *parts]) if is_remote(text) else str(Path(text, *parts))


def filesystem(uri: str | os.PathLike) -> tuple[Any, str]:
    """(pyarrow filesystem, path within it) for a local path or URI.

    A remote URI's server must answer a TCP connection within `raykd.network.CONNECT_TIMEOUT_S`
    first (pyarrow's clients otherwise retry an unreachable one for minutes: every `gs://` URI hung
    offline), and GCS requests retry for at most `GCS_RETRY_S`. A URI pyarrow cannot open (an S3
    bucket whose region cannot be resolved, a malformed URI) is one `StorageError` line."""
    import pyarrow.fs as pafs

    text = resolve(uri)
    if not is_remote(text):
        return pafs.LocalFileSystem(), text
    require_reachable(text)
    try:
        if text.startswith(("gs://", "gcs://")):
            from datetime import timedelta

            return pafs.GcsFileSystem(retry_time_limit=timedelta(seconds=GCS_RETRY_S)), text.split("://", 1)[1]
        return pafs.FileSystem.from_uri(text)
    except (OSError, ValueError) as exc:
        raise StorageError(f"cannot open {text}: {first_line(exc)}") from None


def require_reachable(uri: str) -> None:
    """StorageError (one line, within a few seconds) when the server of an s3:// or gs:// URI does
    not answer; a server that answered once in this process is not asked again."""
    from raykd.network import object_store_endpoint, unreachable

    endpoint = object_store_endpoint(uri)
    if endpoint is None or endpoint in _REACHED:
        return
    why = unreachable(*endpoint)
    if why:
        host, port = endpoint
        raise StorageError(f"cannot reach {host}:{port} for {uri}: {why} (offline? a non-AWS S3 endpoint is read "
                           "from AWS_ENDPOINT_URL, a GCS emulator from STORAGE_EMULATOR_HOST)")
    _REACHED.add(endpoint)


def check_storage_uri(uri: str | os.PathLike, flag: str) -> str:
    """Check a storage location a command will write to, before any work starts (`sweep --storage`,
    `sweep --resume`): a local path must be usable (no loop, names within the limits, under a
    directory this process can write in); a URI's server must answer and the bucket be reachable
    (its region resolvable). Returns the resolved path or URI; StorageError/PathError otherwise."""
    text = resolve(uri, flag)
    if not is_remote(text):
        from raykd.outputs import check_writable

        check_writable(Path(text), flag)
        return text
    try:
        fs, path = filesystem(text)
        fs.get_file_info(path)
    except StorageError as exc:
        raise StorageError(f"{flag} {exc}") from None
    except (OSError, ValueError) as exc:
        raise StorageError(f"{flag} {text}: {first_line(exc)}") from None
    return text


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

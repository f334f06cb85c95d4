"""The one check every local path the user names goes through before any work starts.

`Path.resolve()` raises RuntimeError on a symlink loop and the first `stat` of a name over the
filesystem's limit raises OSError (ENAMETOOLONG) — as a traceback, and sometimes only after
minutes of training. `checked_path` turns each into one `PathError` line naming the flag, up
front: a symlink loop, a name over NAME_MAX bytes (255 on every common filesystem), a path over
PATH_MAX, a NUL byte, a permission error on the way. Writability of an output's directory is
checked by `raykd.outputs.check_writable`.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path

from raykd.errors import RaykdInputError

NAME_MAX = 255  # bytes of one path component (ext4, xfs, btrfs, apfs, ntfs); pathconf's answer when it has one
PATH_MAX = 4096  # bytes of a whole path (Linux)


class PathError(RaykdInputError):
    """A path that cannot name anything here (loop, too long) or cannot be read or written."""


def _limit(path: Path, name: str, default: int) -> int:
    for parent in (path, *path.parents):
        try:
            if parent.is_dir():
                return min(default, os.pathconf(parent, name))
        except (OSError, ValueError):
            continue
    return default


def checked_path(value: str | os.PathLike, flag: str, *, resolve: bool = True) -> Path:
    """`value` with ~ expanded (and made absolute, symlinks followed, when `resolve`), or PathError
    naming `flag` when no filesystem call could use it."""
    text = os.fspath(value)
    where = f"{flag} {text}" if flag else text
    if "\x00" in text:
        raise PathError(f"{where!r}: a path cannot contain a NUL byte")
    path = Path(text).expanduser()
    absolute = Path(os.path.abspath(path))
    name_max = _limit(absolute, "PC_NAME_MAX", NAME_MAX)
    for part in path.parts:
        size = len(os.fsencode(part))
        if size > name_max:
            raise PathError(f"{where}: the name {part[:40]}... is {size} bytes, over the filesystem's limit "
                            f"of {name_max} bytes per name")
    size = len(os.fsencode(str(absolute)))
    if size >= PATH_MAX:
        raise PathError(f"{where}: the path is {size} bytes, over the limit of {PATH_MAX - 1}")
    if not resolve:
        _stat(path, where)
        return path
    try:
        return path.resolve()
    except RuntimeError:  # Python < 3.13: "Symlink loop from ..."
        raise PathError(f"{where}: a symlink loop (a link that leads back to itself)") from None
    except OSError as exc:
        raise _os_error(exc, where) from None


def _stat(path: Path, where: str) -> None:
    """Raise PathError for a loop or a too-long name on the way to `path` (a missing one is fine)."""
    try:
        path.stat()
    except FileNotFoundError:
        pass
    except NotADirectoryError:
        pass
    except OSError as exc:
        raise _os_error(exc, where) from None


def _os_error(exc: OSError, where: str) -> PathError:
    if exc.errno == errno.ELOOP:
        return PathError(f"{where}: a symlink loop (a link that leads back to itself)")
    if exc.errno == errno.ENAMETOOLONG:
        return PathError(f"{where}: the name is too long for the filesystem")
    if exc.errno in (errno.EACCES, errno.EPERM):
        return PathError(f"{where}: permission denied")
    return PathError(f"{where}: {exc.strerror or exc}")


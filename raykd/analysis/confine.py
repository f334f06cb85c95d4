"""A stored sweep is data: every path it names is read only inside the sweep (docs/security.md).

A sweep directory can come from anyone (a colleague's bucket, a downloaded results folder), and
its results/sweep.json and trial rows name paths: each trial's `checkpoint_path`, the teacher's
`dir`, the data spec. Before anything is read or copied from such a path, it is resolved here:

- a relative path is taken under the sweep; an absolute one (or a URI) must lie under the sweep
  as it is now, or under the sweep as it was made (its teacher's parent, where raykd wrote it),
  and is then read at the same place under the sweep as it is now: a moved, copied or downloaded
  sweep reads its own files, never the original's;
- the resolved path, with every symbolic link followed, must lie inside the sweep's directory
  (for a URI: under the sweep's URI, with no `.` or `..` segment), and so must every symbolic
  link below it (a checkpoint directory whose file links to /etc/passwd is refused, not copied);
- a data spec that names a place (a path or URI, after an optional `PREFIX:`) must lie inside the
  sweep, unless the user says the sweep is theirs (`--trust-sweep`): a local sweep reads its data
  where the space said. A hub dataset (`hf:`) is refused the same way (it is not in the sweep).

Every refusal is one `SweepPathError` line (exit code 2) naming the sweep, the field and the value.
"""

from __future__ import annotations

import os
from pathlib import Path, PurePosixPath
from typing import Any, Mapping

from raykd import storage
from raykd.errors import RaykdInputError, shown

SHOWN = 160  # at most this many characters of a stored value in a message


class SweepPathError(RaykdInputError):
    """A stored sweep names a path outside itself (or one that cannot be resolved)."""


def _shown(value: Any) -> str:
    return shown(value, SHOWN)


def recorded_root(meta: Mapping[str, Any]) -> str | None:
    """Where the sweep was made: the parent of its teacher's directory (raykd writes the teacher to
    `<sweep>/teacher`), as stored; None when sweep.json does not say."""
    teacher = meta.get("teacher")
    d = teacher.get("dir") if isinstance(teacher, Mapping) else None
    if not isinstance(d, str) or not d:
        return None
    if storage.is_remote(d):
        parent, _, last = d.rstrip("/").rpartition("/")
        return parent if last == "teacher" and "://" in parent else None
    p = Path(os.path.normpath(d))
    return str(p.parent) if p.name == "teacher" and p.is_absolute() else None


def inside(sweep_uri: str, value: Any, *, what: str, recorded: str | None = None) -> str:
    """`value` (a path or URI stored in the sweep `sweep_uri` under the field `what`) as the local
    path or URI to read, inside the sweep; SweepPathError otherwise. Nothing is read but
    directory entries (to follow symbolic links)."""
    where = f"sweep {sweep_uri}"
    if not isinstance(value, str) or not value or "\x00" in value:
        raise SweepPathError(f"{where}: {what} {_shown(value)} is not a path")
    if storage.is_remote(sweep_uri):
        return _inside_uri(sweep_uri, value, what=what, recorded=recorded)
    if storage.is_remote(value) or "://" in value:
        raise SweepPathError(f"{where}: {what} {_shown(value)} lies outside the sweep directory: a stored sweep is read "
                             "only inside itself (docs/security.md)")
    root = _resolved(Path(sweep_uri), where, "the sweep directory")
    given = Path(value).expanduser()
    path = Path(os.path.normpath(given if given.is_absolute() else root / given))
    if not _under(path, Path(os.path.normpath(sweep_uri))) and not _under(path, root) and recorded and not storage.is_remote(recorded):
        old = Path(os.path.normpath(recorded))
        if _under(path, old):
            path = root / path.relative_to(old)
    real = _resolved(path, where, f"{what} {_shown(value)}")
    if not _under(real, root):
        raise SweepPathError(f"{where}: {what} {_shown(value)} lies outside the sweep directory (it resolves to "
                             f"{_shown(str(real))}): a stored sweep is read only inside itself (docs/security.md)")
    if real == root:
        raise SweepPathError(f"{where}: {what} {_shown(value)} names the sweep directory itself, not a directory in it")
    if real.is_dir():
        check_tree(real, root, where=where, what=f"{what} {_shown(value)}")
    return str(real)


def check_tree(top: Path, root: Path, *, where: str, what: str) -> None:
    """No symbolic link below `top` may lead out of `root` (nor loop)."""
    for dirpath, dirnames, filenames in os.walk(top, followlinks=False):
        for name in dirnames + filenames:
            p = Path(dirpath, name)
            if p.is_symlink():
                real = _resolved(p, where, f"{what}: the link {_shown(str(p))}")
                if not _under(real, root):
                    raise SweepPathError(f"{where}: {what} holds a symbolic link {_shown(str(p.relative_to(top)))} that "
                                         "leads out of the sweep directory: a stored sweep is read only inside itself "
                                         "(docs/security.md)")


def check_sweep_files(sweep_uri: str) -> None:
    """The files raykd reads to open a sweep (results/, optuna/) hold no symbolic link leading
    out of the sweep directory (local sweeps; a bucket has no links)."""
    if storage.is_remote(sweep_uri):
        return
    where = f"sweep {sweep_uri}"
    root = _resolved(Path(sweep_uri), where, "the sweep directory")
    for part in ("results", "optuna"):
        p = root / part
        if p.is_symlink() or p.exists():
            real = _resolved(p, where, part)
            if not _under(real, root):
                raise SweepPathError(f"{where}: {part}/ is a symbolic link that leads out of the sweep directory: a "
                                     "stored sweep is read only inside itself (docs/security.md)")
            if real.is_dir():
                check_tree(real, root, where=where, what=f"{part}/")


def check_data(sweep_uri: str, spec: Any, *, trusted: bool = False) -> None:
    """A stored data spec that names a place (path, URI, hub dataset) must name one inside the
    sweep, unless `trusted` (the user made the sweep: its data is read where the space said)."""
    if trusted or not isinstance(spec, str):
        return  # not a string: parse_space says what is wrong with it
    place = data_place(spec)
    if place is None:
        return
    if place.startswith("hf:"):
        raise SweepPathError(f"sweep {sweep_uri}: data {_shown(spec)} is a hub dataset, not data inside the sweep: a "
                             "stored sweep is read only inside itself; if you made this sweep, pass --trust-sweep")
    if not storage.is_remote(place) and "://" not in place:
        place = os.path.abspath(os.path.expanduser(place))  # as the reader opens it: from the working directory
    try:
        inside(sweep_uri, place, what="data")
    except SweepPathError as exc:
        raise SweepPathError(f"{exc}; if you made this sweep, pass --trust-sweep") from None


def data_place(spec: str) -> str | None:
    """The path, URI or `hf:` name a data spec `[PREFIX:]PLACE` reads; None for specs that name
    no place (`synthetic:400:7`, a plug-in's `majority:300`)."""
    if spec.startswith("hf:"):
        return spec
    if spec.startswith("file://"):
        return spec[len("file://"):]
    scheme, uri, _ = spec.partition("://")
    if uri and scheme and ":" not in scheme and "/" not in scheme:
        return spec  # a URI
    prefix, sep, rest = spec.partition(":")
    if sep and rest and "/" not in prefix and os.sep not in prefix:
        return data_place(rest) if rest.startswith(("hf:", "file://")) or "://" in rest else (rest if _is_place(rest) else None)
    return spec if _is_place(spec) else None


def _is_place(text: str) -> bool:
    return (storage.is_remote(text) or "://" in text or "/" in text or os.sep in text or text.startswith(("~", "."))
            or os.path.lexists(text))


def _inside_uri(sweep_uri: str, value: str, *, what: str, recorded: str | None) -> str:
    where = f"sweep {sweep_uri}"
    root = sweep_uri.rstrip("/")
    if not storage.is_remote(value) or value.split("://", 1)[0] != root.split("://", 1)[0]:
        if storage.is_remote(value) or "://" in value:
            raise SweepPathError(f"{where}: {what} {_shown(value)} lies outside the sweep's storage: a stored sweep is "
                                 "read only inside itself (docs/security.md)")
        if Path(value).is_absolute() or value.startswith("~"):
            raise SweepPathError(f"{where}: {what} {_shown(value)} is a local path, outside the sweep's storage: a "
                                 "stored sweep is read only inside itself (docs/security.md)")
        value = f"{root}/{value}"  # relative: under the sweep
    scheme, _, rest = value.partition("://")
    parts = PurePosixPath(rest).parts
    if any(p in (".", "..") for p in rest.split("/")):
        raise SweepPathError(f"{where}: {what} {_shown(value)} has a '.' or '..' segment: a stored sweep is read only "
                             "inside itself (docs/security.md)")
    value = f"{scheme}://{'/'.join(parts)}"
    if value != root and not value.startswith(root + "/") and recorded and storage.is_remote(recorded):
        old = recorded.rstrip("/")
        if value.startswith(old + "/"):
            value = root + value[len(old):]
    if not value.startswith(root + "/"):
        raise SweepPathError(f"{where}: {what} {_shown(value)} lies outside the sweep's storage: a stored sweep is read "
                             "only inside itself (docs/security.md)")
    return value


def _resolved(p: Path, where: str, what: str) -> Path:
    try:
        return p.resolve()
    except (OSError, RuntimeError) as exc:  # a symbolic link loop, a name too long
        raise SweepPathError(f"{where}: {what} cannot be resolved ({type(exc).__name__}: {str(exc)[:120]})") from None


def _under(p: Path, root: Path) -> bool:
    return p == root or root in p.parents


def check_stored_inputs(meta: Mapping[str, Any], sweep_uri: str, *, where: str, trusted: bool = False) -> dict[str, Any]:
    """What reading or resuming a stored sweep checks before anything runs: its task is raykd's
    or an installed entry point (`raykd.task.registry.check_stored_task`), its data lies inside it,
    and no symbolic link in it leads out. Returns the sweep's `teacher` mapping with its `dir`
    resolved inside the sweep (a moved or downloaded sweep reads its own teacher)."""
    # deferred: task.registry imports torch; raykd.analysis reads sweeps without it
    from raykd.task.registry import check_stored_task

    raw = meta.get("space_raw")
    if isinstance(raw, Mapping):  # otherwise parse_space says what is wrong with it
        check_stored_task(raw.get("task"), where, trusted=trusted)
        check_data(sweep_uri, raw.get("data"), trusted=trusted)
    if not storage.is_remote(sweep_uri):
        root = _resolved(Path(sweep_uri), f"sweep {sweep_uri}", "the sweep directory")
        check_tree(root, root, where=f"sweep {sweep_uri}", what="the sweep directory")
    teacher = meta.get("teacher")
    teacher = dict(teacher) if isinstance(teacher, Mapping) else {}
    teacher["dir"] = inside(sweep_uri, teacher.get("dir"), what="the teacher's dir", recorded=recorded_root(meta))
    return teacher

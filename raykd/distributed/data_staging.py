"""Data that reaches every node: local data files copied once into a remote sweep's storage.

A space names its data as the submitting machine sees it (`asdiv-a:../shared/data/asdiv-a`).
Where the sweep's storage is a bucket, nodes without that disk could not read it, so the sweep
copies the file or directory to `<sweep>/data/<name>` before anything trains and every trial,
the teacher, a resume and a re-timing read that copy: the sweep is then self-contained, and the
same space file works from a laptop and through `ray job submit`. A hub dataset (`hf:NAME`) is fetched
once by the driver and copied the same way. Specs that are neither (`synthetic:N`, a URI) and
sweeps on local storage (one machine or a shared disk) are read as given.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from raykd import storage
from raykd.data import hub
from raykd.data.remote import is_data_uri

DATA_DIR = "data"


def local_data_path(spec: str) -> tuple[str, Path] | None:
    """(prefix, path) of a spec `[PREFIX:]PATH` whose PATH exists on this machine; else None."""
    if is_data_uri(spec):
        return None
    if Path(spec).exists():
        return "", Path(spec)
    prefix, sep, rest = spec.partition(":")
    if sep and rest and not is_data_uri(rest) and Path(rest).exists():
        return prefix, Path(rest)
    return None


def hub_data_path(spec: str, log: Callable[[str], Any]) -> tuple[str, Path] | None:
    """(prefix, local copy) of a spec `[PREFIX:]hf:NAME...`: a hub dataset is copied into the
    sweep too, so every trial reads the same rows (a hub dataset can change under a running sweep)
    and workers need no hub access."""
    prefix, sep, rest = spec.partition(":")
    if hub.is_hub_spec(spec):
        return "", hub.local_copy(spec, log)
    if sep and hub.is_hub_spec(rest):
        return prefix, hub.local_copy(rest, log)
    return None


def stage_data(spec: str, sweep_root: str, *, reads_uris: bool, log: Callable[[str], Any] = print) -> str:
    """The data spec the sweep's trials read (see the module doc); copies the data when needed.

    `reads_uris`: whether the task reads data specs that are storage URIs (raykd's tasks do; a
    plug-in says so with `reads_data_uris = True`). One that does not keeps its local path, and
    the user is told that every node must see it."""
    if not storage.is_remote(sweep_root):
        return spec
    found = local_data_path(spec)
    if found is not None and not reads_uris:
        log(f"note: the task reads {spec!r} from a local path and does not declare reads_data_uris, so it is "
            "not copied to the sweep's storage: every node that runs a trial must see that path")
        return spec
    if found is None and reads_uris:
        found = hub_data_path(spec, log)
    if found is None:
        return spec
    prefix, path = found
    target = storage.join(sweep_root, DATA_DIR, path.resolve().name)
    if path.is_dir():
        storage.upload_dir(path, target)
    else:
        storage.write_bytes_atomic(target, path.read_bytes())
    staged = f"{prefix}:{target}" if prefix else target
    log(f"copied the data {spec!r} to {target}: every trial reads it from there")
    return staged

"""What a new sweep is refused for before any work starts: checked before `ray.init`, without Ray.

A space that parses (`raykd.search.space`) can still name data, a teacher or storage that
cannot be read or reached, or constraints no configuration can meet. Unchecked, the first came
back from the teacher's Ray task after a cluster had started (11-20 s, after Ray's banner), and
the last ran a whole sweep to say there was no front. `check_new_sweep` refuses each with one
line, in seconds, cheapest check first:

1. constraints the configuration alone shows can never hold (`constraints.check_feasible`);
2. text that is not what it shows: a data spec or teacher path holding an invisible or
   bidirectional control character (U+202E turns `synthetic:800` around on screen);
3. the teacher: `teacher.path` must be a saved model (a directory with config.json); a built-in
   task's model to fine-tune (`encoder`, `model`) a local directory, the packaged `smollm2`, or a
   hub id that is cached or whose hub answers (`raykd.task.encoders.check_encoder_source`);
4. storage: the sweep's `--storage` or `storage:` as `raykd.storage.check_storage_uri` checks it
   (a usable local path; an object store that answers, a bucket whose region resolves), and the
   server of an `s3://`/`gs://` data spec or teacher path accepts a connection within seconds;
5. the data: the task reads every split (`TaskPlugin.data_fingerprint`, what a resumed sweep
   compares), so a missing, malformed, empty or unreachable spec (`hf:` included) fails here.

`check_ray_address` does the same for `--address`/`RAY_ADDRESS`: Ray's client retries a GCS that
is not there for minutes.
"""

from __future__ import annotations

import math
import unicodedata
from pathlib import Path
from typing import Any

from raykd import storage
from raykd.errors import ConfigError
from raykd.method.config import ChainConfig, schedule_pairs
from raykd.network import host_port, object_store_endpoint, unreachable
from raykd.search.constraints import check_feasible
from raykd.storage import StorageError, check_storage_uri, require_reachable
from raykd.structures.registry import structure_kinds

CONTROL_CATEGORIES = ("Cc", "Cf")
"""Unicode control and format characters (bidi overrides, zero-width joiners, NUL): never part of a path or spec."""
RAY_CLIENT_PORT = 10001  # `ray://HOST` without a port: Ray Client's default


def check_new_sweep(space: Any, *, storage_root: str | None = None, source: str = "space") -> None:
    """Refuse a new sweep of `space` (a `raykd.search.space.SweepSpace`) whose inputs cannot
    work (see the module doc); `storage_root` is `--storage` when given. Raises RaykdInputError."""
    check_constraints(space, source)
    check_visible(space.data, "data")
    check_teacher(space)
    check_storage_uri(storage_root or space.storage, "--storage" if storage_root else "storage")
    check_data(space)


def largest_ratios(space: Any) -> dict[str, float]:
    """The largest final ratio (p_max, ffn_p_max, layer_p_max, a plug-in kind's) any trial of
    `space` can run with (all 0 when the space never prunes)."""
    by = {p.name: p for p in space.search}
    prune = by["prune"].choices if "prune" in by else (space.fixed.get("prune", ChainConfig.prune),)
    out = {}
    default = ChainConfig()
    for _, _, high in schedule_pairs():
        value = by[high].bounds[1] if high in by else space.fixed.get(high, default.setting(high))
        out[high] = float(value) if any(prune) else 0.0
    return out


def check_constraints(space: Any, source: str = "space") -> None:
    if not space.constraints:
        return
    r = largest_ratios(space)
    kinds = structure_kinds()  # whole layers multiply what the widest cut within the layers keeps
    depth = math.prod(1.0 - r[k.p_max] for k in kinds if k.depth)
    kept = depth * (1.0 - max((r[k.p_max] for k in kinds if not k.depth), default=0.0))
    check_feasible(space.constraints, kept=kept, unit_accuracy=space.task_spec.is_builtin, source=source)


def check_visible(text: str, what: str) -> None:
    """ConfigError when `text` holds a control or format character (shown by its code point)."""
    for i, ch in enumerate(text):
        if unicodedata.category(ch) in CONTROL_CATEGORIES:
            name = unicodedata.name(ch, "a control character")
            raise ConfigError(f"{what} holds an invisible character U+{ord(ch):04X} ({name}) at position {i}: "
                              "type it again as plain text")


def check_teacher(space: Any) -> None:
    t = space.teacher
    if "path" in t:
        path = str(t["path"])
        check_visible(path, "teacher.path")
        if storage.is_remote(path):
            check_object_store(path, "teacher.path")
            found = storage.exists(storage.join(path, "config.json"))
        else:
            local = Path(path).expanduser()
            if not local.exists():
                raise ConfigError(f"teacher.path {path} does not exist")
            if not local.is_dir():
                raise ConfigError(f"teacher.path {path} is a file, not a saved model directory")
            found = (local / "config.json").is_file()
        if not found:
            raise ConfigError(f"teacher.path {path} has no config.json: not a saved teacher (train one with raykd teacher)")
        return
    if not space.task_spec.is_builtin:
        return  # a plug-in's own settings: its train_teacher reads them
    name = t.get("encoder") or t.get("model")
    if not isinstance(name, str) or name == "tiny":
        return
    check_visible(name, "teacher." + ("encoder" if "encoder" in t else "model"))
    if name == "smollm2" and "model" in t:
        from raykd.task.causal_lm_models import smollm2_dir  # deferred: torch and transformers (seconds)

        smollm2_dir()  # installed, or the line saying how to install it
        return
    from raykd.task.encoders import check_encoder_source  # deferred: torch and transformers (seconds)

    check_encoder_source(name, what="teacher.encoder" if "encoder" in t else "teacher.model")


def check_object_store(uri: str, what: str) -> None:
    """StorageError naming `what` when `uri` is an object-store URI whose server does not answer
    within a few seconds (`raykd.storage.require_reachable`)."""
    try:
        require_reachable(str(uri))
    except ValueError as exc:  # (an endpoint variable that is not a URL)
        raise StorageError(f"{what}: the object store's endpoint for {uri} is not HOST:PORT ({exc})") from None
    except StorageError as exc:
        raise StorageError(f"{what}: {exc}") from None


def data_uri(spec: str) -> str | None:
    """The object-store URI a data spec reads (`s3://...` or `FORMAT:s3://...`), else None."""
    for candidate in (spec, spec.partition(":")[2]):
        if object_store_endpoint(candidate) is not None:
            return candidate
    return None


def check_data(space: Any) -> None:
    uri = data_uri(space.data)
    if uri is not None:
        check_object_store(uri, "data")
    space.task_plugin().data_fingerprint(space.data, seed=space.seed)


def check_ray_address(address: str | None) -> None:
    """ConfigError when nothing accepts a connection at a Ray cluster address (`HOST:PORT`,
    `ray://HOST[:PORT]`) within a few seconds; `auto`, `local` and addresses without a port are
    left to Ray."""
    if not address or address.strip() in ("auto", "local"):
        return
    check_visible(address, "--address")
    try:
        where = host_port(address.strip(), RAY_CLIENT_PORT if address.startswith("ray://") else None)
    except ValueError:
        raise ConfigError(f"Ray address {address[:200]!r} is not HOST:PORT (a port in 1..65535)") from None
    if where is None:
        return
    reason = unreachable(*where)
    if reason is not None and where[0] in ("localhost", "127.0.0.1", "::1"):
        import socket

        try:  # Ray itself connects to this machine's address for a loopback one
            reason = reason if unreachable(socket.gethostbyname(socket.gethostname()), where[1]) else None
        except OSError:
            pass
    if reason is not None:
        raise ConfigError(f"no Ray cluster answers at {address[:200]} ({reason}): start one there with "
                          "`ray start --head`, or fix --address / RAY_ADDRESS")

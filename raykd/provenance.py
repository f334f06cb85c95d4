"""Which sweeps this user made: a keyed digest (HMAC-SHA256) in a sweep's metadata.

Resuming a sweep hands its `tune/` directory to Ray Tune's `Tuner.restore`, which unpickles the
experiment state, and a crafted pickle runs code. Everything else raykd reads from a sweep is
data (docs/security.md); this is the one step that is not. So a new sweep is signed with a key
only its maker holds, and `--resume` goes ahead only for a sweep signed with this user's key, or
one the user vouches for with `--trust-sweep`.

The key: `RAYKD_SWEEP_KEY` (any text; set the same value on a cluster's head and laptop to resume
there), else `~/.config/raykd/sweep.key`, made with 32 random bytes and mode 0600 on first use.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
from pathlib import Path
from typing import Any, Mapping

KEY_ENV = "RAYKD_SWEEP_KEY"
SIGNED_FIELDS = ("name", "created", "data", "seed")


def key_path() -> Path:
    return Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config") / "raykd" / "sweep.key"


def _key() -> bytes:
    if os.environ.get(KEY_ENV):
        return os.environ[KEY_ENV].encode()
    path = key_path()
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(secrets.token_bytes(32))
        try:
            os.link(tmp, path)  # first writer wins; a racing process reads the winner's key
        except FileExistsError:
            pass
        finally:
            tmp.unlink()
    return path.read_bytes()


def sign(meta: Mapping[str, Any]) -> str:
    """The signature of a new sweep's metadata (over `SIGNED_FIELDS`)."""
    body = json.dumps({k: meta.get(k) for k in SIGNED_FIELDS}, sort_keys=True, default=str).encode()
    return hmac.new(_key(), body, hashlib.sha256).hexdigest()


def signed_here(meta: Mapping[str, Any]) -> bool:
    """True when `meta` carries this user's signature (False for unsigned or foreign sweeps)."""
    stored = meta.get("signature")
    return isinstance(stored, str) and hmac.compare_digest(stored, sign(meta))

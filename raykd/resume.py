"""The resume guard shared by chain, reproduce and sweep.

A resumable run stores a fingerprint of what its results depend on (its settings, the teacher's
weights, the problems of every split) and compares it with the current one before it resumes. A
mismatch is one line naming every differing key, exit code 2: a run never returns results computed
under other settings as if they were new.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any, Mapping, Sequence

from raykd.errors import ConfigError


class ResumeMismatch(ConfigError):
    """A stored run whose fingerprint differs from the current one."""


def model_digest(model: Any) -> str:
    """SHA-256 of a torch module's state: every tensor's name, dtype, shape and bytes."""
    import torch

    digest = hashlib.sha256()
    for name, tensor in model.state_dict().items():
        t = tensor.detach().to("cpu").contiguous().reshape(-1)
        digest.update(f"{name}|{t.dtype}|{tuple(tensor.shape)}|".encode())
        digest.update(t.view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def problems_digest(splits: Mapping[str, Sequence[Any]]) -> str:
    """SHA-256 of every split's problems in order (id, text, numbers, equation, answer)."""
    digest = hashlib.sha256()
    for split in sorted(splits):
        digest.update(f"split {split}\n".encode())
        for p in splits[split]:
            row = [p.id, p.text, [repr(float(v)) for v in p.numbers], list(p.equation), repr(float(p.answer))]
            digest.update(json.dumps(row, ensure_ascii=False).encode())
            digest.update(b"\n")
    return digest.hexdigest()


def differences(stored: Mapping[str, Any], current: Mapping[str, Any], prefix: str = "") -> list[str]:
    """'key: stored -> current' for every key present on both sides whose value differs.

    Keys only one side has are not compared: a field added to a config after a run was stored
    must not make that run unresumable."""
    out: list[str] = []
    for key in sorted(set(stored) & set(current)):
        a, b = stored[key], current[key]
        if isinstance(a, Mapping) and isinstance(b, Mapping):
            out += differences(a, b, f"{prefix}{key}.")
        elif _normal(a) != _normal(b):
            out.append(f"{prefix}{key}: {_show(a)} -> {_show(b)}")
    return out


def _normal(v: Any) -> Any:
    return list(v) if isinstance(v, tuple) else v


def _show(v: Any) -> str:
    if isinstance(v, str) and len(v) == 64 and all(c in "0123456789abcdef" for c in v):
        return v[:10]  # a digest: enough to tell two apart
    text = json.dumps(v, default=str)
    return text if len(text) <= 40 else text[:37] + "..."


def check_resume(stored: Mapping[str, Any] | None, current: Mapping[str, Any], *, what: str, where: Any,
                 hint: str = "use a new output directory, or the settings it was made with") -> None:
    """Raise `ResumeMismatch` naming the differing keys if `stored` disagrees with `current`."""
    if not stored:
        return
    diff = differences(stored, current)
    if diff:
        raise ResumeMismatch(f"{where} holds a {what} made with other inputs, so it cannot be resumed "
                             f"({'; '.join(diff)}): {hint}")

"""Print the pins for constraints.txt: every distribution raykd[test,minilm] needs, at the version
installed here (run after the test suite passed in this environment):

    python .ci/constraints.py > constraints.txt

The closure is read from the installed packages' own metadata (requirements and environment
markers, extras followed), so only what raykd actually pulls in is pinned.
"""

from __future__ import annotations

import sys
from importlib import metadata

from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = "raykd"
EXTRAS = ("test", "minilm")


def closure(root: str, extras: tuple[str, ...]) -> dict[str, str]:
    pins: dict[str, str] = {}
    todo: list[tuple[str, tuple[str, ...]]] = [(root, extras)]
    seen: set[tuple[str, tuple[str, ...]]] = set()
    while todo:
        name, wanted = todo.pop()
        if (name, wanted) in seen:
            continue
        seen.add((name, wanted))
        dist = metadata.distribution(name)
        if canonicalize_name(name) != canonicalize_name(root):
            pins[canonicalize_name(dist.metadata["Name"])] = dist.version
        for line in dist.requires or []:
            req = Requirement(line)
            envs = [{**default_environment(), "extra": e} for e in ("", *wanted)]
            if req.marker is not None and not any(req.marker.evaluate(env) for env in envs):
                continue
            todo.append((req.name, tuple(sorted(req.extras))))
    return pins


def main() -> int:
    pins = closure(ROOT, EXTRAS)
    print("# Versions the test suite passed with (python .ci/constraints.py > constraints.txt; see README).")
    for name in sorted(pins):
        version = pins[name].split("+", 1)[0]  # torch 2.13.0+cpu -> 2.13.0: also matches the CUDA build
        print(f"{name}=={version}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

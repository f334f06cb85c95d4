"""One re-timing session in a fresh process: `python -m raykd.analysis.retime_session IN OUT`.

`raykd.analysis.retime.retime_front` with sessions > 1 runs each session here, so that every
session starts from a new process (its own allocations and memory layout). IN is a JSON spec
(per sweep: teacher and model directories and the stored space; rounds, device, threads); OUT
receives each sweep's workload and the milliseconds of every round per model. A bad input exits 2 with one line."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from raykd.analysis.retime import time_session
from raykd.errors import RaykdInputError


def main(argv: list[str]) -> int:
    spec_path, out_path = argv
    spec = json.loads(Path(spec_path).read_text())
    try:
        workloads, samples = time_session(spec["groups"], rounds=int(spec["rounds"]), device=spec["device"],
                                          threads=spec["threads"])
    except RaykdInputError as exc:
        print(str(exc), file=sys.stderr)
        return 2
    Path(out_path).write_text(json.dumps({"workloads": workloads, "samples": samples}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

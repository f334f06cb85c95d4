"""A sweep on object storage against the same sweep on local disk: wall time, and what it keeps.

Runs one small sweep (tiny preset teacher trained by the sweep, `--trials` trials x `--rounds`
rounds, `--workers` DDP workers) four times in this process, back to back on the same machine,
in the order local, S3, S3, local: with `--storage` a local directory, and on a bucket of a real S3 endpoint (moto's server on
127.0.0.1, credentials from the environment). Reports both wall times and, for each sweep, the
bytes it keeps per part (data, teacher, Train checkpoints, Tune state, Optuna journal, results),
the bytes per trial, and the extrapolation to `--scale-to` trials (per-trial bytes x trials +
the shared parts). Train keeps one checkpoint per trial (`CheckpointConfig(num_to_keep=1)`).

    python bench/sweep_storage.py --json bench/results/sweep_storage.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

PARTS = ("data", "teacher", "train", "tune", "optuna", "results")


def sweep_space(storage: str, trials: int, rounds: int, workers: int, data: str) -> dict[str, Any]:
    return {
        "name": "storage-bench", "data": data, "teacher": {"preset": "tiny", "epochs": 4},
        "search": {"alpha": {"low": 0.0, "high": 1.0}, "p_max": {"low": 0.2, "high": 0.5}},
        "fixed": {"p_min": 0.1, "rounds": rounds, "epochs_per_round": 1, "steps_per_round": 10, "lr": 0.001,
                  "calib_batches": 2, "latency_batch": 4, "latency_repeats": 3, "patience": 1},
        "num_samples": trials, "sampler": {"type": "tpe", "seed": 0, "n_startup_trials": trials},
        "resources": {"workers": workers, "cpus_per_worker": 1, "concurrent_trials": 1},
        "storage": storage,
    }


def part_bytes(root: str) -> dict[str, int]:
    import pyarrow.fs as pafs

    from raykd import storage

    fs, path = storage.filesystem(root)
    out = {}
    for part in PARTS:
        info = fs.get_file_info(pafs.FileSelector(f"{path}/{part}", recursive=True, allow_not_found=True))
        out[part] = sum(i.size for i in info if i.type == pafs.FileType.File)
    return out


def run(storage_root: str, args: argparse.Namespace, data: str) -> dict[str, Any]:
    from raykd.search.space import parse_space
    from raykd.cli.sweep import sweep_then_retime as run_sweep  # the sweep, then its front re-timed (as `raykd sweep`)

    space = parse_space(sweep_space(storage_root, args.trials, args.rounds, args.workers, data))
    t0 = time.perf_counter()
    outcome = run_sweep(space, progress=False, log=lambda _m: None)
    wall = time.perf_counter() - t0
    parts = part_bytes(outcome.root)
    per_trial = (parts["train"] + parts["tune"]) / max(1, outcome.num_trials)
    shared = parts["data"] + parts["teacher"] + parts["optuna"] + parts["results"]
    return {"root": outcome.root, "trials": outcome.num_trials, "wall_s": round(wall, 1), "bytes": parts,
            "bytes_per_trial": round(per_trial), f"bytes_at_{args.scale_to}_trials": round(per_trial * args.scale_to + shared)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--trials", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--scale-to", type=int, default=64)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    import boto3
    from moto.server import ThreadedMotoServer

    work = Path(tempfile.mkdtemp(prefix="raykd-storage-bench-"))
    os.environ["RAYKD_CACHE"] = str(work / "cache")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    os.environ.update({"AWS_ENDPOINT_URL": endpoint, "AWS_ACCESS_KEY_ID": "bench-key", "AWS_SECRET_ACCESS_KEY": "bench-secret",
                       "AWS_DEFAULT_REGION": "us-east-1", "AWS_REGION": "us-east-1"})
    boto3.client("s3", endpoint_url=endpoint).create_bucket(Bucket="raykd-bench")
    # local data (a directory the sweep copies into its storage when that is a bucket): ASDiv-A rows
    data_dir = work / "asdiv-a"
    data_dir.mkdir()
    for name, start, n in (("train.json", 0, 300), ("valid.json", 1000, 60)):
        (data_dir / name).write_text(json.dumps([
            {"@ID": f"b-{i}", "@Grade": "1", "Body": f"Cody had {i % 50 + 2} marbles and {'found' if i % 2 else 'lost'} {i % 7 + 1} of them.",
             "Question": "How many marbles does Cody have now?", "Solution-Type": "Addition" if i % 2 else "Subtraction",
             "Answer": f"{i % 50 + 2 + (i % 7 + 1 if i % 2 else -(i % 7 + 1))} (marbles)",
             "Formula": f"{i % 50 + 2}{'+' if i % 2 else '-'}{i % 7 + 1}={i % 50 + 2 + (i % 7 + 1 if i % 2 else -(i % 7 + 1))}"}
            for i in range(start, start + n)]))
    data = f"asdiv-a:{data_dir}"
    report: dict[str, Any] = {"command": "python bench/sweep_storage.py " + " ".join(sys.argv[1:]), "date": time.strftime("%Y-%m-%d %H:%M"),
                              "machine": f"{platform.machine()}, {os.cpu_count()} CPUs", "data": "300 + 60 ASDiv-A-format rows written as a local directory"}
    runs: dict[str, list[dict[str, Any]]] = {"local": [], "s3": []}
    try:  # ABBA: the first sweep in a process pays the imports and caches, so each side goes first once
        for i, where in enumerate(("local", "s3", "s3", "local")):
            root = str(work / f"sweeps-{i}") if where == "local" else f"s3://raykd-bench/sweeps-{i}"
            runs[where].append(run(root, args, data))
            print(f"{where}:", json.dumps(runs[where][-1]), flush=True)
    finally:
        server.stop()
    report["runs"] = runs
    for where, rows in runs.items():
        report[where] = {"wall_s": [r["wall_s"] for r in rows], "mean_wall_s": round(sum(r["wall_s"] for r in rows) / len(rows), 1),
                         "bytes": rows[-1]["bytes"], "bytes_per_trial": rows[-1]["bytes_per_trial"],
                         f"bytes_at_{args.scale_to}_trials": rows[-1][f"bytes_at_{args.scale_to}_trials"]}
    report["s3_over_local_wall"] = round(report["s3"]["mean_wall_s"] / report["local"]["mean_wall_s"], 3)
    print(f"S3 / local wall: {report['s3_over_local_wall']}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()

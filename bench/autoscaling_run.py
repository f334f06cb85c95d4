"""Autoscaling, exercised: Ray's own autoscaler with the fake multi-node provider on this machine.

A head with trial slots and no CPU (so nothing can run on it but the sweep's driver), one worker
type with `min_workers: 0`; sweeps submitted with `ray job submit` under token authentication, as
a user would (ray-notes §6b, §7). Run 1: the sweep's teacher (Ray work on one trial worker's
resources) and its trials make the autoscaler start worker nodes from zero, every trial runs on
them, and the nodes go away after the idle timeout. Run 2: the node running a trial's Train worker
is killed (its raylet and every process it started, SIGKILL) after the trial's first round checkpoint; the trial is expected to
continue on a new node from that round (`restored_from_round` in the results store). Prints a
timeline and writes it as JSON. Needs `ray[default]`; run it alone (it uses port 6379 and 8265).

    python bench/autoscaling_run.py --json bench/results/autoscaling_fake_cluster.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import secrets
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

DASHBOARD = "http://127.0.0.1:8265"


def cluster_config(max_workers: int, idle_minutes: float) -> dict[str, Any]:
    empty: dict[str, Any] = {}
    return {
        "cluster_name": "raykd-fake", "max_workers": max_workers, "upscaling_speed": 1.0,
        "idle_timeout_minutes": idle_minutes,
        "provider": {"type": "fake_multinode", "use_node_id_as_ip": True, "disable_node_updaters": True,
                     "disable_launch_config_check": True},
        "auth": {"ssh_user": "ubuntu"},
        "available_node_types": {
            "ray.head.default": {"resources": {"CPU": 0, "trial_slot": 1}, "node_config": empty, "max_workers": 0},
            "cpu_worker": {"resources": {"CPU": 1}, "node_config": empty, "min_workers": 0, "max_workers": max_workers},
        },
        "head_node_type": "ray.head.default",
        "file_mounts": empty, "cluster_synced_files": [], "file_mounts_sync_continuously": False, "rsync_exclude": [],
        "rsync_filter": [], "initialization_commands": [], "setup_commands": [], "head_setup_commands": [],
        "worker_setup_commands": [], "head_start_ray_commands": [], "worker_start_ray_commands": [],
    }


def space(name: str, storage: Path, rounds: int, samples: int, steps: int, workers: int) -> dict[str, Any]:
    return {
        "name": name, "data": "synthetic:400:7", "teacher": {"preset": "tiny", "epochs": 3},
        "search": {"alpha": {"low": 0.0, "high": 1.0}, "p_max": {"low": 0.2, "high": 0.5}},
        # rounds of `steps` optimiser steps (no early stopping: patience above the evaluations a round makes)
        "fixed": {"p_min": 0.1, "rounds": rounds, "epochs_per_round": 1000, "steps_per_round": steps, "lr": 0.001,
                  "calib_batches": 2, "latency_batch": 4, "latency_repeats": 3, "patience": 1000},
        "num_samples": samples, "sampler": {"type": "tpe", "seed": 0, "n_startup_trials": samples},
        "resources": {"workers": workers, "cpus_per_worker": 1, "concurrent_trials": 1},
        "speed": {"source": "measured", "retime_rounds": 0},
        "storage": str(storage),
    }


def short(node_id: str | None) -> str:
    """The distinctive end of a node id (the fake provider's ids differ only in their last digits)."""
    return (node_id or "")[-8:]


class NodeWatch:
    """Polls the cluster's alive worker nodes every `every` s: (t, count, ids) whenever it changes."""

    def __init__(self, t0: float, every: float = 2.0) -> None:
        self.t0, self.every, self.events, self.stop = t0, every, [], threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def workers(self) -> list[str]:
        from ray.util.state import list_nodes

        return sorted(n.node_id for n in list_nodes(address=DASHBOARD, timeout=10) if n.state == "ALIVE" and not n.is_head_node)

    def _run(self) -> None:
        last = None
        while not self.stop.is_set():
            try:
                ids = self.workers()
            except Exception:  # the state API between restarts: try again
                ids = last
            if ids is not None and ids != last:
                self.events.append({"t_s": round(time.perf_counter() - self.t0, 1), "worker_nodes": len(ids), "ids": [short(i) for i in ids]})
                print(f"  [{self.events[-1]['t_s']:6.1f} s] worker nodes alive: {len(ids)}", flush=True)
                last = ids
            self.stop.wait(self.every)

    def wait_for(self, count: int, timeout: float) -> float | None:
        end = time.perf_counter() + timeout
        while time.perf_counter() < end:
            if self.events and self.events[-1]["worker_nodes"] == count:
                return self.events[-1]["t_s"]
            time.sleep(1)
        return None


def submit(job_id: str, space_file: Path, env: dict[str, str]) -> subprocess.Popen:
    runtime = json.dumps({"env_vars": {"RAYKD_AUTOSCALING": "1", "RAYKD_CACHE": env["RAYKD_CACHE"]}})
    return subprocess.Popen(["ray", "job", "submit", "--address", DASHBOARD, "--submission-id", job_id, "--runtime-env-json", runtime,
                             "--", sys.executable, "-m", "raykd", "sweep", "--space", str(space_file), "--quiet"],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def kill_train_worker_node(t0: float, checkpoints: Path, timeout: float) -> dict[str, Any]:
    """After the first round checkpoint appears under `checkpoints`, SIGKILL the node that runs
    the Train worker: its raylet (the worker processes' parent) and every process it started."""
    from ray.util.state import list_actors

    def round_checkpoints() -> list[Path]:  # Train's checkpoint_<time> directories (not its snapshot file)
        return [p for p in checkpoints.glob("*/checkpoint_*") if p.is_dir()]

    end = time.perf_counter() + timeout
    while time.perf_counter() < end and not round_checkpoints():
        time.sleep(0.5)
    if not round_checkpoints():
        return {"killed": False, "why": "no round checkpoint appeared"}
    time.sleep(3)  # the directory is uploaded before Train registers it: kill once round 1 is a checkpoint
    actors = [a for a in list_actors(address=DASHBOARD, filters=[("state", "=", "ALIVE")], detail=True, timeout=10)
              if "TrainWorker" in (a.class_name or "")]
    if not actors:
        return {"killed": False, "why": "no alive Train worker found"}
    actor = actors[0]
    parent = _ppid(actor.pid)  # the node's raylet
    name = Path(f"/proc/{parent}/comm").read_text().strip()
    if "raylet" not in name:
        return {"killed": False, "why": f"the Train worker's parent is {name!r}, not a raylet"}
    children = [int(d.name) for d in Path("/proc").iterdir() if d.name.isdigit() and _ppid(int(d.name)) == parent]
    for pid in [parent, *children]:  # the whole "machine": its raylet and every process it started
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    return {"killed": True, "t_s": round(time.perf_counter() - t0, 1), "node_id": short(actor.node_id), "raylet_pid": parent,
            "processes_killed": 1 + len(children), "checkpoints_then": len(round_checkpoints())}


def _ppid(pid: int) -> int | None:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, ValueError, IndexError):
        return None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--max-workers", type=int, default=2)
    ap.add_argument("--idle-minutes", type=float, default=0.2)
    ap.add_argument("--runs", nargs="+", default=["scale_up_and_down", "node_killed_mid_trial"],
                    choices=["scale_up_and_down", "node_killed_mid_trial"])
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="raykd-autoscale-"))
    token = work / "token"
    token.write_text(secrets.token_hex(32))
    token.chmod(0o600)
    env = {**os.environ, "RAY_FAKE_CLUSTER": "1", "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN_PATH": str(token),
           "RAYKD_CACHE": str(work / "cache"), "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    os.environ.update({k: env[k] for k in ("RAY_AUTH_MODE", "RAY_AUTH_TOKEN_PATH")})
    config = work / "cluster.yaml"
    config.write_text(yaml.safe_dump(cluster_config(args.max_workers, args.idle_minutes)))
    report: dict[str, Any] = {"command": "python bench/autoscaling_run.py " + " ".join(sys.argv[1:]), "date": time.strftime("%Y-%m-%d %H:%M"),
                              "machine": f"{platform.machine()}, {os.cpu_count()} CPUs", "cluster": cluster_config(args.max_workers, args.idle_minutes)["available_node_types"]}
    t0 = time.perf_counter()
    subprocess.run(["ray", "start", "--head", "--port=6379", f"--autoscaling-config={config}", "--num-cpus=0",
                    '--resources={"trial_slot": 1}', "--dashboard-host=127.0.0.1", "--dashboard-port=8265",
                    "--include-dashboard=true", "--disable-usage-stats"], env=env, check=True, capture_output=True)
    report["head_start_s"] = round(time.perf_counter() - t0, 1)
    from ray.util.state import list_nodes

    head_id = short(next(n.node_id for n in list_nodes(address=DASHBOARD, timeout=30) if n.is_head_node))
    report["head_node"] = head_id
    watch = NodeWatch(t0)
    watch.thread.start()
    try:
        from raykd.results.store import read_trials

        runs = {"scale_up_and_down": (2, 2, 6, 2, False), "node_killed_mid_trial": (3, 1, 250, 1, True)}
        for run, (rounds, samples, steps, workers, kill) in ((r, runs[r]) for r in args.runs):
            print(f"{run}:", flush=True)
            storage = work / "sweeps"
            space_file = work / f"{run}.yaml"
            space_file.write_text(yaml.safe_dump(space(run, storage, rounds, samples, steps, workers)))
            t_submit = round(time.perf_counter() - t0, 1)
            job = submit(run, space_file, env)
            killed = kill_train_worker_node(t0, storage / run / "train", timeout=600) if kill else None
            out, _ = job.communicate(timeout=1200)
            t_done = round(time.perf_counter() - t0, 1)
            down = watch.wait_for(0, timeout=180)
            meta = json.loads((storage / run / "results" / "sweep.json").read_text())
            trials = read_trials(str(storage / run)).to_pandas()
            since = [e for e in watch.events if e["t_s"] >= t_submit]
            report[run] = {
                "job_rc": job.returncode, "submitted_t_s": t_submit, "finished_t_s": t_done, "workers_gone_t_s": down,
                "most_worker_nodes": max((e["worker_nodes"] for e in since), default=0),
                "head_node": head_id, "teacher_node": short(meta["teacher"].get("prepared_by", {}).get("node_id")),
                "world_size": sorted({int(w) for w in trials.world_size.dropna()}),
                "trials": [{"trial_id": r.trial_id, "status": r.status, "rounds_done": int(r.rounds_done), "node_id": short(r.node_id),
                            "restored_from_round": None if r.restored_from_round != r.restored_from_round else int(r.restored_from_round)}
                           for r in trials.itertuples()],
                "killed": killed, "job_tail": out[-1500:] if job.returncode else "",
            }
            print(json.dumps(report[run], indent=1), flush=True)
    finally:
        watch.stop.set()
        report["node_events"] = watch.events
        subprocess.run(["ray", "stop", "--force"], env=env, capture_output=True)
    report["wall_s"] = round(time.perf_counter() - t0, 1)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()

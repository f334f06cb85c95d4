"""The sweep driver: Ray Tune + Optuna over chains, each chain a Ray Train run.

One Tune trial = one prune -> distill chain = one `TorchTrainer` named after the trial, so a
re-launched trial (worker/node failure, resumed sweep) restores from its last round checkpoint.
Concurrency is bounded by a custom resource, `trial_slot`, which each trial's driver function
asks for instead of a CPU: the Ray scheduler enforces it even for trials resumed by
`Tuner.restore` (which ignores `max_concurrent_trials`), so trial drivers can never take the CPUs
their own Train workers need (see shared ray-notes §1). Only chains that reported `chain_done`
are told to Optuna as complete and can reach the Pareto front.

Sweep directory (`<storage>/<name>/`): `tune/` (Ray Tune state), `train/` (Train checkpoints),
`optuna/study.journal` (the Optuna study; `optuna-dashboard` opens it), `teacher/` (the shared
teacher and its head statistics), `results/` (raykd's Parquet results, the source of truth),
`tune.log` (Ray Tune's own console output; the console gets a line per trial event: `console`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import pyarrow.parquet as pq

from raykd import __version__, provenance, storage
from raykd.analysis.confine import check_stored_inputs
from raykd.distributed.data_staging import stage_data
from raykd.distributed.searcher import make_searcher  # noqa: F401  (re-exported)
from raykd.distributed.shared_teacher import prepare_teacher_as_ray_work, weights_digest
from raykd.distributed.worker import chain_worker
from raykd.errors import ConfigError
from raykd.outputs import check_writable
from raykd.results.store import read_pareto, read_trials, trial_uri
from raykd.resume import check_resume
from raykd.search.preflight import check_ray_address
from raykd.search.space import SweepSpace, parse_space

# Imports of Ray, and of raykd.distributed modules that import Ray (console, results, scheduler,
# space), stay inside the functions that use them: Ray costs seconds to import, and the helpers
# here (placement, resume checks, ray_config_env) run before Ray starts or without it.

TRIAL_SLOT = "trial_slot"
META_NAME = "sweep.json"
# Ray Train's controller polls its workers every RAY_TRAIN_HEALTH_CHECK_INTERVAL_S (2 s by
# default): a finished chain waited up to that long to be noticed, and every round's report as
# long to reach Tune. Polling a local worker is one cheap actor call; a user's own setting wins.
TRAIN_POLL_ENV = "RAY_TRAIN_HEALTH_CHECK_INTERVAL_S"
TRAIN_POLL_S = "0.5"


@dataclass
class SweepPaths:
    root: str

    @property
    def tune(self) -> str:
        return storage.join(self.root, "tune")

    @property
    def train(self) -> str:
        return storage.join(self.root, "train")

    @property
    def results(self) -> str:
        return storage.join(self.root, "results")

    @property
    def meta(self) -> str:
        return storage.join(self.root, "results", META_NAME)

    @property
    def journal(self) -> str:
        return storage.join(self.root, "optuna", "study.journal")


def _local_journal(paths: SweepPaths) -> Path:
    """Optuna's journal needs a local file: the sweep's own when local, else a driver-side copy
    that is uploaded after every trial."""
    if not storage.is_remote(paths.root):
        p = Path(paths.journal)
    else:
        p = Path.home() / ".raykd" / "journals" / (paths.root.replace("://", "_").replace("/", "_") + ".journal")
        if storage.exists(paths.journal) and not p.exists():
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_bytes(storage.read_bytes(paths.journal))
    p.parent.mkdir(parents=True, exist_ok=True)
    return p


def make_trial_fn(space: SweepSpace, teacher_dir: str, train_storage: str,
                  teacher_metrics: dict[str, Any] | None = None):
    """The Tune function trainable (its name, `raykd_trial`, is what `Tuner.restore` matches)."""
    res = space.resources

    def raykd_trial(config: dict[str, Any]) -> None:
        import ray.train  # deferred: Ray (seconds), once the sweep runs
        from ray import tune
        from ray.train.torch import TorchTrainer
        from ray.tune.integration.ray_train import TuneReportCallback

        os.environ.setdefault(TRAIN_POLL_ENV, TRAIN_POLL_S)  # Train passes it on to its controller
        trial_id = tune.get_context().get_trial_id()
        chain = space.chain_config(config)
        loop_config = {
            "chain": chain.to_dict(), "task": space.task_for(config), "teacher_dir": teacher_dir, "data": space.data, "data_seed": space.seed,
            "use_gpu": res.gpus_per_worker > 0, "threads_per_worker": max(1, int(res.cpus_per_worker)),
            "teacher_metrics": teacher_metrics, "speed_source": space.speed["source"],
        }
        per_worker = {"CPU": res.cpus_per_worker}
        if res.gpus_per_worker:
            per_worker["GPU"] = res.gpus_per_worker
        TorchTrainer(
            chain_worker,
            train_loop_config=loop_config,
            scaling_config=ray.train.ScalingConfig(num_workers=res.workers, use_gpu=res.gpus_per_worker > 0,
                                                   resources_per_worker=per_worker),
            run_config=ray.train.RunConfig(name=f"chain-{trial_id}", storage_path=train_storage,
                                           callbacks=[TuneReportCallback()],
                                           # a resume needs the last round; export and re-timing the final one
                                           checkpoint_config=ray.train.CheckpointConfig(num_to_keep=1),
                                           failure_config=ray.train.FailureConfig(max_failures=3)),
        ).fit()

    return raykd_trial


def make_scheduler(space: SweepSpace, root: str) -> Any:
    """Multi-objective successive halving when the space asks for it (else Tune's FIFO)."""
    if space.halving is None:
        return None
    from raykd.distributed.scheduler import HalvingScheduler  # deferred: Ray (scheduler subclasses Tune's), once the sweep runs

    return HalvingScheduler(space, root)


def reuses_trial_actors(space: SweepSpace) -> bool:
    """Whether one Tune trial process may drive trial after trial (Tune's `reuse_actors`).

    A trial process only drives a TorchTrainer, and a fresh one per trial cost a Python start and
    Ray's imports (about 3 s a trial on 2 cores). Tune reuses it only after the trial's function
    returned, which a chain that runs to its end does; a chain stopped mid-way (successive halving,
    the accuracy floor) leaves its TorchTrainer running in the cached process: the next trial's
    reset times out, Tune fails that trial ("Could not re-use actor") and, in a probe on Ray 2.60
    (a trial stopped by a scheduler, two more queued), the run then hung. Sweeps that can stop
    chains therefore start a process per trial, as before."""
    return space.halving is None and space.accuracy_floor is None


def make_stopper(space: SweepSpace) -> Any:
    """Early stopping of hopeless chains: accuracy below a floor after a given round."""
    if space.accuracy_floor is None:
        return None
    from ray.tune.stopper import Stopper  # deferred: Ray, once the sweep runs

    from raykd.distributed.scheduler import below_accuracy_floor

    class AccuracyFloor(Stopper):
        def __call__(self, trial_id: str, result: dict) -> bool:
            return below_accuracy_floor(space, result)  # the rule the results row names as the cause

        def stop_all(self) -> bool:
            return False

    return AccuracyFloor()


def check_placement(space: SweepSpace, cluster: dict[str, float], *, autoscaling: bool) -> None:
    """Refuse sweeps whose concurrent trials cannot all be placed (exit 2 before any trial)."""
    res = space.resources
    need = res.per_trial
    k = res.concurrent_trials
    slots = cluster.get(TRIAL_SLOT, 0)
    if slots < 1:
        raise ConfigError("the Ray cluster has no 'trial_slot' resource: start its head with "
                          "--resources='{\"trial_slot\": N}' (see cluster/README.md)")
    if k > slots:
        raise ConfigError(f"resources.concurrent_trials is {k} but the cluster offers {int(slots)} trial slots")
    if autoscaling:
        return
    for key in ("CPU", "GPU"):
        if need[key] * k > cluster.get(key, 0) + 1e-9:
            raise ConfigError(
                f"{k} concurrent trials need {need[key] * k:g} {key} ({res.workers} workers x "
                f"{need[key] / res.workers:g}) but the cluster has {cluster.get(key, 0):g}: "
                "lower resources.concurrent_trials or resources.workers"
            )


def _console(space: SweepSpace, root: str, stream: Any, *, progress: bool, verbose: bool) -> Any:
    """The sweep's own console (a line per trial event, a bar over trials), or None when quiet."""
    if not progress:
        return None
    from raykd.distributed.console import SweepConsole  # deferred: Ray, rich (console renders Tune's events), once the sweep runs

    def read_row(trial_id: str) -> dict[str, Any] | None:
        try:  # the row ResultsCallback has just written: the sweep's record of how the trial ended
            rows = pq.read_table(trial_uri(root, trial_id)).to_pylist() if storage.exists(trial_uri(root, trial_id)) else []
        except (OSError, ValueError):
            return None
        return rows[0] if rows else None

    try:
        done = sum(st != "rejected" for st in read_trials(root).column("status").to_pylist())  # (a resumed sweep's)
    except Exception:  # a new sweep: no results yet
        done = 0
    return SweepConsole(stream, params=[p.name for p in space.search], objectives=[o.metric for o in space.objectives],
                        total=space.num_samples, done=done, read_row=read_row, bar=not verbose)


def _tune_log(paths: SweepPaths) -> Path:
    """Where Tune's own console output is written: the sweep's `tune.log`, or for a remote sweep a
    driver-side file uploaded there when the sweep ends."""
    from raykd.distributed.console import LOG_NAME  # deferred: Ray, rich (console module), once the sweep runs

    if not storage.is_remote(paths.root):
        return Path(paths.root) / LOG_NAME
    local = Path.home() / ".raykd" / "logs" / (paths.root.replace("://", "_").replace("/", "_") + ".tune.log")
    if storage.exists(storage.join(paths.root, LOG_NAME)) and not local.exists():
        local.parent.mkdir(parents=True, exist_ok=True)
        local.write_bytes(storage.read_bytes(storage.join(paths.root, LOG_NAME)))
    return local


@dataclass
class SweepOutcome:
    root: str
    num_trials: int
    front: Any  # pandas DataFrame of the Pareto front
    wall_s: float
    space: SweepSpace | None = None  # the space the sweep ran (a resumed sweep's: the stored one)


def run_sweep(
    space: SweepSpace | None = None,
    *,
    storage_root: str | None = None,
    name: str | None = None,
    address: str | None = None,
    resume: str | None = None,
    progress: bool = True,
    verbose: bool = False,
    log=print,
    trusted: bool = False,
) -> SweepOutcome:
    """Run (or resume) a sweep; returns the stored Pareto front. The front's re-timing
    (`speed.retime_rounds`) is the caller's next step: `raykd.cli.sweep.sweep_then_retime`.

    A sweep to resume is data (docs/security.md): its task, data, teacher and links are checked
    before anything is imported or started (`raykd.analysis.confine.check_stored_inputs`);
    `trusted` (`--trust-sweep`) lets an import-path plug-in and data outside the sweep through.

    `progress`: a line per trial event and a bar over trials (`raykd.distributed.console`).
    Ray Tune's own console output goes to the sweep's `tune.log`; `verbose` shows it here too."""
    import ray  # deferred, like every Ray import in this module: importing it costs seconds, and the
    from ray import tune  # helpers above (placement, resume checks) are used before Ray starts

    from raykd.distributed.space import tune_space
    from raykd.distributed.trial_results import ResultsCallback

    start = time.perf_counter()
    check_ray_address(address or os.environ.get("RAY_ADDRESS"))  # seconds: Ray's client retries an absent cluster for minutes
    if resume:
        paths = SweepPaths(storage.resolve(resume))
        if not storage.exists(paths.meta):
            raise ConfigError(f"{resume} is not a raykd sweep (no results/{META_NAME})")
        try:
            meta = json.loads(storage.read_bytes(paths.meta))
        except (ValueError, RecursionError):
            raise ConfigError(f"{paths.meta} is not valid JSON: the sweep's metadata is damaged") from None
        if not isinstance(meta, dict):
            raise ConfigError(f"{paths.meta} does not hold a JSON object: the sweep's metadata is damaged")
        meta = {**meta, "teacher": check_stored_inputs(meta, paths.root, where=f"{resume} (stored space)", trusted=trusted)}
        space = parse_space(meta.get("space_raw"), f"{resume} (stored space)")
        check_resume_inputs(meta, space, paths)
        if not trusted and not provenance.signed_here(meta):
            raise ConfigError(f"{resume} was not made under this user's raykd key ({provenance.key_path()} or "
                              f"${provenance.KEY_ENV}): resuming loads Ray Tune's pickled state from its tune/ "
                              "directory, which can run code; pass --trust-sweep only for a sweep you made or trust")
        log(f"resuming with the space stored at creation ({paths.meta}); a space file edited since is not read")
    else:
        assert space is not None
        paths = SweepPaths(storage.join(storage.resolve(storage_root or space.storage), name or space.name))
        if storage.exists(paths.meta):
            raise ConfigError(f"a sweep already exists at {paths.root}: use --resume {paths.root} or another --name")
        if not storage.is_remote(paths.root):
            root = Path(paths.root)
            if root.exists() and not root.is_dir():
                raise ConfigError(f"{paths.root} is a file, not a sweep directory")
            if root.is_dir() and any(root.iterdir()):
                raise ConfigError(f"{paths.root} exists and is not a raykd sweep (no results/{META_NAME}); raykd never "
                                  "writes into a directory it did not create: choose another --name or --storage")
            check_writable(root, "--storage/--name")
        meta = {}
    res = space.resources
    connect = address or os.environ.get("RAY_ADDRESS")
    if not connect:  # a local cluster: check placement before starting anything
        check_placement(space, {"CPU": float(os.cpu_count() or 1), "GPU": float(_local_gpus()), TRIAL_SLOT: res.concurrent_trials},
                        autoscaling=False)
    given_data = space.data
    if not resume:
        staged = stage_data(space.data, paths.root, reads_uris=bool(getattr(space.task_plugin(), "reads_data_uris", False)), log=log)
        space = dataclasses.replace(space, data=staged)  # the trials, the teacher, a resume all read the copy
    if connect:
        ray.init(address=connect, log_to_driver=False)
        if res.worker_niceness:  # (0, the default, is what cluster/ starts its nodes with)
            log(f"note: resources.worker_niceness ({res.worker_niceness}) is not applied to a running cluster; "
                "start its nodes with RAY_worker_niceness=N instead")
        cluster = ray.cluster_resources()
        check_placement(space, cluster, autoscaling=_autoscaling())
    else:
        with ray_config_env(worker_niceness=res.worker_niceness):
            ray.init(num_cpus=os.cpu_count(), resources={TRIAL_SLOT: res.concurrent_trials}, include_dashboard=False,
                     log_to_driver=False, configure_logging=False, **_local_runtime_env(space))
    try:
        if not resume:
            teacher = prepare_teacher_as_ray_work(space, paths.root, log=log)
            meta = {
                "name": paths.root.rstrip("/").rsplit("/", 1)[-1], "space": space.to_dict(), "space_raw": space.to_raw(),
                "objectives": [{"metric": o.metric, "mode": o.mode} for o in space.objectives], "teacher": teacher,
                "task": space.task, "data": space.data, "data_given": given_data, "seed": space.seed, "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                "raykd_version": _version(), "shared_teacher_work_s": teacher["train_s"] + teacher["stats_s"],
                "fingerprint": {"data": teacher.get("data_digest"), "teacher": teacher.get("weights_sha256")},
            }
            meta["signature"] = provenance.sign(meta)  # only its maker resumes it without --trust-sweep
            storage.write_bytes_atomic(paths.meta, json.dumps(meta, indent=1, default=str).encode())
        else:
            teacher = meta["teacher"]
        journal = _local_journal(paths)
        trainable = tune.with_resources(make_trial_fn(space, teacher["dir"], paths.train, teacher.get("metrics")), {"cpu": 0, TRIAL_SLOT: 1})
        scheduler = make_scheduler(space, paths.root)
        from raykd.distributed.console import ConsoleEvents, ToConsole, active, tune_output

        callbacks = [ResultsCallback(paths.root, space, journal, paths.journal if storage.is_remote(paths.root) else None,
                                     scheduler=scheduler), ConsoleEvents()]  # after ResultsCallback: it reads the row
        console = _console(space, paths.root, sys.stdout, progress=progress, verbose=verbose)
        tune_log = _tune_log(paths)
        if console is not None:
            console.say(f"Ray Tune's own output: {storage.join(paths.root, tune_log.name) if storage.is_remote(paths.root) else tune_log}"
                        + ("" if verbose else " (raykd sweep --verbose shows it here)"))
        param_space = tune_space(space)
        if resume and tune.Tuner.can_restore(paths.tune):
            tuner = tune.Tuner.restore(paths.tune, trainable=trainable, resume_unfinished=True, resume_errored=True,
                                       param_space=param_space)
            log(f"resuming sweep {paths.root}")
        else:
            tuner = tune.Tuner(
                trainable,
                param_space=param_space,
                tune_config=tune.TuneConfig(search_alg=make_searcher(space, journal, f"raykd-{meta['name']}", root=paths.root,
                                                                     teacher_dir=teacher["dir"], log=ToConsole(log)),
                                            scheduler=scheduler,
                                            num_samples=space.num_samples, max_concurrent_trials=res.concurrent_trials,
                                            reuse_actors=reuses_trial_actors(space)),
                run_config=tune.RunConfig(name="tune", storage_path=paths.root, stop=make_stopper(space), callbacks=callbacks,
                                          failure_config=tune.FailureConfig(max_failures=1),
                                          verbose=1),  # Tune's own console: into tune.log (tune_output)
            )
        try:
            with active(console), tune_output(tune_log, verbose=verbose):
                tuner.fit()
        finally:
            if storage.is_remote(paths.root) and tune_log.exists():
                storage.write_bytes_atomic(storage.join(paths.root, tune_log.name), tune_log.read_bytes())
    finally:
        ray.shutdown()
    # the end-of-sweep re-timing (space.speed.retime_rounds) is the caller's next step, outside Ray:
    # `raykd.cli.sweep.sweep_then_retime` (raykd.analysis.retime.retime_at_end)
    return SweepOutcome(paths.root, read_trials(paths.root).num_rows, read_pareto(paths.root).to_pandas(), time.perf_counter() - start,
                        space)


@contextlib.contextmanager
def ray_config_env(**settings: Any) -> Iterator[None]:
    """Ray's system settings for a local cluster started inside, as `RAY_<name>` environment
    variables (Ray's public way, the one `ray start` nodes use: cluster/); None leaves Ray's
    default. The driver's environment is restored afterwards (the started processes keep theirs)."""
    names = {f"RAY_{k}": str(v) for k, v in settings.items() if v is not None}
    before = {n: os.environ.get(n) for n in names}
    os.environ.update(names)
    try:
        yield
    finally:
        for n, v in before.items():
            if v is None:
                os.environ.pop(n, None)
            else:
                os.environ[n] = v


def check_resume_inputs(meta: dict[str, Any], space: SweepSpace, paths: SweepPaths) -> None:
    """A resumed sweep must read the same problems and teacher as its first trials did.

    The space itself cannot drift: --resume uses the copy stored at creation. What can drift is
    what the space points at: the data files (read by every trial) and the sweep's teacher copy."""
    stored = {k: v for k, v in (meta.get("fingerprint") or {}).items() if v}
    if not stored:
        return  # a sweep from before fingerprints: nothing to compare
    current: dict[str, Any] = {}
    if "data" in stored:
        current["data"] = space.task_plugin().data_fingerprint(space.data, seed=space.seed)
    if "teacher" in stored:
        teacher_dir = meta["teacher"]["dir"]
        try:
            current["teacher"] = weights_digest(teacher_dir)
        except (OSError, ValueError, AttributeError):
            raise ConfigError(f"the sweep's teacher at {teacher_dir} is missing or damaged") from None
    check_resume(stored, current, what="sweep", where=paths.root,
                 hint=f"restore the data at {space.data!r} (and the sweep's teacher) or start a new sweep")


def _local_runtime_env(space: SweepSpace) -> dict[str, Any]:
    """A local cluster's workers import a user's task plug-in from where the driver found it
    (`raykd.task.registry.worker_pythonpath`); raykd's own tasks need nothing."""
    from raykd.task.registry import worker_pythonpath  # deferred: task.registry imports torch; the sweep driver needs no torch

    path = worker_pythonpath(space.task_spec)
    return {"runtime_env": {"env_vars": {"PYTHONPATH": path}}} if path else {}


def _local_gpus() -> int:
    try:
        import torch  # deferred: torch, only to count local GPUs

        return torch.cuda.device_count()
    except Exception:  # pragma: no cover
        return 0


def _autoscaling() -> bool:
    """Whether the connected cluster can grow (set RAYKD_AUTOSCALING=1 in the job's environment
    on autoscaling clusters): its present CPUs/GPUs then do not bound what trials may ask for."""
    return os.environ.get("RAYKD_AUTOSCALING", "") == "1"


def _version() -> str:
    return __version__

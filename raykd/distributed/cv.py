"""Cross-validation folds as parallel Ray work (`raykd cv --parallel`, `raykd cv --ray-address`).

On 2 cores a 5-fold MiniLM run takes hours one fold after another; on a cluster the folds are
independent (each trains its own teacher and chain on the other folds), so each runs as one Ray
task with its own CPUs (and GPUs when asked), as many at once as the cluster holds. The fold's
work itself is the caller's (`fold_fn`, the same function the sequential path runs), so both paths
write the same fold directories and return the same per-fold records, which the caller pools
exactly as before. Resuming is the caller's too: it submits only the folds without a record.

Ray stays here (the method is pure PyTorch): the CLI hands in a picklable `fold_fn(fold)` that
returns `(record, log lines)`; the lines are printed when the fold comes back.
"""

from __future__ import annotations

import contextlib
import math
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from raykd.distributed.remote_result import get_logged
from raykd.errors import ConfigError
from raykd.search.preflight import check_ray_address

FoldFn = Callable[[int], "tuple[dict[str, Any], list[str]]"]


@dataclass(frozen=True)
class FoldResources:
    """What one fold's Ray task asks for: CPUs (its torch threads) and GPUs."""

    cpus: float = 1.0
    gpus: float = 0.0

    def __post_init__(self) -> None:
        if not (math.isfinite(self.cpus) and self.cpus > 0):
            raise ConfigError(f"--cpus-per-fold must be a number > 0, got {self.cpus!r}")
        if not (math.isfinite(self.gpus) and self.gpus >= 0):
            raise ConfigError(f"--gpus-per-fold must be a number >= 0, got {self.gpus!r}")


def _run_one_fold(fold_fn: FoldFn, fold: int) -> tuple[dict[str, Any], list[str]]:
    """The Ray task: one fold, start to finish (module level, so workers import it by name)."""
    return fold_fn(fold)


@contextlib.contextmanager
def fold_cluster(resources: FoldResources, *, address: str | None = None) -> Iterator[FoldRunner]:
    """A Ray to run folds on, checked before the caller writes anything: the Ray this process is
    already connected to; otherwise the cluster at `address` (its nodes must see the caller's
    output directory) or a local one started on this machine's CPUs, disconnected on exit. A fold
    that could never be placed (more CPUs or GPUs than the whole cluster has) is refused here
    (ConfigError) instead of waiting forever."""
    import ray  # deferred: Ray (seconds); `raykd` start-up imports this module (raykd cv)

    owned = not ray.is_initialized()
    if owned:
        _connect(address)
    try:
        _check_placement(resources, ray.cluster_resources(), address)
        yield FoldRunner(resources)
    finally:
        if owned:
            ray.shutdown()


@dataclass(frozen=True)
class FoldRunner:
    """Runs folds as Ray tasks on the cluster `fold_cluster` connected to."""

    resources: FoldResources

    def run(self, fold_fn: FoldFn, folds: list[int], log: Callable[[str], Any] = print) -> dict[int, dict[str, Any]]:
        """{fold: record} for every fold in `folds`, each one Ray task, as many at once as the
        cluster holds. A fold that fails stops the others (their finished parts are kept:
        teachers and chain rounds resume); a bad-input error inside a fold is raised here as
        itself (one line, exit 2)."""
        import ray  # deferred: Ray (seconds); `raykd` start-up imports this module (raykd cv)

        res = self.resources
        task = ray.remote(num_cpus=res.cpus, num_gpus=res.gpus, max_retries=0)(_run_one_fold)
        fn_ref = ray.put(fold_fn)  # one copy of the pooled problems for every fold
        refs = {task.remote(fn_ref, fold): fold for fold in folds}
        log(f"{len(refs)} fold(s) submitted to Ray ({res.cpus:g} CPU, {res.gpus:g} GPU each): "
            f"{', '.join(str(f + 1) for f in folds)}")
        records: dict[int, dict[str, Any]] = {}
        pending = list(refs)
        try:
            while pending:
                ready, pending = ray.wait(pending, num_returns=1)
                for ref in ready:
                    records[refs[ref]] = get_logged(ref, log)
        finally:
            for ref in pending:  # a failed fold (or Ctrl-C) stops the rest
                ray.cancel(ref, force=True)
        return records


def _connect(address: str | None) -> None:
    import ray  # deferred: Ray, and distributed.sweep (pandas, pyarrow); `raykd` start-up imports this module

    if address:
        check_ray_address(address)  # seconds: Ray's client retries an absent cluster for minutes
        ray.init(address=address, log_to_driver=False)
        return
    from raykd.distributed.sweep import ray_config_env

    with ray_config_env(worker_niceness=0):  # folds at normal priority (Ray's default is 15: see Resources)
        ray.init(num_cpus=os.cpu_count() or 1, include_dashboard=False, log_to_driver=False, configure_logging=False)


def _check_placement(resources: FoldResources, cluster: dict[str, float], address: str | None) -> None:
    """A fold that asks for more than the cluster has would wait forever: refuse it now."""
    where = f"the Ray cluster at {address}" if address else "this machine's Ray"
    for name, want, flag in (("CPU", resources.cpus, "--cpus-per-fold"), ("GPU", resources.gpus, "--gpus-per-fold")):
        have = float(cluster.get(name, 0.0))
        if want > have + 1e-9:
            raise ConfigError(f"{flag} {want:g}: {where} has {have:g} {name}(s) in all, so no fold could start")

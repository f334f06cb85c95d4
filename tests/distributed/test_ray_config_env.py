"""A local cluster's Ray settings go through Ray's public environment variables (`RAY_<name>`),
not `ray.init(_system_config=...)`: the worker niceness a space asks for reaches the workers."""

import os

import pytest

from raykd.distributed.sweep import ray_config_env


def test_settings_are_set_inside_and_the_driver_environment_is_restored(monkeypatch):
    monkeypatch.setenv("RAY_worker_niceness", "3")
    with ray_config_env(worker_niceness=7, other=None):
        assert os.environ["RAY_worker_niceness"] == "7" and "RAY_other" not in os.environ
    assert os.environ["RAY_worker_niceness"] == "3"


@pytest.mark.ray
@pytest.mark.slow
def test_a_local_cluster_s_workers_run_at_the_niceness_asked_for():
    import ray

    with ray_config_env(worker_niceness=7):
        ray.init(num_cpus=1, include_dashboard=False, log_to_driver=False)
    try:
        @ray.remote
        def niceness() -> int:
            return os.nice(0)

        assert ray.get(niceness.remote()) == 7
    finally:
        ray.shutdown()

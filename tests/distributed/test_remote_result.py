"""`get_logged`: the value of a Ray task that logs, its lines replayed, its bad-input errors as themselves."""

import pytest

from raykd.errors import ConfigError

pytestmark = pytest.mark.ray


def test_get_logged_replays_lines_and_raises_input_errors_as_themselves():
    import ray

    from raykd.distributed.remote_result import get_logged

    def _logs(x):  # defined here, so Ray ships them by value (a worker cannot import a test module)
        return x * 2, [f"doubled {x}", "done"]

    def _refuses():
        raise ConfigError("the space asks for something impossible")

    def _breaks():
        raise RuntimeError("not an input error")

    ray.init(num_cpus=1, include_dashboard=False, log_to_driver=False)
    try:
        seen: list[str] = []
        assert get_logged(ray.remote(max_retries=0)(_logs).remote(21), seen.append) == 42
        assert seen == ["doubled 21", "done"]
        with pytest.raises(ConfigError, match="impossible") as info:
            get_logged(ray.remote(max_retries=0)(_refuses).remote(), seen.append)
        assert type(info.value) is ConfigError
        with pytest.raises(ray.exceptions.RayTaskError):
            get_logged(ray.remote(max_retries=0)(_breaks).remote(), seen.append)
    finally:
        ray.shutdown()

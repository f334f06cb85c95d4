"""The per-machine cache of latency tables (`raykd.measure.latency.cache`): one table per machine,
architecture, batch, threads and workload, reused by later sweeps unless it was timed when the
machine was busier than now."""

from __future__ import annotations

import copy
import hashlib
import json

from raykd.measure.latency import (
    FORMAT,
    LatencyTable,
    architecture_digest,
    cache_path,
    cache_root,
    machine_identity,
    table_key,
    uniform_variant,
)


def test_a_machine_reuses_its_table_for_the_same_architecture_and_batch(teacher_task_batch, tmp_path, monkeypatch):
    """Two sweeps on one machine must predict the same figures (BENCHMARKS 12: re-measured tables
    moved 11% with the machine's state and the sweeps diverged after their start-up trials)."""
    from raykd.measure.latency import (
        cache_root,
        cached_latency_table,
        calibration_summary,
    )

    monkeypatch.setenv("RAYKD_CACHE", str(tmp_path))
    teacher, task, batch = teacher_task_batch
    logs: list[str] = []
    first = cached_latency_table(task, teacher, batch, rounds=2, warmup=0, threads=1, log=logs.append)
    said = len(logs)
    # (check_rounds=0: no timing of the present machine; the next test covers that check)
    again = cached_latency_table(task, copy.deepcopy(teacher), batch, rounds=2, warmup=0, threads=1, check_rounds=0, log=logs.append)
    assert again == first and "reusing the one this machine measured" in logs[said]
    # what the reused table says of itself: the same line as when it was built (calibrated, or additive when
    # two timing rounds fitted a factor of 0: which one depends on the machine's noise, not on the cache)
    assert logs[said + 1] == calibration_summary(first) == logs[said - 1]
    assert len(list(cache_root().glob("*.json"))) == 1
    # another batch shape, thread count, workload or architecture is another table
    other_batch = {k: v[:2] for k, v in batch.items()}
    smaller = uniform_variant(teacher, "decoder_self", 2)
    for kwargs in ({"batch": other_batch}, {"threads": 2}, {"workload": "forward"}, {"dense": smaller}):
        args = {"dense": teacher, "batch": batch, "threads": 1, **kwargs}
        cached_latency_table(task, args.pop("dense"), args.pop("batch"), rounds=2, warmup=0, log=logs.append, **args)
    assert len(list(cache_root().glob("*.json"))) == 5
    # asked not to use the cache: measured again
    said = len(logs)
    fresh = cached_latency_table(task, teacher, batch, rounds=2, warmup=0, threads=1, use_cache=False, log=logs.append)
    assert logs[said:] == [calibration_summary(fresh)] and fresh.meta["variant_median_ms"] != first.meta["variant_median_ms"]
    # a damaged entry is measured again and replaced
    for path in cache_root().glob("*.json"):
        path.write_text("{")
    said = len(logs)
    cached_latency_table(task, teacher, batch, rounds=2, warmup=0, threads=1, log=logs.append)
    assert "cache entry unusable" in logs[said]


def test_a_cached_table_timed_on_a_busier_machine_is_measured_again(teacher_task_batch, tmp_path, monkeypatch):
    """A table timed under load must not stay in the cache for good: before reuse the dense model
    is timed again; a table whose dense model took far longer then is replaced, and one that was
    far faster then (this machine is busy now) is kept with a warning. The stored dense figure is
    scaled 3x either way, far outside the 0.8-1.25 band the check allows."""
    import json

    from raykd.measure.latency import cache_root, cached_latency_table, reuse_verdict

    assert [reuse_verdict(100.0, now) for now in (79.0, 81.0, 124.0, 126.0)] == ["rebuild", "ok", "ok", "busy"]
    monkeypatch.setenv("RAYKD_CACHE", str(tmp_path))
    teacher, task, batch = teacher_task_batch
    first = cached_latency_table(task, teacher, batch, rounds=2, warmup=0, threads=1, log=lambda _m: None)
    (path,) = cache_root().glob("*.json")

    def stored_with_dense(scale: float) -> LatencyTable:
        d = json.loads(path.read_text())
        d["dense_ms"] = first.dense_ms * scale
        path.write_text(json.dumps(d))
        return LatencyTable.from_dict(d)

    logs: list[str] = []
    busy_then = stored_with_dense(3.0)
    fresh = cached_latency_table(task, teacher, batch, rounds=2, warmup=0, threads=1, log=logs.append)
    assert "was timed when it was busier" in logs[0] and "measuring again" in logs[0]
    assert fresh != busy_then and LatencyTable.load(path) == fresh  # replaced in the cache too
    logs.clear()
    quiet_then = stored_with_dense(1 / 3)
    kept = cached_latency_table(task, teacher, batch, rounds=2, warmup=0, threads=1, log=logs.append)
    assert kept == quiet_then and "reusing the one this machine measured" in logs[0] and "ms now" in logs[0]
    assert "WARNING: this machine is" in logs[1] and "slower than when the table was timed" in logs[1]


def test_the_cache_key_of_the_built_in_kinds_is_the_one_users_caches_were_written_under(teacher_task_batch):
    """A per-machine cache outlives raykd versions: with the built-in kinds only, a table's file name is
    the hash of exactly the key table format 3 always used (no entry for the registered kinds)."""
    teacher, _task, batch = teacher_task_batch
    key = {"table": table_key(teacher, batch, 1, "decode"), "machine": machine_identity(next(teacher.parameters()).device),
           "architecture": architecture_digest(teacher), "rounds": 30, "warmup": 3, "format": FORMAT, "calibration": 16}
    assert FORMAT == "raykd-latency-table-3"
    expected = cache_root() / f"{hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:32]}.json"
    assert cache_path(teacher, batch, threads=1, workload="decode", rounds=30, warmup=3) == expected

"""Measured latency and peak memory (only torch; no Ray, no task knowledge).

Timing: every call runs under `torch.inference_mode()` with a fixed `torch.set_num_threads` (CPU);
on CUDA it is bracketed by CUDA events after a synchronise, and the elapsed time is read after the
end event completed. Statistics are over the timed repeats (after warm-up): median, p10, p90.

`compare_latency` measures several callables side by side in one process, interleaved: each round
calls every callable once, the order rotating by one each round (ABC, BCA, CAB, ...), so slow drift
(thermal, frequency, other load) hits all of them alike. Speedups are ratios of medians against a
reference (default: the first callable); `paired_speedup` is the median over rounds of the ratio
within a round (the two calls were adjacent in time), more robust when the machine is shared.

Peak memory: on CUDA, `torch.cuda.max_memory_allocated()` during one call minus the memory
allocated before it (bytes of tensors, not the allocator's cache). On CPU, the peak of bytes held by
tensors allocated during the call, from the PyTorch profiler's memory events (`profile_memory=True`,
"Total Allocated"); it is not RSS (no allocator caching, no code or library memory).
"""

from __future__ import annotations

import json
import os
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from typing import Any

import torch


@dataclass(frozen=True)
class LatencyStats:
    median_ms: float
    p10_ms: float
    p90_ms: float
    mean_ms: float
    samples_ms: tuple[float, ...] = field(repr=False)
    device: str = "cpu"
    num_threads: int | None = None

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["samples_ms"] = list(self.samples_ms)
        return d


@dataclass(frozen=True)
class LatencyComparison:
    stats: dict[str, LatencyStats]
    reference: str
    speedup: dict[str, float]  # median(reference) / median(name)
    paired_speedup: dict[str, float] = field(default_factory=dict)  # median over rounds of ref/name
    order: str = "rotating interleaved rounds"

    def to_dict(self) -> dict[str, Any]:
        return {
            "reference": self.reference,
            "speedup": dict(self.speedup),
            "paired_speedup": dict(self.paired_speedup),
            "order": self.order,
            "stats": {k: v.to_dict() for k, v in self.stats.items()},
        }


def _quantile(xs: list[float], q: float) -> float:
    s = sorted(xs)
    if len(s) == 1:
        return s[0]
    pos = q * (len(s) - 1)
    lo = int(pos)
    hi = min(lo + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (pos - lo)


def _stats(samples: list[float], device: str, threads: int | None) -> LatencyStats:
    return LatencyStats(
        median_ms=statistics.median(samples),
        p10_ms=_quantile(samples, 0.1),
        p90_ms=_quantile(samples, 0.9),
        mean_ms=statistics.fmean(samples),
        samples_ms=tuple(samples),
        device=device,
        num_threads=threads,
    )


@contextmanager
def _threads(n: int | None) -> Iterator[int]:
    old = torch.get_num_threads()
    if n is not None:
        torch.set_num_threads(n)
    try:
        yield torch.get_num_threads()
    finally:
        torch.set_num_threads(old)


def _timer(device: torch.device) -> Callable[[Callable[[], Any]], float]:
    if device.type == "cuda":

        def run(fn: Callable[[], Any]) -> float:
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            torch.cuda.synchronize(device)
            start.record()
            fn()
            end.record()
            end.synchronize()
            return float(start.elapsed_time(end))

        return run

    def run_cpu(fn: Callable[[], Any]) -> float:
        t0 = time.perf_counter_ns()
        fn()
        return (time.perf_counter_ns() - t0) / 1e6

    return run_cpu


def measure_latency(
    fn: Callable[[], Any],
    *,
    warmup: int = 3,
    repeats: int = 20,
    device: str | torch.device = "cpu",
    num_threads: int | None = None,
) -> LatencyStats:
    """Median / p10 / p90 milliseconds of `fn()` over `repeats` timed calls after `warmup`."""
    return compare_latency({"fn": fn}, warmup=warmup, rounds=repeats, device=device, num_threads=num_threads).stats["fn"]


def compare_latency(
    models: Mapping[str, Callable[[], Any]],
    *,
    warmup: int = 3,
    rounds: int = 20,
    device: str | torch.device = "cpu",
    num_threads: int | None = None,
    reference: str | None = None,
) -> LatencyComparison:
    """Time each zero-argument callable `rounds` times, interleaved, in this process."""
    if not models:
        raise ValueError("nothing to time")
    if rounds < 1 or warmup < 0:
        raise ValueError("rounds must be >= 1 and warmup >= 0")
    names = list(models)
    reference = names[0] if reference is None else reference
    if reference not in models:
        raise ValueError(f"reference {reference!r} is not among {names}")
    dev = torch.device(device)
    run = _timer(dev)
    samples: dict[str, list[float]] = {n: [] for n in names}
    with _threads(num_threads) as threads, torch.inference_mode():
        for _ in range(warmup):
            for n in names:
                models[n]()
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)
        for r in range(rounds):
            k = r % len(names)
            for n in names[k:] + names[:k]:
                samples[n].append(run(models[n]))
    dev_name = str(dev)
    t = None if dev.type == "cuda" else threads
    stats = {n: _stats(samples[n], dev_name, t) for n in names}
    ref = stats[reference].median_ms
    speedup = {n: ref / s.median_ms for n, s in stats.items()}
    paired = {
        n: statistics.median(a / b for a, b in zip(samples[reference], samples[n])) for n in names
    }
    return LatencyComparison(stats=stats, reference=reference, speedup=speedup, paired_speedup=paired)


def peak_memory(fn: Callable[[], Any], *, device: str | torch.device = "cpu") -> int:
    """Peak bytes of tensors allocated during one `fn()` call (see module doc for CPU vs CUDA)."""
    dev = torch.device(device)
    with torch.inference_mode():
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)
            base = torch.cuda.memory_allocated(dev)
            torch.cuda.reset_peak_memory_stats(dev)
            fn()
            torch.cuda.synchronize(dev)
            return int(torch.cuda.max_memory_allocated(dev) - base)
        return _cpu_peak(fn)


@contextmanager
def _quiet_stderr() -> Iterator[None]:
    """Silence the profiler backend's start/stop lines, which it writes straight to fd 2."""
    import sys

    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def _cpu_peak(fn: Callable[[], Any]) -> int:
    from torch.profiler import ProfilerActivity, profile

    with _quiet_stderr(), profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        fn()
    fd, path = tempfile.mkstemp(suffix=".json")
    os.close(fd)
    try:
        prof.export_chrome_trace(path)
        with open(path) as f:
            events = json.load(f).get("traceEvents", [])
    finally:
        os.unlink(path)
    peak = 0
    for e in events:
        if e.get("name") == "[memory]":
            args = e.get("args", {})
            if args.get("Device Type", 0) == 0:  # CPU
                peak = max(peak, int(args.get("Total Allocated", 0)))
    return peak

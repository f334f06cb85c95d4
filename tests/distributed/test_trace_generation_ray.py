"""A trace teacher writing as Ray Data work (`map_batches` over actors that each load the teacher)
produces the same traces as in this process: a tiny causal-LM teacher trained in trace mode by
the plug-in, greedy decoding, the same batches."""

from __future__ import annotations

import pytest
import torch

from raykd.data import load_splits
from raykd.task.causal_lm_plugin import CausalLMPlugin
from raykd.task.trace_generation import TraceSettings, generate_traces, keep_correct

pytestmark = pytest.mark.ray


@pytest.fixture(scope="module")
def teacher_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("trace-teacher") / "tiny"
    plugin = CausalLMPlugin(output="trace", max_target_len=400, max_new_tokens=8, eval_batch_size=8)
    plugin.train_teacher("synthetic:40", {"model": "tiny", "max_steps": 3}, out, log=lambda _line: None)
    return out


def test_ray_data_teacher_writes_the_same_traces_as_in_process(teacher_dir):
    import ray

    from raykd.distributed.traces import generate_traces_ray

    problems = load_splits("synthetic:40", seed=0)["train"][:7]
    settings = TraceSettings(max_new_tokens=20, batch_size=3)  # 3 batches, the last one short
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as a 1-CPU Ray actor computes
    try:
        local = generate_traces(teacher_dir, problems, settings)
    finally:
        torch.set_num_threads(threads)
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        distributed = generate_traces_ray(teacher_dir, problems, settings, actors=2, num_cpus=1)
    finally:
        ray.shutdown()
    assert [t.id for t in local] == [p.id for p in problems]
    assert distributed == local
    assert len({t.text for t in local}) > 1 and all(0 < t.tokens <= 20 for t in local)
    kept, rejected = keep_correct(local, problems)  # the correctness filter counts every rejection
    assert len(kept) + sum(rejected.values()) == len(problems)

"""Data parallelism that does not change the recipe: 1 and 2 workers (real torch.distributed
process groups over gloo, as Ray Train sets them up) take the same global batches and steps and
reach the same weights and losses; rank 0 alone evaluates and writes a chain's rounds."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp
from torch import nn

from raykd.method.config import ChainConfig
from raykd.training import FitConfig

DATA = "synthetic:400:7"
FIT = dict(epochs=1, max_steps=6, batch_size=16, lr=2e-3, patience=5, seed=3, eval_every=3)


def _quiet(model: nn.Module) -> nn.Module:
    """No dropout: the only randomness left is the seeded batch order, which every rank shares."""
    for m in model.modules():
        if isinstance(m, nn.Dropout):
            m.p = 0.0
        for name in ("dropout", "dropout_prob", "attention_dropout"):  # functional dropout (ours, transformers')
            if isinstance(getattr(m, name, None), float):
                setattr(m, name, 0.0)
    return model


def _load(teacher_dir: str, fresh: bool = False):
    """The tiny teacher with its task; `fresh`: its architecture with new seeded weights (a
    trained model's gradients are mostly noise, which Adam's first steps would amplify)."""
    from raykd.task.mwp_plugin import MWPPlugin

    loaded = MWPPlugin().load(Path(teacher_dir), DATA, seed=0)
    if fresh:
        torch.manual_seed(0)
        for m in loaded.model.modules():
            if hasattr(m, "reset_parameters"):
                m.reset_parameters()
    return _quiet(loaded.model), loaded.task, loaded.io


def _train_loss(model: nn.Module, task) -> float:
    """Mean task loss over the whole train split (one worker's view, no process group needed)."""
    model.eval()
    with torch.no_grad():
        losses = [float(task.outputs(model, b).loss) for b in task.batches("train", 64)]
    return sum(losses) / len(losses)


def _worker(rank: int, size: int, teacher_dir: str, out: str, mode: str) -> None:
    import torch.distributed as dist

    from raykd import replicas
    from raykd.training import fit

    torch.set_num_threads(1)
    if size > 1:
        dist.init_process_group("gloo", init_method=f"file://{out}/rendezvous", rank=rank, world_size=size)
    try:
        model, task, io = _load(teacher_dir, fresh=mode == "fit")
        report: dict = {"world": list(replicas.world())}
        if mode == "fit":
            result = fit(model, task, FitConfig(**FIT), progress=False)
            report.update(steps=result.steps, seen=result.train_examples, stopped=result.stopped,
                          history=len(result.history), accuracy=result.best_metrics["accuracy"],
                          identical=replicas.replicas_identical(model))
            if rank == 0:
                torch.save({k: v.detach().clone() for k, v in model.state_dict().items()}, f"{out}/weights.pt")
        else:
            from raykd.method.chain import Chain
            from raykd.method.measurement import make_measure

            cfg = ChainConfig(rounds=1, p_min=0.3, p_max=0.3, epochs_per_round=1, steps_per_round=4, batch_size=16,
                              lr=1e-3, calib_batches=2, latency_batch=4, latency_repeats=2, patience=2)
            record = Chain(task, model, cfg, io, Path(out) / f"chain-r{rank}", make_measure(task, repeats=2),
                           progress=False, log=lambda _m: None).run().records[-1]
            report.update(world_size=record["world_size"], has_speed="speedup" in record,
                          written=sorted(p.name for p in (Path(out) / f"chain-r{rank}").glob("*")))
        Path(out, f"report-{rank}.json").write_text(json.dumps(report))
    finally:
        if size > 1:
            dist.destroy_process_group()


def _run(teacher_dir: Path, out: Path, size: int, mode: str = "fit") -> list[dict]:
    out.mkdir(parents=True)
    if size == 1:
        _worker(0, 1, str(teacher_dir), str(out), mode)
    else:
        mp.spawn(_worker, args=(size, str(teacher_dir), str(out), mode), nprocs=size, join=True)
    return [json.loads((out / f"report-{r}.json").read_text()) for r in range(size)]


@pytest.fixture(scope="module")
def one_and_two(tiny_teacher_dir, tmp_path_factory):
    base = tmp_path_factory.mktemp("ddp")
    return _run(tiny_teacher_dir, base / "one", 1), _run(tiny_teacher_dir, base / "two", 2), base


def test_two_workers_train_the_same_recipe_as_one(one_and_two, tiny_teacher_dir):
    one, two, base = one_and_two
    assert one[0]["world"] == [1, 0] and [r["world"] for r in two] == [[2, 0], [2, 1]]
    # the same optimiser steps over the same global batches, whatever the worker count
    assert one[0]["steps"] == two[0]["steps"] == two[1]["steps"] == FIT["max_steps"]
    assert one[0]["seen"] == two[0]["seen"] == FIT["max_steps"] * FIT["batch_size"]
    assert all(r["identical"] for r in two)  # both ranks hold the very same weights after the round
    # rank 0 alone evaluated (two evaluations in 6 steps); rank 1 got its decision and metrics
    assert (two[0]["history"], two[1]["history"]) == (2, 0) and two[0]["accuracy"] == two[1]["accuracy"]
    a = torch.load(base / "one" / "weights.pt", weights_only=True)
    b = torch.load(base / "two" / "weights.pt", weights_only=True)
    start, task, _ = _load(str(tiny_teacher_dir), fresh=True)
    w0 = start.state_dict()
    drift = sum(float((a[k] - b[k]).double().norm() ** 2) for k in a) ** 0.5
    update = sum(float((a[k] - w0[k]).double().norm() ** 2) for k in a) ** 0.5
    assert update > 0 and drift / update < 1e-3, f"1 and 2 workers took different steps: |w1 - w2| / |w1 - w0| = {drift / update:g}"
    losses = []
    for state in (a, b):
        model, _, _ = _load(str(tiny_teacher_dir), fresh=True)
        model.load_state_dict(state)
        losses.append(_train_loss(model, task))
    assert losses[0] < _train_loss(start, task)  # the round trained
    assert losses[1] == pytest.approx(losses[0], rel=1e-5)

def test_only_rank_zero_measures_and_writes_a_chain_round(tiny_teacher_dir, tmp_path):
    reports = _run(tiny_teacher_dir, tmp_path / "chain", 2, mode="chain")
    assert [r["world_size"] for r in reports] == [2, 2]
    assert reports[0]["has_speed"] and not reports[1]["has_speed"]
    assert reports[0]["written"] == ["round-01"] and reports[1]["written"] == []


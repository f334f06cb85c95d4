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
            from raykd.method.round_cost import make_measure

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



# --- every helper of raykd.replicas under a real 2-process gloo group --------------------------


def _helpers_worker(rank: int, size: int, out: str) -> None:
    """Each helper on a real gloo group; rank 0's facts and rank 1's are compared by the test."""
    import torch.distributed as dist

    from raykd import replicas

    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{out}/rendezvous", rank=rank, world_size=size)
    try:
        torch.manual_seed(100 + rank)  # unlike weights on each rank
        model = nn.Linear(3, 2)
        report: dict = {"world": list(replicas.world()), "device": str(replicas.collective_device()),
                        "total": replicas.total(rank + 1.5), "from_main": replicas.from_main({"rank": rank, "x": [rank]}),
                        "identical_before": replicas.replicas_identical(model)}
        replicas.broadcast_weights(model)
        report["identical_after"] = replicas.replicas_identical(model)
        report["weight"] = model.weight.detach().flatten().tolist()
        if rank == 0:  # written before the barrier: rank 1 must see it after
            Path(out, "before-barrier").write_text("0")
        replicas.barrier()
        report["saw_rank0_file"] = Path(out, "before-barrier").exists()
        Path(out, f"report-{rank}.json").write_text(json.dumps(report))
    finally:
        dist.destroy_process_group()


def test_every_replicas_helper_under_a_real_two_process_gloo_group(tmp_path):
    mp.spawn(_helpers_worker, args=(2, str(tmp_path)), nprocs=2, join=True)
    r0, r1 = (json.loads((tmp_path / f"report-{r}.json").read_text()) for r in range(2))
    assert (r0["world"], r1["world"]) == ([2, 0], [2, 1])
    assert r0["device"] == r1["device"] == "cpu"  # gloo reduces CPU tensors
    assert r0["total"] == r1["total"] == 1.5 + 2.5
    assert r0["from_main"] == r1["from_main"] == {"rank": 0, "x": [0]}
    assert not r0["identical_before"] and not r1["identical_before"]  # different seeds, and both ranks know it
    assert r0["identical_after"] and r1["identical_after"] and r0["weight"] == r1["weight"]
    torch.manual_seed(100)
    assert r0["weight"] == nn.Linear(3, 2).weight.detach().flatten().tolist()  # rank 0's weights won
    assert r1["saw_rank0_file"]  # (wrap_ddp under a real 2-process group: test_two_workers_train_the_same_recipe_as_one)


def test_every_replicas_helper_runs_its_collective_on_a_one_process_group(tmp_path, monkeypatch):
    """A world-size-1 group (what bench/gpu_check.py starts under NCCL) goes through every
    collective, and each helper is still the identity there."""
    import torch.distributed as dist

    from raykd import replicas

    names = ("all_reduce", "broadcast", "broadcast_object_list", "barrier", "all_gather")
    calls = []
    for name in names:  # the real collectives, counted
        real = getattr(dist, name)
        monkeypatch.setattr(dist, name, lambda *a, _real=real, _name=name, **k: (calls.append(_name), _real(*a, **k))[1])
    dist.init_process_group("gloo", init_method=f"file://{tmp_path}/rendezvous", rank=0, world_size=1)
    try:
        model = nn.Linear(2, 2)
        before = {k: v.clone() for k, v in model.state_dict().items()}
        assert replicas.world() == (1, 0) and replicas.total(2.5) == 2.5
        assert replicas.from_main({"a": [1, 2]}) == {"a": [1, 2]}
        replicas.broadcast_weights(model)
        replicas.barrier()
        assert replicas.replicas_identical(model)
        assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    finally:
        dist.destroy_process_group()
    assert set(calls) == set(names)


# --- each helper's tensors on the device its backend requires --------------------------------

_ASKED = "_raykd_asked_device"


def _asked(t: torch.Tensor) -> torch.device:
    """The device a tensor was made for (see _CudaOnCpu), else where it lies."""
    return getattr(t, _ASKED, t.device)


class _CudaOnCpu(torch.overrides.TorchFunctionMode):
    """A device-recording wrapper for a CPU-only torch: a tensor asked for on a CUDA device
    (`device=` of a factory, `.to(...)`) is made on the CPU instead and remembers the device it was
    asked for; a tensor made from one (`empty_like`, `contiguous`, indexing) inherits it."""

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = dict(kwargs or {})
        asked = None
        device = kwargs.get("device")
        if device is not None and torch.device(device).type == "cuda":
            asked, kwargs["device"] = torch.device(device), "cpu"
            if getattr(func, "__name__", "") == "to":
                kwargs["copy"] = True
        if getattr(func, "__name__", "") == "to":
            args = list(args)
            for i, a in enumerate(args[1:], 1):
                if isinstance(a, (str, torch.device)) and torch.device(a).type == "cuda":
                    asked, args[i] = torch.device(a), torch.device("cpu")
                    kwargs["copy"] = True  # a move to another device is always a new tensor
        if asked is None:
            for a in list(args) + list(kwargs.values()):
                if isinstance(a, torch.Tensor) and hasattr(a, _ASKED):
                    asked = getattr(a, _ASKED)
                    break
        result = func(*args, **kwargs)
        if isinstance(result, torch.Tensor) and asked is not None:
            if args and result is args[0]:  # an in-place op or a no-op .to(): the tensor keeps its own
                return result
            setattr(result, _ASKED, asked)
        return result


@pytest.fixture
def fake_world(monkeypatch):
    """A two-rank world (this process rank 0) with a chosen backend name and recording
    collectives: each call notes the device of the tensors (or the `device=` / `device_ids=`) it
    was handed, then does what a lone rank 0 would see (the values are not the point here)."""
    import torch.distributed as dist

    calls: list[tuple[str, str]] = []

    def note(name, where):
        calls.append((name, str(where)))

    def all_gather(outs, t, *a, **k):
        note("all_gather", _asked(t))
        for o in outs:
            note("all_gather out", _asked(o))
            o.copy_(t)

    recorders = {
        "all_reduce": lambda t, *a, **k: note("all_reduce", _asked(t)),
        "broadcast": lambda t, *a, **k: note("broadcast", _asked(t)),
        "broadcast_object_list": lambda box, src=0, group=None, device=None: note("broadcast_object_list", device),
        "barrier": lambda *a, device_ids=None, **k: note("barrier", f"cuda:{device_ids[0]}" if device_ids else "cpu"),
        "all_gather": all_gather,
        "all_gather_object": lambda outs, obj, *a, **k: note("all_gather_object", "unset (torch picks)"),
    }
    for name, fn in recorders.items():
        monkeypatch.setattr(dist, name, fn)
    monkeypatch.setattr(dist, "is_initialized", lambda: True)
    monkeypatch.setattr(dist, "get_world_size", lambda group=None: 2)
    monkeypatch.setattr(dist, "get_rank", lambda group=None: 0)
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 1)  # a rank-0 guess would say cuda:0

    def use(backend: str) -> list[tuple[str, str]]:
        monkeypatch.setattr(dist, "get_backend", lambda group=None: backend)
        return calls

    return use


@pytest.mark.parametrize(
    "backend, scalars, weights",
    [
        ("nccl", "cuda:1", "cuda:1"),  # Ray Train's backend on GPU workers: CUDA tensors only
        ("gloo", "cpu", "cpu"),  # on CPU workers
        ("cpu:gloo,cuda:nccl", "cpu", "cpu"),  # mixed: each tensor to its device's backend; CPU weights stay
        ("cuda:nccl", "cuda:1", "cuda:1"),
    ],
)
def test_each_replicas_helper_builds_its_tensors_on_the_backends_device(fake_world, backend, scalars, weights):
    """Each helper hands its collective tensors (and `device=` / `device_ids=`) on the device the
    backend requires: the current CUDA device (patched to 1) under NCCL, the CPU under gloo.

    What it proves: the helpers ask for the right device, whatever the backend name says, and
    CPU weights under NCCL travel through a copy on the CUDA device, coming back in place. What it
    cannot prove: that NCCL itself accepts them (this torch has no CUDA; the CUDA tensors are made
    on the CPU by a recording wrapper), nor anything that needs two GPUs (one device per rank).
    `bench/gpu_check.py --device cuda` runs the same helpers under a real NCCL group."""
    from raykd import replicas

    calls = fake_world(backend)
    model = nn.Linear(3, 2)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with _CudaOnCpu():
        assert replicas.total(1.5) == 1.5
        assert replicas.from_main({"stop": "epochs"}) == {"stop": "epochs"}
        replicas.barrier()
        assert replicas.replicas_identical(model)
        replicas.broadcast_weights(model)
    got = {}
    for name, where in calls:
        got.setdefault(name, set()).add(where)
    assert got == {"all_reduce": {scalars}, "broadcast_object_list": {scalars}, "barrier": {scalars},
                   "all_gather": {scalars}, "all_gather out": {scalars}, "broadcast": {weights}}
    assert all(p.device.type == "cpu" and not hasattr(p, _ASKED) for p in model.state_dict().values())  # stays put
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_ddp_refuses_a_cpu_model_under_nccl_with_one_line(fake_world):
    from raykd import replicas

    fake_world("nccl")
    with pytest.raises(RuntimeError, match=r"model is on cpu, but the nccl process group takes only cuda tensors"):
        replicas.wrap_ddp(nn.Linear(2, 2))


@pytest.mark.parametrize(
    "backend, prefer, expected",
    [
        ("nccl", None, "cuda:1"), ("nccl", "cpu", "cuda:1"), ("gloo", None, "cpu"), ("gloo", "cuda:0", "cpu"),
        ("cpu:gloo,cuda:nccl", None, "cpu"), ("cpu:gloo,cuda:nccl", "cuda:1", "cuda:1"),
        ("cpu:gloo,cuda:nccl", "cpu", "cpu"), ("cuda:nccl", "cpu", "cuda:1"),
    ],
)
def test_collective_device_follows_the_backend(fake_world, backend, prefer, expected):
    from raykd import replicas

    fake_world(backend)
    assert str(replicas.collective_device(torch.device(prefer) if prefer else None)) == expected

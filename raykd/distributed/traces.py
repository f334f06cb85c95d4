"""Source (a) of traces as Ray work: the teacher writes traces over the data with Ray Data.

The problems are cut into the same batches as in-process (`raykd.task.trace_generation.batches_of`);
each row of the dataset is one batch, and `map_batches` hands rows to a pool of actors that each
load the teacher once (`TraceWriter`), with the CPUs/GPUs asked for. Greedy decoding of the same
batch gives the same tokens, so the traces equal `generate_traces`' in this process.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from raykd.data.problem import Problem
from raykd.task.trace_generation import GeneratedTrace, TraceSettings, TraceWriter, batches_of, load_teacher


class _TraceActor:
    """Loads the teacher once per actor; writes the traces of each batch index it is handed."""

    def __init__(self, teacher: str, problems: Sequence[Problem], settings: TraceSettings, device: str) -> None:
        model, tokenizer = load_teacher(teacher)
        self.writer = TraceWriter(model.to(device), tokenizer, settings)
        self.batches = batches_of(problems, settings.batch_size)

    def __call__(self, rows: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        out: dict[str, list[Any]] = {"batch": [], "position": [], "id": [], "text": [], "tokens": [], "correct": []}
        with torch.inference_mode():
            for index in rows["batch"].tolist():
                for position, trace in enumerate(self.writer.write(self.batches[index])):
                    for key, value in (("batch", index), ("position", position), ("id", trace.id), ("text", trace.text),
                                       ("tokens", trace.tokens), ("correct", trace.correct)):
                        out[key].append(value)
        return {"batch": np.array(out["batch"], dtype=np.int64), "position": np.array(out["position"], dtype=np.int64),
                "id": np.array(out["id"], dtype=object), "text": np.array(out["text"], dtype=object),
                "tokens": np.array(out["tokens"], dtype=np.int64), "correct": np.array(out["correct"], dtype=bool)}


def generate_traces_ray(teacher: str | Path, problems: Sequence[Problem], settings: TraceSettings | None = None, *,
                        actors: int = 1, num_cpus: float = 1, num_gpus: float = 0) -> list[GeneratedTrace]:
    """One trace per problem, in order, written on the Ray cluster this process is connected to
    (a local one is started if none is): `actors` teacher copies, each with `num_cpus` CPUs and
    `num_gpus` GPUs (on a GPU when it has one). `teacher` is a directory every node can read, or a
    hub name."""
    import ray  # deferred: Ray (seconds), once traces are generated

    settings = settings or TraceSettings()
    n = len(batches_of(problems, settings.batch_size))
    if n == 0:
        return []
    dataset = ray.data.from_items([{"batch": i} for i in range(n)], override_num_blocks=n)
    written = dataset.map_batches(
        _TraceActor, batch_size=1, concurrency=actors, num_cpus=num_cpus, num_gpus=num_gpus,
        fn_constructor_kwargs={"teacher": str(teacher), "problems": list(problems), "settings": settings,
                               "device": "cuda" if num_gpus > 0 else "cpu"},
    )
    rows = sorted(written.take_all(), key=lambda r: (int(r["batch"]), int(r["position"])))
    return [GeneratedTrace(str(r["id"]), str(r["text"]), int(r["tokens"]), bool(r["correct"])) for r in rows]

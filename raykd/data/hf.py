"""Problems <-> Hugging Face `datasets.Dataset` (Arrow columns), for tokenisation with `.map`.

`datasets` is imported inside the functions: machines that only train or evaluate may lack it.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from raykd.data.problem import Problem

if TYPE_CHECKING:
    import datasets

COLUMNS: tuple[str, ...] = (
    "id",
    "text",
    "numbers",
    "number_spans",
    "equation",
    "answer",
    "complexity",
    "source",
    "answer_text",
    "meta",
)
"""`meta` is a JSON string (its keys differ between data sets, which Arrow columns cannot)."""


def _features() -> datasets.Features:
    from datasets import Features, Value  # deferred: datasets (~1 s); `raykd` start-up imports raykd.data
    from datasets import Sequence as Seq

    return Features(
        {
            "id": Value("string"),
            "text": Value("string"),
            "numbers": Seq(Value("float64")),
            "number_spans": Seq(Seq(Value("int32"), length=2)),
            "equation": Seq(Value("string")),
            "answer": Value("float64"),
            "complexity": Value("string"),
            "source": Value("string"),
            "answer_text": Value("string"),
            "meta": Value("string"),
        }
    )


def to_hf_dataset(problems: Sequence[Problem]) -> datasets.Dataset:
    """A `datasets.Dataset` with one row per problem and the columns in `COLUMNS`."""
    from datasets import Dataset  # deferred: datasets (~1 s); `raykd` start-up imports raykd.data

    columns: dict[str, list[Any]] = {name: [] for name in COLUMNS}
    for p in problems:
        columns["id"].append(p.id)
        columns["text"].append(p.text)
        columns["numbers"].append(list(p.numbers))
        columns["number_spans"].append([list(span) for span in p.number_spans])
        columns["equation"].append(list(p.equation))
        columns["answer"].append(p.answer)
        columns["complexity"].append(p.complexity)
        columns["source"].append(p.source)
        columns["answer_text"].append(p.answer_text)
        columns["meta"].append(json.dumps(p.meta, ensure_ascii=False, sort_keys=True))
    return Dataset.from_dict(columns, features=_features())


def from_hf_dataset(dataset: datasets.Dataset) -> list[Problem]:
    """The problems of a dataset made by `to_hf_dataset` (extra columns are ignored)."""
    return [
        Problem(
            id=row["id"],
            text=row["text"],
            numbers=tuple(row["numbers"]),
            number_spans=tuple((int(a), int(b)) for a, b in row["number_spans"]),
            equation=tuple(row["equation"]),
            answer=row["answer"],
            complexity=row["complexity"],
            source=row["source"],
            answer_text=row["answer_text"],
            meta=json.loads(row["meta"]),
        )
        for row in dataset
    ]

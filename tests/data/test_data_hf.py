from __future__ import annotations

import json

import pytest

from raykd.data.hf import COLUMNS, from_hf_dataset, to_hf_dataset
from raykd.data.problem import Problem
from raykd.data.synthetic import generate_problems

pytest.importorskip("datasets")


def test_round_trip_keeps_everything() -> None:
    problems = generate_problems(30, seed=2) + [
        Problem(
            id="x",
            text="无数字",
            numbers=(),
            number_spans=(),
            equation=(),
            answer=0.5,
            complexity="simple",
            source="gsm8k",
            answer_text="0.5",
            meta={"answer_only": True, "post_op": None, "solution_type": {"#text": "A"}},
        ),
    ]
    dataset = to_hf_dataset(problems)
    assert dataset.column_names == list(COLUMNS) and len(dataset) == 31
    back = from_hf_dataset(dataset)
    assert back == problems and [p.meta for p in back] == [p.meta for p in problems]


def test_columns_are_arrow_typed() -> None:
    dataset = to_hf_dataset(generate_problems(3, seed=1))
    row = dataset[0]
    assert isinstance(row["numbers"], list) and all(isinstance(v, float) for v in row["numbers"])
    assert all(len(span) == 2 and all(isinstance(i, int) for i in span) for span in row["number_spans"])
    assert isinstance(row["equation"], list) and isinstance(json.loads(row["meta"]), dict)
    assert str(dataset.features["answer"].dtype) == "float64"
    assert len(to_hf_dataset([])) == 0

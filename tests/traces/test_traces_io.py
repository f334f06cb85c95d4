"""Traces files: a round trip keeps every field; a malformed row is one DataError line naming the
file and line; source (b) turns GSM8K's annotated solutions into traces that reach their answer."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from raykd.data.gsm8k import gsm8k_problem
from raykd.errors import DataError
from raykd.traces.derive import derive_trace
from raykd.traces.format import parse_trace
from raykd.traces.io import (
    TraceRecord,
    gsm8k_trace,
    read_gsm8k_traces,
    read_traces,
    write_traces,
)
from raykd.traces.prune import prune_traces, reaches_gold

GOOD = {"id": "p1", "trace": "12 - 5 = 7\nAnswer: 7", "source": "teacher", "strength": 0.5, "model": "HuggingFaceTB/SmolLM2-135M-Instruct"}


def test_round_trip(tmp_path: Path, problem) -> None:
    p = problem((12.0, 5.0), ("-", "N0", "N1"), 7.0)
    records = [
        TraceRecord("p0", derive_trace(p, 1), "gold-equation"),
        TraceRecord("p1", parse_trace("12 - 5 = 7\nAnswer: 7"), "teacher", 0.75, "some/model"),
        TraceRecord("p2", parse_trace("Été: 3 × 4 = 12\nAnswer: 12"), "file", 1),
    ]
    path = write_traces(tmp_path / "sub" / "traces.jsonl", records)
    assert read_traces(path) == records
    assert [json.loads(line)["source"] for line in path.read_text().splitlines()] == ["gold-equation", "teacher", "file"]
    assert not [f for f in path.parent.iterdir() if f.name != "traces.jsonl"]  # no temporary left behind


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("{not json", "not JSON"),
        ("[1, 2]", "not an object: row is list"),
        (json.dumps({k: v for k, v in GOOD.items() if k != "id"}), "missing field 'id'"),
        (json.dumps({k: v for k, v in GOOD.items() if k != "trace"}), "missing field 'trace'"),
        (json.dumps({**GOOD, "id": ""}), "id must be a non-empty string"),
        (json.dumps({**GOOD, "id": 7}), "id must be a non-empty string"),
        (json.dumps({**GOOD, "trace": "12 - 5 = 7"}), "no 'Answer:' line"),
        (json.dumps({**GOOD, "trace": ["12 - 5 = 7"]}), "trace must be a string"),
        (json.dumps({**GOOD, "source": "oracle"}), "source must be one of"),
        (json.dumps({**GOOD, "strength": 1.5}), "strength must be a number in [0, 1]"),
        (json.dumps({**GOOD, "strength": True}), "strength must be a number in [0, 1]"),
        (json.dumps({**GOOD, "strength": "high"}), "strength must be a number in [0, 1]"),
        (json.dumps({**GOOD, "model": ""}), "model must be a non-empty string or null"),
        (json.dumps({**GOOD, "extra": 1}), "unknown field 'extra'"),
        ("[" * 100000, "not JSON"),
    ],
)
def test_a_malformed_row_is_one_line_naming_file_and_line(tmp_path: Path, line: str, message: str) -> None:
    path = tmp_path / "t.jsonl"
    path.write_text(json.dumps(GOOD) + "\n\n" + line + "\n")
    with pytest.raises(DataError) as info:
        read_traces(path)
    text = str(info.value)
    assert text.startswith(f"{path}:3: ") and message in text and "\n" not in text and len(text) <= 600


@pytest.mark.parametrize(("content", "message"), [(None, "traces file not found"), ("", "no traces"), ("\n \n", "no traces"),
                                                  (b"\xff\xfe", "cannot read")])
def test_missing_empty_or_unreadable_file(tmp_path: Path, content, message: str) -> None:
    path = tmp_path / "t.jsonl"
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif content is not None:
        path.write_text(content)
    with pytest.raises(DataError, match=message):
        read_traces(path)


GSM8K_ROW = {
    "question": "Natalia sold clips to 48 of her friends in April, and then she sold half as many clips in May. "
                "How many clips did Natalia sell altogether in April and May?",
    "answer": "Natalia sold 48/2 = <<48/2=24>>24 clips in May.\n"
              "Natalia sold <<48+24=72>>72 clips altogether in April and May.\n#### 72",
}


def test_gsm8k_solutions_become_traces_that_reach_their_answer(tmp_path: Path) -> None:
    trace = gsm8k_trace(GSM8K_ROW["answer"])
    assert trace.steps == ("Natalia sold 48/2 = 24 clips in May.", "Natalia sold 48+24 = 72 clips altogether in April and May.")
    assert trace.answer == "72"
    problem = gsm8k_problem(GSM8K_ROW, 0)
    assert reaches_gold(trace, problem) is None
    pruned = prune_traces([trace], [problem], 1.0)
    assert pruned.traces[0].steps == ("48/2 = 24", "48+24 = 72") and pruned.pruned == [True]
    path = tmp_path / "gsm8k.jsonl"
    path.write_text(json.dumps(GSM8K_ROW) + "\n" + json.dumps({**GSM8K_ROW, "answer": "1,000 + 200 = <<1000+200=1200>>1,200\n#### 1,200"}) + "\n")
    records = read_gsm8k_traces(path)
    assert [r.id for r in records] == ["gsm8k-0", "gsm8k-1"] and {r.source for r in records} == {"file"}
    assert records[1].trace.answer == "1200"


@pytest.mark.parametrize(("answer", "message"), [("No final line", "no final answer"), ("x\n#### lots", "unparseable final answer")])
def test_gsm8k_rows_without_a_final_answer(tmp_path: Path, answer: str, message: str) -> None:
    path = tmp_path / "gsm8k.jsonl"
    path.write_text(json.dumps({"question": "q", "answer": answer}) + "\n")
    with pytest.raises(DataError, match=f"row 0: {message}"):
        read_gsm8k_traces(path)

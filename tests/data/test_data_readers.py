from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest
from data_fixtures import (
    ASDIV_ROWS,
    GSM8K_ROWS,
    MATH23K_ROWS,
    MAWPS_ROWS,
    SVAMP_ROWS,
    write_json,
    write_jsonl,
)

from raykd.data.answers import equation_reproduces_answer
from raykd.data.check import check_report
from raykd.data.readers import DataSpec, load_problems, load_splits, parse_spec
from raykd.errors import DataError

ASDIV_XML = """<?xml version="1.0" encoding="UTF-8"?>
<Machine-Reading-Corpus-File>
<ProblemSet>
{problems}
</ProblemSet>
</Machine-Reading-Corpus-File>
"""


def _xml_problem(row: dict) -> str:
    solution = row["Solution-Type"]
    if isinstance(solution, dict):
        solution_xml = f'<Solution-Type Subgoal-1="{solution["@Subgoal-1"]}">{solution["#text"]}</Solution-Type>'
    else:
        solution_xml = f"<Solution-Type>{solution}</Solution-Type>"
    return (
        f'<Problem ID="{row["@ID"]}" Grade="{row["@Grade"]}" Source="{row["@Source"]}">'
        f"<Body>{row['Body']}</Body><Question>{row['Question']}</Question>{solution_xml}"
        f"<Answer>{row['Answer']}</Answer><Formula>{row['Formula']}</Formula></Problem>"
    )


def _all_consistent(result) -> bool:  # type: ignore[no-untyped-def]
    return not result.inconsistent and all(equation_reproduces_answer(p) for p in result.problems if p.equation)


# ---- each format ------------------------------------------------------------------------------


def test_asdiv_json(tmp_path: Path) -> None:
    result = load_problems(f"asdiv-a:{write_json(tmp_path / 'a.json', ASDIV_ROWS)}")
    assert [p.id for p in result.problems] == ["a-1", "a-2", "a-3", "a-4"]
    words, floor, ceil, nested = result.problems
    assert words.text.startswith("Cody had") and words.text.endswith("to start with?")
    assert words.numbers == (5.0, 7.0) and words.equation == ("+", "N0", "N1") and words.answer == 12.0
    assert words.answer_text == "12 (marbles)" and words.meta["post_op"] is None
    assert floor.equation == ("/", "N0", "N1") and floor.answer == 15.0
    assert floor.meta["post_op"] == "floor" and floor.meta["exact_answer"] == 15.5
    assert (
        ceil.answer == 14.0 and ceil.meta["post_op"] == "ceil" and ceil.meta["exact_answer"] == pytest.approx(158 / 12)
    )
    assert nested.equation == ("*", "+", "N0", "N1", "N2") and nested.complexity == "medium"
    assert nested.meta["solution_type"] == {"@Subgoal-1": "Addition", "#text": "Multiplication"}
    assert result.source.startswith("asdiv-a:") and not result.skipped and _all_consistent(result)
    assert check_report(result)["post_ops"] == {"floor": 1, "ceil": 1}


def test_asdiv_xml_matches_json(tmp_path: Path) -> None:
    xml = tmp_path / "ASDiv.xml"
    xml.write_text(ASDIV_XML.format(problems="\n".join(_xml_problem(r) for r in ASDIV_ROWS)), encoding="utf-8")
    from_xml = load_problems(str(xml))  # detected from the content
    from_json = load_problems(f"asdiv-a:{write_json(tmp_path / 'a.json', ASDIV_ROWS)}")
    assert from_xml.problems == from_json.problems
    assert [p.meta for p in from_xml.problems] == [p.meta for p in from_json.problems]


def test_math23k_json_and_original_format_agree(tmp_path: Path) -> None:
    as_list = load_problems(f"math23k:{write_json(tmp_path / 'm.json', MATH23K_ROWS)}")
    original = tmp_path / "math23k_original.json"  # objects one after another, each over several lines
    original.write_text("\n".join(json.dumps(r, ensure_ascii=False, indent=4) for r in MATH23K_ROWS), encoding="utf-8")
    detected = load_problems(str(original))
    assert detected.problems == as_list.problems and detected.source.startswith("math23k:")
    bags, clothes, mixed, circle = as_list.problems
    assert bags.numbers == (280.0, 0.25, 0.75) and bags.equation == ("*", "/", "N0", "N1", "N2")
    assert clothes.numbers == (0.3, 120.0, 0.06)
    assert clothes.equation == ("/", "N1", "-", "-", "1", "N2", "-", "1", "N0") and clothes.complexity == "complex"
    assert mixed.numbers == (1.5, pytest.approx(1 / 3)) and mixed.equation == ("*", "N0", "-", "1", "N1")
    assert circle.equation == ("*", "3.14", "^", "N0", "N0")
    assert bags.meta["segmented_text"].startswith("一 共有")
    assert _all_consistent(as_list)


def test_math23k_answer_forms(tmp_path: Path) -> None:
    rows = [
        {
            "id": "f",
            "original_text": "甲有7个，乙有15个，甲是乙的几分之几？",
            "equation": "x=7/15",
            "ans": "((7)/(15))",
        },
        {"id": "p", "original_text": "100个里有25个坏的，坏的占百分之几？", "equation": "x=25/100", "ans": "25%"},
        {"id": "m", "original_text": "79除以4是多少？", "equation": "x=79/4", "ans": "19((3)/(4))"},
        {"id": "u", "original_text": "速度是80千米每小时", "equation": "x=80千米/小时", "ans": "80"},
    ]
    result = load_problems(f"math23k:{write_json(tmp_path / 'm.json', rows)}")
    assert [p.answer for p in result.problems] == [pytest.approx(7 / 15), 0.25, 19.75]
    assert _all_consistent(result)
    assert [(s.index, s.id) for s in result.skipped] == [(3, "u")]
    assert result.skipped[0].reason.startswith("unusable equation: 'x=80千米/小时'")


def test_mawps(tmp_path: Path) -> None:
    result = load_problems(str(write_json(tmp_path / "mawps.json", MAWPS_ROWS)))
    assert result.source.startswith("mawps:")
    waiter, pie, car = result.problems
    assert waiter.id == "1" and waiter.equation == ("/", "-", "N0", "N1", "N2") and waiter.answer == 2.0
    assert pie.equation == ("+", "N1", "N0") and pie.answer == 58.0
    assert car.numbers == (12590.0, 20.0)  # English percentages keep their written value
    assert car.equation == ("/", "N0", "-", "1", "*", "N1", "0.01")
    assert _all_consistent(result)


def test_svamp_original_and_masked_variants(tmp_path: Path) -> None:
    result = load_problems(str(write_json(tmp_path / "SVAMP.json", SVAMP_ROWS)))
    assert result.source.startswith("svamp:")
    dvd, marbles = result.problems
    assert dvd.text.endswith("on each pack How much do you have to pay to buy each pack?")
    assert dvd.equation == ("-", "N0", "N1") and marbles.equation == ("-", "+", "N0", "N1", "N2")
    assert marbles.meta["type"] == "Subtraction" and _all_consistent(result)
    masked = [
        {**SVAMP_ROWS[1], "Equation": "( ( number0 + number1 ) - number2 )", "Numbers": "32.0 38.0 23.0"},
        {**SVAMP_ROWS[1], "ID": "bad", "Equation": "( number0 + number5 )", "Numbers": "32.0 38.0 23.0"},
    ]
    variant = load_problems(f"svamp:{write_json(tmp_path / 'masked.json', masked)}")
    assert variant.problems == [marbles]
    assert variant.skipped[0].id == "bad" and "missing number" in variant.skipped[0].reason


def test_gsm8k_annotations_and_answer_only(tmp_path: Path) -> None:
    result = load_problems(str(write_jsonl(tmp_path / "gsm8k.jsonl", GSM8K_ROWS)))
    assert result.source.startswith("gsm8k:")
    clips, weng, cows = result.problems
    assert clips.id == "gsm8k-0" and clips.equation == ("+", "N0", "/", "N0", "2") and clips.answer == 72.0
    assert weng.equation == ("*", "/", "N0", "60", "N1") and weng.answer == 10.0
    assert cows.equation == () and cows.meta["answer_only"] is True and cows.answer == 4800.0
    assert cows.numbers == (1200.0,)
    report = check_report(result)
    assert report["with_equation"] == 2 and report["answer_only"] == 1 and report["consistent"] == 1.0


def test_gsm8k_row_without_final_answer_is_skipped(tmp_path: Path) -> None:
    rows = [GSM8K_ROWS[0], {"question": "How many?", "answer": "No marker here."}]
    result = load_problems(f"gsm8k:{write_jsonl(tmp_path / 'g.jsonl', rows)}")
    assert len(result.problems) == 1
    assert result.skipped[0].index == 1 and result.skipped[0].reason == "missing field: final answer after '####'"


# ---- specs, directories and splits -------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("asdiv-a:/x/train.json", DataSpec("asdiv-a", Path("/x/train.json"))),
        ("math23k:rel/dev.json", DataSpec("math23k", Path("rel/dev.json"))),
        ("mawps:/d", DataSpec("mawps", Path("/d"))),
        ("svamp:/s.json", DataSpec("svamp", Path("/s.json"))),
        ("gsm8k:/g.jsonl", DataSpec("gsm8k", Path("/g.jsonl"))),
        ("synthetic:100", DataSpec("synthetic", n=100, seed=0)),
        ("synthetic:100:7", DataSpec("synthetic", n=100, seed=7)),
        ("synthetic:6/3/3:2", DataSpec("synthetic", n=12, seed=2, sizes=(6, 3, 3))),
        ("/some/file.json", DataSpec(None, Path("/some/file.json"))),
    ],
)
def test_parse_spec(spec: str, expected: DataSpec) -> None:
    assert parse_spec(spec) == expected


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("", "empty data spec"),
        ("synthetic:", "bad synthetic spec"),
        ("synthetic:ten", "bad synthetic spec"),
        ("synthetic:0", "N must be positive"),
        ("synthetic:5:1:2", "bad synthetic spec"),
        ("synthetic:5/5", "bad synthetic spec"),
        ("synthetic:5/0/5", "every split size must be positive"),
        ("synthetic:60000/30000/30000", "at most 100,000 problems"),
        ("mawps:", "names no path"),
        ("svampy:/x.json", "unknown data format 'svampy'"),
    ],
)
def test_parse_spec_errors(spec: str, message: str) -> None:
    with pytest.raises(DataError, match=message):
        parse_spec(spec)


def _split_dir(tmp_path: Path, rows: list[dict], names: list[str]) -> Path:
    directory = tmp_path / "splits"
    directory.mkdir()
    for i, name in enumerate(names):
        write_json(directory / name, [{**r, "id": f"{name}-{i}-{j}"} for j, r in enumerate(rows)])
    return directory


def test_load_splits_uses_split_files(tmp_path: Path) -> None:
    directory = _split_dir(tmp_path, MAWPS_ROWS, ["train.json", "dev.json", "test.json"])
    splits = load_splits(str(directory))
    assert {k: [p.id.split("-")[0] for p in v] for k, v in splits.items()} == {
        "train": ["train.json"] * 3,
        "valid": ["dev.json"] * 3,
        "test": ["test.json"] * 3,
    }
    everything = load_problems(str(directory))
    assert len(everything.problems) == 9 and everything.source.startswith("mawps:")


def test_load_splits_train_plus_valid_makes_valid_the_test_split(tmp_path: Path) -> None:
    rows = [{**MAWPS_ROWS[0], "id": i} for i in range(18)]
    directory = tmp_path / "d"
    directory.mkdir()
    write_json(directory / "train.json", rows)
    write_json(directory / "valid.json", MAWPS_ROWS)
    splits = load_splits(str(directory), seed=3)
    assert [p.id for p in splits["test"]] == ["1", "2", "3"]
    assert (len(splits["train"]), len(splits["valid"])) == (16, 2)  # 8:1 carved out of train
    assert {p.id for p in splits["train"]} | {p.id for p in splits["valid"]} == {str(i) for i in range(18)}


def test_load_splits_single_file_uses_the_ratio_table(tmp_path: Path) -> None:
    rows = [{**MATH23K_ROWS[i % 4], "id": str(i)} for i in range(40)]
    splits = load_splits(f"math23k:{write_json(tmp_path / 'm.json', rows)}", seed=1)
    assert {k: len(v) for k, v in splits.items()} == {"train": 28, "valid": 4, "test": 8}  # 7:1:2
    assert load_splits(f"math23k:{tmp_path / 'm.json'}", seed=1) == splits
    ids = [p.id for v in splits.values() for p in v]
    assert sorted(ids) == sorted(str(i) for i in range(40))


def test_load_splits_synthetic() -> None:
    splits = load_splits("synthetic:90:4", seed=2)
    assert {k: len(v) for k, v in splits.items()} == {"train": 72, "valid": 9, "test": 9}
    for part in splits.values():
        assert Counter(p.complexity for p in part) == Counter(
            {lvl: len(part) // 3 for lvl in ("simple", "medium", "complex")}
        )


def test_synthetic_split_sizes_are_exact_stratified_and_share_no_problem() -> None:
    splits = load_splits("synthetic:640/1000/1000", seed=5)
    assert {k: len(v) for k, v in splits.items()} == {"train": 640, "valid": 1000, "test": 1000}
    for part in splits.values():
        counts = Counter(p.complexity for p in part)
        assert max(counts.values()) - min(counts.values()) <= 1, counts
    texts = [p.text for part in splits.values() for p in part]
    assert len(set(texts)) == len(texts)  # seed 0 generates one repeated text among these: dropped
    assert load_splits("synthetic:640/1000/1000", seed=9) == splits  # the spec's seed decides, not the split seed
    assert load_splits("synthetic:640/1000/1000:1")["train"] != splits["train"]
    whole = load_problems("synthetic:640/1000/1000")  # what `raykd data check` shows: the same problems
    assert [p.id for p in whole.problems] == [p.id for part in splits.values() for p in part]


def test_load_problems_synthetic() -> None:
    result = load_problems("synthetic:12:5")
    assert len(result.problems) == 12 and result.source == "synthetic:12:5" and not result.inconsistent


def test_directory_with_split_files_but_no_train_is_an_error(tmp_path: Path) -> None:
    directory = _split_dir(tmp_path, MAWPS_ROWS, ["valid.json", "test.json"])
    with pytest.raises(DataError, match="no train file"):
        load_splits(str(directory))


# ---- bad input --------------------------------------------------------------------------------


def _one_line(exc: pytest.ExceptionInfo[DataError]) -> str:
    message = str(exc.value)
    assert "\n" not in message
    return message


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="data file not found") as exc:
        load_problems(str(tmp_path / "nope.json"))
    assert str(tmp_path / "nope.json") in _one_line(exc)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("", "file is empty"),
        ("   \n", "file is empty"),
        ("not json at all", "not JSON, JSON lines or ASDiv XML"),
        ("[]", "no rows"),
        ('{"a": 1} {"b": ', "bad JSON after 1 objects"),
        ('"just a string"', "not a list of problems"),
        ("<ProblemSet><Problem>", "invalid XML"),
        ("<root><item/></root>", "without ASDiv <Problem> elements"),
        ('[{"foo": 1, "bar": 2}]', "unknown data format"),
        ("[1, 2, 3]", "no JSON objects"),
    ],
)
def test_unusable_files(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "data.json"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(DataError, match=message) as exc:
        load_problems(str(path))
    assert str(path) in _one_line(exc)


def test_directory_without_split_files(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="no train/valid/dev/test"):
        load_problems(str(tmp_path))


def test_zero_usable_rows(tmp_path: Path) -> None:
    path = write_json(tmp_path / "a.json", [{"Body": "x", "Question": "y", "Formula": "1+1=2"}])
    with pytest.raises(
        DataError, match=r"no usable problems \(1 rows skipped; first, row 0: missing field: 'Answer'\)"
    ):
        load_problems(f"asdiv-a:{path}")


def test_wrong_format_prefix_skips_every_row(tmp_path: Path) -> None:
    path = write_json(tmp_path / "a.json", ASDIV_ROWS)
    with pytest.raises(DataError, match="missing field: 'Equation'"):
        load_problems(f"svamp:{path}")


BAD_ROWS = [
    ASDIV_ROWS[0],
    {**ASDIV_ROWS[0], "@ID": "no-formula", "Formula": None},
    {k: v for k, v in ASDIV_ROWS[0].items() if k != "Body"} | {"@ID": "no-body"},
    {**ASDIV_ROWS[0], "@ID": "bad-eq", "Formula": "5+*7=12"},
    {**ASDIV_ROWS[0], "@ID": "div0", "Body": "He has 5 apples and 0 bags.", "Formula": "5/0=1", "Answer": "1"},
    {**ASDIV_ROWS[0], "@ID": "bad-answer", "Answer": "twelve-ish"},
    "not an object",
    {**ASDIV_ROWS[0], "@ID": "wrong-gold", "Answer": "13 (marbles)"},
    {**ASDIV_ROWS[0], "@ID": "empty-text", "Body": "", "Question": " "},
]


def test_bad_rows_are_skipped_with_reasons(tmp_path: Path) -> None:
    result = load_problems(f"asdiv-a:{write_json(tmp_path / 'a.json', BAD_ROWS)}")
    assert [p.id for p in result.problems] == ["a-1", "wrong-gold"]
    reasons = {(row.index, row.id): row.reason for row in result.skipped}
    assert reasons[(1, "no-formula")] == "missing field: 'Formula'"
    assert reasons[(2, "no-body")] == "missing field: 'Body'"
    assert reasons[(3, "bad-eq")].startswith("unusable equation: '5+*7': unexpected '*'")
    assert reasons[(4, "div0")] == "unusable equation: '5/0': division by zero"
    assert reasons[(5, "bad-answer")] == "unparseable answer: 'twelve-ish'"
    assert reasons[(6, "asdiv-a-6")] == "not an object: row is str"
    assert reasons[(8, "empty-text")] == "empty text"
    assert [(r.index, r.id, r.reason) for r in result.inconsistent] == [
        (7, "wrong-gold", "equation gives 12, gold is '13 (marbles)'")
    ]
    report = check_report(result)
    assert report["loaded"] == 2 and report["skipped"] == 7 and report["consistent"] == 0.5
    assert report["skipped_reasons"] == {
        "missing field": 2,
        "unusable equation": 2,
        "unparseable answer": 1,
        "not an object": 1,
        "empty text": 1,
    }
    assert len(report["rows"]) == 8 and report["rows"][-1]["kind"] == "inconsistent"


def test_strict_mode_raises_on_the_first_bad_row(tmp_path: Path) -> None:
    path = write_json(tmp_path / "a.json", BAD_ROWS)
    with pytest.raises(DataError) as exc:
        load_problems(f"asdiv-a:{path}", strict=True)
    assert _one_line(exc) == f"{path}: row 1 (id no-formula): missing field: 'Formula'"
    ok = load_problems(f"asdiv-a:{write_json(tmp_path / 'ok.json', BAD_ROWS[:1] + BAD_ROWS[7:8])}", strict=True)
    assert len(ok.problems) == 2 and len(ok.inconsistent) == 1  # inconsistent rows still load

"""Small rows in each data set format, and writers for the files the tests make."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

SHARED_DATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "data"


def write_json(path: Path, obj: Any) -> Path:
    path.write_text(json.dumps(obj, ensure_ascii=False), encoding="utf-8")
    return path


def write_jsonl(path: Path, rows: list[Any]) -> Path:
    path.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows) + "\n", encoding="utf-8")
    return path


ASDIV_ROWS: list[dict[str, Any]] = [
    {
        "@ID": "a-1",
        "@Grade": "1",
        "@Source": "s",
        "Body": "Cody had a bag of marbles. Later he gave five to his brother. Now Cody has seven marbles.",
        "Question": "How many marbles did Cody have to start with?",
        "Solution-Type": "Addition",
        "Answer": "12 (marbles)",
        "Formula": "5+7=12",
    },
    {
        "@ID": "a-2",
        "@Grade": "4",
        "@Source": "s",
        "Body": "There are 248 pencils and a box holds 16 pencils.",
        "Question": "How many boxes can be filled?",
        "Solution-Type": "Floor-Division",
        "Answer": "15 (boxes)",
        "Formula": "248/16=15 r8",
    },
    {
        "@ID": "a-3",
        "@Grade": "4",
        "@Source": "s",
        "Body": "158 people ride a bus that holds 12 people.",
        "Question": "How many trips are needed?",
        "Solution-Type": "Ceil-Division",
        "Answer": "14  (trips)",
        "Formula": "158/12=13 r2",
    },
    {
        "@ID": "a-4",
        "@Grade": "2",
        "@Source": "s",
        "Body": "Tiffany had six pages of math homework and four pages of reading homework.",
        "Question": "If each page had 3 problems on it, how many problems did she have to complete total?",
        "Solution-Type": {"@Subgoal-1": "Addition", "#text": "Multiplication"},
        "Answer": "30 (problems)",
        "Formula": "(6+4)*3=30",
    },
]

MATH23K_ROWS: list[dict[str, Any]] = [
    {
        "id": "1",
        "original_text": "一共有280kg水果糖，每袋装(1/4)kg，已经装完了这些糖果的(3/4)．已经装完了多少袋？",
        "segmented_text": "一 共有 280kg 水果糖 ， 每 袋装 (1/4)kg ， 已经 装完 了 这些 糖果 的 (3/4) ． 已经 装完 了 多少 袋 ？",
        "equation": "x=280/(1/4)*(3/4)",
        "ans": "840",
    },
    {
        "id": "2",
        "original_text": "服装店第一天卖出30%后，又运来120件，这时店里的服装正好比原来少6%，店里原来有服装多少件？",
        "segmented_text": "服装店 第一天 卖出 30% 后 ， 又 运 来 120 件 ， 这时 店里 的 服装 正好 比 原来 少 6% ， 店里 原来 有 服装 多少 件 ？",
        "equation": "x=120/[(1-6%)-(1-30%)]",
        "ans": "500",
    },
    {
        "id": "3",
        "original_text": "一块地1(1/2)公顷，种了(1/3)，还剩多少公顷？",
        "segmented_text": "一块 地 1(1/2) 公顷 ， 种 了 (1/3) ， 还 剩 多少 公顷 ？",
        "equation": "x=1(1/2)*(1-(1/3))",
        "ans": "1",
    },
    {
        "id": "4",
        "original_text": "圆的半径是2米，面积是多少平方米？",
        "segmented_text": "圆 的 半径 是 2 米 ， 面积 是 多少 平方米 ？",
        "equation": "x=3.14*2^2",
        "ans": "12.56",
    },
]

MAWPS_ROWS: list[dict[str, Any]] = [
    {
        "id": 1,
        "original_text": "A waiter had 22 customers . If 14 of them left and the rest sat 4 at each table , how many tables were there ?",
        "segmented_text": "",
        "equation": "X=((22.0-14.0)/4.0)",
        "ans": 2.0,
    },
    {
        "id": 2,
        "original_text": "After paying 6 dollars for the pie , Mary has 52 dollars . How much money did she have before ?",
        "segmented_text": "",
        "equation": "X-6=52",
        "ans": "58",
    },
    {
        "id": 3,
        "original_text": "A car costs 12590 dollars and is 20 % off . What was the original price of the car ?",
        "segmented_text": "",
        "equation": "x=12590.0/(1-(20.0*0.01))",
        "ans": 15737.5,
    },
]

SVAMP_ROWS: list[dict[str, Any]] = [
    {
        "ID": "chal-1",
        "Body": "Each pack of dvds costs 76 dollars. If there is a discount of 25 dollars on each pack",
        "Question": "How much do you have to pay to buy each pack?",
        "Equation": "( 76.0 - 25.0 )",
        "Answer": 51.0,
        "Type": "Subtraction",
    },
    {
        "ID": "chal-2",
        "Body": "Dan has 32 green and 38 violet marbles. He gave 23 to Mike.",
        "Question": "How many marbles does he have now?",
        "Equation": "( ( 32.0 + 38.0 ) - 23.0 )",
        "Answer": 47.0,
        "Type": "Subtraction",
    },
]

GSM8K_ROWS: list[dict[str, Any]] = [
    {
        "question": "Natalia sold clips to 48 of her friends in April, and then she sold half as many clips in May. How many clips did Natalia sell altogether in April and May?",
        "answer": "Natalia sold 48/2 = <<48/2=24>>24 clips in May.\nNatalia sold 48+24 = <<48+24=72>>72 clips altogether in April and May.\n#### 72",
    },
    {
        "question": "Weng earns $12 an hour for babysitting. Yesterday, she just did 50 minutes of babysitting. How much did she earn?",
        "answer": "Weng earns 12/60 = $<<12/60=0.2>>0.2 per minute.\nWorking 50 minutes, she earned 0.2 x 50 = $<<0.2*50=10>>10.\n#### 10",
    },
    {
        "question": "A farm has some cows. How many legs do they have if there are 1,200 cows?",
        "answer": "Each cow has four legs, so the answer is 4,800.\n#### 4,800",
    },
]

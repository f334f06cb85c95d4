"""Seeded synthetic English word problems: no download, learnable, all three complexity levels.

A problem is a short story (templates: `raykd.data.story_themes`) about one running quantity (items collected, money, distance, area,
fence length): an opening sentence sets it (0-1 operators), each further sentence changes it
(+, -, *, with compound operands such as `a*b` or `(a+b)`), and the question may apply a last
step (share equally, price, compare). Sentences are fixed templates with a few wordings each, so
a small model can learn them; numbers are digits or, sometimes, words. Divisions are exact and
prices are multiples of 0.25, so every answer is an integer or a short decimal.
"""

from __future__ import annotations

import random

from raykd.data.expressions import Node, complexity_of, evaluate, operator_count, to_infix, to_prefix
from raykd.data.numbers import extract_numbers, format_number
from raykd.data.problem import COMPLEXITY_LEVELS, Problem
from raykd.data.story_themes import COLLECTIBLES, FRIENDS, MAX_OPERATORS, MAX_VALUE, NAMES, THEMES, Story, Theme

def _story(rng: random.Random, theme: Theme, steps: int) -> tuple[str, Node, list[float]] | None:
    name, he = rng.choice(NAMES)
    story = Story(rng, name, he, rng.choice(COLLECTIBLES), rng.choice(FRIENDS))
    sentence, node = theme.start(story)
    sentences = [sentence]
    for _ in range(steps):
        step = rng.choice(theme.steps)(story, node, evaluate(node, story.values))
        if step is not None:
            sentences.append(step[0])
            node = step[1]
    for ask in rng.sample(theme.questions, len(theme.questions)):
        question = ask(story, node, evaluate(node, story.values))
        if question is not None:
            sentences.append(question[0])
            return " ".join(sentences), question[1], story.values
    return None


def _problem(text: str, node: Node, values: list[float], problem_id: str, theme: str) -> Problem | None:
    """The problem, or None if the text would not read back as exactly these numbers."""
    mentions = extract_numbers(text)
    if [m.value for m in mentions] != values:
        return None
    answer = evaluate(node, values)
    if answer <= 0 or answer > MAX_VALUE or round(answer, 2) != answer:
        return None
    return Problem(
        id=problem_id,
        text=text,
        numbers=tuple(values),
        number_spans=tuple(m.span for m in mentions),
        equation=to_prefix(node),
        answer=answer,
        complexity=complexity_of(node),
        source="synthetic",
        answer_text=format_number(answer),
        meta={"post_op": None, "theme": theme, "equation_text": to_infix(node)},
    )


def generate_problems(n: int, seed: int = 0) -> list[Problem]:
    """`n` problems, deterministic for a seed, cycling through simple, medium and complex."""
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    rng = random.Random(seed)
    problems: list[Problem] = []
    while len(problems) < n:
        target = COMPLEXITY_LEVELS[len(problems) % len(COMPLEXITY_LEVELS)]
        theme = rng.choice(THEMES)
        steps = rng.randint(*{"simple": (0, 1), "medium": (1, 2), "complex": (2, 4)}[target])
        story = _story(rng, theme, min(steps, theme.max_steps))
        if story is None:
            continue
        text, node, values = story
        ops = operator_count(node)
        if not 1 <= ops <= MAX_OPERATORS or complexity_of(node) != target:
            continue
        problem = _problem(text, node, values, f"synthetic-{seed}-{len(problems)}", theme.name)
        if problem is not None:
            problems.append(problem)
    return problems

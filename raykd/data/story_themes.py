"""The story templates of the synthetic word problems: one running quantity per theme (items
collected, money, distance, area, fence length), an opening sentence, steps that change it and
questions that end it. Each step returns (sentence, expression) or None when its numbers would not
work out (inexact division, a negative count); `raykd.data.synthetic` assembles problems from them.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field

from raykd.data.expressions import BinOp, Node, Num, Placeholder
from raykd.data.numbers import number_to_words

NAMES = (
    ("Mia", "she"),
    ("Leo", "he"),
    ("Ava", "she"),
    ("Sam", "he"),
    ("Zoe", "she"),
    ("Max", "he"),
    ("Ivy", "she"),
    ("Ben", "he"),
    ("Lily", "she"),
    ("Omar", "he"),
    ("Nora", "she"),
    ("Eli", "he"),
)
FRIENDS = ("Tom", "Ana", "Raj", "Kim", "Lucy", "Finn", "Maya", "Jack")
COLLECTIBLES = ("marbles", "stickers", "stamps", "shells", "cards", "pencils", "buttons", "beads", "coins", "books")
GOODS = ("notebook", "toy car", "kite", "puzzle", "hat", "lamp", "ball", "game")
PRICES = (0.25, 0.5, 0.75, 1.25, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0)
WORD_PROBABILITY = 0.25
MAX_OPERATORS = 6
MAX_VALUE = 100_000


@dataclass
class Story:
    """What one problem is being written about, and the numbers its text has used so far."""

    rng: random.Random
    name: str
    he: str
    items: str
    friend: str
    values: list[float] = field(default_factory=list)

    @property
    def words(self) -> dict[str, str]:
        his, him = ("his", "him") if self.he == "he" else ("her", "her")
        return {
            "name": self.name,
            "he": self.he,
            "He": self.he.capitalize(),
            "his": his,
            "His": his.capitalize(),
            "him": him,
            "items": self.items,
            "friend": self.friend,
        }

    def say(self, *wordings: str, **numbers: str) -> str:
        return self.rng.choice(wordings).format(**self.words, **numbers)

    def num(self, value: int) -> tuple[str, Node]:
        """A count written as digits or (sometimes) words, and its placeholder."""
        self.values.append(float(value))
        node = Placeholder(len(self.values) - 1)
        if value <= 99 and self.rng.random() < WORD_PROBABILITY:
            return number_to_words(value), node
        return str(value), node

    def money(self, value: float) -> tuple[str, Node]:
        self.values.append(float(value))
        text = f"${value:.2f}" if value != int(value) else f"${int(value)}"
        return text, Placeholder(len(self.values) - 1)

    def rand(self, lo: int, hi: int) -> int:
        return self.rng.randint(lo, hi)


Step = Callable[[Story, Node, float], "tuple[str, Node] | None"]
Start = Callable[[Story], "tuple[str, Node]"]


def _op(op: str, a: Node, b: Node) -> Node:
    return BinOp(op, a, b)


def _divisors(value: float, lo: int, hi: int) -> list[int]:
    if value != int(value):
        return []
    return [d for d in range(lo, hi + 1) if int(value) % d == 0 and value // d > 1]


# ---- collecting items -------------------------------------------------------------------------


def _collect_start(s: Story) -> tuple[str, Node]:
    kind = s.rng.randrange(3)
    if kind == 0:
        a, na = s.num(s.rand(10, 90))
        return s.say("{name} has {a} {items}.", "{name} owns {a} {items}.", a=a), na
    if kind == 1:
        a, na = s.num(s.rand(2, 9))
        b, nb = s.num(s.rand(3, 15))
        return s.say(
            "{name} has {a} boxes of {items} with {b} {items} in each box.",
            "{name} has {a} bags of {items}. Each bag holds {b} {items}.",
            a=a,
            b=b,
        ), _op("*", na, nb)
    a, na = s.num(s.rand(5, 60))
    b, nb = s.num(s.rand(5, 60))
    return s.say(
        "{name} has {a} red {items} and {b} blue {items}.",
        "{name} has {a} large {items} and {b} small {items}.",
        a=a,
        b=b,
    ), _op("+", na, nb)


def _gain(s: Story, q: Node, v: float) -> tuple[str, Node]:
    a, na = s.num(s.rand(2, 40))
    return s.say(
        "Then {he} finds {a} more {items}.",
        "{friend} gives {him} {a} more {items}.",
        "{He} buys another {a} {items}.",
        a=a,
    ), _op("+", q, na)


def _gain_packs(s: Story, q: Node, v: float) -> tuple[str, Node]:
    a, na = s.num(s.rand(2, 8))
    b, nb = s.num(s.rand(2, 12))
    return s.say(
        "{He} buys {a} packs with {b} {items} in each pack.",
        "{friend} gives {him} {a} boxes that hold {b} {items} each.",
        a=a,
        b=b,
    ), _op("+", q, _op("*", na, nb))


def _lose(s: Story, q: Node, v: float) -> tuple[str, Node] | None:
    if v < 4:
        return None
    a, na = s.num(s.rand(1, int(v) - 2))
    return s.say(
        "{He} gives {a} {items} to {friend}.", "{He} loses {a} {items}.", "{He} sells {a} of {his} {items}.", a=a
    ), _op("-", q, na)


def _lose_each(s: Story, q: Node, v: float) -> tuple[str, Node] | None:
    if v < 8:
        return None
    b_value = s.rand(2, 5)
    a_value = s.rand(1, max(1, int(v - 1) // b_value))
    if a_value * b_value >= v:
        return None
    a, na = s.num(a_value)
    b, nb = s.num(b_value)
    return s.say(
        "{He} gives {a} {items} to each of {his} {b} cousins.",
        "{He} gives {a} {items} to each of {b} classmates.",
        a=a,
        b=b,
    ), _op("-", q, _op("*", na, nb))


def _lose_pair(s: Story, q: Node, v: float) -> tuple[str, Node] | None:
    if v < 6:
        return None
    a_value = s.rand(1, int(v - 2) // 2)
    b_value = s.rand(1, int(v - 2) // 2)
    a, na = s.num(a_value)
    b, nb = s.num(b_value)
    return s.say(
        "{He} gives away a bag holding {a} old and {b} new {items}.",
        "{He} trades a set of {a} big and {b} small {items} away.",
        a=a,
        b=b,
    ), _op("-", q, _op("+", na, nb))


def _times(s: Story, q: Node, v: float) -> tuple[str, Node] | None:
    if v * 5 > MAX_VALUE:
        return None
    if s.rng.random() < 0.4:
        return s.say(
            "After a big trade, {he} has twice as many {items} as before.", "{He} doubles {his} collection."
        ), _op("*", q, Num(2.0, "2"))
    k, nk = s.num(s.rand(3, 5))
    return s.say("After a lucky week, {he} has {k} times as many {items} as before.", k=k), _op("*", q, nk)


def _ask_count(s: Story, q: Node, v: float) -> tuple[str, Node]:
    return s.say("How many {items} does {name} have now?", "How many {items} does {he} have in the end?"), q


def _ask_share(s: Story, q: Node, v: float) -> tuple[str, Node] | None:
    options = _divisors(v, 2, 12)
    if not options:
        return None
    a, na = s.num(s.rng.choice(options))
    return s.say(
        "{He} puts all {his} {items} equally into {a} jars. How many {items} are in each jar?",
        "{He} shares the {items} equally among {a} friends. How many {items} does each friend get?",
        a=a,
    ), _op("/", q, na)


def _ask_share_groups(s: Story, q: Node, v: float) -> tuple[str, Node] | None:
    options = _divisors(v, 4, 12)
    if not options:
        return None
    total = s.rng.choice(options)
    a_value = s.rand(2, total - 2)  # at least two boys and two girls
    a, na = s.num(a_value)
    b, nb = s.num(total - a_value)
    return s.say(
        "{He} shares them equally among {a} boys and {b} girls. How many {items} does each child get?", a=a, b=b
    ), _op("/", q, _op("+", na, nb))


def _ask_compare(s: Story, q: Node, v: float) -> tuple[str, Node] | None:
    if v < 3:
        return None
    a, na = s.num(s.rand(1, int(v) - 1))
    return s.say("{friend} has {a} {items}. How many more {items} does {name} have than {friend}?", a=a), _op(
        "-", q, na
    )


def _ask_worth(s: Story, q: Node, v: float) -> tuple[str, Node]:
    p, np_ = s.money(s.rng.choice(PRICES))
    return s.say(
        "Each of the {items} is worth {p}. How much are all of {his} {items} worth?",
        "{He} sells each of them for {p}. How much money does {he} get?",
        p=p,
    ), _op("*", q, np_)


def _ask_dozens(s: Story, q: Node, v: float) -> tuple[str, Node] | None:
    if v != int(v) or int(v) % 12 or v < 24:
        return None
    return s.say("{He} packs the {items} in bags of a dozen. How many bags does {he} fill?"), _op(
        "/", q, Num(12.0, "12")
    )


# ---- money ------------------------------------------------------------------------------------


def _money_start(s: Story) -> tuple[str, Node]:
    kind = s.rng.randrange(3)
    if kind == 0:
        a, na = s.money(s.rand(20, 200))
        return s.say("{name} has {a}.", "{name} has {a} in {his} wallet.", a=a), na
    if kind == 1:
        a, na = s.money(s.rand(3, 20))
        b, nb = s.num(s.rand(2, 10))
        return s.say("{name} saves {a} each week for {b} weeks.", a=a, b=b), _op("*", na, nb)
    a, na = s.money(s.rand(10, 80))
    b, nb = s.money(s.rand(10, 80))
    return s.say("{name} gets {a} from {his} mom and {b} from {his} dad.", a=a, b=b), _op("+", na, nb)


def _earn(s: Story, q: Node, v: float) -> tuple[str, Node]:
    if s.rng.random() < 0.5:
        a, na = s.money(s.rand(5, 50))
        return s.say("{He} earns {a} washing cars.", "{His} aunt gives {him} {a}.", a=a), _op("+", q, na)
    a, na = s.money(s.rand(4, 15))
    b, nb = s.num(s.rand(2, 8))
    return s.say("{He} earns {a} an hour for {b} hours of work.", a=a, b=b), _op("+", q, _op("*", na, nb))


def _spend(s: Story, q: Node, v: float) -> tuple[str, Node] | None:
    if v < 6:
        return None
    a, na = s.money(s.rand(1, int(v) - 2))
    good = s.rng.choice(GOODS)
    return s.say("{He} spends {a} on a {good}.", "{He} buys a {good} for {a}.", a=a, good=good), _op("-", q, na)


def _spend_each(s: Story, q: Node, v: float) -> tuple[str, Node] | None:
    for _ in range(10):
        count, price = s.rand(2, 6), s.rng.choice(PRICES)
        if count * price < v - 1:
            a, na = s.num(count)
            p, np_ = s.money(price)
            good = s.rng.choice(GOODS)
            return s.say("{He} buys {a} {good}s that cost {p} each.", a=a, p=p, good=good), _op(
                "-", q, _op("*", na, np_)
            )
    return None


def _spend_pair(s: Story, q: Node, v: float) -> tuple[str, Node] | None:
    if v < 6:
        return None
    a, na = s.money(s.rand(1, int(v - 2) // 2))
    b, nb = s.money(s.rand(1, int(v - 2) // 2))
    first, second = s.rng.sample(GOODS, 2)
    return s.say("{He} buys a {first} for {a} and a {second} for {b}.", a=a, b=b, first=first, second=second), _op(
        "-", q, _op("+", na, nb)
    )


def _ask_money_left(s: Story, q: Node, v: float) -> tuple[str, Node]:
    return s.say("How much money does {name} have left?", "How much money does {he} have now?"), q


def _ask_money_share(s: Story, q: Node, v: float) -> tuple[str, Node] | None:
    options = _divisors(v, 2, 10)
    if not options:
        return None
    a, na = s.num(s.rng.choice(options))
    return s.say("{He} splits the money equally among {a} friends. How much does each friend get?", a=a), _op(
        "/", q, na
    )


def _ask_money_buy(s: Story, q: Node, v: float) -> tuple[str, Node] | None:
    prices = [p for p in PRICES if p >= 1 and (v / p) == int(v / p) and v / p > 1]
    if not prices:
        return None
    p, np_ = s.money(s.rng.choice(prices))
    good = s.rng.choice(GOODS)
    return s.say(
        "{He} spends it all on {good}s that cost {p} each. How many {good}s does {he} buy?", p=p, good=good
    ), _op("/", q, np_)


# ---- travel -----------------------------------------------------------------------------------


def _travel_start(s: Story) -> tuple[str, Node]:
    kind = s.rng.randrange(3)
    if kind == 0:
        a, na = s.num(s.rand(20, 300))
        return s.say("{name} drives {a} km on Monday.", "{name} rides a train for {a} km.", a=a), na
    if kind == 1:
        a, na = s.num(s.rand(2, 6))
        b, nb = s.num(s.rand(4, 12) * 10)
        return s.say("{name} drives for {a} hours at {b} km per hour.", a=a, b=b), _op("*", na, nb)
    a, na = s.num(s.rand(5, 60))
    b, nb = s.num(s.rand(5, 60))
    return s.say("{name} cycles {a} km in the morning and {b} km in the afternoon.", a=a, b=b), _op("+", na, nb)


def _travel_more(s: Story, q: Node, v: float) -> tuple[str, Node]:
    if s.rng.random() < 0.5:
        a, na = s.num(s.rand(10, 150))
        return s.say("The next day {he} drives another {a} km.", "Then {he} walks {a} km more.", a=a), _op("+", q, na)
    a, na = s.num(s.rand(2, 5))
    b, nb = s.num(s.rand(3, 9) * 10)
    return s.say("Then {he} travels {a} hours at {b} km per hour.", a=a, b=b), _op("+", q, _op("*", na, nb))


def _travel_back(s: Story, q: Node, v: float) -> tuple[str, Node] | None:
    if v < 10:
        return None
    a, na = s.num(s.rand(1, int(v) // 2))
    return s.say(
        "Of that, {a} km was by ferry and does not count.", "{He} skips {a} km of it by bus, which does not count.", a=a
    ), _op("-", q, na)


def _travel_repeat(s: Story, q: Node, v: float) -> tuple[str, Node] | None:
    if v * 5 > MAX_VALUE:
        return None
    k, nk = s.num(s.rand(2, 5))
    return s.say("{He} makes that same trip {k} times in a month.", k=k), _op("*", q, nk)


def _ask_distance(s: Story, q: Node, v: float) -> tuple[str, Node]:
    return s.say("How many km does {he} travel in total?", "How far does {name} travel altogether, in km?"), q


def _ask_fuel(s: Story, q: Node, v: float) -> tuple[str, Node] | None:
    options = _divisors(v, 4, 20)
    if not options:
        return None
    a, na = s.num(s.rng.choice(options))
    return s.say(
        "The car uses a liter of fuel for every {a} km. How many liters does the whole distance take?", a=a
    ), _op("/", q, na)


def _ask_fare(s: Story, q: Node, v: float) -> tuple[str, Node]:
    p, np_ = s.money(s.rng.choice(PRICES[:5]))
    return s.say("Travel costs {p} per km. How much does the whole distance cost?", p=p), _op("*", q, np_)


# ---- area -------------------------------------------------------------------------------------


def _area_start(s: Story) -> tuple[str, Node]:
    if s.rng.random() < 0.6:
        a, na = s.num(s.rand(4, 30))
        b, nb = s.num(s.rand(3, 20))
        return s.say(
            "{name}'s garden is {a} m long and {b} m wide.", "A field measures {a} m by {b} m.", a=a, b=b
        ), _op("*", na, nb)
    a, na = s.num(s.rand(3, 12))
    b, nb = s.num(s.rand(3, 12))
    c, nc = s.num(s.rand(3, 12))
    d, nd = s.num(s.rand(3, 12))
    return s.say(
        "A room is {a} m long and {b} m wide, and the hall next to it is {c} m long and {d} m wide.", a=a, b=b, c=c, d=d
    ), _op("+", _op("*", na, nb), _op("*", nc, nd))


def _area_add(s: Story, q: Node, v: float) -> tuple[str, Node]:
    a, na = s.num(s.rand(2, 12))
    b, nb = s.num(s.rand(2, 12))
    return s.say("A second plot of {a} m by {b} m is added to it.", a=a, b=b), _op("+", q, _op("*", na, nb))


def _area_remove(s: Story, q: Node, v: float) -> tuple[str, Node] | None:
    if v < 10:
        return None
    if s.rng.random() < 0.5:
        a, na = s.num(s.rand(1, int(v) // 2))
        return s.say("A pond takes up {a} square meters of it.", a=a), _op("-", q, na)
    for _ in range(10):
        x, y = s.rand(1, 6), s.rand(1, 6)
        if x * y < v / 2:
            a, na = s.num(x)
            b, nb = s.num(y)
            return s.say("A shed of {a} m by {b} m stands on it.", a=a, b=b), _op("-", q, _op("*", na, nb))
    return None


def _ask_area(s: Story, q: Node, v: float) -> tuple[str, Node]:
    return s.say("What area is left for planting, in square meters?", "How many square meters are free?"), q


def _ask_seed(s: Story, q: Node, v: float) -> tuple[str, Node] | None:
    options = _divisors(v, 2, 25)
    if not options:
        return None
    a, na = s.num(s.rng.choice(options))
    return s.say("One bag of seed covers {a} square meters. How many bags are needed?", a=a), _op("/", q, na)


def _ask_turf(s: Story, q: Node, v: float) -> tuple[str, Node]:
    p, np_ = s.money(s.rng.choice(PRICES))
    return s.say("Grass costs {p} per square meter. How much does it cost to cover the area?", p=p), _op("*", q, np_)


# ---- fences -----------------------------------------------------------------------------------


def _fence_start(s: Story) -> tuple[str, Node]:
    a, na = s.num(s.rand(5, 60))
    b, nb = s.num(s.rand(5, 60))
    return s.say("A fence goes all around a field {a} m long and {b} m wide.", a=a, b=b), _op(
        "*", Num(2.0, "2"), _op("+", na, nb)
    )


def _fence_gate(s: Story, q: Node, v: float) -> tuple[str, Node]:
    a, na = s.num(s.rand(2, 6))
    return s.say("A gate {a} m wide needs no fence.", a=a), _op("-", q, na)


def _ask_fence(s: Story, q: Node, v: float) -> tuple[str, Node]:
    return s.say("How many meters of fence are needed?"), q


def _ask_fence_cost(s: Story, q: Node, v: float) -> tuple[str, Node]:
    p, np_ = s.money(s.rng.choice(PRICES))
    return s.say("Fence costs {p} per meter. What does the fence cost?", p=p), _op("*", q, np_)


def _ask_rolls(s: Story, q: Node, v: float) -> tuple[str, Node] | None:
    options = _divisors(v, 2, 20)
    if not options:
        return None
    a, na = s.num(s.rng.choice(options))
    return s.say("Fence comes in rolls of {a} m. How many rolls are needed?", a=a), _op("/", q, na)


@dataclass(frozen=True)
class Theme:
    name: str
    start: Start
    steps: tuple[Step, ...]
    questions: tuple[Step, ...]
    max_steps: int


THEMES: tuple[Theme, ...] = (
    Theme(
        "collect",
        _collect_start,
        (_gain, _gain_packs, _lose, _lose_each, _lose_pair, _times),
        (_ask_count, _ask_share, _ask_share_groups, _ask_compare, _ask_worth, _ask_dozens),
        4,
    ),
    Theme(
        "shop",
        _money_start,
        (_earn, _spend, _spend_each, _spend_pair),
        (_ask_money_left, _ask_money_share, _ask_money_buy),
        4,
    ),
    Theme(
        "travel", _travel_start, (_travel_more, _travel_back, _travel_repeat), (_ask_distance, _ask_fuel, _ask_fare), 3
    ),
    Theme("area", _area_start, (_area_add, _area_remove), (_ask_area, _ask_seed, _ask_turf), 2),
    Theme("fence", _fence_start, (_fence_gate,), (_ask_fence, _ask_fence_cost, _ask_rolls), 1),
)

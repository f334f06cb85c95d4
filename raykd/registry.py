"""One ordered, name-keyed registry for raykd's plug-in tables.

Why: the structure kinds, their importance, their latency and the architecture families each kept
a dict (or list) with its own register / unregister / lookup / list code. Each is now a `Registry`
given its own words (`Refusal`s), so their behaviour and their error messages stay what they were
while the bookkeeping lives once, here.

A foundation module (the layers contract places it beside `raykd.errors`): it imports nothing of
raykd and no torch, so any layer may keep a registry, and a config validates against one without
loading torch. The error types are the caller's (`ConfigError` for a user's input, `KeyError` for
a programming slip), which is why this module needs no import of `raykd.errors`.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Generic, TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class Refusal:
    """How a registry refuses a name: an error type and its message, a `str.format` template that
    may use `{name}` (the name asked for; `{name!r}` quotes it) and `{known}` (the registered
    names, comma-separated, in registration order)."""

    error: type[Exception]
    message: str

    def __post_init__(self) -> None:
        if not (isinstance(self.error, type) and issubclass(self.error, Exception)):
            raise TypeError(f"a Refusal's error must be an Exception class, got {self.error!r}")
        self.message.format(name="", known="")  # a broken template fails here, not at the first refusal

    def __call__(self, name: str, known: Iterable[str]) -> Exception:
        return self.error(self.message.format(name=name, known=", ".join(known)))


class Registry(Generic[T]):
    """Items by name, in registration order (`first=True` puts one before the others).

    `unknown` refuses `get` of a name nothing registered, `missing` an `unregister` or `replace`
    of one (default: `unknown`), `duplicate` a name registered twice. `clash(new, registered)` is
    called for each registered item before the name is checked (raise to refuse: shared keys other
    than the name); `check(new)` after the name was found free, before it is added (raise to
    refuse: e.g. a kind another registry must know first). The default words use `what`.
    """

    def __init__(self, what: str, *, unknown: Refusal | None = None, missing: Refusal | None = None,
                 duplicate: Refusal | None = None, clash: Callable[[T, T], None] | None = None,
                 check: Callable[[T], None] | None = None) -> None:
        if not isinstance(what, str) or not what.strip():
            raise ValueError(f"a registry needs a `what` that names its items, got {what!r}")
        word = what.replace("{", "{{").replace("}", "}}")
        self.what = what
        self.unknown = unknown or Refusal(KeyError, f"unknown {word} {{name!r}} (known: {{known}})")
        self.missing = missing or self.unknown
        self.duplicate = duplicate or Refusal(ValueError, f"{word} {{name!r}} is already registered")
        self._clash = clash
        self._check = check
        self._items: dict[str, T] = {}
        self._lock = threading.RLock()  # a check-then-add is one step; hooks may read this registry

    def register(self, name: str, item: T, *, first: bool = False) -> T:
        """Add `item` as `name`, after the items registered so far (`first`: before them)."""
        with self._lock:
            if self._clash is not None:
                for other in self._items.values():
                    self._clash(item, other)
            if name in self._items:
                raise self.duplicate(name, self._items)
            if self._check is not None:
                self._check(item)
            self._items = {name: item, **self._items} if first else {**self._items, name: item}
        return item

    def unregister(self, name: str) -> T:
        """Remove `name` and return its item."""
        with self._lock:
            if name not in self._items:
                raise self.missing(name, self._items)
            return self._items.pop(name)

    def replace(self, name: str, item: T) -> T:
        """Put `item` in place of the registered `name`, at its position."""
        with self._lock:
            if name not in self._items:
                raise self.missing(name, self._items)
            self._items[name] = item
        return item

    def get(self, name: str) -> T:
        """The item registered as `name`."""
        try:
            return self._items[name]
        except KeyError:
            raise self.unknown(name, self._items) from None

    def names(self) -> tuple[str, ...]:
        return tuple(self._items)

    def values(self) -> tuple[T, ...]:
        return tuple(self._items.values())

    def items(self) -> tuple[tuple[str, T], ...]:
        return tuple(self._items.items())

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self._items)

    def __repr__(self) -> str:
        return f"Registry({self.what!r}: {', '.join(self._items)})"

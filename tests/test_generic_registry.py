"""The generic `Registry` behind the structure-kind, importance, latency and family registries
(issue 36): order, `first=`, the clash and check hooks, and the caller's words for each refusal."""

from __future__ import annotations

import subprocess
import sys

import pytest

from raykd.errors import ConfigError
from raykd.registry import Refusal, Registry


def test_items_keep_registration_order_and_first_goes_before_them():
    reg: Registry[int] = Registry("number")
    assert reg.register("b", 2) == 2
    reg.register("c", 3)
    reg.register("a", 1, first=True)
    assert reg.names() == ("a", "b", "c")
    assert reg.values() == (1, 2, 3)
    assert reg.items() == (("a", 1), ("b", 2), ("c", 3))
    assert list(reg) == ["a", "b", "c"] and len(reg) == 3 and "b" in reg and "z" not in reg


def test_replace_keeps_the_position_and_unregister_returns_the_item():
    reg: Registry[int] = Registry("number")
    for i, name in enumerate("abc"):
        reg.register(name, i)
    assert reg.replace("b", 20) == 20
    assert reg.items() == (("a", 0), ("b", 20), ("c", 2))
    assert reg.unregister("a") == 0
    assert reg.names() == ("b", "c")
    reg.register("a", 7)  # a name given back may be taken again, at the end
    assert reg.names() == ("b", "c", "a")


def test_unknown_name_raises_the_callers_error_naming_the_known_ones():
    reg: Registry[int] = Registry("kind", unknown=Refusal(ConfigError, "unknown kind {name!r} (known: {known})"))
    reg.register("heads", 1)
    reg.register("ffn", 2)
    with pytest.raises(ConfigError) as caught:
        reg.get("hidden")
    assert str(caught.value) == "unknown kind 'hidden' (known: heads, ffn)"
    assert caught.value.__cause__ is None and caught.value.__suppress_context__


def test_default_words_use_what():
    reg: Registry[int] = Registry("gadget")
    reg.register("x", 1)
    with pytest.raises(KeyError, match=r"unknown gadget 'y' \(known: x\)"):
        reg.get("y")
    with pytest.raises(KeyError, match=r"unknown gadget 'y' \(known: x\)"):
        reg.unregister("y")  # `missing` defaults to `unknown`
    with pytest.raises(ValueError, match=r"^gadget 'x' is already registered$"):
        reg.register("x", 2)


def test_unregister_or_replace_of_a_missing_name_is_refused_and_changes_nothing():
    reg: Registry[str] = Registry("kind", missing=Refusal(KeyError, "no kind {name!r} is registered"))
    reg.register("a", "A")
    for call in (lambda: reg.unregister("b"), lambda: reg.replace("b", "B")):
        with pytest.raises(KeyError) as caught:
            call()
        assert caught.value.args == ("no kind 'b' is registered",)
    assert reg.items() == (("a", "A"),)


def test_a_duplicate_name_is_refused_with_the_callers_words():
    reg: Registry[int] = Registry("kind", duplicate=Refusal(ValueError, "the kind {name!r} is taken"))
    reg.register("a", 1)
    with pytest.raises(ValueError, match=r"^the kind 'a' is taken$"):
        reg.register("a", 2, first=True)
    assert reg.items() == (("a", 1),)


def test_the_clash_hook_sees_every_registered_item_before_the_name_check():
    seen = []

    def clash(new: tuple[str, str], other: tuple[str, str]) -> None:
        seen.append(other[0])
        if new[1] == other[1]:
            raise ValueError(f"{new[0]}: key {new[1]!r} is taken by {other[0]!r}")

    reg: Registry[tuple[str, str]] = Registry("kind", clash=clash)
    reg.register("a", ("a", "k1"))
    reg.register("b", ("b", "k2"))
    assert seen == ["a"]
    with pytest.raises(ValueError, match="c: key 'k2' is taken by 'b'"):
        reg.register("c", ("c", "k2"))
    # the hook runs before the name check: a clashing key is reported even for a taken name
    with pytest.raises(ValueError, match="a: key 'k2' is taken by 'b'"):
        reg.register("a", ("a", "k2"))
    assert reg.names() == ("a", "b")


def test_the_check_hook_runs_after_the_name_check_and_can_refuse():
    allowed = {"a"}

    def check(item: str) -> None:
        if item not in allowed:
            raise ValueError(f"{item!r} is not allowed")

    reg: Registry[str] = Registry("kind", check=check)
    reg.register("a", "a")
    with pytest.raises(ValueError, match="'b' is not allowed"):
        reg.register("b", "b")
    with pytest.raises(ValueError, match="kind 'a' is already registered"):  # the name first
        reg.register("a", "x")
    assert reg.names() == ("a",)


def test_a_refusal_needs_an_exception_class_and_a_valid_template():
    with pytest.raises(TypeError):
        Refusal("not a class", "x")  # type: ignore[arg-type]
    with pytest.raises((KeyError, ValueError, IndexError)):
        Refusal(ValueError, "unknown {nme}")
    with pytest.raises(ValueError):
        Registry("")


def test_the_registry_module_loads_no_torch():
    code = "import sys, raykd.registry; sys.exit('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0

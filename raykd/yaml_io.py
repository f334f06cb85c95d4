"""YAML read the one safe way (`yaml.SafeLoader`), with errors as one line that names the file.

Tags that construct Python objects (`!!python/object`, `!!python/name`, ...) are refused on
purpose, and the message says so: a configuration file must never be able to run code.

Size is bounded too. A document over `MAX_YAML_BYTES` is refused unread, and aliases are bounded:
`&a [*b, *b, ...]` nested a few levels ("billion laughs") is a small file that expands to billions
of values in whatever walks it (a 1.5 KB space once gave a 622 MB error message). The composed
node graph is measured as it would expand, before anything is constructed, and refused beyond
`MAX_YAML_NODES`; an alias that contains itself is refused outright.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from raykd.errors import ConfigError

MAX_YAML_BYTES = 2**20  # configuration files are a few KB; refuse anything that is not one
MAX_YAML_NODES = 100_000  # scalars, lists and mappings after alias expansion (a large space has a few hundred)


def parse_yaml(text: str, where: str) -> Any:
    """The YAML document `text` (safe tags only, bounded size and expansion), or ConfigError
    naming `where` and the line of the problem."""
    import yaml

    if len(text) > MAX_YAML_BYTES:
        raise ConfigError(f"{where} is {len(text):,} characters, over {MAX_YAML_BYTES >> 10} KiB: not a configuration")
    try:
        loader = yaml.SafeLoader(text)
        try:
            node = loader.get_single_node()
            if node is None:
                return None
            _check_expansion(node, where)
            return loader.construct_document(node)
        finally:
            loader.dispose()
    except yaml.constructor.ConstructorError as exc:
        tag = _tag(exc)
        if tag:
            raise ConfigError(f"{where} uses the YAML tag {tag}, which raykd refuses on purpose (tags can build "
                              "Python objects and run code): write plain values") from None
        raise ConfigError(f"{where} is not valid YAML{_where(exc)}: {exc.problem}") from None
    except yaml.YAMLError as exc:
        problem = getattr(exc, "problem", None)
        raise ConfigError(f"{where} is not valid YAML{_where(exc)}" + (f": {problem}" if problem else "")) from None
    except RecursionError:
        raise ConfigError(f"{where} is nested too deeply to be a configuration") from None


def load_yaml_file(path: str | Path, what: str) -> Any:
    """Parse the YAML file at `path` (`what` names it in messages: "chain config", "search space")."""
    from raykd.paths import checked_path

    path = checked_path(path, what, resolve=False)
    if not path.exists():
        raise ConfigError(f"{what} {path} does not exist")
    if not path.is_file():
        raise ConfigError(f"{what} {path} is not a file")
    if path.stat().st_size > MAX_YAML_BYTES:
        raise ConfigError(f"{what} {path} is larger than {MAX_YAML_BYTES >> 10} KiB: not a configuration file")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise ConfigError(f"{what} {path} is not UTF-8 text") from None
    except OSError as exc:
        raise ConfigError(f"cannot read {what} {path}: {exc.strerror or exc}") from None
    return parse_yaml(text, str(path))


def _check_expansion(root: Any, where: str) -> None:
    """ConfigError when the node graph, aliases followed, holds more than MAX_YAML_NODES nodes or
    contains itself. Each distinct node's expanded size is computed once, so the check costs the
    size of the file, not of the expansion."""
    size: dict[int, int] = {}
    on_path: set[int] = set()
    stack: list[tuple[Any, bool]] = [(root, False)]
    while stack:
        node, children_done = stack.pop()
        key = id(node)
        if children_done:
            on_path.discard(key)
            size[key] = 1 + sum(size[id(c)] for c in _children(node))
            if size[key] > MAX_YAML_NODES:
                raise ConfigError(f"{where} expands to more than {MAX_YAML_NODES:,} values through its aliases "
                                  "(&anchor / *alias): not a configuration")
            continue
        if key in size:
            continue
        on_path.add(key)
        stack.append((node, True))
        for child in _children(node):
            if id(child) in on_path:
                raise ConfigError(f"{where} has an alias inside its own anchor (&anchor / *alias): not a configuration")
            if id(child) not in size:
                stack.append((child, False))


def _children(node: Any) -> list[Any]:
    import yaml

    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    if isinstance(node, yaml.MappingNode):
        return [n for pair in node.value for n in pair]
    return []


def _tag(exc: Any) -> str | None:
    for text in (getattr(exc, "problem", "") or "", str(exc)):
        if "tag '" in text:
            tag = text.split("tag '", 1)[1].split("'", 1)[0]
            return tag.replace("tag:yaml.org,2002:", "!!")
    return None


def _where(exc: Any) -> str:
    mark = getattr(exc, "problem_mark", None)
    return f" (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else ""

"""YAML read the one safe way (`yaml.safe_load`), with errors as one line that names the file.

Tags that construct Python objects (`!!python/object`, `!!python/name`, ...) are refused on
purpose, and the message says so: a configuration file must never be able to run code.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from raykd.errors import ConfigError

MAX_YAML_BYTES = 10 * 2**20  # configuration files are small; refuse anything that is not one


def parse_yaml(text: str, where: str) -> Any:
    """`yaml.safe_load(text)`, or ConfigError naming `where` and the line of the problem."""
    import yaml

    try:
        return yaml.safe_load(text)
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
    path = Path(path)
    if not path.exists():
        raise ConfigError(f"{what} {path} does not exist")
    if not path.is_file():
        raise ConfigError(f"{what} {path} is not a file")
    if path.stat().st_size > MAX_YAML_BYTES:
        raise ConfigError(f"{what} {path} is larger than {MAX_YAML_BYTES >> 20} MiB: not a configuration file")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise ConfigError(f"{what} {path} is not UTF-8 text") from None
    return parse_yaml(text, str(path))


def _tag(exc: Any) -> str | None:
    for text in (getattr(exc, "problem", "") or "", str(exc)):
        if "tag '" in text:
            tag = text.split("tag '", 1)[1].split("'", 1)[0]
            return tag.replace("tag:yaml.org,2002:", "!!")
    return None


def _where(exc: Any) -> str:
    mark = getattr(exc, "problem_mark", None)
    return f" (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else ""

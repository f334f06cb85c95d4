"""Draw raykd's package-level import graph as a Mermaid diagram, grouped by the layers contract.

    python docs/import_graph.py            # print the diagram
    python docs/import_graph.py --write    # replace the one in docs/architecture.md
    python docs/import_graph.py --check    # exit 1 when docs/architecture.md's diagram is stale

The layers come from `[tool.importlinter]` in pyproject.toml (one source for the contract and the
picture); the edges from grimp (import-linter's graph builder, function-level imports included),
between raykd's top-level packages and modules, transitively reduced (an arrow a -> c is left out
when a -> b -> c is drawn) so that the picture stays readable. For every module-level arrow:
`import-linter drawgraph raykd` (DOT) or `lint-imports --verbose`.
"""

from __future__ import annotations

import sys
from pathlib import Path

import grimp

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10: pytest's own dependency
    import tomli as tomllib

REPO = Path(__file__).resolve().parents[1]
DOC = REPO / "docs" / "architecture.md"
START, END = "<!-- import-graph:start (python docs/import_graph.py --write) -->", "<!-- import-graph:end -->"


def layers() -> list[list[str]]:
    """The layers contract's layers, top first, each a list of module tails (optional ones only if present)."""
    config = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["importlinter"]
    contract = next(c for c in config["contracts"] if c["type"] == "layers")
    out = []
    for layer in contract["layers"]:
        parts = [p.strip() for p in layer.replace("|", ":").split(":")]
        present = [p.strip("()") for p in parts
                   if not p.startswith("(") or (REPO / "raykd" / p.strip("()")).exists()
                   or (REPO / "raykd" / f"{p.strip('()')}.py").exists()]
        out.append(present)
    return out


def edges(names: set[str]) -> set[tuple[str, str]]:
    """(importer, imported) between raykd's top-level children, transitively reduced."""
    graph = grimp.build_graph("raykd", cache_dir=None)
    top = {m: m.split(".")[1] for m in graph.modules if m.count(".") >= 1}
    found = set()
    for module, child in top.items():
        for imported in graph.find_modules_directly_imported_by(module):
            other = top.get(imported)
            if other and other != child and child in names and other in names:
                found.add((child, other))
    succ: dict[str, set[str]] = {}
    for a, b in found:
        succ.setdefault(a, set()).add(b)

    def reachable_without(a: str, b: str) -> bool:  # b reachable from a other than by the arrow a -> b
        todo, seen = [n for n in succ.get(a, ()) if n != b], set()
        while todo:
            n = todo.pop()
            if n == b:
                return True
            if n not in seen:
                seen.add(n)
                todo.extend(succ.get(n, ()))
        return False

    return {(a, b) for a, b in found if not reachable_without(a, b)}


def mermaid() -> str:
    groups = layers()
    names = {n for g in groups for n in g}
    lines = ["```mermaid", "flowchart TB"]
    for i, group in enumerate(groups):
        lines.append(f'  subgraph L{i}[" "]')
        lines.extend(f"    {n}" for n in group)
        lines.append("  end")
    lines.extend(f"  {a} --> {b}" for a, b in sorted(edges(names)))
    lines.append("```")
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    block = f"{START}\n{mermaid()}\n{END}"
    if not argv:
        print(block)
        return 0
    text = DOC.read_text()
    head, rest = text.split(START, 1)
    current = START + rest.split(END, 1)[0] + END
    if argv == ["--check"]:
        if current != block:
            print(f"{DOC.relative_to(REPO)}: the import graph changed; run: python docs/import_graph.py --write")
            return 1
        return 0
    if argv == ["--write"]:
        DOC.write_text(head + block + rest.split(END, 1)[1])
        return 0
    print(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""The shape of the code: no import cycle among monitor's modules (imports inside
functions included: a lazy import is still a dependency), every third-party package it
imports declared in pyproject.toml."""

import ast
import re
import sys
import tomllib
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "monitor"


def module_names() -> dict[str, Path]:
    names = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        names[".".join(parts)] = path
    return names


def imports_of(name: str, path: Path, known: set[str]) -> set[str]:
    """The monitor modules ``name`` imports (``from a.b import c`` is a.b.c when that is a
    module, else a.b)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[:len(package.split(".")) - node.level + 1]
                                + ([base] if base else []))
            for alias in node.names:
                found.add(f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base)
    return {m for m in found if m in known and m != name}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index, low, stack, on_stack, result, counter = {}, {}, [], set(), [], [0]

    def visit(node):
        index[node] = low[node] = counter[0]
        counter[0] += 1
        stack.append(node)
        on_stack.add(node)
        for succ in sorted(graph[node]):
            if succ not in index:
                visit(succ)
                low[node] = min(low[node], low[succ])
            elif succ in on_stack:
                low[node] = min(low[node], index[succ])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                result.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return result


def test_no_import_cycle_in_monitor():
    names = module_names()
    graph = {name: imports_of(name, path, set(names)) for name, path in names.items()}
    assert graph["monitor.cli"] >= {"monitor.cli.service", "monitor.cli.model", "monitor.cli.review"}
    assert cycles(graph) == []


def test_the_cycle_finder_finds_a_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_subcommand_modules_never_import_the_group():
    names = module_names()
    for name in ("monitor.cli.service", "monitor.cli.model", "monitor.cli.review", "monitor.cli.web"):
        assert "monitor.cli" not in imports_of(name, names[name], set(names)), name


# distribution name in pyproject → the name it is imported by, where they differ
IMPORT_NAMES = {"scikit-learn": "sklearn", "css-inline": "css_inline", "psycopg[binary]": "psycopg"}


def _declared(requirements: list[str]) -> set[str]:
    names = {re.split(r"[<>=!~ ;]", r, maxsplit=1)[0].strip().lower() for r in requirements}
    return {IMPORT_NAMES.get(n, n.replace("-", "_")) for n in names}


def third_party_imports(paths) -> set[str]:
    found = set()
    for path in paths:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                found |= {alias.name.partition(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                found.add(node.module.partition(".")[0])
    return {m for m in found if m not in sys.stdlib_module_names and m != "monitor"}


def test_every_imported_third_party_package_is_declared():
    project = tomllib.loads((PACKAGE.parent / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    runtime = _declared(project["dependencies"])
    build = runtime | _declared(project["optional-dependencies"]["build"])
    modules = module_names()
    used_at_runtime = third_party_imports(p for n, p in modules.items() if not n.startswith("monitor._build"))
    used_to_build = third_party_imports(p for n, p in modules.items() if n.startswith("monitor._build"))
    assert used_at_runtime - runtime == set()
    assert used_to_build - build == set()
    assert {"pydantic", "numpy", "sklearn"} <= used_at_runtime


def test_the_readme_layout_names_every_module_and_nothing_else():
    readme = (PACKAGE.parent / "README.md").read_text(encoding="utf-8")
    section = readme.split("## How the code is laid out", 1)[1].split("\n## ", 1)[0]
    named = set(re.findall(r"`([\w.]+)`", section)) - {"__init__", "data/countries.json"}
    tree = {p.stem for p in PACKAGE.glob("*.py")} | {p.name for p in PACKAGE.iterdir()
                                                      if (p / "__init__.py").is_file()}
    for package in ("storage", "cli", "web", "_build"):
        tree |= {p.stem for p in (PACKAGE / package).glob("*.py")}
    tree -= {"__init__", "__main__"}
    assert named == tree

"""The hostile suite's README stays true: every test it names exists where it says, and
every test of this folder is named in it."""

import ast
import re
from pathlib import Path

HERE = Path(__file__).parent
TESTS = HERE.parent


def _test_names(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return {node.name for node in tree.body
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name.startswith("test_")}


def test_readme_names_every_hostile_test_and_only_existing_ones():
    readme = (HERE / "README.md").read_text(encoding="utf-8")
    here = set().union(*(_test_names(p) for p in HERE.glob("test_hostile_*.py")))
    named_here = set(re.findall(r"`(test_\w+)`", readme))
    assert here <= named_here, sorted(here - named_here)
    assert named_here <= here, sorted(named_here - here)
    for file, name in re.findall(r"`tests/(\w+\.py)::(test_\w+)`", readme):
        assert name in _test_names(TESTS / file), f"{file}::{name}"

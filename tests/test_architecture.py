"""The house rule import-linter cannot see: no private (underscore) name is imported from another module."""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "musicrep"


def private_imports(package: Path) -> list[str]:
    """``file:line imports module.name`` for each ``from musicrep… import _name`` across files of ``package``."""
    out = []
    for path in sorted(package.rglob("*.py")):
        parts = path.relative_to(package.parent).with_suffix("").parts
        here = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
            if not (isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == package.name):
                continue
            if node.module == here:
                continue
            out += [f"{path.relative_to(package)}:{node.lineno} imports {node.module}.{a.name}"
                    for a in node.names if a.name.startswith("_") and not a.name.startswith("__")]
    return out


def test_no_private_name_crosses_a_file() -> None:
    # a name with a leading underscore is its file's own business; sharing it means it needs a public home
    assert private_imports(SRC) == []


def test_the_check_finds_a_private_import(tmp_path: Path) -> None:
    pkg = tmp_path / "musicrep"
    (pkg / "models").mkdir(parents=True)
    (pkg / "models" / "__init__.py").write_text("_REGISTRY = {}\n")
    (pkg / "hear.py").write_text("from musicrep.models import _REGISTRY, get\nfrom musicrep import __version__\n")
    assert private_imports(pkg) == ["hear.py:1 imports musicrep.models._REGISTRY"]

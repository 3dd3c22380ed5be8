"""Layer rules that import-linter cannot express: the domain does not handle driver errors."""

from __future__ import annotations

import ast
from pathlib import Path

SERVICES = Path(__file__).resolve().parents[2] / "src" / "databunker" / "services"


def test_services_import_no_sqlalchemy_exception() -> None:
    offenders = []
    for path in sorted(SERVICES.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith(
                "sqlalchemy.exc"
            ):
                offenders.append(f"{path.name}:{node.lineno}")
            if isinstance(node, ast.Attribute) and node.attr == "exc":
                value = node.value
                if isinstance(value, ast.Name) and value.id in ("sa", "sqlalchemy"):
                    offenders.append(f"{path.name}:{node.lineno}")
    assert offenders == []


def test_services_build_no_wire_answers() -> None:
    offenders = [
        f"{path.name}:{number}"
        for path in sorted(SERVICES.glob("*.py"))
        for number, line in enumerate(path.read_text().splitlines(), start=1)
        if '"status"' in line
    ]
    assert offenders == []

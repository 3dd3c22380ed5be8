"""The package's metadata in pyproject.toml: what pip reads when Databunker is installed."""

from __future__ import annotations

import importlib.metadata
import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
SOURCE = "\n".join(path.read_text(encoding="utf-8") for path in (ROOT / "src").rglob("*.py"))
# Dependencies that no module imports, because another library loads them.
LOADED_BY_ANOTHER = {
    "psycopg": "postgresql+psycopg",  # SQLAlchemy's driver, named in the database URL
    "pymysql": "+pymysql",  # SQLAlchemy's MariaDB/MySQL driver, named the same way
    "python-multipart": None,  # Starlette's parser of form bodies
}


def distribution_name(requirement: str) -> str:
    match = re.match(r"[A-Za-z0-9_.-]+", requirement)
    assert match, requirement
    return match.group().lower().replace("_", "-")


def test_the_license_is_an_spdx_expression() -> None:
    # A table ({text = "MIT"}) makes setuptools warn on every install; a string needs 77.
    assert PYPROJECT["project"]["license"] == "MIT"
    assert "setuptools>=77" in PYPROJECT["build-system"]["requires"]


def test_every_dependency_is_used() -> None:
    modules: dict[str, set[str]] = {}
    for module, distributions in importlib.metadata.packages_distributions().items():
        for distribution in distributions:
            modules.setdefault(distribution_name(distribution), set()).add(module)

    unused = []
    for requirement in PYPROJECT["project"]["dependencies"]:
        name = distribution_name(requirement)
        if name in LOADED_BY_ANOTHER:
            mention = LOADED_BY_ANOTHER[name]
            assert mention is None or mention in SOURCE, name
            continue
        imported = [
            module
            for module in modules.get(name, ())
            if re.search(rf"^\s*(?:import|from)\s+{re.escape(module)}\b", SOURCE, re.MULTILINE)
        ]
        if not imported:
            unused.append(name)
    assert unused == []


def test_the_package_data_carries_every_template_and_catalogue() -> None:
    package = ROOT / "src" / "databunker"
    globs = PYPROJECT["tool"]["setuptools"]["package-data"]["databunker"]
    carried = {path for pattern in globs for path in package.glob(pattern)}
    needed = [
        *package.glob("web/templates/**/*.html"),
        *package.glob("web/static/*"),
        *package.glob("web/locale/*/LC_MESSAGES/messages.po"),
    ]
    assert len([p for p in needed if p.suffix == ".po"]) == 4
    assert [p for p in needed if p not in carried] == []

"""Every error message the domain can raise reads in each portal language.

The messages are found in the source, as a reviewer would: each construction of a
``DatabunkerError`` outside the API's own modules (which no page calls), with its message
a literal, an f-string (its fields filled with a sample), a module constant, a parameter
given literally where the function is called, or the class's default.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

import databunker.app  # noqa: F401 - imports every module, so every error class is known
from databunker.errors import DatabunkerError
from databunker.web import domain_messages, i18n

SOURCE = Path(__file__).resolve().parents[2] / "src" / "databunker"
SAMPLE = "xyz"


def _error_classes() -> dict[str, type[DatabunkerError]]:
    found: dict[str, type[DatabunkerError]] = {"DatabunkerError": DatabunkerError}
    waiting = [DatabunkerError]
    while waiting:
        for sub in waiting.pop().__subclasses__():
            if not sub.__module__.startswith("databunker.api"):
                found[sub.__name__] = sub
            waiting.append(sub)
    return found


def _called_name(call: ast.Call) -> str | None:
    if isinstance(call.func, ast.Name):
        return call.func.id
    if isinstance(call.func, ast.Attribute):
        return call.func.attr
    return None


def _sample(node: ast.expr) -> str | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        parts = [
            value.value if isinstance(value, ast.Constant) else SAMPLE for value in node.values
        ]
        return "".join(str(part) for part in parts)
    return None


class _Source:
    def __init__(self) -> None:
        self.trees = {
            path: ast.parse(path.read_text(), str(path))
            for path in sorted(SOURCE.rglob("*.py"))
            if "api" not in path.relative_to(SOURCE).parts
        }
        self.constants: dict[str, str] = {}
        for tree in self.trees.values():
            for node in tree.body:
                if isinstance(node, ast.Assign) and len(node.targets) == 1:
                    target, value = node.targets[0], _sample(node.value)
                    if isinstance(target, ast.Name) and value is not None:
                        self.constants[target.id] = value

    def given(self, function: ast.FunctionDef, parameter: str) -> list[str]:
        """What ``parameter`` of ``function`` is: its default and each literal passed."""
        arguments = function.args.args
        names = [a.arg for a in arguments]
        position = names.index(parameter)
        values = []
        defaults = dict(
            zip(
                names[len(names) - len(function.args.defaults) :],
                function.args.defaults,
                strict=True,
            )
        )
        if parameter in defaults and (default := _sample(defaults[parameter])) is not None:
            values.append(default)
        for tree in self.trees.values():
            for call in ast.walk(tree):
                if not isinstance(call, ast.Call) or _called_name(call) != function.name:
                    continue
                passed = [k.value for k in call.keywords if k.arg == parameter]
                if len(call.args) > position:
                    passed.append(call.args[position])
                values.extend(v for node in passed if (v := _sample(node)) is not None)
        return values


def domain_messages_in_source() -> Iterator[tuple[str, str]]:
    """(where, message) for each message an error is built with."""
    classes = _error_classes()
    source = _Source()
    for path, tree in source.trees.items():
        functions = [f for f in ast.walk(tree) if isinstance(f, ast.FunctionDef)]
        for call in ast.walk(tree):
            if not isinstance(call, ast.Call) or _called_name(call) not in classes:
                continue
            where = f"{path.relative_to(SOURCE)}:{call.lineno}"
            if not call.args:
                name = _called_name(call)
                assert name is not None
                yield where, classes[name]().message
                continue
            argument = call.args[0]
            sample = _sample(argument)
            if sample is not None:
                yield where, sample
            elif isinstance(argument, ast.Name) and argument.id in source.constants:
                yield where, source.constants[argument.id]
            elif isinstance(argument, ast.Name):
                owner = next(
                    f
                    for f in functions
                    if f.lineno <= call.lineno <= (f.end_lineno or f.lineno)
                    and argument.id in [a.arg for a in f.args.args]
                )
                given = source.given(owner, argument.id)
                assert given, where
                for value in given:
                    yield where, value
            else:
                pytest.fail(f"{where}: a message this test cannot read")


MESSAGES = sorted(set(domain_messages_in_source()))


def test_the_messages_are_found() -> None:
    found = {message for _where, message in MESSAGES}
    assert len(found) > 40
    assert {
        "access denied",  # AccessDenied()
        "invalid code",  # login.INVALID_CODE
        "incorrect brief format",  # parse_brief(brief, "incorrect brief format")
        f"invalid character in {SAMPLE}",  # an f-string
        "a retention started by an administrator can only be cancelled by an administrator",
    } <= found


@pytest.mark.parametrize("lang", [code for code in i18n.LANGUAGES if code != i18n.DEFAULT])
def test_every_domain_message_is_translated(lang: str) -> None:
    speaker = i18n.Speaker(lang)
    untranslated = [
        (where, message)
        for where, message in MESSAGES
        if domain_messages.shown(speaker, message) == message
    ]
    assert untranslated == []


def test_english_pages_show_the_messages_as_raised() -> None:
    english = i18n.Speaker(i18n.DEFAULT)
    for _where, message in MESSAGES:
        assert domain_messages.shown(english, message) == message


def test_a_variable_part_is_kept_in_the_translation() -> None:
    german = i18n.Speaker("de")
    assert domain_messages.shown(german, "invalid character in shortdesc") == (
        "unzulässiges Zeichen in shortdesc"
    )
    assert domain_messages.shown(german, "user schema error: 'x' is a required property") == (
        "Fehler im Schema der Personendaten: 'x' is a required property"
    )
    assert domain_messages.shown(german, "something new") == "something new"

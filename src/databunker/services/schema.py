"""The optional user-record JSON Schema (``generic.user_record_schema``).

Draft 2019-09 plus three keywords placed on properties:
``locked`` (no change after creation), ``admin`` (a data subject's change needs approval)
and ``preserve`` (kept when the person is erased). The schema is validated on create and on
every update. Error messages name the failing location and rule, never the value.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jsonschema import Draft201909Validator
from jsonschema.exceptions import SchemaError

from databunker.errors import BadRequest
from databunker.services.text import escape_controls

_MISSING = object()


class SchemaLoadError(ValueError):
    """The configured schema file cannot be used."""


def _marked(schema: Any, keyword: str, prefix: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    if not isinstance(schema, dict):
        return
    properties = schema.get("properties")
    if not isinstance(properties, dict):
        return
    for name, sub in properties.items():
        path = (*prefix, name)
        if isinstance(sub, dict) and sub.get(keyword) is True:
            yield path
        yield from _marked(sub, keyword, path)


def _pointer(path: tuple[str, ...]) -> str:
    return "".join("/" + part.replace("~", "~0").replace("/", "~1") for part in path)


def _value_at(document: Any, path: tuple[str, ...]) -> Any:
    for part in path:
        if not isinstance(document, dict) or part not in document:
            return _MISSING
        document = document[part]
    return document


@dataclass(frozen=True)
class UserSchema:
    validator: Draft201909Validator
    locked: tuple[tuple[str, ...], ...]
    admin: tuple[tuple[str, ...], ...]
    preserve: tuple[tuple[str, ...], ...]

    @classmethod
    def from_document(cls, schema: Any) -> UserSchema:
        try:
            Draft201909Validator.check_schema(schema)
        except SchemaError as exc:
            raise SchemaLoadError(f"user record schema is not valid: {exc.message}") from exc
        return cls(
            validator=Draft201909Validator(schema),
            locked=tuple(_marked(schema, "locked")),
            admin=tuple(_marked(schema, "admin")),
            preserve=tuple(_marked(schema, "preserve")),
        )

    @classmethod
    def load(cls, path: str | Path) -> UserSchema:
        try:
            document = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise SchemaLoadError(f"cannot read user record schema {path}") from exc
        return cls.from_document(document)

    def _first_error(self, document: Any) -> str | None:
        error = next(iter(sorted(self.validator.iter_errors(document), key=str)), None)
        if error is None:
            return None
        # The location may hold a key the caller sent: its message is kept in the audit trail.
        return f"{escape_controls(error.json_path)}: failed '{error.validator}' rule"

    def check_new(self, document: Any) -> None:
        problem = self._first_error(document)
        if problem:
            raise BadRequest(f"user schema error: {problem}")

    def check_change(self, old: Any, new: Any) -> None:
        for path in self.locked:
            if _value_at(old, path) != _value_at(new, path):
                raise BadRequest(
                    "schema validation error: User schema check error. "
                    f"Locked value changed: {_pointer(path)}"
                )
        problem = self._first_error(new)
        if problem:
            raise BadRequest(f"schema validation error: {problem}")

    def titles(self) -> dict[tuple[str, ...], str]:
        """Each property's ``title``, by its path (nested objects' properties too): the
        labels the portals show."""
        found: dict[tuple[str, ...], str] = {}

        def walk(schema: Any, prefix: tuple[str, ...]) -> None:
            properties = schema.get("properties") if isinstance(schema, dict) else None
            if not isinstance(properties, dict):
                return
            for name, sub in properties.items():
                path = (*prefix, name)
                if isinstance(sub, dict) and isinstance(sub.get("title"), str):
                    found[path] = sub["title"]
                walk(sub, path)

        walk(self.validator.schema, ())
        return found

    def admin_fields_changed(self, old: Any, new: Any) -> bool:
        return any(_value_at(old, p) != _value_at(new, p) for p in self.admin)

    def preserved_part(self, document: Any) -> dict[str, Any]:
        kept: dict[str, Any] = {}
        for path in self.preserve:
            value = _value_at(document, path)
            if value is _MISSING:
                continue
            target = kept
            for part in path[:-1]:
                target = target.setdefault(part, {})
            target[path[-1]] = value
        return kept

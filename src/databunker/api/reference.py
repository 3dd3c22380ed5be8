"""The API reference page: ``GET /docs``, rendered by the server from the v1 and v2
OpenAPI documents (the very ones ``/v1/openapi.json`` and ``/v2/openapi.json`` serve).

No script and no CDN: one server-rendered page (every value escaped by Jinja's
autoescape) and one local stylesheet, under a CSP that allows nothing else.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import orjson
from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup, escape
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from databunker.api import v2
from databunker.api.v1 import openapi as v1_openapi
from databunker.api.v2 import openapi as v2_openapi

__all__ = ["routes"]

HERE = Path(__file__).parent
PAGE_CSP = "default-src 'none'; style-src 'self'; frame-ancestors 'none'; base-uri 'none'"
STYLESHEET = (HERE / "static" / "reference.css").read_bytes()
METHODS = ("get", "post", "put", "patch", "delete")

_templates = Environment(
    loader=FileSystemLoader(HERE / "templates"),
    autoescape=select_autoescape(["html"]),
    trim_blocks=True,
    lstrip_blocks=True,
)
_CODE = re.compile(r"`([^`]+)`")
_STRONG = re.compile(r"\*\*([^*]+)\*\*")


def _inline(text: str) -> Markup:
    """The documents' light markup (`code` and **strong**), on text escaped first."""
    escaped = str(escape(text))
    escaped = _CODE.sub(r"<code>\1</code>", escaped)
    return Markup(_STRONG.sub(r"<strong>\1</strong>", escaped))  # noqa: S704 - escaped above


_templates.filters["inline"] = _inline


def _resolve(document: dict[str, Any], schema: Any) -> Any:
    """A schema with its component references replaced by what they name (one level)."""
    if isinstance(schema, dict) and isinstance(schema.get("$ref"), str):
        name = schema["$ref"].rsplit("/", 1)[-1]
        return document["components"]["schemas"].get(name, schema)
    return schema


def _operations(document: dict[str, Any]) -> list[dict[str, Any]]:
    shown: list[dict[str, Any]] = []
    for path, item in document["paths"].items():
        for method in METHODS:
            operation = item.get(method)
            if operation is None:
                continue
            body: dict[str, Any] = operation.get("requestBody", {}).get("content", {})
            body_schema = next(iter(body.values()))["schema"] if body else None
            answers = []
            for code, answer in operation["responses"].items():
                content: dict[str, Any] = answer.get("content", {})
                media, schema = next(iter(content.items())) if content else ("", {})
                with_schema = code == "200" and "schema" in schema
                shown_schema = _resolve(document, schema["schema"]) if with_schema else None
                answers.append(
                    {
                        "code": code,
                        "description": answer["description"],
                        "media": media,
                        "schema": _pretty(shown_schema),
                    }
                )
            shown.append(
                {
                    "anchor": operation["operationId"],
                    "method": method.upper(),
                    "path": path,
                    "summary": operation.get("summary", ""),
                    "description": operation.get("description", ""),
                    "parameters": [
                        _parameter(document, parameter)
                        for parameter in operation.get("parameters", [])
                    ],
                    "body": _pretty(_resolve(document, body_schema)),
                    "answers": answers,
                }
            )
    return shown


def _parameter(document: dict[str, Any], parameter: dict[str, Any]) -> dict[str, Any]:
    if "$ref" in parameter:
        name = parameter["$ref"].rsplit("/", 1)[-1]
        parameter = document["components"]["parameters"][name]
    return {
        "name": parameter["name"],
        "in": parameter["in"],
        "required": parameter.get("required", False),
        "description": parameter.get("description", ""),
        "schema": _pretty(parameter.get("schema")),
    }


def _pretty(schema: Any) -> str:
    if schema is None:
        return ""
    return orjson.dumps(schema, option=orjson.OPT_INDENT_2).decode()


_PAGE: dict[str, bytes] = {}


def _render(request: Request) -> bytes:
    if "page" not in _PAGE:
        wires = []
        for name, raw in (
            ("v1", v1_openapi.served_document(request)),
            ("v2", v2_openapi.served_document(v2.OPERATIONS)),
        ):
            document = orjson.loads(raw)
            wires.append(
                {
                    "name": name,
                    "title": document["info"]["title"],
                    "description": document["info"]["description"],
                    "document": f"/{name}/openapi.json",
                    "operations": _operations(document),
                }
            )
        template = _templates.get_template("reference.html")
        _PAGE["page"] = template.render(wires=wires).encode()
    return _PAGE["page"]


async def reference_page(request: Request) -> Response:
    response = Response(_render(request), media_type="text/html; charset=utf-8")
    response.headers["Content-Security-Policy"] = PAGE_CSP
    return response


async def stylesheet(_request: Request) -> Response:
    return Response(STYLESHEET, media_type="text/css; charset=utf-8")


routes = [
    Route("/docs", reference_page, methods=["GET"]),
    Route("/docs/reference.css", stylesheet, methods=["GET"]),
]

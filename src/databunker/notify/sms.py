"""SMS delivery through a generic HTTP gateway (spec §9.3): one outbox row of kind ``sms``.

``sms.url`` may hold the placeholders ``_PHONE_``, ``_FROM_``, ``_TOKEN_`` and ``_MSG_``,
replaced by the URL-encoded recipient, ``sms.from``, ``sms.token`` and message text. With
``sms.method: POST`` the template ``sms.body`` gets the same placeholders: for a JSON
``sms.content_type`` (``json`` or ``application/json``) the template is parsed and the values
go into its strings, so the body stays valid JSON whatever the values hold; otherwise they
are form-encoded and the body is sent as ``application/x-www-form-urlencoded``.
``sms.basic_auth`` ("user:pass") and ``sms.custom_header`` ("Name: value") are optional.

Invariant: the URL and body carry the gateway token and the login code, so neither is ever
logged or stored: a failure is ``http <status>`` or ``sms <exception type>``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any
from urllib.parse import quote, quote_plus

import httpx2 as httpx
import orjson

from databunker.config import SmsSettings

__all__ = ["JSON_CONTENT_TYPES", "build_request", "send_sms"]

JSON_CONTENT_TYPES = frozenset({"json", "application/json"})
FORM_CONTENT_TYPE = "application/x-www-form-urlencoded"
_PLACEHOLDER = re.compile("_PHONE_|_FROM_|_TOKEN_|_MSG_")
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})


def _values(sms: SmsSettings, payload: dict[str, Any]) -> dict[str, str]:
    return {
        "_PHONE_": str(payload["to"]),
        "_FROM_": sms.from_,
        "_TOKEN_": sms.token,
        "_MSG_": str(payload["text"]),
    }


def _substitute(template: str, values: dict[str, str], encode: Callable[[str], str]) -> str:
    # One pass over the template: a value that holds a placeholder name stays as it is.
    return _PLACEHOLDER.sub(lambda match: encode(values[match.group(0)]), template)


def _substitute_json(node: Any, values: dict[str, str]) -> Any:
    if isinstance(node, str):
        return _substitute(node, values, str)
    if isinstance(node, list):
        return [_substitute_json(item, values) for item in node]
    if isinstance(node, dict):
        return {
            _substitute(key, values, str): _substitute_json(value, values)
            for key, value in node.items()
        }
    return node


def build_request(client: httpx.Client, sms: SmsSettings, payload: dict[str, Any]) -> httpx.Request:
    """The gateway request for a payload ``{"to","text"}``.

    Raises ValueError when ``sms.body`` is not valid JSON under a JSON content type.
    """
    values = _values(sms, payload)
    url = _substitute(sms.url, values, lambda value: quote(value, safe=""))
    method = (sms.method or "GET").strip().upper()
    headers: dict[str, str] = {}
    content: bytes | None = None
    if method in _BODY_METHODS:
        if sms.content_type.strip().lower() in JSON_CONTENT_TYPES:
            try:
                template = orjson.loads(sms.body or "{}")
            except orjson.JSONDecodeError:
                raise ValueError("sms.body is not valid JSON") from None
            content = orjson.dumps(_substitute_json(template, values))
            headers["Content-Type"] = "application/json"
        else:
            content = _substitute(sms.body, values, quote_plus).encode()
            headers["Content-Type"] = FORM_CONTENT_TYPE
    if sms.custom_header:
        name, separator, value = sms.custom_header.partition(":")
        if separator and name.strip():
            headers[name.strip()] = value.strip()
    return client.build_request(method, url, content=content, headers=headers)


def _auth(sms: SmsSettings) -> httpx.BasicAuth | None:
    if not sms.basic_auth:
        return None
    user, _, password = sms.basic_auth.partition(":")
    return httpx.BasicAuth(user, password)


def send_sms(client: httpx.Client, sms: SmsSettings, payload: dict[str, Any]) -> str | None:
    """Send one message; None when the gateway answered 2xx, else a value-free description."""
    try:
        request = build_request(client, sms, payload)
    except ValueError:
        return "sms invalid body template"
    except Exception as exc:  # e.g. a URL the client rejects
        return f"sms {type(exc).__name__}"
    try:
        # Streamed and never read: the gateway's answer body may echo the code.
        response = client.send(request, stream=True, auth=_auth(sms))
        status = response.status_code
        response.close()
    except Exception as exc:  # any failure of the network or the gateway is retried
        return f"sms {type(exc).__name__}"
    return None if 200 <= status < 300 else f"http {status}"

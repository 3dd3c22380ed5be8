"""Calling the v2 wire from tests: ``POST /v2/<Operation>`` with a JSON body."""

from __future__ import annotations

from typing import Any

from httpx2 import Response
from starlette.testclient import TestClient

ANN: dict[str, Any] = {
    "login": "ann",
    "email": "ann@example.com",
    "phone": "+447700900123",
    "name": "Ann Ærø",
    "address": {"city": "London"},
}
BOB: dict[str, Any] = {"login": "bob", "email": "bob@example.com", "name": "Bob"}


def call(client: TestClient, operation: str, body: Any = None, **headers: str) -> Response:
    if body is None:
        return client.post(f"/v2/{operation}", headers=headers)
    return client.post(f"/v2/{operation}", json=body, headers=headers)


def ok(client: TestClient, operation: str, body: Any = None) -> dict[str, Any]:
    response = call(client, operation, body)
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    assert answer["status"] == "ok", answer
    return answer


def assert_error(response: Response, status: int, message: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    assert response.json() == {"status": "error", "message": message}


def create(client: TestClient, profile: dict[str, Any], **fields: Any) -> str:
    token = ok(client, "UserCreate", {"profile": profile, **fields})["token"]
    assert isinstance(token, str)
    return token


def other_tenant_root(root: TestClient, name: str = "acme") -> str:
    """A tenant of its own (made by the default tenant's root), and its root token."""
    answer = ok(root, "TenantCreate", {"tenantname": name, "tenantorg": name.title()})
    token = answer["xtoken"]
    assert isinstance(token, str)
    return token

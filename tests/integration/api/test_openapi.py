"""The served OpenAPI documents and the reference page: valid OpenAPI 3.1, complete (every
v1 route and v2 operation, nothing that is not served), public, and the page readable under
a CSP that loads nothing from elsewhere."""

from __future__ import annotations

from typing import Any

import pytest
from openapi_spec_validator import validate
from starlette.testclient import TestClient

from databunker.api.v1 import openapi as v1_openapi
from databunker.api.v2 import OPERATIONS
from databunker.api.v2 import openapi as v2_openapi
from databunker.app import build_app
from databunker.services.context import Context
from support.vaults import client_for


@pytest.fixture
def anonymous(vault: Context) -> Any:
    with client_for(vault, None) as client:
        yield client


def served_document(client: TestClient, wire: str) -> dict[str, Any]:
    response = client.get(f"/{wire}/openapi.json")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    document: dict[str, Any] = response.json()
    return document


@pytest.mark.parametrize("wire", ["v1", "v2"])
def test_the_documents_are_valid_openapi_3_1(anonymous: TestClient, wire: str) -> None:
    document = served_document(anonymous, wire)
    assert document["openapi"] == "3.1.0"
    validate(document)


def test_the_v1_document_describes_every_v1_route_and_nothing_else(vault: Context) -> None:
    routes = build_app(vault).starlette.router.routes
    served = set(v1_openapi.served_routes(routes))
    described = set(v1_openapi.DESCRIPTIONS)
    assert sorted(served - described) == [], "v1 routes without a description in openapi.py"
    assert sorted(described - served) == [], "descriptions of routes the app does not serve"


def test_a_route_without_a_description_is_refused(vault: Context) -> None:
    from starlette.routing import Route

    async def endpoint(_request: Any) -> Any:
        raise AssertionError

    routes = [*build_app(vault).starlette.router.routes, Route("/v1/new", endpoint)]
    with pytest.raises(v1_openapi.UndescribedRoute, match="GET /v1/new"):
        v1_openapi.document(routes)


def test_the_v1_document_lists_each_method_with_its_parameters(anonymous: TestClient) -> None:
    document = served_document(anonymous, "v1")
    user = document["paths"]["/v1/user/{mode}/{identity}"]
    assert set(user) == {"get", "put", "delete"}
    names = [(p["name"], p["in"]) for p in user["get"]["parameters"]]
    assert names == [("mode", "path"), ("identity", "path")]
    assert user["get"]["parameters"][0]["schema"]["enum"] == [
        "token",
        "login",
        "email",
        "phone",
        "custom",
    ]
    assert "403" in user["get"]["responses"]
    listing = document["paths"]["/v1/users"]["post"]
    assert [p["name"] for p in listing["parameters"]] == ["offset", "limit"]
    # The deliberate differences from the original are in the descriptions.
    assert "Differs from the original" in user["get"]["description"]


def test_every_v2_operation_has_a_summary_and_every_summary_an_operation() -> None:
    assert sorted(set(OPERATIONS) - set(v2_openapi.SUMMARIES)) == []
    assert sorted(set(v2_openapi.SUMMARIES) - set(OPERATIONS)) == []


def test_the_v2_document_has_one_path_per_operation(anonymous: TestClient) -> None:
    document = served_document(anonymous, "v2")
    assert set(document["paths"]) == {f"/v2/{name}" for name in OPERATIONS}
    for path, item in document["paths"].items():
        assert set(item) == {"post"}, path
        assert {"200", "400", "403", "404", "405", "413", "500", "503"} <= set(
            item["post"]["responses"]
        )
    create = document["paths"]["/v2/UserCreate"]["post"]
    body = create["requestBody"]["content"]["application/json"]["schema"]
    schema = document["components"]["schemas"][body["$ref"].rsplit("/", 1)[-1]]
    assert schema["required"] == ["profile"]
    assert create["security"] == [{"BunkerToken": []}]
    tenant = document["components"]["parameters"]["Tenant"]
    assert (tenant["name"], tenant["in"]) == ("X-Bunker-Tenant", "header")
    # The wire fills the client's address itself: it is no field of the body.
    prelogin = document["paths"]["/v2/UserPrelogin"]["post"]
    assert prelogin["security"] == [{}, {"BunkerToken": []}]
    ref = prelogin["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    assert (
        "client_address"
        not in document["components"]["schemas"][ref.rsplit("/", 1)[-1]]["properties"]
    )


def test_the_reference_page_shows_every_route_under_a_strict_csp(
    anonymous: TestClient,
) -> None:
    page = anonymous.get("/docs")
    assert page.status_code == 200
    assert page.headers["content-type"] == "text/html; charset=utf-8"
    csp = page.headers["content-security-policy"]
    assert "default-src 'none'" in csp
    assert "style-src 'self'" in csp
    assert "<script" not in page.text
    assert "http://" not in page.text
    assert "https://" not in page.text
    assert 'href="/docs/reference.css"' in page.text
    for method, path in v1_openapi.DESCRIPTIONS:
        assert f"{method}</span> <code>{path}</code>" in page.text
    for name in OPERATIONS:
        assert f"POST</span> <code>/v2/{name}</code>" in page.text
    # Values are escaped: the documents' text is never markup.
    assert "<code>{&#34;status&#34;:&#34;ok&#34;,...}</code>" in page.text
    assert "<strong>Who</strong>: Root only." in page.text
    stylesheet = anonymous.get("/docs/reference.css")
    assert stylesheet.status_code == 200
    assert stylesheet.headers["content-type"].startswith("text/css")


def test_the_documents_are_cached(anonymous: TestClient) -> None:
    first = anonymous.get("/v1/openapi.json").content
    assert anonymous.get("/v1/openapi.json").content == first
    assert anonymous.app.starlette.state.v1_openapi == first  # type: ignore[attr-defined]

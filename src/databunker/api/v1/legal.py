"""Catalogue routes: legal bases, processing activities and cookie settings."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from databunker.api.v1.body import RequestBody, read_request_body
from databunker.api.v1.runtime import Access, Handler, path_route, perform
from databunker.errors import BadRequest
from databunker.services import legal
from databunker.services.context import Work
from databunker.services.legal import (
    ActivityChange,
    BasisChange,
    CookieSettings,
    LegalBasis,
    ProcessingActivity,
)
from databunker.services.results import Page

Action = Callable[[Work, dict[str, Any], RequestBody], dict[str, Any]]


def _basis_body(basis: LegalBasis) -> dict[str, Any]:
    """A legal basis as v1 lists it (also inside a processing activity's ``briefs``)."""
    return {
        "brief": basis.brief,
        "status": basis.status,
        "module": basis.module,
        "shortdesc": basis.shortdesc,
        "fulldesc": basis.fulldesc,
        "basistype": basis.basistype,
        "requiredmsg": basis.requiredmsg,
        "usercontrol": basis.usercontrol,
        "requiredflag": basis.requiredflag,
        "creationtime": basis.created,
        # An extension: shown only for a basis that has texts in other languages.
        **({"translations": basis.translations} if basis.translations else {}),
    }


def _activity_body(activity: ProcessingActivity) -> dict[str, Any]:
    return {
        "activity": activity.activity,
        "title": activity.title,
        "script": activity.script,
        "fulldesc": activity.fulldesc,
        "legalbasis": ",".join(activity.linked_briefs),
        "applicableto": activity.applicableto,
        "creationtime": activity.created,
        "briefs": [_basis_body(basis) for basis in activity.bases],
    }


def _bases_body(found: Page[LegalBasis]) -> dict[str, Any]:
    return {"status": "ok", "total": found.total, "rows": [_basis_body(b) for b in found.rows]}


def _activities_body(found: Page[ProcessingActivity]) -> dict[str, Any]:
    rows = [_activity_body(activity) for activity in found.rows]
    return {"status": "ok", "total": found.total, "rows": rows}


def _cookie_settings_body(settings: CookieSettings) -> dict[str, Any]:
    return {
        "status": "ok",
        "ui": settings.ui,
        "rows": [_basis_body(basis) for basis in settings.bases],
        "scripts": [
            {"script": script.script, "briefs": list(script.briefs)} for script in settings.scripts
        ],
    }


def _save_basis(work: Work, params: dict[str, Any], request_body: RequestBody) -> None:
    body = request_body.object() or {}
    brief = legal.parse_brief(params["brief"])
    legal.save_basis(work, brief, _basis_change(body))


def _save_activity(work: Work, params: dict[str, Any], request_body: RequestBody) -> None:
    body = request_body.object() or {}
    activity = legal.parse_activity(params["activity"])
    legal.save_activity(work, activity, _activity_change(body))


def _root_route(action: Action) -> Handler:
    """A catalogue route: root only, not audited (the catalogue holds no personal data)."""

    async def handler(request: Request) -> Response:
        params = dict(request.path_params)
        body = await read_request_body(request)
        return await perform(request, Access.ROOT, lambda work: action(work, params, body))

    return handler


def _root_change(change: Callable[[Work, dict[str, Any], RequestBody], None]) -> Handler:
    """A catalogue change, answered with v1's bare ``ok``."""

    def action(work: Work, params: dict[str, Any], body: RequestBody) -> dict[str, Any]:
        change(work, params, body)
        return {"status": "ok"}

    return _root_route(action)


def _flag(body: dict[str, Any], name: str) -> bool | None:
    """A boolean field: a JSON boolean, or ``true``/``false`` text (as a form sends)."""
    if name not in body:
        return None
    value = body[name]
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    raise BadRequest(f"{name} must be true or false")


def _text(body: dict[str, Any], name: str) -> str | None:
    """A text field; a number counts as its text."""
    value = body.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise BadRequest(f"{name} must be text")
    return str(value)


def _basis_change(body: dict[str, Any]) -> BasisChange:
    return BasisChange(
        brief=_text(body, "brief") if body.get("brief") else None,
        status=_text(body, "status"),
        requiredflag=_flag(body, "requiredflag"),
        requiredmsg=_text(body, "requiredmsg"),
        module=_text(body, "module"),
        shortdesc=_text(body, "shortdesc"),
        fulldesc=_text(body, "fulldesc"),
        basistype=_text(body, "basistype"),
        usercontrol=_flag(body, "usercontrol"),
        translations=_translations(body),
    )


def _translations(body: dict[str, Any]) -> dict[str, dict[str, str]] | None:
    """The optional per-language texts (an extension of v1: absent keeps them)."""
    value = body.get("translations")
    return None if value is None else legal.check_translations(value)


def _activity_change(body: dict[str, Any]) -> ActivityChange:
    return ActivityChange(
        activity=_text(body, "activity") if body.get("activity") else None,
        title=_text(body, "title"),
        script=_text(body, "script"),
        fulldesc=_text(body, "fulldesc"),
        applicableto=_text(body, "applicableto"),
    )


async def cookie_settings(request: Request) -> Response:
    return await perform(
        request, Access.PUBLIC, lambda work: _cookie_settings_body(legal.cookie_settings(work))
    )


routes = [
    Route("/v1/sys/cookiesettings", cookie_settings, methods=["GET"]),
    Route(
        "/v1/lbasis",
        _root_route(lambda work, _p, _b: _bases_body(legal.list_bases(work))),
        methods=["GET"],
    ),
    path_route(
        "/v1/lbasis/{brief}",
        {
            "POST": _root_change(_save_basis),
            "DELETE": _root_change(lambda w, p, _b: legal.delete_basis(w, p["brief"])),
        },
    ),
    Route(
        "/v1/pactivity",
        _root_route(lambda work, _p, _b: _activities_body(legal.list_activities(work))),
        methods=["GET"],
    ),
    path_route(
        "/v1/pactivity/{activity}",
        {
            "POST": _root_change(_save_activity),
            "DELETE": _root_change(lambda w, p, _b: legal.delete_activity(w, p["activity"])),
        },
    ),
    path_route(
        "/v1/pactivity/{activity}/{brief}",
        {
            "POST": _root_change(
                lambda w, p, _b: legal.link_activity(w, p["activity"], p["brief"], linked=True)
            ),
            "DELETE": _root_change(
                lambda w, p, _b: legal.link_activity(w, p["activity"], p["brief"], linked=False)
            ),
        },
    ),
]

"""Admin pages of the consent catalogue: legal bases and processing activities.

The catalogue holds no personal data, and, as with ``/v1/lbasis`` and ``/v1/pactivity``,
its changes are not audited. A create form never overwrites an existing entry (the API's
POST is an upsert; a page that says "new" must not silently edit).
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from databunker.errors import Conflict, NotFound
from databunker.services import legal
from databunker.services.context import Work
from databunker.web import i18n, wording
from databunker.web.admin_base import as_admin, form, page, redirect, render
from databunker.web.pages import Payload

BASIS_TYPES = (
    "consent",
    "contract",
    "legal-requirement",
    "legitimate-interest",
    "public-interest",
    "vital-interest",
)
MODULES = ("login", "signup-page", "checkout-page", "cookie-popup", "login-page", "other")
STATUSES = (legal.ACTIVE, legal.DISABLED)
ACTIVITY_TEXTS = ("title", "script", "fulldesc", "applicableto")
CATALOGUE = "/admin/legal"


def _catalogue(work: Work) -> dict[str, Any]:
    return {
        "bases": legal.list_bases(work).rows,
        "activities": legal.list_activities(work).rows,
    }


def _labels(speaker: i18n.Speaker) -> dict[str, Any]:
    """How a basis's type, module and status read, for the listing's cells."""
    return {
        "basistype": lambda value: wording.label(speaker, wording.ADMIN_BASIS_TYPES, value),
        "module": lambda value: wording.label(speaker, wording.BASIS_MODULES, value),
        "status": lambda value: wording.label(speaker, wording.BASIS_STATUSES, value),
    }


@page
async def catalogue(request: Request) -> Response:
    view = await as_admin(request, _catalogue)
    labels = _labels(i18n.speaker(request))
    return render(request, "admin/legal.html", {**view, "labels": labels})


# --- legal bases ---------------------------------------------------------------------------


def _choices(
    speaker: i18n.Speaker, known: tuple[str, ...], labels: dict[str, str], current: str
) -> list[tuple[str, str]]:
    """The usual values, and the current one if it is something else (stored verbatim),
    each with the label the select shows for it."""
    values = list(known) if current in known or not current else [*known, current]
    return [(value, wording.label(speaker, labels, value)) for value in values]


async def _basis_form(request: Request, brief: str | None) -> Response:
    def operation(work: Work) -> Payload:
        view = _catalogue(work)
        if brief is None:
            return {"basis": None}
        found = next((b for b in view["bases"] if b.brief == brief), None)
        if found is None:
            raise NotFound()
        return {"basis": found}

    view = await as_admin(request, operation)
    found: legal.LegalBasis | None = view["basis"]
    basis_type, module = (found.basistype, found.module) if found else ("consent", "other")
    status = found.status if found else legal.ACTIVE
    speaker = i18n.speaker(request)
    context = {
        "basis": found or {"basistype": basis_type, "module": module, "status": status},
        "new": found is None,
        "basis_types": _choices(speaker, BASIS_TYPES, wording.ADMIN_BASIS_TYPES, basis_type),
        "modules": _choices(speaker, MODULES, wording.BASIS_MODULES, module),
        "statuses": _choices(speaker, STATUSES, wording.BASIS_STATUSES, status),
    }
    return render(request, "admin/basis.html", context)


@page
async def new_basis(request: Request) -> Response:
    return await _basis_form(request, None)


@page
async def edit_basis(request: Request) -> Response:
    return await _basis_form(request, legal.parse_brief(request.path_params["brief"]))


@page
async def save_basis(request: Request) -> Response:
    fields = await form(request)
    original = fields.get("original", "")
    brief = fields.get("brief", "").strip()

    def change(rename: str | None) -> legal.BasisChange:
        return legal.BasisChange(
            brief=rename or None,
            status=fields.get("status", legal.ACTIVE),
            # An unticked box is absent from the form: it means false here, not "keep".
            requiredflag=bool(fields.get("requiredflag")),
            usercontrol=bool(fields.get("usercontrol")),
            shortdesc=fields.get("shortdesc", ""),
            fulldesc=fields.get("fulldesc", ""),
            requiredmsg=fields.get("requiredmsg", ""),
            module=fields.get("module", ""),
            basistype=fields.get("basistype", ""),
        )

    def operation(work: Work) -> None:
        if original:
            legal.save_basis(work, legal.parse_brief(original), change(brief))
            return
        if legal.known_basis(work, legal.parse_brief(brief)) is not None:
            raise Conflict("a legal basis with this brief exists already")
        legal.save_basis(work, brief, change(None))

    await as_admin(request, operation)
    return redirect(request, CATALOGUE + "?done=basis-saved")


@page
async def delete_basis(request: Request) -> Response:
    fields = await form(request)
    brief = fields.get("brief", "")
    await as_admin(request, lambda work: legal.delete_basis(work, brief))
    return redirect(request, CATALOGUE + "?done=basis-deleted")


# --- processing activities -----------------------------------------------------------------


async def _activity_form(request: Request, activity: str | None) -> Response:
    def operation(work: Work) -> Payload:
        view = _catalogue(work)
        if activity is None:
            return {"activity": None, "bases": view["bases"]}
        found = next((a for a in view["activities"] if a.activity == activity), None)
        if found is None:
            raise NotFound()
        return {"activity": found, "bases": view["bases"]}

    view = await as_admin(request, operation)
    found: legal.ProcessingActivity | None = view["activity"]
    context = {
        "activity": found or {},
        "new": found is None,
        "bases": view["bases"],
        "linked": set(found.linked_briefs) if found else set(),
    }
    return render(request, "admin/activity.html", context)


@page
async def new_activity(request: Request) -> Response:
    return await _activity_form(request, None)


@page
async def edit_activity(request: Request) -> Response:
    return await _activity_form(request, legal.parse_activity(request.path_params["activity"]))


def _linked(work: Work, activity: str) -> set[str] | None:
    """The briefs linked to the activity, or None if there is no such activity."""
    for row in legal.list_activities(work).rows:
        if row.activity == activity:
            return set(row.linked_briefs)
    return None


@page
async def save_activity(request: Request) -> Response:
    fields = await form(request)
    ticked = (await request.form()).getlist("legalbasis")
    original = fields.get("original", "")
    name = fields.get("activity", "").strip()
    texts = {field: fields.get(field, "") for field in ACTIVITY_TEXTS}
    wanted = {v for v in ticked if isinstance(v, str)}

    def operation(work: Work) -> None:
        activity = legal.parse_activity(name)
        if original:
            change = legal.ActivityChange(activity=activity, **texts)
            legal.save_activity(work, legal.parse_activity(original), change)
        else:
            if _linked(work, activity) is not None:
                raise Conflict("a processing activity with this name exists already")
            legal.save_activity(work, activity, legal.ActivityChange(**texts))
        linked = _linked(work, activity) or set()
        for brief in sorted(wanted - linked):
            legal.link_activity(work, activity, brief, linked=True)
        for brief in sorted(linked - wanted):
            legal.link_activity(work, activity, brief, linked=False)

    await as_admin(request, operation)
    return redirect(request, CATALOGUE + "?done=activity-saved")


@page
async def delete_activity(request: Request) -> Response:
    fields = await form(request)
    activity = fields.get("activity", "")
    await as_admin(request, lambda work: legal.delete_activity(work, activity))
    return redirect(request, CATALOGUE + "?done=activity-deleted")


routes: list[Route] = [
    Route(CATALOGUE, catalogue, methods=["GET"]),
    Route(CATALOGUE + "/basis", new_basis, methods=["GET"]),
    Route(CATALOGUE + "/basis/{brief}", edit_basis, methods=["GET"]),
    Route(CATALOGUE + "/save-basis", save_basis, methods=["POST"]),
    Route(CATALOGUE + "/delete-basis", delete_basis, methods=["POST"]),
    Route(CATALOGUE + "/activity", new_activity, methods=["GET"]),
    Route(CATALOGUE + "/activity/{activity}", edit_activity, methods=["GET"]),
    Route(CATALOGUE + "/save-activity", save_activity, methods=["POST"]),
    Route(CATALOGUE + "/delete-activity", delete_activity, methods=["POST"]),
]

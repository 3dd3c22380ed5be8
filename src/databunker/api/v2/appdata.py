"""v2 app data (spec §2.4): a JSON document per person and application.

The same records as v1's ``/v1/userapp``: ``AppdataCreate`` writes the whole record
(a person's own token, for an application self-service does not open, opens a request
instead and is told its ``requestuuid``); ``AppdataUpdate`` merges (RFC 7396, root only);
``AppdataUpdateRequest`` always opens a ``change-app-data`` request.
"""

from __future__ import annotations

from typing import Any

from databunker.api.v2.fields import Identified
from databunker.api.v2.registry import Access, Payload, V2Body, V2Operation
from databunker.services import apps
from databunker.services.apps import AppRecordSaved
from databunker.services.context import Work
from databunker.services.results import RequestOpened

__all__ = ["OPERATIONS"]


class AppAddressed(Identified):
    appname: str


class AppGetBody(AppAddressed):
    version: int | None = None


class AppWriteBody(AppAddressed):
    appdata: dict[str, Any]


def _saved(saved: AppRecordSaved | RequestOpened) -> Payload:
    return {"requestuuid": saved.rtoken} if isinstance(saved, RequestOpened) else {}


def create(work: Work, body: AppWriteBody) -> Payload:
    saved = apps.create_app_record(work, body.mode, body.identity, body.appname, body.appdata)
    return _saved(saved)


def get(work: Work, body: AppGetBody) -> Payload:
    found = apps.get_app_record(work, body.mode, body.identity, body.appname)
    return {"token": found.token, "appname": found.app, "appdata": found.data}


def update(work: Work, body: AppWriteBody) -> Payload:
    saved = apps.change_app_record(work, body.mode, body.identity, body.appname, body.appdata)
    return _saved(saved)


def update_request(work: Work, body: AppWriteBody) -> Payload:
    opened = apps.request_app_change(work, body.mode, body.identity, body.appname, body.appdata)
    return {"requestuuid": opened.rtoken}


def delete(work: Work, body: AppAddressed) -> Payload:
    apps.delete_app_record(work, body.mode, body.identity, body.appname, must_exist=True)
    return {}


def user_app_names(work: Work, body: Identified) -> Payload:
    return {"apps": apps.list_user_apps(work, body.mode, body.identity).apps}


def app_names(work: Work, _body: V2Body) -> Payload:
    return {"apps": apps.list_app_names(work)}


APP_NOT_FOUND = "The app record was not found"

OPERATIONS = (
    V2Operation(
        "AppdataCreate",
        AppWriteBody,
        Access.AUTHENTICATED,
        create,
        title="create user app record by {mode}",
    ),
    V2Operation(
        "AppdataGet",
        AppGetBody,
        Access.AUTHENTICATED,
        get,
        title="get user app record by {mode}",
    ),
    V2Operation(
        "AppdataUpdate",
        AppWriteBody,
        Access.ROOT,
        update,
        title="change user app record by {mode}",
    ),
    V2Operation(
        "AppdataUpdateRequest",
        AppWriteBody,
        Access.AUTHENTICATED,
        update_request,
        title="change user app record by {mode}",
    ),
    V2Operation(
        "AppdataDelete",
        AppAddressed,
        Access.AUTHENTICATED,
        delete,
        title="delete user app record by {mode}",
    ),
    V2Operation(
        "AppdataListUserAppNames",
        Identified,
        Access.AUTHENTICATED,
        user_app_names,
        title="get user app list by {mode}",
    ),
    V2Operation("AppdataListAppNames", V2Body, Access.ROOT, app_names),
)

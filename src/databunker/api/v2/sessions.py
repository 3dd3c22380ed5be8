"""v2 sessions (spec §2.12): ``SessionUpsert``, ``SessionGet``, ``SessionDelete``,
``SessionListUserSessions``.

The same sessions as v1's ``/v1/session``: the object goes under ``sessiondata`` instead of
being the body, and the lifetime comes from ``finaltime`` / ``slidingtime`` instead of an
``expiration`` key inside it. A session is linked to a person by a top-level ``token``,
``login``, ``email``, ``phone`` or ``custom`` in its object, as in v1 (decision A16).
``slidingtime`` is counted from each write of the session (express-session re-posts it on
every touch); reads do not extend it.
"""

from __future__ import annotations

from typing import Any

from databunker.api.v2.fields import Identified, TimeValue
from databunker.api.v2.registry import Access, Payload, V2Body, V2Operation
from databunker.errors import BadRequest, NotFound
from databunker.services import sessions
from databunker.services.context import Work
from databunker.services.deadlines import final_time
from databunker.services.sessions import SessionView

__all__ = ["OPERATIONS", "lifetime"]

SESSION_NOT_FOUND = "The session record was not found"
# Every session of one person, answered at once (the list is not paged, §1.8).
MAX_LISTED = 10_000


class SessionAddressed(V2Body):
    sessionuuid: str


class SessionUpsertBody(SessionAddressed):
    sessiondata: dict[str, Any]
    slidingtime: TimeValue = None
    finaltime: TimeValue = None


def lifetime(work: Work, finaltime: TimeValue, slidingtime: TimeValue) -> int | None:
    """Seconds from now until the earlier of ``finaltime`` and ``slidingtime`` (both read as
    v2 times); None when neither is given (the policy's maximum applies)."""
    ends = [
        final_time(name, value, work.now)
        for name, value in (("finaltime", finaltime), ("slidingtime", slidingtime))
        if value not in (None, "", 0)
    ]
    if not ends:
        return None
    seconds = min(ends) - work.now
    if seconds <= 0:
        name = "finaltime" if finaltime not in (None, "", 0) else "slidingtime"
        raise BadRequest(f"The {name} parameter has an incorrect format")
    return seconds


def session_row(view: SessionView) -> Payload:
    return {"sessionuuid": view.session, "sessiondata": view.data, "when": view.updated}


def upsert(work: Work, body: SessionUpsertBody) -> Payload:
    seconds = lifetime(work, body.finaltime, body.slidingtime)
    sessions.upsert_session(work, body.sessionuuid, body.sessiondata, seconds)
    return {}


def get(work: Work, body: SessionAddressed) -> Payload:
    view = sessions.get_session(work, body.sessionuuid)
    return {"sessionuuid": view.session, "sessiondata": view.data}


def delete(work: Work, body: SessionAddressed) -> Payload:
    if not sessions.delete_session(work, body.sessionuuid):
        raise NotFound(SESSION_NOT_FOUND)
    return {}


def list_of_user(work: Work, body: Identified) -> Payload:
    found = sessions.list_user_sessions(work, body.mode, body.identity, 0, MAX_LISTED)
    return {"total": found.total, "rows": [session_row(view) for view in found.rows]}


OPERATIONS = (
    V2Operation(
        "SessionUpsert", SessionUpsertBody, Access.ROOT, upsert, not_found=SESSION_NOT_FOUND
    ),
    V2Operation(
        "SessionGet",
        SessionAddressed,
        Access.AUTHENTICATED,
        get,
        title="get session",
        not_found=SESSION_NOT_FOUND,
    ),
    V2Operation(
        "SessionDelete",
        SessionAddressed,
        Access.ROOT,
        delete,
        title="delete session",
        not_found=SESSION_NOT_FOUND,
    ),
    V2Operation(
        "SessionListUserSessions",
        Identified,
        Access.AUTHENTICATED,
        list_of_user,
        title="get all user sessions",
    ),
)

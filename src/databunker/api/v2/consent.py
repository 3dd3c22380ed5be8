"""v2 consent (spec §2.6): legal bases, a person's agreements, processing activities.

The same catalogue and the same agreements as v1's ``/v1/lbasis``, ``/v1/agreement`` and
``/v1/pactivity``: a consent given here is the one v1 shows, and the reverse. v2 spells an
agreement's state ``active`` / ``canceled`` / ``expired`` where the stored form (v1's) is
``yes`` / ``no`` / ``expired``, and a legal basis ``inactive`` where v1 says ``disabled``.
v2 needs a token and an existing person for every agreement (no consent by email alone).
"""

from __future__ import annotations

from typing import Any

from databunker.api.v2.fields import Identified, TimeValue
from databunker.api.v2.registry import USER_NOT_FOUND, Access, Missing, Payload, V2Body, V2Operation
from databunker.errors import BadRequest, NotFound
from databunker.services import agreements, legal, records
from databunker.services.agreements import AgreementView
from databunker.services.context import Work
from databunker.services.deadlines import final_time
from databunker.services.legal import LegalBasis, ProcessingActivity

__all__ = ["OPERATIONS"]

BASIS_NOT_FOUND = "The legal basis record was not found"
AGREEMENT_NOT_FOUND = "The agreement record was not found"
ACTIVITY_NOT_FOUND = "The processing activity record was not found"

# v2's legal-basis states and the stored ones.
_BASIS_STATUS_IN = {"active": legal.ACTIVE, "inactive": legal.DISABLED}
_BASIS_STATUS_OUT = {legal.ACTIVE: "active", legal.DISABLED: "inactive"}
# v2's agreement states and the stored ones (v1's).
_AGREEMENT_STATUS_OUT = {"yes": "active", "no": "canceled", "revoked": "canceled"}
Flag = bool | str | int | None


def _flag(name: str, value: Flag) -> bool | None:
    """A boolean: JSON ``true``/``false``, ``"true"``/``"false"``, or ``1``/``0`` (§1.4)."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    if isinstance(value, int) and value in (0, 1):
        return value == 1
    raise BadRequest(f"The {name} parameter has an incorrect format")


def _basis_status(value: str | None) -> str | None:
    if value is None or value == "":
        return None
    if value.lower() not in _BASIS_STATUS_IN:
        raise BadRequest("The status parameter has an incorrect format")
    return _BASIS_STATUS_IN[value.lower()]


# -- legal bases ------------------------------------------------------------------------------
class BasisAddressed(V2Body):
    brief: str


class BasisBody(BasisAddressed):
    status: str | None = None
    module: str | None = None
    fulldesc: str | None = None
    shortdesc: str | None = None
    basistype: str | None = None
    requiredmsg: str | None = None
    requiredflag: Flag = None


class BasisUpdateBody(BasisBody):
    newbrief: str | None = None


def _basis_change(body: BasisBody, newbrief: str | None = None) -> legal.BasisChange:
    return legal.BasisChange(
        brief=newbrief or None,
        status=_basis_status(body.status),
        requiredflag=_flag("requiredflag", body.requiredflag),
        requiredmsg=body.requiredmsg,
        module=body.module,
        shortdesc=body.shortdesc,
        fulldesc=body.fulldesc,
        basistype=body.basistype,
    )


def basis_row(basis: LegalBasis) -> Payload:
    return {
        "brief": basis.brief,
        "status": _BASIS_STATUS_OUT.get(basis.status, basis.status),
        "module": basis.module,
        "shortdesc": basis.shortdesc,
        "fulldesc": basis.fulldesc,
        "basistype": basis.basistype,
        "requiredmsg": basis.requiredmsg,
        "requiredflag": basis.requiredflag,
        "creationtime": basis.created,
    }


def basis_create(work: Work, body: BasisBody) -> Payload:
    legal.save_basis(work, body.brief, _basis_change(body), existing=False)
    return {}


def basis_update(work: Work, body: BasisUpdateBody) -> Payload:
    legal.save_basis(work, body.brief, _basis_change(body, body.newbrief), existing=True)
    return {}


def basis_delete(work: Work, body: BasisAddressed) -> Payload:
    legal.delete_basis(work, body.brief)
    return {}


def basis_list(work: Work, _body: V2Body) -> Payload:
    found = legal.list_bases(work)
    return {"total": found.total, "rows": [basis_row(basis) for basis in found.rows]}


# -- agreements -------------------------------------------------------------------------------
class AgreementAddressed(Identified):
    brief: str


class AgreementAcceptBody(AgreementAddressed):
    agreementmethod: str | None = None
    referencecode: str | None = None
    starttime: TimeValue = None
    finaltime: TimeValue = None
    status: str | None = None
    lastmodifiedby: str | None = None


def agreement_row(view: AgreementView) -> Payload:
    return {
        "brief": view.brief,
        "status": _AGREEMENT_STATUS_OUT.get(view.status, view.status),
        "agreementmethod": view.agreementmethod or "",
        "referencecode": view.referencecode or "",
        "starttime": view.starttime,
        "finaltime": view.endtime,
        "lastmodifiedby": view.lastmodifiedby or "",
        "creationtime": view.creationtime,
    }


def _person(work: Work, mode: str, identity: str) -> None:
    """The person must exist and be the caller's to reach (403 first, as ever)."""
    try:
        row, key, _profile = records.resolve_user(work, mode, identity)
    except NotFound as exc:
        raise Missing(USER_NOT_FOUND) from exc
    if row.erased is not None or key is None:
        raise Missing(USER_NOT_FOUND)


def _basis_exists(work: Work, brief: str) -> str:
    brief = legal.parse_brief(brief, "The brief parameter has an incorrect format")
    if legal.known_basis(work, brief) is None:
        raise Missing(BASIS_NOT_FOUND)
    return brief


def _title(work: Work, template: str, brief: str) -> None:
    shown = brief.lower() if legal.BRIEF_PATTERN.fullmatch(brief.lower()) else "unknown brief"
    work.audit.record(title=template.format(brief=shown))


def agreement_accept(work: Work, body: AgreementAcceptBody) -> Payload:
    _title(work, "accept agreement for {brief}", body.brief)
    if body.status not in (None, "", "active"):
        # Stored consent is given or withdrawn; "pending" and "expired" have no stored form.
        raise BadRequest("The status parameter has an incorrect format")
    starttime = final_time("starttime", body.starttime, work.now)
    finaltime = final_time("finaltime", body.finaltime, work.now)
    _person(work, body.mode, body.identity)
    brief = _basis_exists(work, body.brief)
    given = agreements.AgreementInput(
        status="yes",
        starttime=starttime or None,
        expiration=finaltime or None,
        lastmodifiedby=body.lastmodifiedby,
        referencecode=body.referencecode,
        agreementmethod=body.agreementmethod,
    )
    agreements.accept(work, brief, body.mode, body.identity, given)
    return {}


def agreement_get(work: Work, body: AgreementAddressed) -> Payload:
    _title(work, "get agreements for {brief}", body.brief)
    _person(work, body.mode, body.identity)
    brief = _basis_exists(work, body.brief)
    return {
        "agreement": agreement_row(agreements.get_agreement(work, brief, body.mode, body.identity))
    }


def agreement_list(work: Work, body: Identified) -> Payload:
    _person(work, body.mode, body.identity)
    found = agreements.list_agreements(work, body.mode, body.identity)
    return {"total": found.total, "rows": [agreement_row(view) for view in found.rows]}


def agreement_cancel(work: Work, body: AgreementAddressed) -> Payload:
    _title(work, "withdraw agreement for {brief}", body.brief)
    _person(work, body.mode, body.identity)
    brief = _basis_exists(work, body.brief)
    agreements.get_agreement(work, brief, body.mode, body.identity)  # 404 when none
    agreements.withdraw(work, brief, body.mode, body.identity, "admin")
    return {}


def agreement_cancel_request(work: Work, body: AgreementAddressed) -> Payload:
    _title(work, "withdraw agreement for {brief}", body.brief)
    _person(work, body.mode, body.identity)
    brief = _basis_exists(work, body.brief)
    opened = agreements.request_withdrawal(work, brief, body.mode, body.identity)
    return {"requestuuid": opened.rtoken}


def agreement_revoke_all(work: Work, body: BasisAddressed) -> Payload:
    agreements.revoke_everywhere(work, body.brief)
    return {}


# -- processing activities --------------------------------------------------------------------
class ActivityAddressed(V2Body):
    activity: str


class ActivityBody(ActivityAddressed):
    title: str | None = None
    script: str | None = None
    fulldesc: str | None = None
    applicableto: str | None = None


class ActivityUpdateBody(ActivityBody):
    newactivity: str | None = None


class ActivityLinkBody(ActivityAddressed):
    brief: str


def _activity_change(body: ActivityBody, newactivity: str | None = None) -> legal.ActivityChange:
    return legal.ActivityChange(
        activity=newactivity or None,
        title=body.title,
        script=body.script,
        fulldesc=body.fulldesc,
        applicableto=body.applicableto,
    )


def activity_row(activity: ProcessingActivity) -> Payload:
    return {
        "activity": activity.activity,
        "title": activity.title,
        "script": activity.script,
        "fulldesc": activity.fulldesc,
        "applicableto": activity.applicableto,
        "briefs": list(activity.linked_briefs),
        "creationtime": activity.created,
    }


def activity_create(work: Work, body: ActivityBody) -> Payload:
    legal.save_activity(work, body.activity, _activity_change(body), existing=False)
    return {}


def activity_update(work: Work, body: ActivityUpdateBody) -> Payload:
    change = _activity_change(body, body.newactivity)
    legal.save_activity(work, body.activity, change, existing=True)
    return {}


def activity_delete(work: Work, body: ActivityAddressed) -> Payload:
    legal.delete_activity(work, body.activity)
    return {}


def activity_link(work: Work, body: ActivityLinkBody) -> Payload:
    brief = _basis_exists(work, body.brief)
    legal.link_activity(work, body.activity, brief, linked=True)
    return {}


def activity_unlink(work: Work, body: ActivityLinkBody) -> Payload:
    legal.link_activity(work, body.activity, body.brief, linked=False)
    return {}


def activity_list(work: Work, _body: V2Body) -> Payload:
    found = legal.list_activities(work)
    return {"total": found.total, "rows": [activity_row(one) for one in found.rows]}


def _op(
    name: str, model: type[V2Body], access: Access, handler: Any, not_found: str
) -> V2Operation:
    return V2Operation(name, model, access, handler, not_found=not_found)


OPERATIONS = (
    _op("LegalBasisCreate", BasisBody, Access.ROOT, basis_create, BASIS_NOT_FOUND),
    _op("LegalBasisUpdate", BasisUpdateBody, Access.ROOT, basis_update, BASIS_NOT_FOUND),
    _op("LegalBasisDelete", BasisAddressed, Access.ROOT, basis_delete, BASIS_NOT_FOUND),
    _op("LegalBasisListAgreements", V2Body, Access.ROOT, basis_list, BASIS_NOT_FOUND),
    _op(
        "AgreementAccept",
        AgreementAcceptBody,
        Access.AUTHENTICATED,
        agreement_accept,
        BASIS_NOT_FOUND,
    ),
    _op(
        "AgreementGet", AgreementAddressed, Access.AUTHENTICATED, agreement_get, AGREEMENT_NOT_FOUND
    ),
    V2Operation(
        "AgreementListUserAgreements",
        Identified,
        Access.AUTHENTICATED,
        agreement_list,
        title="get agreements for {mode}",
    ),
    _op("AgreementCancel", AgreementAddressed, Access.ROOT, agreement_cancel, AGREEMENT_NOT_FOUND),
    _op(
        "AgreementCancelRequest",
        AgreementAddressed,
        Access.AUTHENTICATED,
        agreement_cancel_request,
        AGREEMENT_NOT_FOUND,
    ),
    _op("AgreementRevokeAll", BasisAddressed, Access.ROOT, agreement_revoke_all, BASIS_NOT_FOUND),
    _op("ProcessingActivityCreate", ActivityBody, Access.ROOT, activity_create, ACTIVITY_NOT_FOUND),
    _op(
        "ProcessingActivityUpdate",
        ActivityUpdateBody,
        Access.ROOT,
        activity_update,
        ACTIVITY_NOT_FOUND,
    ),
    _op(
        "ProcessingActivityDelete",
        ActivityAddressed,
        Access.ROOT,
        activity_delete,
        ACTIVITY_NOT_FOUND,
    ),
    _op(
        "ProcessingActivityLinkLegalBasis",
        ActivityLinkBody,
        Access.ROOT,
        activity_link,
        ACTIVITY_NOT_FOUND,
    ),
    _op(
        "ProcessingActivityUnlinkLegalBasis",
        ActivityLinkBody,
        Access.ROOT,
        activity_unlink,
        ACTIVITY_NOT_FOUND,
    ),
    _op("ProcessingActivityListActivities", V2Body, Access.ROOT, activity_list, ACTIVITY_NOT_FOUND),
)

"""v2 consent: legal bases, agreements and processing activities, on SQLite and PostgreSQL;
the same catalogue and consents as v1's."""

from __future__ import annotations

from typing import Any

import pytest
from starlette.testclient import TestClient

from databunker.services.context import Context
from support.v2 import ANN, BOB, assert_error, call, create, ok
from support.vaults import client_for, issue_user_token

BASIS_NOT_FOUND = "The legal basis record was not found"
USER_NOT_FOUND = "The user record was not found"
AGREEMENT_NOT_FOUND = "The agreement record was not found"
NEWS = {
    "brief": "news",
    "status": "active",
    "module": "signup",
    "fulldesc": "The weekly newsletter",
    "shortdesc": "Newsletter",
    "basistype": "consent",
    "requiredmsg": None,
    "requiredflag": None,
}


def _bases(client: TestClient) -> dict[str, dict[str, Any]]:
    rows = ok(client, "LegalBasisListAgreements")["rows"]
    return {row["brief"]: row for row in rows}


def _mi(token: str, **fields: Any) -> dict[str, Any]:
    return {"mode": "token", "identity": token, **fields}


# -- legal bases -----------------------------------------------------------------------------
def test_a_legal_basis_is_created_listed_updated_renamed_and_deleted(api: TestClient) -> None:
    assert ok(api, "LegalBasisCreate", NEWS) == {"status": "ok"}
    listed = ok(api, "LegalBasisListAgreements")
    assert listed["total"] == len(listed["rows"]) == 3  # with the two seeded login-code bases
    news = _bases(api)["news"]
    assert {k: news[k] for k in NEWS if NEWS[k] is not None} == {
        k: v for k, v in NEWS.items() if v is not None
    }
    assert (news["requiredflag"], news["requiredmsg"]) == (False, "")
    # the same basis through v1
    v1 = {row["brief"]: row for row in api.get("/v1/lbasis").json()["rows"]}
    assert v1["news"]["shortdesc"] == "Newsletter"

    ok(api, "LegalBasisUpdate", {"brief": "news", "status": "inactive", "requiredflag": "true"})
    news = _bases(api)["news"]
    assert (news["status"], news["requiredflag"], news["shortdesc"]) == (
        "inactive",
        True,
        "Newsletter",
    )
    ok(api, "LegalBasisUpdate", {"brief": "news", "newbrief": "letters"})
    assert "news" not in _bases(api)
    assert _bases(api)["letters"]["fulldesc"] == "The weekly newsletter"
    ok(api, "LegalBasisDelete", {"brief": "letters"})
    assert "letters" not in _bases(api)


def test_legal_basis_errors(api: TestClient) -> None:
    ok(api, "LegalBasisCreate", NEWS)
    assert_error(
        call(api, "LegalBasisCreate", NEWS), 409, "A legal basis with this brief exists already"
    )
    assert_error(call(api, "LegalBasisCreate", {}), 400, "Missing API request parameters: brief")
    assert_error(call(api, "LegalBasisCreate", {"brief": "Bad brief!"}), 400, "Bad brief format")
    assert_error(
        call(api, "LegalBasisCreate", {"brief": "other", "status": "maybe"}),
        400,
        "The status parameter has an incorrect format",
    )
    assert_error(
        call(api, "LegalBasisCreate", {"brief": "other", "requiredflag": "perhaps"}),
        400,
        "The requiredflag parameter has an incorrect format",
    )
    assert_error(call(api, "LegalBasisUpdate", {"brief": "nothing"}), 404, BASIS_NOT_FOUND)
    ok(api, "LegalBasisCreate", {"brief": "other"})
    assert_error(
        call(api, "LegalBasisUpdate", {"brief": "other", "newbrief": "news"}),
        409,
        "A legal basis with this brief exists already",
    )
    assert_error(call(api, "LegalBasisDelete", {"brief": "nothing"}), 404, BASIS_NOT_FOUND)


# -- agreements ------------------------------------------------------------------------------
def test_an_agreement_is_accepted_read_listed_and_canceled(api: TestClient, clock: Any) -> None:
    ok(api, "LegalBasisCreate", NEWS)
    ann = create(api, ANN)
    now = clock()

    ok(
        api,
        "AgreementAccept",
        {
            "mode": "email",
            "identity": "ANN@example.com",
            "brief": "news",
            "agreementmethod": "checkbox",
            "referencecode": "ref-1",
            "finaltime": "1d",
            "lastmodifiedby": "signup-page",
        },
    )
    agreement = ok(api, "AgreementGet", _mi(ann, brief="news"))["agreement"]
    assert agreement == {
        "brief": "news",
        "status": "active",
        "agreementmethod": "checkbox",
        "referencecode": "ref-1",
        "starttime": 0,
        "finaltime": now + 86400,
        "lastmodifiedby": "signup-page",
        "creationtime": now,
    }
    listed = ok(api, "AgreementListUserAgreements", {"mode": "login", "identity": "ann"})
    assert (listed["total"], listed["rows"]) == (1, [agreement])
    # one data model: v1 sees the consent given through v2
    assert api.get(f"/v1/agreement/news/token/{ann}").json()["data"]["status"] == "yes"

    ok(api, "AgreementCancel", _mi(ann, brief="news"))
    agreement = ok(api, "AgreementGet", _mi(ann, brief="news"))["agreement"]
    assert (agreement["status"], agreement["lastmodifiedby"]) == ("canceled", "admin")
    # and v2 sees a consent given through v1
    api.post(f"/v1/agreement/news/token/{ann}", json={})
    assert ok(api, "AgreementGet", _mi(ann, brief="news"))["agreement"]["status"] == "active"


def test_agreement_errors(api: TestClient) -> None:
    ok(api, "LegalBasisCreate", NEWS)
    ann = create(api, ANN)
    nobody = {"mode": "email", "identity": "nobody@example.com", "brief": "news"}
    assert_error(call(api, "AgreementAccept", nobody), 404, USER_NOT_FOUND)
    assert_error(call(api, "AgreementAccept", _mi(ann, brief="other")), 404, BASIS_NOT_FOUND)
    assert_error(call(api, "AgreementGet", _mi(ann, brief="news")), 404, AGREEMENT_NOT_FOUND)
    assert_error(call(api, "AgreementCancel", _mi(ann, brief="news")), 404, AGREEMENT_NOT_FOUND)
    assert_error(
        call(api, "AgreementAccept", _mi(ann, brief="news", status="pending")),
        400,
        "The status parameter has an incorrect format",
    )
    assert_error(
        call(api, "AgreementAccept", _mi(ann, brief="news", finaltime="later")),
        400,
        "The finaltime parameter has an incorrect format",
    )
    assert_error(
        call(api, "AgreementAccept", {"mode": "token", "identity": ann}),
        400,
        "Missing API request parameters: brief",
    )
    assert_error(
        call(api, "AgreementAccept", {"mode": "nickname", "identity": "x", "brief": "news"}),
        400,
        "The mode parameter has an incorrect format",
    )
    # nothing was stored for nobody
    assert api.get("/v1/agreements/email/nobody@example.com").status_code == 404


def test_a_person_accepts_and_asks_to_cancel_their_own_agreement(
    api: TestClient, vault: Context
) -> None:
    ok(api, "LegalBasisCreate", NEWS)
    ann = create(api, ANN)
    bob = create(api, BOB)
    with client_for(vault, issue_user_token(vault, ann)) as own:
        ok(own, "AgreementAccept", _mi(ann, brief="news"))
        assert ok(own, "AgreementGet", _mi(ann, brief="news"))["agreement"]["status"] == "active"
        opened = ok(own, "AgreementCancelRequest", _mi(ann, brief="news"))["requestuuid"]
        # someone else's record: denied, whether or not it exists
        for identity in (bob, "5b7f3a1e-0000-4000-8000-0000000000ff"):
            assert_error(
                call(own, "AgreementAccept", _mi(identity, brief="news")), 403, "Access denied"
            )
        assert_error(call(own, "AgreementCancel", _mi(ann, brief="news")), 403, "Access denied")
    request = ok(api, "UserRequestGet", {"requestuuid": opened})["request"]
    assert (request["requesttype"], request["brief"], request["status"]) == (
        "agreement-withdraw",
        "news",
        "open",
    )
    assert ok(api, "AgreementGet", _mi(ann, brief="news"))["agreement"]["status"] == "active"
    ok(api, "UserRequestApprove", {"requestuuid": opened})
    assert ok(api, "AgreementGet", _mi(ann, brief="news"))["agreement"]["status"] == "canceled"


def test_revoke_all_cancels_the_brief_for_everyone(api: TestClient) -> None:
    ok(api, "LegalBasisCreate", NEWS)
    tokens = [create(api, ANN), create(api, BOB)]
    for token in tokens:
        ok(api, "AgreementAccept", _mi(token, brief="news"))

    ok(api, "AgreementRevokeAll", {"brief": "news"})

    for token in tokens:
        assert (
            ok(api, "AgreementGet", _mi(token, brief="news"))["agreement"]["status"] == "canceled"
        )
    assert_error(call(api, "AgreementRevokeAll", {"brief": "nothing"}), 404, BASIS_NOT_FOUND)


# -- processing activities -------------------------------------------------------------------
def test_processing_activities_with_their_legal_bases(api: TestClient) -> None:
    ok(api, "LegalBasisCreate", NEWS)
    ok(
        api,
        "ProcessingActivityCreate",
        {"activity": "mailing", "title": "Mailing", "script": "", "applicableto": "customers"},
    )
    ok(api, "ProcessingActivityLinkLegalBasis", {"activity": "mailing", "brief": "news"})
    ok(api, "ProcessingActivityLinkLegalBasis", {"activity": "mailing", "brief": "news"})
    listed = ok(api, "ProcessingActivityListActivities")
    assert listed["total"] == 1
    row = listed["rows"][0]
    assert {k: row[k] for k in ("activity", "title", "applicableto", "briefs")} == {
        "activity": "mailing",
        "title": "Mailing",
        "applicableto": "customers",
        "briefs": ["news"],
    }
    assert api.get("/v1/pactivity").json()["rows"][0]["activity"] == "mailing"

    ok(
        api,
        "ProcessingActivityUpdate",
        {"activity": "mailing", "newactivity": "letters", "fulldesc": "Letters"},
    )
    ok(api, "ProcessingActivityUnlinkLegalBasis", {"activity": "letters", "brief": "news"})
    row = ok(api, "ProcessingActivityListActivities")["rows"][0]
    assert (row["activity"], row["fulldesc"], row["briefs"]) == ("letters", "Letters", [])
    ok(api, "ProcessingActivityDelete", {"activity": "letters"})
    assert ok(api, "ProcessingActivityListActivities") == {"status": "ok", "total": 0, "rows": []}


@pytest.mark.parametrize(
    ("operation", "body", "status", "message"),
    [
        ("ProcessingActivityCreate", {}, 400, "Missing API request parameters: activity"),
        ("ProcessingActivityCreate", {"activity": "Not valid"}, 400, "Bad activity format"),
        (
            "ProcessingActivityUpdate",
            {"activity": "nothing"},
            404,
            "The processing activity record was not found",
        ),
        (
            "ProcessingActivityDelete",
            {"activity": "nothing"},
            404,
            "The processing activity record was not found",
        ),
        (
            "ProcessingActivityLinkLegalBasis",
            {"activity": "nothing", "brief": "news"},
            404,
            "The processing activity record was not found",
        ),
        (
            "ProcessingActivityLinkLegalBasis",
            {"activity": "mailing", "brief": "nothing"},
            404,
            BASIS_NOT_FOUND,
        ),
        (
            "ProcessingActivityUnlinkLegalBasis",
            {"activity": "nothing", "brief": "news"},
            404,
            "The processing activity record was not found",
        ),
    ],
)
def test_processing_activity_errors(
    api: TestClient, operation: str, body: dict[str, Any], status: int, message: str
) -> None:
    ok(api, "LegalBasisCreate", NEWS)
    ok(api, "ProcessingActivityCreate", {"activity": "mailing"})
    assert_error(call(api, operation, body), status, message)
    assert_error(
        call(api, "ProcessingActivityCreate", {"activity": "mailing"}),
        409,
        "A processing activity with this name exists already",
    )

"""Agreements: a person's consent (or refusal) for a legal basis.

An agreement belongs to a person by token. Consent given by email or phone before the person
has a record is kept under a blind index of that identity, with the identity itself
encrypted under the ``identity`` service key (randomised, never a fixed nonce), and is bound
to the person when a record with that email or phone is created.

Anonymous callers (no token at all) may accept by email or phone, as the login page must,
but may not change an agreement that exists already, and may never withdraw.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from databunker.crypto import DataKey, DecryptionError, value_context
from databunker.errors import AccessDenied, BadRequest, NotFound
from databunker.services import records
from databunker.services.context import Work
from databunker.services.durations import requested_seconds, requested_time
from databunker.services.identity import lookup_index, normalise, parse_mode
from databunker.services.legal import known_basis, parse_brief, usable_basis
from databunker.services.outbox import enqueue_webhook
from databunker.services.request_queue import open_request
from databunker.services.results import Page, RequestOpened
from databunker.services.text import clean_text
from databunker.storage import agreements as agreement_rows
from databunker.storage.agreements import AgreementRow
from databunker.storage.repositories import UserRow

ANONYMOUS_MODES = ("email", "phone")
GIVEN = {"1", "active", "accept", "agree", "approve", "given", "good", "ok", "on", "true", "y"}


def normalise_status(value: Any) -> str:
    """Databunker's many spellings of consent: yes, or no for anything else."""
    if value is None:
        return "yes"
    if isinstance(value, bool):
        return "yes" if value else "no"
    text = str(value).strip().lower()
    return "yes" if text == "yes" or text in GIVEN else "no"


def agreement_time(value: Any, now: int) -> int:
    """A JSON number is an absolute time; a string is a duration from now."""
    if value is None or value == "":
        return 0
    if isinstance(value, int | float) and not isinstance(value, bool):
        return requested_time(value, now)
    seconds = requested_seconds(value, now)
    return now + seconds if seconds else 0


def _optional_text(value: Any, name: str) -> str | None:
    if value is None:
        return None
    if isinstance(value, dict | list | bool):
        raise BadRequest(f"{name} must be text")
    return clean_text(name, str(value))


@dataclass(frozen=True, slots=True)
class AgreementInput:
    """The terms of a consent as the caller gave them, not yet checked (``accept`` checks
    them before anything is looked up). Times are absolute (Unix seconds) or durations."""

    status: Any = None
    starttime: Any = None
    expiration: Any = None
    lastmodifiedby: Any = None
    referencecode: Any = None
    agreementmethod: Any = None


@dataclass(frozen=True, slots=True)
class _Terms:
    """What a request body says about an agreement."""

    status: str
    starttime: int
    endtime: int
    lastmodifiedby: str | None
    referencecode: str | None
    agreementmethod: str | None


def _terms(given: AgreementInput, now: int) -> _Terms:
    """The terms, checked before anything is looked up: a bad value is refused alike
    whoever calls and whether or not the agreement exists."""
    return _Terms(
        status=normalise_status(given.status),
        starttime=agreement_time(given.starttime, now),
        endtime=agreement_time(given.expiration, now),
        lastmodifiedby=_optional_text(given.lastmodifiedby, "lastmodifiedby"),
        referencecode=_optional_text(given.referencecode, "referencecode"),
        agreementmethod=_optional_text(given.agreementmethod, "agreementmethod"),
    )


def _who_context(row_id: int, owner: str) -> bytes:
    return value_context("agreements", "who", str(row_id), owner)


def _anonymous_owner(who_idx: bytes) -> str:
    return "identity:" + who_idx.hex()


def _seal_who(
    work: Work,
    row_id: int,
    identity: str,
    *,
    key: DataKey | None,
    user_token: str | None,
    who_idx: bytes | None,
) -> bytes | None:
    if user_token is not None and key is not None:
        return key.encrypt(identity.encode(), _who_context(row_id, user_token))
    if who_idx is not None:
        identity_key = work.keyring.service_key("identity")
        return identity_key.encrypt(
            identity.encode(), _who_context(row_id, _anonymous_owner(who_idx))
        )
    return None


def _reseal_who(
    work: Work, row: AgreementRow, identity: str, key: DataKey | None, user_token: str | None
) -> bytes | None:
    """``who`` of an existing agreement, sealed anew for the identity of its latest change."""
    return _seal_who(work, row.id, identity, key=key, user_token=user_token, who_idx=row.who_idx)


def _open_who(work: Work, row: AgreementRow, key: DataKey | None) -> str | None:
    if row.who is None:
        return None
    try:
        if row.user_token is not None:
            if key is None:
                return None
            plain = key.decrypt(row.who, _who_context(row.id, row.user_token))
        elif row.who_idx is not None:
            identity_key = work.keyring.service_key("identity")
            plain = identity_key.decrypt(
                row.who, _who_context(row.id, _anonymous_owner(row.who_idx))
            )
        else:
            return None
    except DecryptionError:
        return None
    return plain.decode()


@dataclass(frozen=True, slots=True)
class AgreementView:
    """A person's answer for one legal basis. ``token`` is empty while the agreement belongs
    to an email or phone with no record yet; ``who`` is the identity of the latest change
    (None when it cannot be read any more)."""

    brief: str
    status: str
    mode: str
    token: str
    who: str | None
    referencecode: str | None
    lastmodifiedby: str | None
    agreementmethod: str | None
    creationtime: int
    starttime: int
    endtime: int
    when: int


def agreement_view(work: Work, row: AgreementRow, key: DataKey | None) -> AgreementView:
    return AgreementView(
        brief=row.brief,
        status=row.status,
        mode=row.mode,
        token=row.user_token or "",
        who=_open_who(work, row, key),
        referencecode=row.referencecode,
        lastmodifiedby=row.lastmodifiedby,
        agreementmethod=row.agreementmethod,
        creationtime=row.created,
        starttime=row.starttime,
        endtime=row.endtime,
        when=row.updated,
    )


def _shown_identity(work: Work, mode: str, identity: str) -> str:
    """The identity as agreements keep and show it: normalised for email and phone."""
    if mode not in ANONYMOUS_MODES:
        return identity
    return normalise(mode, identity, work.settings.sms.default_country) or identity


def _identity_index(work: Work, mode: str, identity: str) -> bytes:
    digest = lookup_index(mode, identity, work.keyring, work.settings.sms.default_country)
    if digest is None:
        raise BadRequest(f"invalid {mode}")
    return digest


def accept(work: Work, brief: str, mode: str, identity: str, given: AgreementInput) -> None:
    brief = parse_brief(brief, "incorrect brief format")
    parse_mode(mode)
    terms = _terms(given, work.now)
    usable_basis(work, brief)
    shown = _shown_identity(work, mode, identity)
    key: DataKey | None = None
    user: UserRow | None
    who_idx: bytes | None = None
    anonymous = not (work.principal.is_root or work.principal.is_user)
    if anonymous:
        if mode not in ANONYMOUS_MODES:
            raise AccessDenied()
        who_idx = _identity_index(work, mode, identity)
        user = records.find_user(work, mode, identity)
        if user is not None:
            key, _profile = records.open_user(work, user)
            work.audit.record(subject=(user.token, key))
    elif (
        mode in ANONYMOUS_MODES
        and work.principal.is_root
        and records.find_user(work, mode, identity) is None
    ):
        # Root records consent for someone who has no record yet.
        user = None
        who_idx = _identity_index(work, mode, identity)
    else:
        user, key, _profile = records.resolve_user(work, mode, identity, for_update=True)
        if user.erased is not None:
            raise NotFound("user record not found")
    work.audit.record(mode=mode)
    user_token = user.token if user is not None else None
    existing = agreement_rows.find(
        work.conn,
        brief,
        user_token=user_token,
        who_idx=None if user_token else who_idx,
        for_update=True,
    )
    if existing is not None and anonymous:
        return  # without credentials, an existing consent is not changed
    # Column values of the agreement row.
    values: dict[str, Any] = dict(
        status=terms.status,
        starttime=terms.starttime,
        endtime=terms.endtime,
        lastmodifiedby=terms.lastmodifiedby,
        updated=work.now,
        mode=mode,
    )
    if terms.referencecode is not None:
        values["referencecode"] = terms.referencecode
    if existing is not None:
        # ``who`` is the identity of the latest change, the user token in token mode.
        values["who"] = _reseal_who(work, existing, shown, key, user_token)
        agreement_rows.update(work.conn, existing.id, values)
        return
    row_id = agreement_rows.insert(
        work.conn,
        {
            **values,
            "brief": brief,
            "user_token": user_token,
            "who_idx": None if user_token else who_idx,
            "referencecode": terms.referencecode,
            "agreementmethod": terms.agreementmethod or "api",
            "created": work.now,
        },
    )
    sealed = _seal_who(work, row_id, shown, key=key, user_token=user_token, who_idx=who_idx)
    agreement_rows.update(work.conn, row_id, {"who": sealed})


def withdraw(
    work: Work, brief: str, mode: str, identity: str, lastmodifiedby: Any = None
) -> RequestOpened | None:
    """The consent is withdrawn (None), or (a person's, where the basis gives them no
    control) the withdrawal waits for approval."""
    brief = parse_brief(brief)
    parse_mode(mode)
    lastmodifiedby = _optional_text(lastmodifiedby, "lastmodifiedby")
    basis = usable_basis(work, brief)
    user_token: str | None = None
    key: DataKey | None = None
    who_idx: bytes | None = None
    if (
        mode in ANONYMOUS_MODES
        and work.principal.is_root
        and records.find_user(work, mode, identity) is None
    ):
        who_idx = _identity_index(work, mode, identity)
    else:
        user, key, _profile = records.resolve_user(work, mode, identity, for_update=True)
        if user.erased is not None:
            raise NotFound("user record not found")
        user_token = user.token
        if work.principal.is_user and not basis.usercontrol:
            return open_request(
                work, user_token=user_token, action="agreement-withdraw", key=key, brief=brief
            )
    existing = agreement_rows.find(
        work.conn, brief, user_token=user_token, who_idx=who_idx, for_update=True
    )
    if existing is None:
        return None
    shown = _shown_identity(work, mode, identity)
    agreement_rows.update(
        work.conn,
        existing.id,
        dict(
            status="no",
            endtime=0,
            updated=work.now,
            mode=mode,
            who=_reseal_who(work, existing, shown, key, user_token),
            lastmodifiedby=lastmodifiedby,
        ),
    )
    notify_consent_change(work, existing, "no", identity=shown)
    return None


def request_withdrawal(work: Work, brief: str, mode: str, identity: str) -> RequestOpened:
    """Whoever asks (root, or the person's own token), the withdrawal waits for approval as
    an ``agreement-withdraw`` request; approving it withdraws the consent."""
    brief = parse_brief(brief)
    parse_mode(mode)
    usable_basis(work, brief)
    user, key, _profile = records.resolve_user(work, mode, identity, for_update=True)
    if user.erased is not None:
        raise NotFound("user record not found")
    if agreement_rows.find(work.conn, brief, user_token=user.token) is None:
        raise NotFound("not found")
    return open_request(
        work, user_token=user.token, action="agreement-withdraw", key=key, brief=brief
    )


def notify_consent_change(
    work: Work, row: AgreementRow, status: str, *, identity: str | None
) -> None:
    if row.user_token is not None:
        who, mode = row.user_token, "token"
    else:
        who, mode = identity or "", row.mode
    enqueue_webhook(
        work,
        dict(action="consentchange", brief=row.brief, identity=who, mode=mode, status=status),
    )


def revoke_everywhere(work: Work, brief: str) -> None:
    """Every given consent for the legal basis is withdrawn (a root route)."""
    brief = parse_brief(brief)
    usable_basis(work, brief)
    agreement_rows.revoke_brief(work.conn, brief, work.now)


def get_agreement(work: Work, brief: str, mode: str, identity: str) -> AgreementView:
    brief = parse_brief(brief)
    user, key, _profile = records.resolve_user(work, mode, identity)
    if known_basis(work, brief) is None:
        raise NotFound("not found")
    row = agreement_rows.find(work.conn, brief, user_token=user.token)
    if row is None:
        raise NotFound("not found")
    return agreement_view(work, row, key)


def list_agreements(work: Work, mode: str, identity: str) -> Page[AgreementView]:
    user, key, _profile = records.resolve_user(work, mode, identity)
    rows = [agreement_view(work, row, key) for row in agreement_rows.of_user(work.conn, user.token)]
    return Page(len(rows), rows)


def bind_to_new_user(
    work: Work, user_token: str, key: DataKey, indexes: dict[str, bytes | None]
) -> None:
    """Consents given by this email or phone before the record existed now belong to it.

    Where both the email and the phone gave an answer for the same legal basis, the most
    recent answer is kept.
    """
    found = agreement_rows.unbound_for(
        work.conn, [d for f, d in indexes.items() if f in ANONYMOUS_MODES and d]
    )
    if not found:
        return
    bound: set[str] = {row.brief for row in agreement_rows.of_user(work.conn, user_token)}
    for row in found:
        if row.brief in bound:
            agreement_rows.delete(work.conn, row.id)
            continue
        identity = _open_who(work, row, None)
        sealed = (
            key.encrypt(identity.encode(), _who_context(row.id, user_token))
            if identity is not None
            else None
        )
        agreement_rows.update(
            work.conn, row.id, {"user_token": user_token, "who_idx": None, "who": sealed}
        )
        bound.add(row.brief)


def expire_agreements(work: Work) -> int:
    """Periodic job: given agreements whose end time has passed become ``expired``."""
    expired = agreement_rows.expire_due(work.conn, work.now)
    for row in expired:
        identity = _open_who(work, row, None) if row.user_token is None else None
        notify_consent_change(work, row, "expired", identity=identity)
    return len(expired)

"""Passwordless login of data subjects: prelogin (a code by email or SMS), login, logout.

Invariants this module guards:

* a prelogin answers the same whether or not the identity belongs to anyone;
* a code is 6 random digits, stored only as a keyed hash, spent by one successful login,
  void after ``MAX_WRONG_ATTEMPTS`` wrong ones, and expires after ``policy.login_code_period``;
* prelogins and logins are rate-limited per identity and per client address in the
  database, so several servers sharing it share the limits;
* the demo code ``4444`` exists only in a vault started by ``databunker demo``;
* neither codes nor access tokens reach the audit trail or the logs.

Refusals raised here are meant to be committed (see ``api/login.py``): the spent captcha,
the counted rate-limit hit and the counted wrong attempt must outlive the refusal.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from databunker.crypto import DataKey
from databunker.errors import BadRequest, NotFound, RateLimited
from databunker.services.access import LOGIN_KIND, access_token_hash, require_root
from databunker.services.captcha import spend_captcha
from databunker.services.context import Work
from databunker.services.identity import normalise
from databunker.services.outbox import enqueue_email, enqueue_sms
from databunker.services.records import open_user, resolve_user
from databunker.storage import login as login_rows
from databunker.storage import repositories as user_rows
from databunker.storage.repositories import UserRow

LOGIN_MODES = ("email", "phone")
CODE_DIGITS = 6
MAX_WRONG_ATTEMPTS = 5
DEMO_CODE = "4444"
MAX_CODE_LENGTH = 16

# Fixed windows of RATE_WINDOW seconds: (per identity, per client address).
RATE_WINDOW = 15 * 60
PRELOGIN_LIMITS = (5, 30)
LOGIN_LIMITS = (10, 60)
CAPTCHA_ADDRESS_LIMIT = 120

INVALID_CODE = "invalid code"


class PreloginOutcome(Enum):
    """How a prelogin ended. A failed captcha is a refusal that is answered, not raised, so
    that the spent captcha stays spent."""

    CODE_SENT = "done"
    CAPTCHA_FAILED = "captcha-error"


@dataclass(frozen=True, slots=True)
class UserAccess:
    """A successful login: ``xtoken`` is the new user access token (a secret for the
    person's client alone), ``user_token`` the person it opens."""

    xtoken: str = field(repr=False)
    user_token: str


def parse_login_mode(mode: str) -> str:
    if mode not in LOGIN_MODES:
        raise BadRequest("bad mode")
    return mode


def _identity_index(work: Work, mode: str, identity: str) -> tuple[bytes, str | None]:
    """The identity's blind index and normalised form; an identity that cannot be one gets
    a keyed hash of its raw text instead (it still has a rate limit, and matches nobody)."""
    normalised = normalise(mode, identity, work.settings.sms.default_country)
    if normalised is None:
        return work.keyring.hash_secret("login-identity", f"{mode}:{identity}"), None
    return work.keyring.blind_index(mode, normalised), normalised


def _code_hash(work: Work, identity_idx: bytes, code: str) -> bytes:
    return work.keyring.hash_secret("login-code", f"{identity_idx.hex()}:{code}")


def limit(work: Work, action: str, scope: str, value: str, most: int) -> None:
    """Count one hit for (action, scope, value); RateLimited beyond ``most`` per window."""
    bucket = work.keyring.hash_secret("rate-limit", f"{action}\x00{scope}\x00{value}")
    if login_rows.hit(work.conn, bucket, work.now, RATE_WINDOW) > most:
        raise RateLimited()


def _limit_both(
    work: Work, action: str, identity_idx: bytes, address: str, limits: tuple[int, int]
) -> None:
    per_identity, per_address = limits
    limit(work, action, "address", address, per_address)
    limit(work, action, "identity", identity_idx.hex(), per_identity)


def _live_user(work: Work, mode: str, identity_idx: bytes) -> UserRow | None:
    row = user_rows.find_user_by_index(work.conn, mode, identity_idx)
    if row is None or row.erased or row.data_key is None:
        return None
    return row


def _audit_subject(work: Work, row: UserRow, identity: str, key: DataKey | None = None) -> None:
    if not work.audited or row.data_key is None:
        return
    key = key or work.keyring.unwrap(row.data_key, row.token)
    work.audit.record(subject=(row.token, key), who=identity)


def prelogin(
    work: Work, mode: str, identity: str, answer: str, captcha_id: str, address: str
) -> PreloginOutcome:
    """Send a login code to an existing person; the answer never says whether one exists.

    Known and unknown identities take the same path, with the same statements, before the
    answer: a code is stored and its message queued either way. For nobody, the code is
    bound to a fresh token no record has, and the message is void (never sent)."""
    parse_login_mode(mode)
    work.audit.record(mode=mode)
    if work.settings.generic.login_captcha and not spend_captcha(work, captcha_id, answer):
        work.audit.refused(PreloginOutcome.CAPTCHA_FAILED.value)
        return PreloginOutcome.CAPTCHA_FAILED
    identity_idx, _normalised = _identity_index(work, mode, identity)
    _limit_both(work, "prelogin", identity_idx, address, PRELOGIN_LIMITS)
    row = _live_user(work, mode, identity_idx)
    recipient = None
    if row is not None:
        key, profile = open_user(work, row)
        _audit_subject(work, row, identity, key)
        recipient = _stored_address(work, mode, profile)
    _issue_code(work, mode, identity_idx, row.token if row else work.random.token(), recipient)
    return PreloginOutcome.CODE_SENT


def _stored_address(work: Work, mode: str, profile: dict[str, Any]) -> str | None:
    """Where the person's code goes: the address in their own record, as they stored it
    (a phone number in E.164), never a form derived from what the caller typed."""
    stored = profile.get(mode)
    if mode == "email":
        return stored.strip() if isinstance(stored, str) and stored.strip() else None
    return normalise(mode, stored, work.settings.sms.default_country)


def _issue_code(
    work: Work, mode: str, identity_idx: bytes, owner: str, recipient: str | None
) -> None:
    code = DEMO_CODE if work.context.demo else work.random.digits(CODE_DIGITS)
    login_rows.put_login_code(
        work.conn,
        identity_idx=identity_idx,
        user_token=owner,
        code_hash=_code_hash(work, identity_idx, code),
        expires=work.now + work.settings.policy.login_code_seconds,
    )
    if work.context.demo:
        return  # the demo code is documented; nothing is sent
    if mode == "email":
        subject, text = work.settings.smtp.login_code_email(code)
        enqueue_email(work, recipient, subject, text)
    else:
        enqueue_sms(work, recipient, f"Databunker code {code}")


def login(work: Work, mode: str, identity: str, code: str, address: str) -> UserAccess:
    """Trade a valid pending code for a user access token; every failure looks the same."""
    parse_login_mode(mode)
    work.audit.record(mode=mode)
    identity_idx, normalised = _identity_index(work, mode, identity)
    _limit_both(work, "login", identity_idx, address, LOGIN_LIMITS)
    pending = (
        login_rows.find_login_code(work.conn, identity_idx) if normalised is not None else None
    )
    if pending is None:
        raise BadRequest(INVALID_CODE)
    row = _live_user(work, mode, identity_idx)
    if pending.expires <= work.now or row is None or row.token != pending.user_token:
        login_rows.delete_login_code(work.conn, identity_idx)
        raise BadRequest(INVALID_CODE)
    _audit_subject(work, row, identity)
    presented = _code_hash(work, identity_idx, code[:MAX_CODE_LENGTH])
    right = len(code) <= MAX_CODE_LENGTH and hmac.compare_digest(presented, pending.code_hash)
    if not right:
        if login_rows.count_failed_attempt(work.conn, identity_idx) >= MAX_WRONG_ATTEMPTS:
            login_rows.delete_login_code(work.conn, identity_idx)
        raise BadRequest(INVALID_CODE)
    if not login_rows.take_login_code(work.conn, identity_idx, pending.code_hash):
        raise BadRequest(INVALID_CODE)  # spent by a concurrent login
    return _issue_user_token(work, row.token)


def issue_for_user(work: Work, mode: str, identity: str, lifetime: int | None) -> UserAccess:
    """An administrator mints a person's access token directly, as a login would: it lives
    ``lifetime`` seconds (``policy.user_token_seconds`` when None), never longer than that
    policy allows."""
    require_root(work.principal)
    row, _key, _profile = resolve_user(work, mode, identity)
    if row.erased is not None or row.data_key is None:
        raise NotFound("user record not found")
    longest = work.settings.policy.user_token_seconds
    seconds = longest if lifetime is None or lifetime <= 0 else min(lifetime, longest)
    return _issue_user_token(work, row.token, seconds)


def _issue_user_token(work: Work, user_token: str, seconds: int | None = None) -> UserAccess:
    xtoken = work.random.token()
    token_hash = access_token_hash(work.keyring, xtoken)
    user_rows.insert_access_token(
        work.conn,
        token_hash=token_hash,
        kind=LOGIN_KIND,
        user_token=user_token,
        now=work.now,
        expires=work.now
        + (work.settings.policy.user_token_seconds if seconds is None else seconds),
    )
    work.audit.record(msg=f"generated: {token_hash.hex()[:16]}")
    return UserAccess(xtoken=xtoken, user_token=user_token)


def logout(work: Work, presented: str | None) -> None:
    """Revoke the user access token presented with this request."""
    user_token = work.principal.user_token
    if not work.principal.is_user or user_token is None or not presented:
        raise BadRequest("only a user token can log out")
    work.audit.record(user_token=user_token)
    login_rows.revoke_access_token(
        work.conn,
        token_hash=access_token_hash(work.keyring, presented),
        kind=LOGIN_KIND,
        user_token=user_token,
    )


def limit_captchas(work: Work, address: str) -> None:
    limit(work, "captcha", "address", address, CAPTCHA_ADDRESS_LIMIT)


# -- periodic purges -----------------------------------------------------------------------
def purge_expired_login_codes(work: Work) -> int:
    return login_rows.purge_expired_login_codes(work.conn, work.now)


def purge_stale_rate_limits(work: Work) -> int:
    return login_rows.purge_stale_rate_limits(work.conn, work.now - RATE_WINDOW)


def purge_expired_user_tokens(work: Work) -> int:
    return login_rows.purge_expired_access_tokens(work.conn, LOGIN_KIND, work.now)

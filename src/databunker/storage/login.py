"""Repository of the passwordless login: captchas, pending login codes, rate-limit windows.

Nothing here is a secret in clear: captcha ids, codes and rate-limit buckets arrive as keyed
hashes, and the captcha answer as ciphertext. Every statement that spends something (a
captcha, a code attempt, a rate-limit hit) is a single atomic statement, so two servers on
one database cannot both spend the same thing.
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from databunker.storage.dialects import update_returning, upsert
from databunker.storage.tables import access_tokens, captchas, login_codes, rate_limits
from databunker.storage.tenancy import owner, tenant_of


# -- captchas ------------------------------------------------------------------------------
def insert_captcha(conn: Connection, *, id_hash: bytes, sealed_answer: bytes, expires: int) -> None:
    values = {"id_hash": id_hash, "answer_hash": sealed_answer, "expires": expires}
    conn.execute(captchas.insert().values(**values))


def find_captcha(conn: Connection, id_hash: bytes, now: int) -> bytes | None:
    """The sealed answer of a live captcha, or None."""
    query = sa.select(captchas.c.answer_hash).where(
        captchas.c.id_hash == id_hash, captchas.c.expires > now
    )
    found: bytes | None = conn.execute(query).scalar_one_or_none()
    return found


def take_captcha(conn: Connection, id_hash: bytes, now: int) -> bytes | None:
    """Delete the captcha and return its sealed answer if it was live: a captcha is spent once."""
    spend = captchas.delete().where(captchas.c.id_hash == id_hash)
    if conn.dialect.delete_returning:
        row = conn.execute(spend.returning(captchas.c.answer_hash, captchas.c.expires)).first()
    else:  # MySQL: read under the row's lock, then delete it
        query = sa.select(captchas.c.answer_hash, captchas.c.expires).where(
            captchas.c.id_hash == id_hash
        )
        row = conn.execute(query.with_for_update()).first()
        conn.execute(spend)
    if row is None or row.expires <= now:
        return None
    answer: bytes = row.answer_hash
    return answer


def purge_expired_captchas(conn: Connection, now: int) -> int:
    return conn.execute(captchas.delete().where(captchas.c.expires <= now)).rowcount


# -- login codes ---------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class LoginCodeRow:
    user_token: str
    code_hash: bytes
    expires: int
    attempts: int


def put_login_code(
    conn: Connection, *, identity_idx: bytes, user_token: str, code_hash: bytes, expires: int
) -> None:
    """Store the pending code of an identity, replacing any earlier one (attempts restart)."""
    statement = upsert(
        conn.dialect.name,
        login_codes,
        [login_codes.c.identity_idx],
        lambda offered: [
            ("user_token", offered.user_token),
            ("code_hash", offered.code_hash),
            ("expires", offered.expires),
            ("attempts", 0),
            ("tenant_id", offered.tenant_id),
        ],
    )
    conn.execute(
        statement.values(
            identity_idx=identity_idx,
            user_token=user_token,
            code_hash=code_hash,
            expires=expires,
            attempts=0,
            tenant_id=owner(conn),
        )
    )


def find_login_code(conn: Connection, identity_idx: bytes) -> LoginCodeRow | None:
    query = sa.select(
        login_codes.c.user_token,
        login_codes.c.code_hash,
        login_codes.c.expires,
        login_codes.c.attempts,
    ).where(login_codes.c.identity_idx == identity_idx, tenant_of(conn, login_codes))
    row = conn.execute(query.with_for_update()).one_or_none()
    return LoginCodeRow(**row._mapping) if row else None


def take_login_code(conn: Connection, identity_idx: bytes, code_hash: bytes) -> bool:
    """Delete the pending code if it is exactly this one: true for the one caller who spent it."""
    statement = login_codes.delete().where(
        login_codes.c.identity_idx == identity_idx,
        login_codes.c.code_hash == code_hash,
        tenant_of(conn, login_codes),
    )
    return conn.execute(statement).rowcount == 1


def count_failed_attempt(conn: Connection, identity_idx: bytes) -> int:
    """Add one wrong attempt to the pending code; returns the new count (0: no code)."""
    rows = update_returning(
        conn,
        login_codes,
        sa.and_(login_codes.c.identity_idx == identity_idx, tenant_of(conn, login_codes)),
        {"attempts": login_codes.c.attempts + 1},
        [login_codes.c.attempts],
    )
    return int(rows[0].attempts) if rows else 0


def delete_login_code(conn: Connection, identity_idx: bytes) -> None:
    mine = (login_codes.c.identity_idx == identity_idx, tenant_of(conn, login_codes))
    conn.execute(login_codes.delete().where(*mine))


def purge_expired_login_codes(conn: Connection, now: int) -> int:
    expired = (login_codes.c.expires <= now, tenant_of(conn, login_codes))
    return conn.execute(login_codes.delete().where(*expired)).rowcount


# -- rate limits ---------------------------------------------------------------------------
def hit(conn: Connection, bucket: bytes, now: int, window: int) -> int:
    """Count one hit in the bucket's fixed window; returns the hits of the current window.

    One upsert: a window older than ``window`` seconds restarts at this hit. Where the
    upsert cannot return the row (MariaDB, MySQL), the row it wrote stays locked until the
    transaction ends, so reading it back gives this hit's count.
    """
    stale = rate_limits.c.window_start <= now - window
    statement = upsert(
        conn.dialect.name,
        rate_limits,
        [rate_limits.c.bucket],
        lambda _offered: [  # hits first: it reads the window before it moves
            ("hits", sa.case((stale, 1), else_=rate_limits.c.hits + 1)),
            ("window_start", sa.case((stale, now), else_=rate_limits.c.window_start)),
        ],
    ).values(bucket=bucket, window_start=now, hits=1)
    if conn.dialect.update_returning:
        hits: int = conn.execute(statement.returning(rate_limits.c.hits)).scalar_one()
        return hits
    conn.execute(statement)
    query = sa.select(rate_limits.c.hits).where(rate_limits.c.bucket == bucket)
    return int(conn.execute(query).scalar_one())


def purge_stale_rate_limits(conn: Connection, cutoff: int) -> int:
    """Remove windows that started at or before ``cutoff`` (older than the longest window)."""
    return conn.execute(rate_limits.delete().where(rate_limits.c.window_start <= cutoff)).rowcount


# -- user access tokens --------------------------------------------------------------------
def revoke_access_token(
    conn: Connection, *, token_hash: bytes, kind: str, user_token: str | None
) -> bool:
    """Delete one token of this kind (and owner: ``None`` for tokens of nobody in particular)."""
    holder = (
        access_tokens.c.user_token.is_(None)
        if user_token is None
        else access_tokens.c.user_token == user_token
    )
    statement = access_tokens.delete().where(
        access_tokens.c.token_hash == token_hash,
        access_tokens.c.kind == kind,
        holder,
        tenant_of(conn, access_tokens),
    )
    return conn.execute(statement).rowcount == 1


def purge_expired_access_tokens(conn: Connection, kind: str, now: int) -> int:
    """Remove expired tokens of one kind; tokens that never expire (``expires`` 0) stay."""
    statement = access_tokens.delete().where(
        access_tokens.c.kind == kind,
        access_tokens.c.expires > 0,
        access_tokens.c.expires <= now,
    )
    return conn.execute(statement).rowcount

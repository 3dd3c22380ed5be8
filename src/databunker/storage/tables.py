"""The current schema, as SQLAlchemy Core tables.

Invariant: every column that can hold personal data is a ``LargeBinary`` holding ciphertext
made by ``databunker.crypto`` (profile, audit ``who``/``before``/``after``), and every lookup
column holds a keyed hash (blind index or secret hash). Nothing here stores PII in clear.

Changing a table means adding a migration in ``migrations.py``; a test compares the migrated
schema with these definitions.
"""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData()

# An auto-incrementing 64-bit key that SQLite also treats as its rowid.
BigSerial = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

meta = sa.Table(
    "meta",
    metadata,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
)

users = sa.Table(
    "users",
    metadata,
    sa.Column("token", sa.String(36), primary_key=True),
    # The person's data key, wrapped by the KEK; NULL once the person is erased.
    sa.Column("data_key", sa.LargeBinary, nullable=True),
    sa.Column("profile", sa.LargeBinary, nullable=True),
    sa.Column("login_idx", sa.LargeBinary, nullable=True, unique=True),
    sa.Column("email_idx", sa.LargeBinary, nullable=True, unique=True),
    sa.Column("phone_idx", sa.LargeBinary, nullable=True, unique=True),
    sa.Column("custom_idx", sa.LargeBinary, nullable=True, unique=True),
    sa.Column("version", sa.Integer, nullable=False, server_default="1"),
    sa.Column("created", sa.BigInteger, nullable=False),
    sa.Column("updated", sa.BigInteger, nullable=False),
    sa.Column("erased", sa.BigInteger, nullable=True),
)

access_tokens = sa.Table(
    "access_tokens",
    metadata,
    sa.Column("token_hash", sa.LargeBinary, primary_key=True),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("user_token", sa.String(36), nullable=True, index=True),
    sa.Column("created", sa.BigInteger, nullable=False),
    # 0 = never expires (the root token)
    sa.Column("expires", sa.BigInteger, nullable=False, server_default="0"),
)

audit = sa.Table(
    "audit",
    metadata,
    sa.Column("seq", BigSerial, primary_key=True, autoincrement=True),
    sa.Column("atoken", sa.String(36), nullable=False, unique=True),
    sa.Column("created", sa.BigInteger, nullable=False, index=True),
    sa.Column("user_token", sa.String(36), nullable=True, index=True),
    sa.Column("mode", sa.String(16), nullable=True),
    # The identity named in the request (an email, say): ciphertext under the person's key.
    sa.Column("who", sa.LargeBinary, nullable=True),
    # Who acted: "root", or a hash of the access token used.
    sa.Column("accessor", sa.String(80), nullable=True),
    sa.Column("app", sa.String(64), nullable=True),
    sa.Column("title", sa.String(128), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("msg", sa.Text, nullable=True),
    sa.Column("debug", sa.Text, nullable=True),
    sa.Column("before", sa.LargeBinary, nullable=True),
    sa.Column("after", sa.LargeBinary, nullable=True),
)

"""The current schema, as SQLAlchemy Core tables.

Invariant: every column that can hold personal data is a ``LargeBinary`` holding ciphertext
made by ``databunker.crypto`` (profile, audit ``who``/``before``/``after``), and every lookup
column holds a keyed hash (blind index or secret hash); audit links and digests are keyed
hashes and digests of ciphertext. Nothing here stores PII in clear.

Changing a table means adding a migration in ``migrations.py``; a test compares the migrated
schema with these definitions.
"""

from __future__ import annotations

import sqlalchemy as sa

from databunker.storage.dialects import KeyedBinary

metadata = sa.MetaData()

# An auto-incrementing 64-bit key that SQLite also treats as its rowid.
BigSerial = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

meta = sa.Table(
    "meta",
    metadata,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
)

# Tenants: tenant 1 is the default one (the v1 API, and every row made before tenants).
# Every tenant-scoped table below has a ``tenant_id``; the contact email is ciphertext
# under the vault's identity service key.
tenants = sa.Table(
    "tenants",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("name", sa.String(64), nullable=False, unique=True),
    sa.Column("org", sa.Text, nullable=False, server_default=""),
    sa.Column("email", sa.LargeBinary, nullable=True),
    sa.Column("created", sa.BigInteger, nullable=False),
    sa.Column("updated", sa.BigInteger, nullable=False),
    # A deleted tenant's id is never given again: its audit trail stays behind it.
    sqlite_autoincrement=True,
)

users = sa.Table(
    "users",
    metadata,
    sa.Column("tenant_id", sa.Integer, nullable=False, server_default="1"),
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
    # Data retention: "wait" until exp_time, then erased; the token reaches the anonymous
    # retain/delete links and is stored only as a keyed hash.
    sa.Column("exp_status", sa.String(16), nullable=True),
    sa.Column("exp_token_hash", KeyedBinary, nullable=True),
    sa.Column("exp_time", sa.BigInteger, nullable=False, server_default="0", index=True),
    sa.Column("exp_started_by", sa.String(16), nullable=True),
    sa.UniqueConstraint("exp_token_hash", name="uq_users_exp_token_hash"),
)
sa.Index("ix_users_tenant_created", users.c.tenant_id, users.c.created)

access_tokens = sa.Table(
    "access_tokens",
    metadata,
    sa.Column("tenant_id", sa.Integer, nullable=False, server_default="1"),
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
    sa.Column("tenant_id", sa.Integer, nullable=False, server_default="1"),
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
    # The event's place in the tamper-evident chain (storage/audit_chain.py): its lane, its
    # position in the lane (1, 2, 3, ...), its link, and the digest of who/before/after, kept
    # when they are shredded. NULL for events written before the chain began.
    sa.Column("chain_lane", sa.Integer, nullable=True),
    sa.Column("chain_pos", sa.BigInteger, nullable=True),
    sa.Column("chain_link", sa.LargeBinary, nullable=True),
    sa.Column("payload_digest", sa.LargeBinary, nullable=True),
)
sa.Index("ix_audit_chain", audit.c.chain_lane, audit.c.chain_pos, unique=True)
sa.Index("ix_audit_tenant_seq", audit.c.tenant_id, audit.c.seq)

# The heads of the audit chain's lanes: one row per lane, read and advanced in the
# transaction of each event written in the lane. ``first_position``/``first_prev`` anchor the
# lane's oldest event left after a retention purge; ``legacy_seq`` is the last event written
# before the chain began; ``seal`` is a keyed hash of the whole row.
audit_chain = sa.Table(
    "audit_chain",
    metadata,
    sa.Column("lane", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("position", sa.BigInteger, nullable=False),
    sa.Column("link", sa.LargeBinary, nullable=False),
    sa.Column("first_position", sa.BigInteger, nullable=False),
    sa.Column("first_prev", sa.LargeBinary, nullable=False),
    sa.Column("legacy_seq", sa.BigInteger, nullable=False),
    sa.Column("seal", sa.LargeBinary, nullable=True),
)

# A person's records kept for an application (the v1 "user app"), under the person's key.
user_apps = sa.Table(
    "user_apps",
    metadata,
    sa.Column("tenant_id", sa.Integer, nullable=False, server_default="1"),
    sa.Column("user_token", sa.String(36), primary_key=True),
    sa.Column("app", sa.String(32), primary_key=True, index=True),
    sa.Column("data", sa.LargeBinary, nullable=False),
    sa.Column("version", sa.Integer, nullable=False, server_default="1"),
    sa.Column("created", sa.BigInteger, nullable=False),
    sa.Column("updated", sa.BigInteger, nullable=False),
)

# Sessions: each under its own data key (wrapped by the KEK), as a session may belong to nobody.
sessions = sa.Table(
    "sessions",
    metadata,
    sa.Column("tenant_id", sa.Integer, primary_key=True, autoincrement=False, server_default="1"),
    sa.Column("session", sa.String(36), primary_key=True),
    sa.Column("user_token", sa.String(36), nullable=True, index=True),
    sa.Column("data_key", sa.LargeBinary, nullable=False),
    sa.Column("data", sa.LargeBinary, nullable=False),
    sa.Column("created", sa.BigInteger, nullable=False),
    sa.Column("updated", sa.BigInteger, nullable=False),
    sa.Column("expires", sa.BigInteger, nullable=False, index=True),
)

# Time-limited views of a record for a third party; the record token is stored hashed.
shared_records = sa.Table(
    "shared_records",
    metadata,
    sa.Column("tenant_id", sa.Integer, nullable=False, server_default="1"),
    sa.Column("record_hash", sa.LargeBinary, primary_key=True),
    sa.Column("user_token", sa.String(36), nullable=False, index=True),
    sa.Column("partner", sa.String(128), nullable=True),
    sa.Column("app", sa.String(32), nullable=True),
    sa.Column("session", sa.String(36), nullable=True),
    sa.Column("fields", sa.Text, nullable=True),
    sa.Column("created", sa.BigInteger, nullable=False),
    sa.Column("expires", sa.BigInteger, nullable=False, index=True),
)

# Changes a data subject asked for that wait for a DPO; ``change`` is under the person's key.
requests = sa.Table(
    "requests",
    metadata,
    sa.Column("tenant_id", sa.Integer, nullable=False, server_default="1"),
    sa.Column("rtoken", sa.String(36), primary_key=True),
    sa.Column("user_token", sa.String(36), nullable=False, index=True),
    sa.Column("action", sa.String(32), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("app", sa.String(32), nullable=True),
    sa.Column("brief", sa.String(65), nullable=True),
    sa.Column("change", sa.LargeBinary, nullable=True),
    sa.Column("reason", sa.Text, nullable=True),
    sa.Column("created", sa.BigInteger, nullable=False),
    sa.Column("updated", sa.BigInteger, nullable=False),
)
sa.Index("ix_requests_status", requests.c.status, requests.c.updated)

legal_bases = sa.Table(
    "legal_bases",
    metadata,
    sa.Column("tenant_id", sa.Integer, primary_key=True, autoincrement=False, server_default="1"),
    sa.Column("brief", sa.String(65), primary_key=True),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("module", sa.String(64), nullable=False, server_default=""),
    sa.Column("shortdesc", sa.Text, nullable=False, server_default=""),
    sa.Column("fulldesc", sa.Text, nullable=False, server_default=""),
    sa.Column("basistype", sa.String(64), nullable=False, server_default=""),
    sa.Column("requiredmsg", sa.Text, nullable=False, server_default=""),
    sa.Column("usercontrol", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("requiredflag", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("created", sa.BigInteger, nullable=False),
    # The texts in other languages: a JSON object {"de": {"shortdesc": ...}, ...}, or "".
    sa.Column("translations", sa.Text, nullable=False, server_default=""),
)

processing_activities = sa.Table(
    "processing_activities",
    metadata,
    sa.Column("tenant_id", sa.Integer, primary_key=True, autoincrement=False, server_default="1"),
    sa.Column("activity", sa.String(65), primary_key=True),
    sa.Column("title", sa.Text, nullable=False, server_default=""),
    sa.Column("script", sa.Text, nullable=False, server_default=""),
    sa.Column("fulldesc", sa.Text, nullable=False, server_default=""),
    sa.Column("applicableto", sa.Text, nullable=False, server_default=""),
    sa.Column("created", sa.BigInteger, nullable=False),
)

activity_legal_bases = sa.Table(
    "activity_legal_bases",
    metadata,
    sa.Column("tenant_id", sa.Integer, primary_key=True, autoincrement=False, server_default="1"),
    sa.Column("activity", sa.String(65), primary_key=True),
    sa.Column("brief", sa.String(65), primary_key=True, index=True),
    sa.Column("position", sa.Integer, nullable=False, server_default="0"),
)

# Consents. A row is bound to a person by token, or (given before the person had a record)
# to a blind index of their email or phone, with the identity itself encrypted.
agreements = sa.Table(
    "agreements",
    metadata,
    sa.Column("tenant_id", sa.Integer, nullable=False, server_default="1"),
    sa.Column("id", BigSerial, primary_key=True, autoincrement=True),
    sa.Column("brief", sa.String(65), nullable=False, index=True),
    sa.Column("user_token", sa.String(36), nullable=True),
    sa.Column("who_idx", sa.LargeBinary, nullable=True),
    sa.Column("who", sa.LargeBinary, nullable=True),
    sa.Column("mode", sa.String(16), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("referencecode", sa.Text, nullable=True),
    sa.Column("lastmodifiedby", sa.Text, nullable=True),
    sa.Column("agreementmethod", sa.String(64), nullable=True),
    sa.Column("created", sa.BigInteger, nullable=False),
    sa.Column("starttime", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("endtime", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("updated", sa.BigInteger, nullable=False),
    sa.UniqueConstraint("user_token", "brief", name="uq_agreements_user_brief"),
    sa.UniqueConstraint("who_idx", "brief", name="uq_agreements_who_brief"),
)
sa.Index("ix_agreements_status_endtime", agreements.c.status, agreements.c.endtime)

# Outbound notifications written in the same transaction as the change they report and
# delivered after commit, with retries; payloads are encrypted under the outbox service key.
outbox = sa.Table(
    "outbox",
    metadata,
    sa.Column("tenant_id", sa.Integer, nullable=False, server_default="1"),
    sa.Column("id", BigSerial, primary_key=True, autoincrement=True),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("payload", sa.LargeBinary, nullable=False),
    sa.Column("created", sa.BigInteger, nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("next_attempt", sa.BigInteger, nullable=False),
    sa.Column("locked_until", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("delivered", sa.BigInteger, nullable=True),
    sa.Column("last_error", sa.String(200), nullable=True),
)
sa.Index("ix_outbox_due", outbox.c.delivered, outbox.c.next_attempt)

# Captchas: the answer is kept server-side (hashed); the id handed out is a random token.
captchas = sa.Table(
    "captchas",
    metadata,
    sa.Column("id_hash", sa.LargeBinary, primary_key=True),
    sa.Column("answer_hash", sa.LargeBinary, nullable=False),
    sa.Column("expires", sa.BigInteger, nullable=False, index=True),
)

# One pending login code per identity (blind index): hashed, short-lived, attempt-limited.
login_codes = sa.Table(
    "login_codes",
    metadata,
    sa.Column("tenant_id", sa.Integer, nullable=False, server_default="1"),
    sa.Column("identity_idx", sa.LargeBinary, primary_key=True),
    sa.Column("user_token", sa.String(36), nullable=False),
    sa.Column("code_hash", sa.LargeBinary, nullable=False),
    sa.Column("expires", sa.BigInteger, nullable=False, index=True),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
)

# Fixed-window counters shared by every server instance; buckets are keyed hashes.
rate_limits = sa.Table(
    "rate_limits",
    metadata,
    sa.Column("bucket", sa.LargeBinary, primary_key=True),
    sa.Column("window_start", sa.BigInteger, nullable=False, index=True),
    sa.Column("hits", sa.Integer, nullable=False),
)

# The keyring (see crypto/keys.py): each key sealed under the master key, bound to its name
# ("kek/<version>", "blind-index", "secret-hash", "service/<purpose>", "audit-chain").
keyring = sa.Table(
    "keyring",
    metadata,
    sa.Column("name", sa.String(40), primary_key=True),
    sa.Column("sealed", sa.LargeBinary, nullable=False),
    sa.Column("created", sa.BigInteger, nullable=False),
)

"""What a service call runs with: the vault's long-lived parts and one request's unit of work."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum
from typing import TYPE_CHECKING

from sqlalchemy.engine import Connection

from databunker.crypto import DataKey, Keyring
from databunker.storage import Database, audit_chain

if TYPE_CHECKING:
    from databunker.config import Settings
    from databunker.services.schema import UserSchema

Clock = Callable[[], int]


def system_clock() -> int:
    return int(time.time())


@dataclass(frozen=True, slots=True)
class Vault:
    """Long-lived parts shared by every request: built once at start-up."""

    settings: Settings
    database: Database
    keyring: Keyring
    clock: Clock = system_clock
    schema: UserSchema | None = None
    demo: bool = False

    def __post_init__(self) -> None:
        # Every audit event this vault writes is linked under its chain key.
        audit_chain.attach(self.database, self.keyring.audit_chain_key)


class PrincipalKind(Enum):
    ROOT = "root"
    USER = "user"
    NONE = "none"


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling, as established by ``services.access.authenticate``."""

    kind: PrincipalKind
    user_token: str | None = None
    # What the audit trail records as the actor: "root" or a hash of the user's access token.
    accessor: str | None = None

    @property
    def is_root(self) -> bool:
        return self.kind is PrincipalKind.ROOT

    @property
    def is_user(self) -> bool:
        return self.kind is PrincipalKind.USER


ANONYMOUS = Principal(PrincipalKind.NONE)


@dataclass(slots=True)
class AuditEvent:
    """One entry of the audit trail, filled in while a request runs.

    ``who``, ``before`` and ``after`` are plaintext here and are encrypted under the person's
    data key when saved; without a data key they are not saved at all.
    """

    title: str
    mode: str | None = None
    accessor: str | None = None
    user_token: str | None = None
    who: str | None = None
    data_key: DataKey | None = field(default=None, repr=False)
    app: str | None = None
    status: str = "ok"
    msg: str | None = None
    before: bytes | None = field(default=None, repr=False)
    after: bytes | None = field(default=None, repr=False)

    def subject(self, user_token: str, data_key: DataKey | None) -> None:
        self.user_token = user_token
        self.data_key = data_key


@dataclass(slots=True)
class Work:
    """One request's (or job's) unit of work: its connection, caller, clock reading and event."""

    vault: Vault
    conn: Connection
    principal: Principal
    now: int
    event: AuditEvent | None = None
    # Outbox rows this unit of work queued: the dispatcher is woken after commit if any.
    queued: int = 0

    @property
    def settings(self) -> Settings:
        return self.vault.settings

    @property
    def keyring(self) -> Keyring:
        return self.vault.keyring

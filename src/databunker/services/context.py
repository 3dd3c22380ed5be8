"""What a service call runs with: the vault's long-lived parts and one request's unit of work."""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from enum import Enum
from typing import TYPE_CHECKING, Final, Protocol

from sqlalchemy.engine import Connection

from databunker.crypto import DataKey, Keyring, new_token
from databunker.storage import audit_chain
from databunker.storage.tenancy import DEFAULT_TENANT

if TYPE_CHECKING:
    from databunker.config import Settings
    from databunker.services.schema import UserSchema
    from databunker.storage import Database

Clock = Callable[[], int]


def system_clock() -> int:
    return int(time.time())


class Randomness(Protocol):
    """Where tokens, login codes and captcha answers come from (tests inject their own)."""

    def token(self) -> str:
        """A fresh unguessable token (a version-4 UUID)."""
        ...

    def digits(self, count: int) -> str:
        """``count`` uniformly random decimal digits."""
        ...


class SystemRandomness:
    """The system CSPRNG, through ``secrets``."""

    def token(self) -> str:
        return new_token()

    def digits(self, count: int) -> str:
        return "".join(secrets.choice("0123456789") for _ in range(count))


@dataclass(frozen=True, slots=True)
class Context:
    """The long-lived parts every unit of work runs with: built once at start-up."""

    settings: Settings
    database: Database
    keyring: Keyring
    clock: Clock = system_clock
    schema: UserSchema | None = None
    demo: bool = False
    random: Randomness = field(default_factory=SystemRandomness)

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
    # The tenant the credential belongs to: only the default tenant's root acts in another.
    home_tenant: int = DEFAULT_TENANT

    @property
    def is_root(self) -> bool:
        return self.kind is PrincipalKind.ROOT

    @property
    def is_main_root(self) -> bool:
        """The default tenant's root: the deployment's highest credential (tenants are
        made and removed by it alone)."""
        return self.kind is PrincipalKind.ROOT and self.home_tenant == DEFAULT_TENANT

    @property
    def is_user(self) -> bool:
        return self.kind is PrincipalKind.USER


ANONYMOUS = Principal(PrincipalKind.NONE)


@dataclass(frozen=True, slots=True)
class AuditEvent:
    """One entry of the audit trail, as the unit of work writes it.

    ``who``, ``before``, ``after`` and ``request_metadata`` (the caller's context, as JSON)
    are plaintext here and are encrypted under the person's data key when saved; without a
    data key they are not saved at all.
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
    request_metadata: bytes | None = field(default=None, repr=False)


class _Unset(Enum):
    UNSET = "unset"


UNSET: Final = _Unset.UNSET


@dataclass(frozen=True, slots=True)
class AuditNote:
    """What one step of an operation tells the audit trail: only the fields it names."""

    title: str | _Unset = UNSET
    mode: str | _Unset | None = UNSET
    accessor: str | _Unset | None = UNSET
    user_token: str | _Unset | None = UNSET
    data_key: DataKey | _Unset | None = field(default=UNSET, repr=False)
    who: str | _Unset | None = UNSET
    app: str | _Unset | None = UNSET
    msg: str | _Unset | None = UNSET
    before: bytes | _Unset | None = field(default=UNSET, repr=False)
    after: bytes | _Unset | None = field(default=UNSET, repr=False)
    refused: str | None = None


def fold_notes(event: AuditEvent, notes: list[AuditNote]) -> AuditEvent:
    """The event with every note applied in order: a later note's field wins."""
    for note in notes:
        changes = {
            name: getattr(note, name)
            for name in AuditEvent.__dataclass_fields__
            if name in AuditNote.__dataclass_fields__ and getattr(note, name) is not UNSET
        }
        if note.refused is not None:
            changes.update(status="error", msg=note.refused)
        if changes:
            event = replace(event, **changes)
    return event


class AuditLog:
    """The audit notes of one unit of work. Operations only add notes (``record``); the
    unit of work folds them into its one event and writes it once, when the unit ends."""

    __slots__ = ("_events", "_notes")

    def __init__(self) -> None:
        self._notes: list[AuditNote] = []
        self._events: list[AuditEvent] = []

    def record(
        self,
        *,
        title: str | _Unset = UNSET,
        mode: str | _Unset | None = UNSET,
        accessor: str | _Unset | None = UNSET,
        subject: tuple[str, DataKey | None] | None = None,
        user_token: str | _Unset | None = UNSET,
        who: str | _Unset | None = UNSET,
        app: str | _Unset | None = UNSET,
        msg: str | _Unset | None = UNSET,
        before: bytes | _Unset | None = UNSET,
        after: bytes | _Unset | None = UNSET,
    ) -> None:
        """Note facts about this unit's event. ``subject`` is the person it concerns and
        their data key (under which ``who``, ``before`` and ``after`` are sealed)."""
        data_key: DataKey | _Unset | None = UNSET
        if subject is not None:
            user_token, data_key = subject
        self._notes.append(
            AuditNote(
                title=title,
                mode=mode,
                accessor=accessor,
                user_token=user_token,
                data_key=data_key,
                who=who,
                app=app,
                msg=msg,
                before=before,
                after=after,
            )
        )

    def forget_person(self) -> None:
        """The person was erased: the event outlives them, with no identity and no values."""
        self._notes.append(AuditNote(who=None, data_key=None, before=None, after=None))

    def refused(self, message: str) -> None:
        """The operation was refused, and the refusal is committed (see ``keep_spent``)."""
        self._notes.append(AuditNote(refused=message))

    def also(self, event: AuditEvent) -> None:
        """A second, separate event written with this unit's (for another subject)."""
        self._events.append(event)

    @property
    def notes(self) -> list[AuditNote]:
        return list(self._notes)

    @property
    def extra_events(self) -> list[AuditEvent]:
        return list(self._events)


@dataclass(slots=True)
class Work:
    """One request's (or job's) unit of work: its connection, caller, clock reading and
    audit notes."""

    context: Context
    conn: Connection
    principal: Principal
    now: int
    audit: AuditLog = field(default_factory=AuditLog)
    # Whether this unit writes an audit event at all (routes without a title do not).
    audited: bool = False
    # Outbox rows this unit of work queued: the dispatcher is woken after commit if any.
    queued: int = 0
    # The tenant the unit works for (its transaction is kept to it: storage/tenancy.py).
    tenant: int = DEFAULT_TENANT

    @property
    def settings(self) -> Settings:
        return self.context.settings

    @property
    def keyring(self) -> Keyring:
        """The vault's keys, with the blind indexes of the unit's tenant."""
        return self.context.keyring.for_tenant(self.tenant)

    @property
    def random(self) -> Randomness:
        return self.context.random

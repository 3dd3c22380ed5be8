"""Tenants: isolated vaults in one deployment, each with its own root token.

Tenant 1 is the default one: the v1 API, the portals and every record made before tenants
belong to it, and its root token is the deployment's highest credential (it acts in every
tenant). Only that token creates, lists and deletes tenants; a tenant's own root token
reads and changes its own tenant only. Invariants:

* a tenant's name is ``[a-z0-9]+`` and unique; ``default`` is tenant 1's and stays so;
* the root token of a new tenant is answered once and stored only as a keyed hash;
* deleting a tenant crypto-shreds its people (their data keys go) and deletes everything
  else it holds, its tokens among it; its audit trail stays, without its encrypted values,
  and its id is never given again;
* the contact email is encrypted under the vault's identity key, bound to its tenant.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from sqlalchemy.engine import Connection

from databunker.crypto import value_context
from databunker.errors import AccessDenied, BadRequest, Conflict, NotFound
from databunker.services import legal
from databunker.services.access import ROOT_KIND, access_token_hash
from databunker.services.context import Work
from databunker.services.identity import normalise_email
from databunker.services.results import Page
from databunker.services.text import clean_text
from databunker.storage import repositories as token_rows
from databunker.storage import tenancy
from databunker.storage import tenants as tenant_rows
from databunker.storage.tenancy import DEFAULT_TENANT

NAME_PATTERN = re.compile(r"^[a-z0-9]{1,64}$")
DEFAULT_NAME = "default"
MAX_ORG_LENGTH = 256

DUPLICATE_NAME = "duplicate tenant name"


@dataclass(frozen=True, slots=True)
class Tenant:
    id: int
    name: str
    org: str
    email: str


@dataclass(frozen=True, slots=True)
class TenantCreated:
    id: int
    # The tenant's root token, in clear this once.
    root_token: str


def resolve(conn: Connection, name: str) -> int | None:
    """The tenant a request names (the ``X-Bunker-Tenant`` header or its host), or None."""
    name = name.strip().lower()
    if name == DEFAULT_NAME:
        return DEFAULT_TENANT
    if not NAME_PATTERN.match(name):
        return None
    return tenant_rows.find_by_name(conn, name)


def _require_main(work: Work, refusal: str) -> None:
    if not work.principal.is_root:
        raise AccessDenied()
    if not work.principal.is_main_root:
        raise AccessDenied(refusal)


def _require_own_or_main(work: Work, tenant_id: int, refusal: str) -> None:
    if not work.principal.is_root:
        raise AccessDenied()
    if not work.principal.is_main_root and work.principal.home_tenant != tenant_id:
        raise AccessDenied(refusal)


def _name(value: str) -> str:
    name = value.strip()
    if not NAME_PATTERN.match(name) or name == DEFAULT_NAME:
        raise BadRequest("The tenantname parameter has an incorrect format")
    return name


def _org(value: str) -> str:
    org = clean_text("tenantorg", value)
    if len(org) > MAX_ORG_LENGTH:
        raise BadRequest("the tenantorg parameter is too long")
    return org


def _email(value: str) -> str:
    if not value:
        return ""
    email = normalise_email(value)
    if email is None:
        raise BadRequest("The email parameter has an incorrect format")
    return email


def _email_context(tenant_id: int) -> bytes:
    return value_context("tenants", "email", str(tenant_id), "tenant")


def _seal_email(work: Work, tenant_id: int, email: str) -> bytes | None:
    if not email:
        return None
    return work.keyring.service_key("identity").encrypt(email.encode(), _email_context(tenant_id))


def _open(work: Work, row: tenant_rows.TenantRow) -> Tenant:
    email = ""
    if row.email:
        key = work.keyring.service_key("identity")
        email = key.decrypt(row.email, _email_context(row.id)).decode()
    return Tenant(id=row.id, name=row.name, org=row.org, email=email)


def create_tenant(work: Work, name: str, org: str, email: str) -> TenantCreated:
    """A new, empty tenant with the consent catalogue every vault starts with."""
    _require_main(work, "only the main tenant admin can create tenants")
    name, org, email = _name(name), _org(org), _email(email)
    tenant_id = tenant_rows.insert(work.conn, name=name, org=org, now=work.now)
    if tenant_id is None:
        raise Conflict(DUPLICATE_NAME)
    sealed = _seal_email(work, tenant_id, email)
    if sealed is not None:
        tenant_rows.update(work.conn, tenant_id, {"email": sealed})
    root_token = work.random.token()
    token_rows.insert_access_token(
        work.conn,
        token_hash=access_token_hash(work.keyring, root_token),
        kind=ROOT_KIND,
        user_token=None,
        now=work.now,
        tenant=tenant_id,
    )
    with tenancy.acting_in(work.conn, tenant_id):
        legal.seed(work.conn, work.now)
    work.audit.record(msg=f"tenant {tenant_id}")
    return TenantCreated(id=tenant_id, root_token=root_token)


def _found(work: Work, tenant_id: int) -> tenant_rows.TenantRow:
    row = tenant_rows.get(work.conn, tenant_id)
    if row is None:
        raise NotFound("tenant record not found")
    return row


def get_tenant(work: Work, tenant_id: int) -> Tenant:
    _require_own_or_main(work, tenant_id, "only the main tenant admin can read another tenant")
    return _open(work, _found(work, tenant_id))


def update_tenant(
    work: Work,
    tenant_id: int | None,
    *,
    name: str | None,
    org: str | None,
    email: str | None,
) -> None:
    """Change the tenant's name, organisation or email (the caller's tenant by default);
    its tokens stay valid under the new name."""
    target = work.tenant if tenant_id is None else tenant_id
    _require_own_or_main(work, target, "only the main tenant admin can change another tenant")
    row = _found(work, target)
    values: dict[str, object] = {}
    if name is not None and name.strip() != row.name:
        if target == DEFAULT_TENANT:
            raise BadRequest("the default tenant keeps its name")
        values["name"] = _name(name)
    if org is not None:
        values["org"] = _org(org)
    if email is not None:
        values["email"] = _seal_email(work, target, _email(email))
    if not values:
        return
    values["updated"] = work.now
    if not tenant_rows.update(work.conn, target, values):
        raise Conflict(DUPLICATE_NAME)
    work.audit.record(msg=f"tenant {target}")


def delete_tenant(work: Work, tenant_id: int) -> int:
    """Forget the tenant: its people are crypto-shredded, its tokens and everything else it
    holds deleted. Returns how many people it held."""
    _require_main(work, "only the main tenant admin can delete tenants")
    if tenant_id == DEFAULT_TENANT:
        raise AccessDenied("the default tenant cannot be deleted")
    _found(work, tenant_id)
    with tenancy.acting_in(work.conn, tenant_id):
        people = tenant_rows.delete_tenant(work.conn, tenant_id, work.now)
    work.audit.record(msg=f"tenant {tenant_id}: {people} people erased")
    return people


def list_tenants(work: Work, offset: int, limit: int) -> Page[Tenant]:
    _require_main(work, "only the main tenant admin can list tenants")
    rows = tenant_rows.page(work.conn, offset=offset, limit=limit)
    return Page(total=tenant_rows.count(work.conn), rows=[_open(work, row) for row in rows])


def tenant_count(conn: Connection) -> int:
    return tenant_rows.count(conn)

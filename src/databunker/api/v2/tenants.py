"""v2 tenants (spec §2.11): ``TenantCreate``, ``TenantGet``, ``TenantUpdate``,
``TenantDelete``, ``TenantListTenants``.

Each is root's; ``services.tenants`` decides which root: the default tenant's for creating,
listing and deleting, a tenant's own for reading and changing itself. ``tenantid`` may be a
number or a digit string, as the published clients send it as given.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from databunker.api.v2.fields import Paged
from databunker.api.v2.registry import Access, Payload, V2Body, V2Operation
from databunker.services import tenants
from databunker.services.context import Work
from databunker.services.tenants import Tenant

__all__ = ["OPERATIONS"]

TENANT_NOT_FOUND = "The tenant record was not found"
# A tenant id as the databases store it (a 32-bit integer).
TenantId = Annotated[int, Field(ge=1, le=2**31 - 1)]


class CreateBody(V2Body):
    tenantname: str
    tenantorg: str
    email: str = ""


class TenantAddressed(V2Body):
    tenantid: TenantId


class UpdateBody(V2Body):
    tenantid: TenantId | None = None
    tenantname: str | None = None
    tenantorg: str | None = None
    email: str | None = None


def _row(tenant: Tenant) -> Payload:
    return {"tenantid": tenant.id, "tenantname": tenant.name, "tenantorg": tenant.org}


def create(work: Work, body: CreateBody) -> Payload:
    created = tenants.create_tenant(work, body.tenantname, body.tenantorg, body.email)
    return {"tenantid": created.id, "xtoken": created.root_token}


def get(work: Work, body: TenantAddressed) -> Payload:
    tenant = tenants.get_tenant(work, body.tenantid)
    return {**_row(tenant), "email": tenant.email}


def update(work: Work, body: UpdateBody) -> Payload:
    tenants.update_tenant(
        work, body.tenantid, name=body.tenantname, org=body.tenantorg, email=body.email
    )
    return {}


def delete(work: Work, body: TenantAddressed) -> Payload:
    tenants.delete_tenant(work, body.tenantid)
    return {}


def list_all(work: Work, body: Paged) -> Payload:
    offset, limit = body.page()
    found = tenants.list_tenants(work, offset, limit)
    return {"total": found.total, "rows": [_row(tenant) for tenant in found.rows]}


OPERATIONS = (
    V2Operation("TenantCreate", CreateBody, Access.ROOT, create, "create tenant", TENANT_NOT_FOUND),
    V2Operation("TenantGet", TenantAddressed, Access.ROOT, get, "get tenant", TENANT_NOT_FOUND),
    V2Operation("TenantUpdate", UpdateBody, Access.ROOT, update, "update tenant", TENANT_NOT_FOUND),
    V2Operation(
        "TenantDelete", TenantAddressed, Access.ROOT, delete, "delete tenant", TENANT_NOT_FOUND
    ),
    V2Operation("TenantListTenants", Paged, Access.ROOT, list_all, "list tenants"),
)

"""Request fields several v2 areas share: identity addressing, paging, time fields."""

from __future__ import annotations

from databunker.api.v2.registry import Missing, V2Body
from databunker.errors import BadRequest
from databunker.services.deadlines import final_time

DEFAULT_LIMIT = 10
MAX_LIMIT = 100
# Offsets beyond this are no page of anything, and would overflow a database's integer.
MAX_OFFSET = 1_000_000_000
TimeValue = str | int | None


class Identified(V2Body):
    """``mode`` + ``identity`` (spec §1.9): whom the operation is about."""

    mode: str
    identity: str


class Paged(V2Body):
    offset: int = 0
    limit: int = DEFAULT_LIMIT

    def page(self) -> tuple[int, int]:
        """(offset, limit): a negative offset is 0, a limit outside 1-100 is 100 (§1.8)."""
        limit = self.limit if 1 <= self.limit <= MAX_LIMIT else MAX_LIMIT
        if self.offset > MAX_OFFSET:
            raise BadRequest("The offset parameter has an incorrect format")
        return max(self.offset, 0), limit


class Grouped(V2Body):
    """Group and role references: groups and roles do not exist yet, so naming one finds
    nothing."""

    groupid: int | None = None
    groupname: str | None = None
    roleid: int | None = None
    rolename: str | None = None

    def refuse_groups(self) -> None:
        if self.groupid is not None or self.groupname:
            raise Missing("The group record was not found")
        if self.roleid is not None or self.rolename:
            raise Missing("The role record was not found")


def user_final_time(now: int, finaltime: TimeValue, slidingtime: TimeValue) -> int:
    """A user record's absolute deadline. Sliding expiry (extended on every access) is not
    kept for user records here: asking for it is refused rather than ignored."""
    if slidingtime not in (None, "", 0):
        raise BadRequest("The slidingtime parameter is not supported for user records")
    return final_time("finaltime", finaltime, now)

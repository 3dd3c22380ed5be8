"""Outbox delivery: webhooks POSTed to ``notification.notification_url``, and emails and
text messages handed to ``notify.email`` (SMTP) and ``notify.sms`` (HTTP gateway).

Rows are written by ``services.outbox`` in the transaction of the change they report, so only
committed changes are ever sent. Delivery happens after commit, from two places that share
the same claim-and-lease protocol (``storage.outbox``): the ``OutboxDispatcher`` task of each
server process, woken right after a request commits and otherwise sleeping until the next row
is due, and the periodic job ``deliver_due``, which retries even if no dispatcher runs.

Guarantees: every row is retried with exponential backoff until the receiver answers 2xx;
a deliverer that dies mid-delivery loses its lease, and the row is sent again. Delivery is
therefore at-least-once, and each request carries ``X-Bunker-Delivery: <outbox id>`` so
receivers can drop repeats. No database transaction is open while a request is on the wire.

Emails and text messages carry login codes: they are deleted as soon as they are delivered
and dropped when still undelivered after ``MESSAGE_LIFETIME_SECONDS``; they are retried with
the same backoff meanwhile.

Invariant: nothing a receiver says, and nothing of the URL, reaches the database or the log:
a failure is recorded as ``http <status>`` or the exception's type name.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import logging
import secrets
import threading
import time
from collections.abc import Callable
from typing import Any, Protocol

import anyio.to_thread
import httpx2 as httpx
import orjson

from databunker import __version__
from databunker.config import Settings
from databunker.crypto import Keyring
from databunker.notify import email, sms
from databunker.storage import Database
from databunker.storage import outbox as outbox_rows
from databunker.storage.outbox import EMAIL, SMS, WEBHOOK, open_payload

__all__ = [
    "DELIVERY_HEADER",
    "KEEP_DELIVERED_SECONDS",
    "MESSAGE_KINDS",
    "MESSAGE_LIFETIME_SECONDS",
    "SIGNATURE_HEADER",
    "Deployment",
    "OutboxDispatcher",
    "configured_kinds",
    "deliver_due",
    "new_http_client",
    "retry_delay",
    "sign",
]

log = logging.getLogger("databunker.webhooks")


class Deployment(Protocol):
    """What delivery needs of the running vault (``services.context.Context`` is one)."""

    @property
    def settings(self) -> Settings: ...

    @property
    def database(self) -> Database: ...

    @property
    def keyring(self) -> Keyring: ...

    @property
    def clock(self) -> Callable[[], int]: ...


# The HTTP client logs every request's full URL at INFO, and a webhook URL may carry
# credentials (user:password@, ?key=...): only its warnings may reach the log.
for _client_logger in ("httpx2", "httpcore2"):
    logging.getLogger(_client_logger).setLevel(logging.WARNING)

DELIVERY_HEADER = "X-Bunker-Delivery"
SIGNATURE_HEADER = "X-Bunker-Signature"
USER_AGENT = f"databunker/{__version__}"

TIMEOUT_SECONDS = 10.0
FIRST_RETRY_SECONDS = 5
MAX_RETRY_SECONDS = 3600
BATCH_SIZE = 20
# Long enough for a whole batch to time out one request after the other.
LEASE_SECONDS = int(BATCH_SIZE * TIMEOUT_SECONDS) + 100
# Acknowledged rows (whose payload may name a person) are kept this long, then deleted.
KEEP_DELIVERED_SECONDS = 7 * 86400
# Emails and text messages carry login codes, useless after this long: undelivered ones
# are dropped then, and delivered ones are deleted at once.
MESSAGE_LIFETIME_SECONDS = 15 * 60
MESSAGE_KINDS = frozenset({EMAIL, SMS})
# The dispatcher never spins faster than this, even when a row is due at once.
_MIN_PAUSE_SECONDS = 0.05


def new_http_client(timeout: float = TIMEOUT_SECONDS) -> httpx.Client:
    """The client webhooks are sent with: bounded time, no redirects, no ambient proxies."""
    return httpx.Client(timeout=timeout, follow_redirects=False, trust_env=False)


def retry_delay(attempts: int) -> int:
    """Seconds to wait after ``attempts`` failed attempts: 5 s doubling to at most 1 h.

    The wait is drawn from the upper half of that ceiling, so that a receiver coming back
    after an outage is not hit by every queued row in the same second.
    """
    ceiling = min(FIRST_RETRY_SECONDS << min(max(attempts, 1) - 1, 20), MAX_RETRY_SECONDS)
    return ceiling - secrets.randbelow(ceiling // 2 + 1)


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """``t=<timestamp>,v1=<hex HMAC-SHA256 of "<timestamp>.<body>" under secret>``."""
    message = str(timestamp).encode() + b"." + body
    digest = hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def deliver_due(
    vault: Deployment,
    now: int,
    http_client: httpx.Client | None = None,
    *,
    stop: threading.Event | None = None,
) -> int:
    """Send every queued notification due at ``now``; return how many were delivered.

    Webhooks, emails and text messages alike, each only when its channel is configured
    (``notification.notification_url``, ``smtp.server``, ``sms.url``). Opens its own short
    transactions (never one across a network call), so call it outside any transaction.
    Once ``stop`` is set it ends after the request in flight; leased rows not yet attempted
    are given back.
    """
    if not configured_kinds(vault):
        return 0
    if http_client is not None:
        return _deliver_all(vault, now, http_client, stop)
    with new_http_client() as client:
        return _deliver_all(vault, now, client, stop)


def configured_kinds(vault: Deployment) -> list[str]:
    """The outbox kinds this vault can deliver, by its settings."""
    settings = vault.settings
    kinds = []
    if settings.notification.notification_url:
        kinds.append(WEBHOOK)
    if settings.smtp.server:
        kinds.append(EMAIL)
    if settings.sms.url:
        kinds.append(SMS)
    return kinds


# Sends one opened payload; returns None when delivered, else a description without values.
_Send = Callable[[outbox_rows.ClaimedRow, dict[str, Any], int], "str | None"]


def _sender(vault: Deployment, kind: str, client: httpx.Client) -> _Send:
    settings = vault.settings
    if kind == EMAIL:

        def send_mail(
            row: outbox_rows.ClaimedRow, payload: dict[str, Any], sent_at: int
        ) -> str | None:
            try:
                email.send_email(settings.smtp, payload, now=sent_at)
            except Exception as exc:  # any failure of the network or the server is retried
                return email.failure_description(exc)
            return None

        return send_mail
    if kind == SMS:
        return lambda row, payload, sent_at: sms.send_sms(client, settings.sms, payload)
    url = settings.notification.notification_url
    return lambda row, payload, sent_at: _attempt(vault, url, row, payload, sent_at, client)


def _deliver_all(
    vault: Deployment, now: int, client: httpx.Client, stop: threading.Event | None
) -> int:
    started = time.monotonic()

    def current() -> int:
        # ``now`` moved on by the time spent here, so that leases and signatures stay true
        # during a long round, while a test's fixed clock still gives exact times.
        return now + int(time.monotonic() - started)

    delivered = 0
    for kind in configured_kinds(vault):
        if stop is not None and stop.is_set():
            break
        delivered += _deliver(vault, kind, _sender(vault, kind, client), current, stop)
    return delivered


def _deliver(
    vault: Deployment,
    kind: str,
    send: _Send,
    current: Callable[[], int],
    stop: threading.Event | None,
) -> int:
    message = kind in MESSAGE_KINDS
    delivered = 0
    while True:
        claimed_at = current()
        with vault.database.transaction() as conn:
            if message:
                outbox_rows.delete_stale(
                    conn, kinds=[kind], created_before=claimed_at - MESSAGE_LIFETIME_SECONDS
                )
            rows = outbox_rows.claim_due(
                conn,
                kind=kind,
                now=claimed_at,
                lease_until=claimed_at + LEASE_SECONDS,
                limit=BATCH_SIZE,
            )
        for position, row in enumerate(rows):
            if stop is not None and stop.is_set():
                with vault.database.transaction() as conn:
                    outbox_rows.release(conn, [later.id for later in rows[position:]])
                return delivered
            error = _send_row(vault, row, send, current())
            dropped = False
            with vault.database.transaction() as conn:
                if error is None:
                    if message:  # it carries a login code: nothing is kept
                        outbox_rows.delete_row(conn, row.id)
                    else:
                        outbox_rows.mark_delivered(conn, row.id, now=current())
                    delivered += 1
                else:
                    retry_at = current() + retry_delay(row.attempts + 1)
                    dropped = message and retry_at >= row.created + MESSAGE_LIFETIME_SECONDS
                    if dropped:
                        outbox_rows.delete_row(conn, row.id)
                    else:
                        outbox_rows.mark_failed(conn, row.id, next_attempt=retry_at, error=error)
            if error is not None:
                log.warning(
                    "%s delivery failed, %s",
                    kind,
                    "dropped" if dropped else "will retry",
                    extra={"event": f"{kind} {row.id}", "error_type": error},
                )
        if len(rows) < BATCH_SIZE:
            return delivered


def _send_row(
    vault: Deployment, row: outbox_rows.ClaimedRow, send: _Send, sent_at: int
) -> str | None:
    try:
        payload = open_payload(vault.keyring.service_key("outbox"), row.id, row.payload)
    except Exception as exc:  # a corrupt or foreign row must not stop the others
        return f"unreadable payload ({type(exc).__name__})"
    return send(row, payload, sent_at)


def _attempt(
    vault: Deployment,
    url: str,
    row: outbox_rows.ClaimedRow,
    payload: dict[str, Any],
    sent_at: int,
    client: httpx.Client,
) -> str | None:
    """POST one webhook; None when acknowledged, else a short description without values."""
    body = orjson.dumps(payload, option=orjson.OPT_SORT_KEYS)
    headers = {
        "Content-Type": "application/json",
        "Accept": "application/json",
        "User-Agent": USER_AGENT,
        DELIVERY_HEADER: str(row.id),
    }
    secret = vault.settings.notification.notification_secret
    if secret:
        headers[SIGNATURE_HEADER] = sign(secret, sent_at, body)
    try:
        # Streamed and never read: the receiver's answer body does not matter, whatever size.
        with client.stream("POST", url, content=body, headers=headers) as response:
            status = response.status_code
    except Exception as exc:  # any failure of the network or the receiver is retried
        return type(exc).__name__
    return None if 200 <= status < 300 else f"http {status}"


class OutboxDispatcher:
    """Delivers this process's (and any abandoned) webhooks in the background.

    ``wake()`` after a commit starts a round at once; otherwise the dispatcher sleeps until
    the next row is due, and at most ``idle_seconds``, so rows queued by other processes or
    by jobs are found too. Waking is an optimisation only: every row is in the database.
    """

    def __init__(self, vault: Deployment, *, idle_seconds: float) -> None:
        self._vault = vault
        self._idle_seconds = idle_seconds
        self._wake = asyncio.Event()
        self._stopping = threading.Event()
        self._task: asyncio.Task[None] | None = None

    @classmethod
    def for_deployment(cls, vault: Deployment) -> OutboxDispatcher | None:
        """A dispatcher if webhooks, email or text messages are configured, else None."""
        if not configured_kinds(vault):
            return None
        return cls(vault, idle_seconds=float(vault.settings.server.jobs_interval))

    def start(self) -> None:
        """Start the background task; call from the running event loop."""
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="outbox dispatcher")

    def wake(self) -> None:
        """Look for due rows now (call from the event loop, after a commit)."""
        self._wake.set()

    async def stop(self, timeout: float = TIMEOUT_SECONDS + 2) -> None:
        """Stop after the request in flight, if any; unattempted leased rows are given back.

        Waits for the round in progress (which checks for the stop between requests), so no
        database work outlives the server's shutdown, and at most ``timeout`` seconds.
        """
        self._stopping.set()
        self._wake.set()
        task, self._task = self._task, None
        if task is None:
            return
        try:
            await asyncio.wait_for(asyncio.shield(task), timeout)
        except TimeoutError:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _run(self) -> None:
        while not self._stopping.is_set():
            self._wake.clear()
            pause = self._idle_seconds
            try:
                pause = await anyio.to_thread.run_sync(self._round)
            except Exception as exc:  # e.g. the database is unreachable: try again later
                log.error(
                    "webhook dispatcher round failed",
                    extra={"event": "webhook", "error_type": type(exc).__name__},
                )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=pause)

    def _round(self) -> float:
        """Deliver what is due; return how long to sleep before the next round."""
        vault = self._vault
        with new_http_client() as client:
            _deliver_all(vault, vault.clock(), client, self._stopping)
        if self._stopping.is_set():
            return 0.0
        with vault.database.transaction() as conn:
            times = [outbox_rows.next_due(conn, kind=kind) for kind in configured_kinds(vault)]
        due = min((at for at in times if at is not None), default=None)
        if due is None:
            return self._idle_seconds
        return min(self._idle_seconds, max(_MIN_PAUSE_SECONDS, float(due - vault.clock())))

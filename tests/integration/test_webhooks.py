"""Webhooks: queued in the request's transaction, delivered after commit to a real receiver.

Delivery is driven with ``deliver_due`` and the test clock (clients here run without the
app's lifespan, so no background dispatcher races the test), except where the dispatcher
itself is under test. What is asserted is what a receiver observes: requests, headers, bodies.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx2 as httpx
import orjson
import pytest
import sqlalchemy as sa
from starlette.testclient import TestClient

from databunker import __version__
from databunker.jobs import SYSTEM, run_jobs
from databunker.notify.dispatcher import (
    LEASE_SECONDS,
    deliver_due,
    new_http_client,
    retry_delay,
)
from databunker.services.context import Context, Work
from databunker.services.outbox import enqueue_webhook
from databunker.storage import outbox as store
from databunker.storage.tables import outbox
from support.receiver import Receiver
from support.vaults import Clock, client_for
from support.vaults import create_user as create

ANN = {"email": "ann@example.com", "name": "Ann", "city": "York"}
SECRET = "whsec-test-4f2a"


@pytest.fixture
def hook() -> Iterator[Receiver]:
    with Receiver() as receiver:
        yield receiver


def hooked_vault(make_vault: Any, url: str, secret: str = "") -> Context:
    vault: Context = make_vault(
        notification={"notification_url": url, "notification_secret": secret}
    )
    return vault


@contextmanager
def api_without_dispatcher(vault: Context) -> Iterator[TestClient]:
    """A root client whose app's lifespan (and so its dispatcher) never starts."""
    client = client_for(vault)
    try:
        yield client
    finally:
        client.close()


def outbox_rows(vault: Context) -> list[sa.Row[Any]]:
    with vault.database.transaction() as conn:
        return list(conn.execute(sa.select(outbox).order_by(outbox.c.id)))


def canonical(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload, separators=(",", ":"), sort_keys=True).encode()


def verify(secret: str, header: str, body: bytes, now: int, tolerance: int = 300) -> bool:
    """What a receiver does (the README's recipe)."""
    parts = dict(item.split("=", 1) for item in header.split(","))
    timestamp = int(parts["t"])
    message = f"{timestamp}.".encode() + body
    expected = hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, parts["v1"]) and abs(now - timestamp) <= tolerance


def queue(vault: Context, payload: dict[str, Any]) -> None:
    with vault.database.transaction() as conn:
        enqueue_webhook(Work(vault, conn, SYSTEM, vault.clock()), payload)


# -- what is sent ----------------------------------------------------------------------------
def test_profile_events_reach_the_receiver_with_exactly_their_payloads(
    make_vault: Any, hook: Receiver, clock: Clock
) -> None:
    vault = hooked_vault(make_vault, hook.url)
    with api_without_dispatcher(vault) as api:
        token = create(api, ANN)
        changed = api.put(f"/v1/user/token/{token}", json={"name": "Ann B", "city": None})
        assert changed.status_code == 200, changed.text
        unchanged = api.put(f"/v1/user/token/{token}", json={"name": "Ann B"})
        assert unchanged.status_code == 200, unchanged.text
        erased = api.delete(f"/v1/user/token/{token}")
        assert erased.status_code == 200, erased.text

    assert deliver_due(vault, clock.now) == 4

    expected = [
        {"action": "profilenew", "identity": token, "mode": "token"},
        {"action": "profilechange", "fields": ["city", "name"], "identity": token, "mode": "token"},
        {"action": "profilechange", "fields": [], "identity": token, "mode": "token"},
        {"action": "forgetme", "identity": token, "mode": "token"},
    ]
    received = hook.requests
    assert [r.body for r in received] == [canonical(p) for p in expected]
    for request in received:
        assert request.method == "POST"
        assert request.path == "/hook"
        assert request.header("Content-Type") == "application/json"
        assert request.header("Accept") == "application/json"
        assert request.header("User-Agent") == f"databunker/{__version__}"
        assert request.header("X-Bunker-Signature") is None
    ids = [r.header("X-Bunker-Delivery") for r in received]
    assert all(i is not None and i.isdigit() for i in ids)
    assert len(set(ids)) == 4


def test_nothing_is_queued_without_a_notification_url(vault: Context, clock: Clock) -> None:
    with api_without_dispatcher(vault) as api:
        token = create(api, ANN)
        assert api.put(f"/v1/user/token/{token}", json={"name": "B"}).status_code == 200
        assert api.delete(f"/v1/user/token/{token}").status_code == 200

    assert outbox_rows(vault) == []
    assert deliver_due(vault, clock.now) == 0


def test_a_rolled_back_request_queues_nothing(
    make_vault: Any, hook: Receiver, clock: Clock
) -> None:
    vault = hooked_vault(make_vault, hook.url)
    with api_without_dispatcher(vault) as api:
        token = create(api, ANN)
        duplicate = api.post("/v1/user", json={"email": ANN["email"], "name": "Other"})
        assert duplicate.status_code == 409
        other = create(api, {"email": "bob@example.com"})
        clash = api.put(f"/v1/user/token/{other}", json={"email": ANN["email"]})
        assert clash.status_code == 409

    assert len(outbox_rows(vault)) == 2
    assert deliver_due(vault, clock.now) == 2
    assert [r.json()["identity"] for r in hook.requests] == [token, other]
    assert {r.json()["action"] for r in hook.requests} == {"profilenew"}


def test_payloads_are_encrypted_at_rest(make_vault: Any, hook: Receiver, clock: Clock) -> None:
    vault = hooked_vault(make_vault, hook.url)
    consent = {
        "action": "consentchange",
        "brief": "newsletter",
        "identity": "carol@example.com",
        "mode": "email",
        "status": "no",
    }
    queue(vault, consent)
    with api_without_dispatcher(vault) as api:
        token = create(api, ANN)

    rows = outbox_rows(vault)
    assert len(rows) == 2
    for row in rows:
        raw = bytes(row.payload)
        assert b"carol@example.com" not in raw
        assert token.encode() not in raw
        assert b"consentchange" not in raw
        with pytest.raises(orjson.JSONDecodeError):
            orjson.loads(raw)

    assert deliver_due(vault, clock.now) == 2
    assert hook.requests[0].body == canonical(consent)


# -- retries ---------------------------------------------------------------------------------
def test_failed_deliveries_are_retried_with_backoff_until_acknowledged_once(
    make_vault: Any, hook: Receiver, clock: Clock
) -> None:
    vault = hooked_vault(make_vault, hook.url)
    hook.fail_next(2)
    with api_without_dispatcher(vault) as api:
        token = create(api, ANN)

    assert deliver_due(vault, clock.now) == 0  # attempt 1: 500
    assert [r.status for r in hook.requests] == [500]
    assert deliver_due(vault, clock.now) == 0  # not due again yet
    clock.advance(2)
    assert deliver_due(vault, clock.now) == 0  # the first wait is 3 to 5 s
    assert len(hook.requests) == 1

    clock.advance(3)
    assert deliver_due(vault, clock.now) == 0  # attempt 2: 500
    assert [r.status for r in hook.requests] == [500, 500]
    [row] = outbox_rows(vault)
    assert (row.attempts, row.last_error, row.delivered) == (2, "http 500", None)
    clock.advance(4)
    assert deliver_due(vault, clock.now) == 0  # the second wait is 5 to 10 s
    assert len(hook.requests) == 2

    clock.advance(6)
    assert deliver_due(vault, clock.now) == 1  # attempt 3: acknowledged
    clock.advance(86400)
    assert deliver_due(vault, clock.now) == 0

    received = hook.requests
    assert [r.status for r in received] == [500, 500, 200]
    assert len({r.header("X-Bunker-Delivery") for r in received}) == 1
    assert {r.body for r in received} == {
        canonical({"action": "profilenew", "identity": token, "mode": "token"})
    }
    [row] = outbox_rows(vault)
    assert (row.attempts, row.last_error) == (3, None)
    assert row.delivered == clock.now - 86400


def test_backoff_doubles_from_five_seconds_up_to_an_hour_with_jitter() -> None:
    for attempts, (low, high) in {1: (3, 5), 2: (5, 10), 3: (10, 20), 10: (1280, 2560)}.items():
        assert all(low <= retry_delay(attempts) <= high for _ in range(200))
    assert all(1800 <= retry_delay(n) <= 3600 for n in (11, 12, 40, 10_000) for _ in range(50))
    assert len({retry_delay(6) for _ in range(200)}) > 1


def test_an_unreachable_receiver_is_retried_and_breaks_nothing(
    make_vault: Any, clock: Clock
) -> None:
    with Receiver() as gone:
        url = gone.url
    vault = hooked_vault(make_vault, url)
    with api_without_dispatcher(vault) as api:
        create(api, ANN)

    assert deliver_due(vault, clock.now) == 0
    [row] = outbox_rows(vault)
    assert (row.attempts, row.last_error, row.delivered) == (1, "ConnectError", None)
    assert row.next_attempt > clock.now


def test_a_hanging_receiver_times_out_and_the_row_is_sent_again(
    make_vault: Any, hook: Receiver, clock: Clock
) -> None:
    vault = hooked_vault(make_vault, hook.url)
    hook.hang_next(1)
    with api_without_dispatcher(vault) as api:
        create(api, ANN)

    with new_http_client(timeout=0.3) as impatient:
        assert deliver_due(vault, clock.now, impatient) == 0
    [row] = outbox_rows(vault)
    assert row.last_error == "ReadTimeout"

    clock.advance(5)
    assert deliver_due(vault, clock.now) == 1
    assert [r.status for r in hook.requests] == [None, 200]


def test_errors_recorded_carry_no_url_secret(
    make_vault: Any, hook: Receiver, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    url = hook.url.replace("http://", "http://hookuser:pa55word@") + "?key=k3y-in-url"
    vault = hooked_vault(make_vault, url)
    hook.fail_next(1, status=503)
    with api_without_dispatcher(vault) as api:
        create(api, ANN)

    with caplog.at_level("DEBUG"):
        assert deliver_due(vault, clock.now) == 0
    [row] = outbox_rows(vault)
    assert row.last_error == "http 503"
    logged = caplog.text + repr([r.__dict__ for r in caplog.records])
    for secret in ("pa55word", "k3y-in-url", ANN["email"]):
        assert secret not in logged
    assert "webhook delivery failed" in caplog.text
    assert hook.requests[0].path == "/hook?key=k3y-in-url"


def test_a_delivery_abandoned_mid_flight_is_retried_after_its_lease(
    make_vault: Any, hook: Receiver, clock: Clock
) -> None:
    vault = hooked_vault(make_vault, hook.url)
    with api_without_dispatcher(vault) as api:
        create(api, ANN)
    # Another server claims the row and dies before it can say how the delivery went.
    with vault.database.transaction() as conn:
        claimed = store.claim_due(
            conn, kind="webhook", now=clock.now, lease_until=clock.now + LEASE_SECONDS, limit=10
        )
    assert len(claimed) == 1

    assert deliver_due(vault, clock.now) == 0
    clock.advance(LEASE_SECONDS - 1)
    assert deliver_due(vault, clock.now) == 0
    assert hook.requests == []

    clock.advance(1)
    assert deliver_due(vault, clock.now) == 1
    assert len(hook.requests) == 1


def test_a_delivery_told_to_stop_ends_after_the_request_in_flight_and_gives_back_the_rest(
    make_vault: Any, hook: Receiver, clock: Clock
) -> None:
    vault = hooked_vault(make_vault, hook.url)
    for number in range(3):
        queue(vault, {"action": "profilenew", "identity": f"t-{number}", "mode": "token"})
    stop = threading.Event()
    # The server begins to stop while the first webhook is on its way.
    with httpx.Client(event_hooks={"response": [lambda _response: stop.set()]}) as client:
        assert deliver_due(vault, clock.now, client, stop=stop) == 1
    assert len(hook.requests) == 1

    # The two not attempted wait for no lease: the next deliverer sends them at once.
    left = [row for row in outbox_rows(vault) if row.delivered is None]
    assert [(row.attempts, row.locked_until) for row in left] == [(0, 0), (0, 0)]
    assert deliver_due(vault, clock.now) == 2
    assert sorted(r.json()["identity"] for r in hook.requests) == ["t-0", "t-1", "t-2"]


def test_a_round_of_jobs_told_to_stop_starts_no_further_job(
    make_vault: Any, hook: Receiver, clock: Clock
) -> None:
    vault = hooked_vault(make_vault, hook.url)
    queue(vault, {"action": "profilenew", "identity": "t-0", "mode": "token"})
    stop = threading.Event()
    stop.set()
    assert run_jobs(vault, stop=stop) == {}
    assert hook.requests == []
    assert run_jobs(vault)["deliver webhooks"] == 1


def test_several_servers_deliver_each_webhook_once(
    make_vault: Any, hook: Receiver, clock: Clock
) -> None:
    servers = [hooked_vault(make_vault, hook.url) for _ in range(3)]
    for number in range(45):
        queue(servers[0], {"action": "profilenew", "identity": f"t-{number}", "mode": "token"})

    start = threading.Barrier(len(servers))
    counts: list[int] = []

    def run(vault: Context) -> None:
        start.wait()
        counts.append(deliver_due(vault, clock.now))

    threads = [threading.Thread(target=run, args=(server,)) for server in servers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sum(counts) == 45
    ids = [r.header("X-Bunker-Delivery") for r in hook.requests]
    assert len(ids) == len(set(ids)) == 45
    assert sorted(r.json()["identity"] for r in hook.requests) == sorted(
        f"t-{n}" for n in range(45)
    )


# -- signature -------------------------------------------------------------------------------
def test_signature_verifies_with_the_secret_and_only_with_it(
    make_vault: Any, hook: Receiver, clock: Clock
) -> None:
    vault = hooked_vault(make_vault, hook.url, secret=SECRET)
    with api_without_dispatcher(vault) as api:
        create(api, ANN)
    assert deliver_due(vault, clock.now) == 1

    [request] = hook.requests
    header = request.header("X-Bunker-Signature")
    assert header is not None
    assert header.startswith(f"t={clock.now},v1=")
    assert verify(SECRET, header, request.body, clock.now)
    assert not verify("another-secret", header, request.body, clock.now)
    assert not verify(SECRET, header, request.body.replace(b"token", b"email"), clock.now)
    assert not verify(SECRET, header, request.body, clock.now + 301)  # a replay, much later


def test_each_attempt_is_signed_at_its_own_time(
    make_vault: Any, hook: Receiver, clock: Clock
) -> None:
    vault = hooked_vault(make_vault, hook.url, secret=SECRET)
    hook.fail_next(1)
    with api_without_dispatcher(vault) as api:
        create(api, ANN)
    deliver_due(vault, clock.now)
    clock.advance(600)
    assert deliver_due(vault, clock.now) == 1

    first, second = hook.requests
    assert first.body == second.body
    assert verify(SECRET, str(second.header("X-Bunker-Signature")), second.body, clock.now)
    assert not verify(SECRET, str(first.header("X-Bunker-Signature")), first.body, clock.now)


# -- the periodic jobs and the dispatcher ----------------------------------------------------
def test_the_periodic_jobs_retry_and_later_purge_delivered_rows(
    make_vault: Any, hook: Receiver, clock: Clock
) -> None:
    vault = hooked_vault(make_vault, hook.url)
    hook.fail_next(1)
    with api_without_dispatcher(vault) as api:
        create(api, ANN)

    run_jobs(vault)
    assert [r.status for r in hook.requests] == [500]
    clock.advance(5)
    run_jobs(vault)
    assert [r.status for r in hook.requests] == [500, 200]
    [row] = outbox_rows(vault)
    assert row.delivered == clock.now

    hook.fail_next(1000)
    with api_without_dispatcher(vault) as api:
        create(api, {"email": "bob@example.com"})  # never acknowledged: kept and retried
    clock.advance(7 * 86400)
    run_jobs(vault)
    assert len(outbox_rows(vault)) == 2
    clock.advance(1)
    run_jobs(vault)
    [left] = outbox_rows(vault)
    assert (left.delivered, left.attempts) == (None, 1)


def test_the_dispatcher_delivers_right_after_commit(make_vault: Any, hook: Receiver) -> None:
    vault = hooked_vault(make_vault, hook.url, secret=SECRET)
    with client_for(vault) as api:  # runs the lifespan: the dispatcher is started
        token = create(api, ANN)
        [request] = hook.wait_for(1, acknowledged=True)
    assert request.json() == {"action": "profilenew", "identity": token, "mode": "token"}
    assert verify(SECRET, str(request.header("X-Bunker-Signature")), request.body, vault.clock())


def test_a_failing_receiver_does_not_disturb_the_server(make_vault: Any, hook: Receiver) -> None:
    vault = hooked_vault(make_vault, hook.url)
    hook.fail_next(1000)
    with client_for(vault) as api:
        token = create(api, ANN)
        hook.wait_for(1)
        second = create(api, {"email": "bob@example.com"})
        hook.wait_for(2)
        assert api.get(f"/v1/user/token/{token}").status_code == 200
        assert api.get(f"/v1/user/token/{second}").status_code == 200
    assert all(r.status == 500 for r in hook.requests)
    assert all(row.delivered is None for row in outbox_rows(vault))

"""N get-by-token requests straight into the vault's ASGI app, on a new SQLite vault in
FOLDER (run by ``bench/chain_cost.py``): ``_get_by_token.py N FOLDER``."""

from __future__ import annotations

import asyncio
import sys
from typing import Any

import orjson

from databunker.app import build_app
from databunker.config import Settings
from databunker.crypto import Keyring, MasterKey
from databunker.services.context import Context, system_clock
from databunker.services.system import initialise
from databunker.storage import Database

ROOT = "00000000-0000-4000-8000-000000000001"
USERS = 50


async def call(app: Any, method: str, path: str, body: bytes = b"") -> dict[str, Any]:
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [
            (b"x-bunker-token", ROOT.encode()),
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
        ],
        "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 3000),
    }
    sent = False
    chunks: list[bytes] = []

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if sent:
            await asyncio.sleep(3600)
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.body":
            chunks.append(message.get("body", b""))

    await app(scope, receive, send)
    answer: dict[str, Any] = orjson.loads(b"".join(chunks))
    return answer


async def run(requests: int, folder: str) -> None:
    database = Database(f"sqlite:///{folder}/vault.db")
    keyring = Keyring(MasterKey.generate())
    initialise(database, keyring, ROOT, system_clock())
    app = build_app(Context(Settings(), database, keyring, system_clock), owns_database=True)
    tokens = []
    for number in range(USERS):
        body = orjson.dumps({"email": f"user{number}@bench.example"})
        tokens.append((await call(app, "POST", "/v1/user", body))["token"])
    for number in range(requests):
        answer = await call(app, "GET", f"/v1/user/token/{tokens[number % USERS]}")
        if answer["status"] != "ok":
            raise SystemExit(f"request failed: {answer}")
    database.dispose()


if __name__ == "__main__":
    asyncio.run(run(int(sys.argv[1]), sys.argv[2]))

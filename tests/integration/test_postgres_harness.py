"""The temporary PostgreSQL harness works end to end."""

from __future__ import annotations

import uuid

import psycopg

from support.postgres import TemporaryPostgres


def test_create_insert_read_and_dump(postgres_server: TemporaryPostgres) -> None:
    name = f"harness_{uuid.uuid4().hex[:12]}"
    value = f"harness-value-{uuid.uuid4().hex}"
    url = postgres_server.create_database(name)
    try:
        assert url == postgres_server.url(name)
        with psycopg.connect(url) as conn:
            conn.execute("CREATE TABLE items (id serial PRIMARY KEY, label text NOT NULL)")
            conn.execute("INSERT INTO items (label) VALUES (%s)", (value,))
            conn.commit()
            row = conn.execute("SELECT label FROM items").fetchone()
        assert row == (value,)
        dump = postgres_server.dump(name)
        assert "CREATE TABLE public.items" in dump
        assert value in dump
    finally:
        postgres_server.drop_database(name)

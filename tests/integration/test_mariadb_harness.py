"""The temporary MariaDB harness works end to end, and a vault's strings compare exactly."""

from __future__ import annotations

import uuid

from support.mariadb import TemporaryMariaDB


def test_create_insert_read_and_dump(mariadb_server: TemporaryMariaDB) -> None:
    name = f"harness_{uuid.uuid4().hex[:12]}"
    value = f"harness-value-{uuid.uuid4().hex}"
    url = mariadb_server.create_database(name)
    try:
        assert url == mariadb_server.url(name)
        conn = mariadb_server.connect(name)
        try:
            with conn.cursor() as cursor:
                cursor.execute("CREATE TABLE items (id serial PRIMARY KEY, label text NOT NULL)")
                cursor.execute("INSERT INTO items (label) VALUES (%s)", (value,))
                cursor.execute("SELECT label FROM items")
                assert cursor.fetchall() == ((value,),)
        finally:
            conn.close()
        dump = mariadb_server.dump(name)
        assert "CREATE TABLE `items`" in dump
        assert value in dump
    finally:
        mariadb_server.drop_database(name)

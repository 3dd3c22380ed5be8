"""What differs between the three databases, said once: SQLite, PostgreSQL, MariaDB/MySQL.

MariaDB and MySQL (``mariadb://`` / ``mysql://`` through PyMySQL):

* Column types: a ``LargeBinary`` column is a ``LONGBLOB`` (ciphertext can be large), except
  where it is a key, a unique column or indexed (keyed hashes, blind indexes): there it is a
  ``VARBINARY(255)``, compared byte for byte. ``Text`` is ``LONGTEXT``. The schema's strings
  take the database's collation, which the first migration sets to ``utf8mb4_bin``, so
  tokens and names compare exactly, as on the other two.
* Upserts are ``INSERT ... ON DUPLICATE KEY UPDATE`` (``upsert``), and ``UPDATE ...
  RETURNING`` does not exist: ``update_returning`` locks the rows, then updates them.
* Locks held until the transaction ends: a row lock on the schema version (PostgreSQL: an
  advisory transaction lock); ``GET_LOCK`` is the session-level advisory lock.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import mysql, postgresql, sqlite
from sqlalchemy.engine import Connection
from sqlalchemy.ext.compiler import compiles

MYSQL_DIALECTS = ("mariadb", "mysql")
# The longest value of an indexed binary column: keyed hashes and blind indexes are 32 bytes.
KEYED_BINARY_LENGTH = 255


def is_mysql(conn: Connection) -> bool:
    return conn.dialect.name in MYSQL_DIALECTS


def _is_keyed(column: Any) -> bool:
    if not isinstance(column, sa.Column):
        return False
    if column.primary_key or column.unique or column.index:
        return True
    table = column.table if isinstance(getattr(column, "table", None), sa.Table) else None
    if table is None:
        return False
    unique = [c.columns for c in table.constraints if isinstance(c, sa.UniqueConstraint)]
    indexed = [index.columns for index in table.indexes]
    return any(column.name in columns for columns in (*unique, *indexed))


@compiles(sa.LargeBinary, "mariadb")
@compiles(sa.LargeBinary, "mysql")
def _binary(type_: sa.LargeBinary, compiler: Any, **kw: Any) -> str:
    if _is_keyed(kw.get("type_expression")):
        return f"VARBINARY({KEYED_BINARY_LENGTH})"
    return "LONGBLOB"


@compiles(sa.Text, "mariadb")
@compiles(sa.Text, "mysql")
def _text(type_: sa.Text, compiler: Any, **kw: Any) -> str:
    return "LONGTEXT"


# A binary column created on its own (``ALTER TABLE ... ADD``) and made unique after.
KeyedBinary = sa.LargeBinary().with_variant(mysql.VARBINARY(KEYED_BINARY_LENGTH), *MYSQL_DIALECTS)

SetClause = Callable[[Any], Sequence[tuple[str, Any]]]


def upsert(
    dialect_name: str, table: sa.Table, key: Sequence[sa.Column[Any]], set_: SetClause
) -> Any:
    """``INSERT`` that, when a row with the same ``key`` exists, updates it instead, with
    the assignments ``set_(excluded)`` (``excluded`` holds the values offered), in order."""
    if dialect_name in MYSQL_DIALECTS:
        statement: Any = mysql.insert(table)
        return statement.on_duplicate_key_update(list(set_(statement.inserted)))
    make = postgresql.insert if dialect_name == "postgresql" else sqlite.insert
    statement = make(table)
    return statement.on_conflict_do_update(
        index_elements=list(key), set_=dict(set_(statement.excluded))
    )


def update_returning(
    conn: Connection,
    table: sa.Table,
    where: sa.ColumnElement[bool],
    values: dict[str, Any],
    returning: Sequence[sa.Column[Any]],
) -> list[sa.Row[Any]]:
    """``UPDATE table SET values WHERE where RETURNING returning``: the rows as changed.

    Without ``UPDATE ... RETURNING`` (MariaDB, MySQL), the rows are locked and read first,
    then updated by their primary key: concurrent callers still change (and get) each row
    exactly once."""
    if conn.dialect.update_returning:
        return list(conn.execute(table.update().where(where).values(values).returning(*returning)))
    keys = list(table.primary_key.columns)
    rows = list(conn.execute(sa.select(*table.c).where(where).with_for_update()))
    if not rows:
        return []
    matches = sa.tuple_(*keys).in_([tuple(row._mapping[k.name] for k in keys) for row in rows])
    conn.execute(table.update().where(matches, where).values(values))
    changed = conn.execute(sa.select(*returning).where(matches))
    return list(changed)


def hold_transaction_lock(conn: Connection, lock_id: int) -> None:
    """Serialise the transactions that call this with ``lock_id`` until they end (servers
    starting at once). SQLite's transactions are serial already."""
    if conn.dialect.name == "postgresql":
        conn.execute(sa.text("SELECT pg_advisory_xact_lock(:id)"), {"id": lock_id})
    elif is_mysql(conn):
        # No advisory lock lasts only as long as a transaction: the schema version's row does.
        conn.execute(sa.text("SELECT value FROM meta WHERE name = 'schema_version' FOR UPDATE"))


def compare_type(
    context: Any,
    inspected_column: Any,
    metadata_column: sa.Column[Any],
    inspected_type: sa.types.TypeEngine[Any],
    metadata_type: sa.types.TypeEngine[Any],
) -> bool | None:
    """For Alembic's schema comparison: on MariaDB and MySQL a column matches when the type
    its definition compiles to (see ``_binary``) is the one stored; else Alembic decides."""
    dialect = context.dialect
    if dialect.name not in MYSQL_DIALECTS or not isinstance(
        metadata_type, sa.LargeBinary | sa.Text
    ):
        return None
    compiler = dialect.type_compiler_instance
    wanted = compiler.process(metadata_type, type_expression=metadata_column)
    found = compiler.process(inspected_type)
    return bool(wanted.replace(" ", "") != found.replace(" ", ""))

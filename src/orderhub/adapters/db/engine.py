"""Engines for the two supported databases.

SQLite (the embedded default) runs in WAL mode with foreign keys on; write transactions
start with ``BEGIN IMMEDIATE`` so two writers queue on the busy timeout instead of failing
when a read lock can't be upgraded. PostgreSQL goes through psycopg 3.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, Insert, Table, create_engine, event
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import make_url

SQLITE_BUSY_TIMEOUT_MS = 30_000
WRITE = {"orderhub_write": True}


def normalise_url(url: str) -> str:
    """Give bare ``postgresql://`` URLs the psycopg 3 driver."""
    if url.startswith("postgresql://") or url.startswith("postgres://"):
        return "postgresql+psycopg://" + url.split("://", 1)[1]
    return url


def build_engine(url: str, *, pool_size: int = 10) -> Engine:
    """Create the engine for ``url`` with the per-database settings OrderHub relies on."""
    url = normalise_url(url)
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000,
                                                  "check_same_thread": False})
        _configure_sqlite(engine)
        return engine
    if parsed.get_backend_name() == "postgresql":
        return create_engine(url, pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=True)
    raise ValueError(f"unsupported database URL {url!r}: use sqlite:///PATH or postgresql+psycopg://…")


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Take transaction control away from the sqlite3 module so BEGIN is ours to emit.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        write = conn.get_execution_options().get("orderhub_write", False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")


def is_postgres(engine: Engine) -> bool:
    """True for a PostgreSQL engine (SKIP LOCKED and row locks are available)."""
    return engine.dialect.name == "postgresql"


@cache
def insert_unless_duplicate(table: Table, dialect_name: str) -> Insert:
    """``INSERT … ON CONFLICT DO NOTHING`` on ``table`` for ``dialect_name``.

    A row that would break a UNIQUE key is skipped instead of failing, so the caller learns
    about the duplicate from the row count and the transaction stays usable without the
    savepoint (two extra round trips on PostgreSQL) a failing INSERT would need. Other
    constraint violations (foreign key, NOT NULL) still raise. The row count is kept
    (``preserve_rowcount``): SQLAlchemy drops it for INSERTs otherwise. Built once per table
    and dialect.
    """
    if dialect_name == "postgresql":
        return pg_insert(table).on_conflict_do_nothing().execution_options(preserve_rowcount=True)
    if dialect_name == "sqlite":
        return sqlite_insert(table).on_conflict_do_nothing().execution_options(preserve_rowcount=True)
    raise ValueError(f"unsupported database {dialect_name!r}")

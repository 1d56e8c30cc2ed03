"""Idempotency keys: remember which request body a key was first used with."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, bindparam, select
from sqlalchemy.exc import IntegrityError

from orderhub.adapters.db.engine import insert_unless_duplicate
from orderhub.adapters.db.errors import DuplicateKeyError
from orderhub.adapters.db.tables import idempotency_keys

# Built once: building a statement costs more CPU than SQLAlchemy's cached compile of it.
_GET = select(idempotency_keys.c.request_hash, idempotency_keys.c.resource_id).where(
    idempotency_keys.c.tenant_id == bindparam("tenant_id"), idempotency_keys.c.scope == bindparam("scope"),
    idempotency_keys.c.key == bindparam("key"))


@dataclass(frozen=True, slots=True)
class IdempotencyRecord:
    """A stored key: the hash of the first request and the resource it produced."""

    request_hash: str
    resource_id: str


@dataclass(frozen=True, slots=True)
class IdempotencyClaim:
    """A key to claim for a resource about to be created (see ``SqlOrderRepository.add``)."""

    scope: str
    key: str
    request_hash: str


class SqlIdempotencyRepository:
    """Idempotency keys per tenant and scope (e.g. ``orders.create``)."""

    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    def get(self, tenant_id: str, scope: str, key: str) -> IdempotencyRecord | None:
        """The record for ``key``, if it was used before."""
        row = self._conn.execute(_GET, {"tenant_id": tenant_id, "scope": scope, "key": key}).first()
        return IdempotencyRecord(row.request_hash, row.resource_id) if row else None

    def add(self, tenant_id: str, scope: str, key: str, request_hash: str, resource_id: str, *,
            now: datetime) -> None:
        """Remember ``key``; a concurrent first use of the same key raises DuplicateKeyError
        (and the transaction stays usable)."""
        statement = insert_unless_duplicate(idempotency_keys, self._conn.dialect.name)
        try:
            inserted = self._conn.execute(statement, {
                "tenant_id": tenant_id, "scope": scope, "key": key, "request_hash": request_hash,
                "resource_id": resource_id, "created_at": now}).rowcount
        except IntegrityError as exc:  # not a duplicate (those are skipped): e.g. an unknown tenant
            raise DuplicateKeyError(f"Idempotency-Key {key!r} is being used by a concurrent request",
                                    entity="idempotency_key", key=key) from exc
        if inserted != 1:
            raise DuplicateKeyError(f"Idempotency-Key {key!r} is being used by a concurrent request",
                                    entity="idempotency_key", key=key)

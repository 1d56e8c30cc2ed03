"""Idempotency keys: remember which request body a key was first used with."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, insert, select
from sqlalchemy.exc import IntegrityError

from orderhub.adapters.db.errors import DuplicateKeyError
from orderhub.adapters.db.tables import idempotency_keys


@dataclass(frozen=True, slots=True)
class IdempotencyRecord:
    """A stored key: the hash of the first request and the resource it produced."""

    request_hash: str
    resource_id: str


class SqlIdempotencyRepository:
    """Idempotency keys per tenant and scope (e.g. ``orders.create``)."""

    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    def get(self, tenant_id: str, scope: str, key: str) -> IdempotencyRecord | None:
        """The record for ``key``, if it was used before."""
        row = self._conn.execute(select(idempotency_keys.c.request_hash, idempotency_keys.c.resource_id).where(
            idempotency_keys.c.tenant_id == tenant_id, idempotency_keys.c.scope == scope,
            idempotency_keys.c.key == key)).first()
        return IdempotencyRecord(row.request_hash, row.resource_id) if row else None

    def add(self, tenant_id: str, scope: str, key: str, request_hash: str, resource_id: str, *,
            now: datetime) -> None:
        """Remember ``key``; a concurrent first use of the same key raises DuplicateKeyError."""
        try:
            with self._conn.begin_nested():
                self._conn.execute(insert(idempotency_keys).values(
                    tenant_id=tenant_id, scope=scope, key=key, request_hash=request_hash,
                    resource_id=resource_id, created_at=now))
        except IntegrityError as exc:
            raise DuplicateKeyError(f"Idempotency-Key {key!r} is being used by a concurrent request",
                                    entity="idempotency_key", key=key) from exc

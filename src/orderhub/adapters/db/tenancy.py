"""Tenants and API keys. Keys are stored as SHA-256 hashes; the plain key is shown once."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, bindparam, insert, select

from orderhub.adapters.db.tables import api_keys, tenants
from orderhub.domain import ids
from orderhub.domain.access import Role
from orderhub.domain.audit import GENESIS_HASH

KEY_PREFIX = "ohk"
# Built once (every API request runs it): building a statement costs more CPU than
# SQLAlchemy's cached compile of it.
_FIND_KEY = select(api_keys).where(api_keys.c.key_hash == bindparam("key_hash"))


@dataclass(frozen=True, slots=True)
class Tenant:
    """A tenant row."""

    id: str
    name: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class ApiKeyRecord:
    """An API key as stored (no secret): who it belongs to and what it may do."""

    id: str
    tenant_id: str
    role: Role
    prefix: str
    revoked: bool


def hash_key(plain: str) -> str:
    """SHA-256 hex of a plain API key. Keys carry 160 random bits, so a fast hash is enough."""
    return hashlib.sha256(plain.encode("utf-8")).hexdigest()


def generate_key() -> tuple[str, str]:
    """Return ``(prefix, plain_key)``; the prefix identifies the key in listings and logs."""
    prefix = secrets.token_hex(4)
    return prefix, f"{KEY_PREFIX}_{prefix}_{secrets.token_urlsafe(20)}"


class SqlTenantRepository:
    """Tenants and their API keys on one connection."""

    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    def by_name(self, name: str) -> Tenant | None:
        """The tenant called ``name``, if any."""
        row = self._conn.execute(select(tenants.c.id, tenants.c.name, tenants.c.created_at)
                                 .where(tenants.c.name == name)).first()
        return Tenant(row.id, row.name, row.created_at) if row else None

    def get(self, tenant_id: str) -> Tenant | None:
        """The tenant with id ``tenant_id``, if any."""
        row = self._conn.execute(select(tenants.c.id, tenants.c.name, tenants.c.created_at)
                                 .where(tenants.c.id == tenant_id)).first()
        return Tenant(row.id, row.name, row.created_at) if row else None

    def list(self) -> list[Tenant]:
        """Every tenant, oldest first."""
        rows = self._conn.execute(select(tenants.c.id, tenants.c.name, tenants.c.created_at)
                                  .order_by(tenants.c.created_at, tenants.c.id)).all()
        return [Tenant(r.id, r.name, r.created_at) for r in rows]

    def add(self, name: str, *, now: datetime) -> Tenant:
        """Create a tenant with an empty audit chain."""
        tenant = Tenant(ids.new_id("ten"), name, now)
        self._conn.execute(insert(tenants).values(id=tenant.id, name=name, created_at=now,
                                                  audit_head_seq=0, audit_head_hash=GENESIS_HASH))
        return tenant

    def issue_key(self, tenant_id: str, role: Role, *, now: datetime, label: str | None = None) -> tuple[str, str]:
        """Store a new key's hash and return ``(key_id, plain_key)``; the plain key is not kept."""
        prefix, plain = generate_key()
        key_id = ids.new_id("key")
        self._conn.execute(insert(api_keys).values(id=key_id, tenant_id=tenant_id, prefix=prefix,
                                                   key_hash=hash_key(plain), role=role.value, label=label,
                                                   created_at=now))
        return key_id, plain

    def find_key(self, plain: str) -> ApiKeyRecord | None:
        """Look up a presented key by its hash (None when unknown)."""
        row = self._conn.execute(_FIND_KEY, {"key_hash": hash_key(plain)}).first()
        if row is None:
            return None
        # Compare again in constant time so the lookup itself leaks nothing through timing.
        if not secrets.compare_digest(row.key_hash, hash_key(plain)):
            return None  # pragma: no cover - equal by construction of the query
        return ApiKeyRecord(row.id, row.tenant_id, Role(row.role), row.prefix, row.revoked_at is not None)

"""Rule sets (DESIGN.md §4): every change is a new version; nothing is overwritten, so what
decided an order can always be looked up."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, func, insert, select
from sqlalchemy.exc import IntegrityError

from orderhub.adapters.db.errors import DuplicateKeyError
from orderhub.adapters.db.tables import rule_sets


class SqlRuleSetRepository:
    """Versioned rule sets of each tenant, on one connection."""

    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    def latest(self, tenant_id: str, kind: str) -> tuple[int, dict[str, Any]] | None:
        """``(version, body)`` of the tenant's newest rule set of ``kind``, or None if it never stored one."""
        row = self._conn.execute(
            select(rule_sets.c.version, rule_sets.c.body)
            .where(rule_sets.c.tenant_id == tenant_id, rule_sets.c.kind == kind)
            .order_by(rule_sets.c.version.desc()).limit(1)).first()
        if row is None:
            return None
        return int(row.version), dict(row.body)

    def add(self, tenant_id: str, kind: str, body: dict[str, Any], created_by: str, now: datetime) -> int:
        """Store ``body`` as the next version (latest + 1, starting at 1) and return it.

        Raises :class:`DuplicateKeyError` when a concurrent transaction stored that version first.
        """
        current = self._conn.execute(
            select(func.max(rule_sets.c.version))
            .where(rule_sets.c.tenant_id == tenant_id, rule_sets.c.kind == kind)).scalar()
        version = int(current or 0) + 1
        try:
            # A savepoint keeps the caller's transaction usable after a lost race on PostgreSQL.
            with self._conn.begin_nested():
                self._conn.execute(insert(rule_sets).values(
                    tenant_id=tenant_id, kind=kind, version=version, body=body, created_at=now,
                    created_by=created_by[:100]))
        except IntegrityError as exc:
            raise DuplicateKeyError(f"rule set {kind} version {version} was stored by a concurrent request",
                                    entity="rule_set", key=f"{kind}:{version}") from exc
        return version

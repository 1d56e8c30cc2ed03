"""What a unit of work writes when it commits, per tenant: audit entries linked to the
tenant's hash chain, the outbox rows for the tenant's webhook subscriptions, and the new
chain head.

It takes two statements per tenant, whatever the number of events: one locks the chain
head and reads the active webhook endpoints, one writes. On PostgreSQL the write is a
single statement (the inserts as data-modifying CTEs of the head UPDATE); on SQLite, where
statements cost no round trip, it is three.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from functools import cache
from typing import Any

from sqlalchemy import Connection, Executable, and_, bindparam, insert, select, update
from sqlalchemy.exc import NoResultFound

from orderhub.adapters.db.audit import entry_row
from orderhub.adapters.db.outbox import OutboxMessage, WebhookEndpoint, outbox_row
from orderhub.adapters.db.tables import audit_events, outbox, tenants, webhook_endpoints
from orderhub.domain.audit import AuditEntry

# Above this many audit entries or outbox rows in one commit, PostgreSQL takes the generic
# three-statement path too (a statement per shape is built and kept; bound their number).
MAX_SHAPE = 8

_ENDPOINT_COLUMNS = [c.label(f"endpoint_{c.name}") for c in webhook_endpoints.c]

# The head, locked FOR NO KEY UPDATE (see SqlAuditRepository.append for why not FOR UPDATE),
# with the tenant's active endpoints in subscription order: one row per endpoint, or one row
# of NULLs beside the head when there are none.
_LOCK = (select(tenants.c.audit_head_seq, tenants.c.audit_head_hash, *_ENDPOINT_COLUMNS)
         .select_from(tenants.outerjoin(webhook_endpoints, and_(webhook_endpoints.c.tenant_id == tenants.c.id,
                                                                webhook_endpoints.c.active.is_(True))))
         .where(tenants.c.id == bindparam("tenant_id"))
         .order_by(webhook_endpoints.c.created_at, webhook_endpoints.c.id)
         .with_for_update(key_share=True, of=tenants))

_MOVE_HEAD = (update(tenants).where(tenants.c.id == bindparam("tenant_id"))
              .values(audit_head_seq=bindparam("head_seq"), audit_head_hash=bindparam("head_hash")))
_INSERT_AUDIT = insert(audit_events)
_INSERT_OUTBOX = insert(outbox)
_AUDIT_COLUMNS = list(audit_events.c)
_OUTBOX_COLUMNS = [c for c in outbox.c if c.name != "id"]  # id: the sequence's next value


@cache
def _combined_write(n_entries: int, n_messages: int) -> Executable:
    """``WITH a AS (INSERT audit …), o AS (INSERT outbox …) UPDATE tenants …`` for PostgreSQL,
    with ``a{i}_{column}`` / ``o{j}_{column}`` parameters."""
    statement = _MOVE_HEAD
    if n_entries:
        statement = statement.add_cte(insert(audit_events).values([
            {c: bindparam(f"a{i}_{c.name}", type_=c.type) for c in _AUDIT_COLUMNS} for i in range(n_entries)
        ]).cte("new_audit_events"))
    if n_messages:
        statement = statement.add_cte(insert(outbox).values([
            {c: bindparam(f"o{j}_{c.name}", type_=c.type) for c in _OUTBOX_COLUMNS} for j in range(n_messages)
        ]).cte("new_outbox"))
    return statement


class SqlJournal:
    """The commit-time writes of one transaction, on its connection."""

    def __init__(self, conn: Connection) -> None:
        self._conn = conn
        self._combine = conn.dialect.name == "postgresql"

    def lock(self, tenant_id: str) -> tuple[int, str, list[WebhookEndpoint]]:
        """Lock the tenant's chain head until commit; return it with the active endpoints.

        Concurrent transactions of one tenant queue here, so they extend the chain one after
        the other. Raises NoResultFound for an unknown tenant.
        """
        rows = self._conn.execute(_LOCK, {"tenant_id": tenant_id}).all()
        if not rows:
            raise NoResultFound(f"no tenant {tenant_id!r} to append audit entries to")
        endpoints = [WebhookEndpoint(r.endpoint_id, r.endpoint_tenant_id, r.endpoint_url, r.endpoint_secret,
                                     tuple(r.endpoint_events), r.endpoint_active, r.endpoint_created_at)
                     for r in rows if r.endpoint_id is not None]
        return rows[0].audit_head_seq, rows[0].audit_head_hash, endpoints

    def write(self, tenant_id: str, entries: Sequence[tuple[AuditEntry, dict[str, Any]]],
              messages: Sequence[OutboxMessage], *, now: datetime) -> None:
        """Insert ``entries`` (linked after the locked head) and ``messages``, and move the
        head to the last entry."""
        if not entries:
            raise ValueError("nothing to write: the head moves only with new entries")
        last = entries[-1][0]
        audit_rows = [entry_row(entry, payload) for entry, payload in entries]
        outbox_rows = [outbox_row(m, now=now) for m in messages]
        head = {"tenant_id": tenant_id, "head_seq": last.seq, "head_hash": last.hash}
        if self._combine and len(audit_rows) <= MAX_SHAPE and len(outbox_rows) <= MAX_SHAPE:
            params = head
            for i, row in enumerate(audit_rows):
                params.update({f"a{i}_{name}": value for name, value in row.items()})
            for j, row in enumerate(outbox_rows):
                params.update({f"o{j}_{name}": value for name, value in row.items()})
            self._conn.execute(_combined_write(len(audit_rows), len(outbox_rows)), params)
            return
        self._conn.execute(_INSERT_AUDIT, audit_rows)
        if outbox_rows:
            self._conn.execute(_INSERT_OUTBOX, outbox_rows)
        self._conn.execute(_MOVE_HEAD, head)


"""The unit of work: one database transaction, the repositories bound to it, and the
only place that commits.

On commit it turns every domain event raised inside the transaction into an audit entry
(appended to the tenant's hash chain) and into outbox rows for subscribed webhook
endpoints, so state, timeline and outgoing messages are written together or not at all.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from types import TracebackType
from typing import Any, Self

from sqlalchemy import Connection, Engine

from orderhub.adapters.db.aftersale import SqlAfterSaleRepository
from orderhub.adapters.db.audit import SqlAuditRepository
from orderhub.adapters.db.channels import SqlChannelStateRepository, SqlInboxRepository, SqlShopRepository
from orderhub.adapters.db.engine import WRITE
from orderhub.adapters.db.fulfillment import SqlDeviceRepository, SqlShipmentRepository
from orderhub.adapters.db.idempotency import SqlIdempotencyRepository
from orderhub.adapters.db.inventory import SqlInventoryRepository
from orderhub.adapters.db.orders import SqlOrderRepository
from orderhub.adapters.db.outbox import OutboxMessage, SqlOutboxRepository
from orderhub.adapters.db.rules import SqlRuleSetRepository
from orderhub.adapters.db.tenancy import SqlTenantRepository
from orderhub.domain import ids
from orderhub.domain.audit import AuditRecord, digest
from orderhub.domain.commands import Actor
from orderhub.domain.events import Event
from orderhub.domain.time import Clock, isoformat

SYSTEM_ACTOR = Actor(tenant_id="", actor="system", source="system")


class SqlAlchemyUnitOfWork:
    """A write transaction on ``engine``; use as ``with uow: … uow.commit()``.

    Leaving the block without ``commit()`` (or with an exception) rolls everything back.
    """

    orders: SqlOrderRepository
    tenants: SqlTenantRepository
    idempotency: SqlIdempotencyRepository
    audit: SqlAuditRepository
    outbox: SqlOutboxRepository
    shops: SqlShopRepository
    inbox: SqlInboxRepository
    channel_state: SqlChannelStateRepository
    rules: SqlRuleSetRepository
    inventory: SqlInventoryRepository
    shipments: SqlShipmentRepository
    devices: SqlDeviceRepository
    aftersales: SqlAfterSaleRepository

    def __init__(self, engine: Engine, clock: Clock) -> None:
        self._engine = engine
        self.clock = clock
        self._conn: Connection | None = None
        self.actor: Actor = SYSTEM_ACTOR
        self._recorded: list[Event] = []
        self._published: list[Event] = []

    def __enter__(self) -> Self:
        self._conn = self._engine.connect().execution_options(**WRITE)
        self._conn.begin()
        self.tenants = SqlTenantRepository(self._conn)
        self.idempotency = SqlIdempotencyRepository(self._conn)
        self.audit = SqlAuditRepository(self._conn)
        # On PostgreSQL the order writes also lock the audit chain head (one round trip less).
        self.orders = SqlOrderRepository(self._conn, locked_heads=self.audit.locked_heads)
        self.outbox = SqlOutboxRepository(self._conn)
        self.shops = SqlShopRepository(self._conn)
        self.inbox = SqlInboxRepository(self._conn)
        self.channel_state = SqlChannelStateRepository(self._conn)
        self.rules = SqlRuleSetRepository(self._conn)
        self.inventory = SqlInventoryRepository(self._conn)
        self.shipments = SqlShipmentRepository(self._conn)
        self.devices = SqlDeviceRepository(self._conn)
        self.aftersales = SqlAfterSaleRepository(self._conn)
        self._recorded = []
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        conn, self._conn = self._conn, None
        if conn is None:
            return
        try:
            if conn.in_transaction():
                conn.rollback()
        finally:
            conn.close()

    @property
    def connection(self) -> Connection:
        """The open connection (for queries that must see this transaction's writes)."""
        if self._conn is None:
            raise RuntimeError("unit of work used outside its `with` block")
        return self._conn

    def act_as(self, actor: Actor) -> None:
        """Set who is acting; recorded on every audit entry written at commit."""
        self.actor = actor

    def record(self, event: Event) -> None:
        """Record an event that no aggregate carries (tenant created, key issued…)."""
        self._recorded.append(event)

    def commit(self) -> None:
        """Write audit entries and outbox rows for this transaction's events, then commit."""
        conn = self.connection
        self.orders.flush()
        events = self._pending_events()
        self._write_audit_and_outbox(events)
        conn.commit()
        self._published.extend(events)

    def rollback(self) -> None:
        """Discard everything written in this transaction."""
        self.connection.rollback()

    def collect_new_events(self) -> Iterator[Event]:
        """Events committed since the last call (for in-process event handlers)."""
        while self._published:
            yield self._published.pop(0)

    # ------------------------------------------------------------------ internals
    def _pending_events(self) -> list[Event]:
        events: list[Event] = []
        for order in self.orders.seen.values():
            events.extend(order.events)
            order.events.clear()
        for shipment in self.shipments.seen.values():
            events.extend(shipment.events)
            shipment.events.clear()
        for case in self.aftersales.seen.values():
            events.extend(case.events)
            case.events.clear()
        events.extend(self._recorded)
        self._recorded = []
        return events

    def _write_audit_and_outbox(self, events: list[Event]) -> None:
        if not events:
            return
        now = self.clock.now()
        by_tenant: dict[str, list[Event]] = defaultdict(list)
        for event in events:
            by_tenant[event.tenant_id].append(event)
        # Tenants in a fixed order so two multi-tenant transactions can't lock heads crosswise.
        for tenant_id in sorted(by_tenant):
            # The head stays locked until commit; the subscriptions come with it (one query),
            # unless a combined statement already locked it and this transaction left them as
            # they were.
            head = self.audit.locked_heads.get(tenant_id)
            if head is None or tenant_id in self.outbox.endpoints_changed:
                head = self.audit.lock_head(tenant_id)
            records: list[tuple[AuditRecord, dict[str, Any]]] = []
            messages: list[OutboxMessage] = []
            for event in by_tenant[tenant_id]:
                payload = event.payload()
                subject_type, subject_id = event.subject
                from_status, to_status = event.statuses()
                record = AuditRecord(
                    id=ids.new_id("aud"), tenant_id=tenant_id, subject_type=subject_type,
                    subject_id=subject_id, action=event.audit_action(), actor=self.actor.actor,
                    source=self.actor.source, trace_id=self.actor.trace_id, from_status=from_status,
                    to_status=to_status, reason=event.reason_text(), payload_digest=digest(payload),
                    occurred_at=now)
                records.append((record, payload))
                for subscription in head.subscriptions:
                    if subscription.wants(record.action):
                        message_id = ids.new_id("msg")
                        messages.append(OutboxMessage(
                            tenant_id=tenant_id, kind="webhook", target=subscription.endpoint_id,
                            topic=record.action,
                            message_id=message_id,
                            payload={"id": message_id, "type": record.action, "tenant": tenant_id,
                                     "subject": {"type": subject_type, "id": subject_id},
                                     "occurred_at": isoformat(now), "audit_id": record.id, "data": payload}))
            self.audit.append(tenant_id, records, head=(head.seq, head.hash), messages=messages, now=now)


class UnitOfWorkFactory:
    """Makes a fresh unit of work per command (units of work are not shared across threads)."""

    def __init__(self, engine: Engine, clock: Clock) -> None:
        self.engine = engine
        self.clock = clock

    def __call__(self) -> SqlAlchemyUnitOfWork:
        return SqlAlchemyUnitOfWork(self.engine, self.clock)

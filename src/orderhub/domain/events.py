"""Domain events: facts, named in the past tense, frozen.

The unit of work collects them from aggregates after a handler runs and turns each one
into an audit entry (and, where subscribed, an outbox row) inside the same transaction.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


@dataclass(frozen=True, slots=True)
class Event(ABC):
    """Base of all domain events."""

    tenant_id: str

    @abstractmethod
    def audit_action(self) -> str:
        """The timeline ``action`` name for this event."""

    @abstractmethod
    def payload(self) -> dict[str, Any]:
        """A JSON-safe description of the event for audit digests and webhooks."""

    @property
    @abstractmethod
    def subject(self) -> tuple[str, str]:
        """``(subject_type, subject_id)``: what the event is about."""

    def statuses(self) -> tuple[str | None, str | None]:
        """``(from_status, to_status)`` for the timeline; None where no status is involved."""
        return (None, None)

    def reason_text(self) -> str | None:
        """Why it happened, when known."""
        return None


@dataclass(frozen=True, slots=True)
class OrderCreated(Event):
    """An order entered OrderHub for the first time."""

    order_id: str
    channel: str
    shop: str
    external_id: str
    status: str
    total_minor: int
    currency: str
    occurred_at: datetime
    snapshot: dict[str, Any] = field(default_factory=dict, compare=False)

    @property
    def subject(self) -> tuple[str, str]:
        return ("order", self.order_id)

    def audit_action(self) -> str:
        return "order.created"

    def statuses(self) -> tuple[str | None, str | None]:
        return (None, self.status)

    def payload(self) -> dict[str, Any]:
        return {"order": self.snapshot}


@dataclass(frozen=True, slots=True)
class OrderEventApplied(Event):
    """An order event changed the order (its status, or its payment while held)."""

    order_id: str
    event_type: str
    from_status: str
    to_status: str
    reason: str | None
    event_key: str | None
    occurred_at: datetime
    version: int

    @property
    def subject(self) -> tuple[str, str]:
        return ("order", self.order_id)

    def audit_action(self) -> str:
        return f"order.{self.event_type}"

    def statuses(self) -> tuple[str | None, str | None]:
        return (self.from_status, self.to_status)

    def reason_text(self) -> str | None:
        return self.reason

    def payload(self) -> dict[str, Any]:
        return {"event_type": self.event_type, "event_key": self.event_key, "version": self.version,
                "occurred_at": self.occurred_at.isoformat()}


@dataclass(frozen=True, slots=True)
class OrderEventIgnoredStale(Event):
    """An order event arrived after the order had already moved past it; it was not applied
    and counts as a conflict for its source channel."""

    order_id: str
    channel: str
    event_type: str
    current_status: str
    requested_status: str
    event_key: str | None
    occurred_at: datetime
    conflict_count: int

    @property
    def subject(self) -> tuple[str, str]:
        return ("order", self.order_id)

    def audit_action(self) -> str:
        return "order.event_ignored_stale"

    def statuses(self) -> tuple[str | None, str | None]:
        return (self.current_status, self.requested_status)

    def reason_text(self) -> str | None:
        return (f"stale {self.event_type}: the order is already {self.current_status}; "
                "not applied, counted as a conflict")

    def payload(self) -> dict[str, Any]:
        return {"event_type": self.event_type, "requested_status": self.requested_status,
                "event_key": self.event_key, "conflict_count": self.conflict_count,
                "occurred_at": self.occurred_at.isoformat()}


@dataclass(frozen=True, slots=True)
class TenantCreated(Event):
    """A tenant was created."""

    name: str
    occurred_at: datetime

    @property
    def subject(self) -> tuple[str, str]:
        return ("tenant", self.tenant_id)

    def audit_action(self) -> str:
        return "tenant.created"

    def payload(self) -> dict[str, Any]:
        return {"name": self.name}


@dataclass(frozen=True, slots=True)
class ApiKeyIssued(Event):
    """An API key was issued (its secret is never part of the event)."""

    key_id: str
    role: str
    label: str | None
    occurred_at: datetime

    @property
    def subject(self) -> tuple[str, str]:
        return ("api_key", self.key_id)

    def audit_action(self) -> str:
        return "api_key.issued"

    def payload(self) -> dict[str, Any]:
        return {"role": self.role, "label": self.label}


@dataclass(frozen=True, slots=True)
class WebhookEndpointRegistered(Event):
    """A webhook endpoint was subscribed to the tenant's events."""

    endpoint_id: str
    url: str
    events: tuple[str, ...]
    occurred_at: datetime

    @property
    def subject(self) -> tuple[str, str]:
        return ("webhook_endpoint", self.endpoint_id)

    def audit_action(self) -> str:
        return "webhook_endpoint.registered"

    def payload(self) -> dict[str, Any]:
        return {"url": self.url, "events": list(self.events)}


@dataclass(frozen=True, slots=True)
class DeadMessagesRequeued(Event):
    """An operator gave the tenant's dead-lettered outbox messages a fresh set of attempts."""

    count: int
    occurred_at: datetime

    @property
    def subject(self) -> tuple[str, str]:
        return ("outbox", self.tenant_id)

    def audit_action(self) -> str:
        return "outbox.dead_requeued"

    def payload(self) -> dict[str, Any]:
        return {"count": self.count}


# --------------------------------------------------------------------------- channel gateway
@dataclass(frozen=True, slots=True)
class ShopRegistered(Event):
    """A shop on a sales channel was registered (its secret is never part of the event)."""

    shop_id: str
    code: str
    channel: str
    name: str
    occurred_at: datetime

    @property
    def subject(self) -> tuple[str, str]:
        return ("shop", self.shop_id)

    def audit_action(self) -> str:
        return "shop.registered"

    def payload(self) -> dict[str, Any]:
        return {"code": self.code, "channel": self.channel, "name": self.name}


@dataclass(frozen=True, slots=True)
class InboxReplayed(Event):
    """An operator sent dead-lettered or parked inbox messages through the normalizer again."""

    count: int
    states: tuple[str, ...]
    channel: str | None
    occurred_at: datetime

    @property
    def subject(self) -> tuple[str, str]:
        return ("inbox", self.channel or "*")

    def audit_action(self) -> str:
        return "inbox.replayed"

    def payload(self) -> dict[str, Any]:
        return {"count": self.count, "states": list(self.states), "channel": self.channel}


@dataclass(frozen=True, slots=True)
class ChannelBreakerOpened(Event):
    """Too many status conflicts from a channel: its new messages are parked until resumed."""

    channel: str
    reason: str
    occurred_at: datetime

    @property
    def subject(self) -> tuple[str, str]:
        return ("channel", self.channel)

    def audit_action(self) -> str:
        return "channel.breaker_opened"

    def statuses(self) -> tuple[str | None, str | None]:
        return ("closed", "open")

    def reason_text(self) -> str | None:
        return self.reason

    def payload(self) -> dict[str, Any]:
        return {"channel": self.channel, "reason": self.reason}


@dataclass(frozen=True, slots=True)
class ChannelResumed(Event):
    """An operator closed a channel's breaker; its parked messages are processed again."""

    channel: str
    requeued: int
    occurred_at: datetime

    @property
    def subject(self) -> tuple[str, str]:
        return ("channel", self.channel)

    def audit_action(self) -> str:
        return "channel.resumed"

    def statuses(self) -> tuple[str | None, str | None]:
        return ("open", "closed")

    def payload(self) -> dict[str, Any]:
        return {"channel": self.channel, "requeued": self.requeued}


@dataclass(frozen=True, slots=True)
class RuleSetUpdated(Event):
    """A new version of a tenant rule set (filters, policy…) was stored."""

    kind: str
    version: int
    occurred_at: datetime
    body: dict[str, Any] = field(default_factory=dict, compare=False)

    @property
    def subject(self) -> tuple[str, str]:
        return ("rule_set", self.kind)

    def audit_action(self) -> str:
        return "rule_set.updated"

    def payload(self) -> dict[str, Any]:
        return {"kind": self.kind, "version": self.version, "body": self.body}


# --------------------------------------------------------------------------- inventory
@dataclass(frozen=True, slots=True)
class OrderAllocated(Event):
    """Stock was allocated (and reserved) for an order, or could not be: the plan, with every
    candidate warehouse's score, is the payload."""

    order_id: str
    reserved: bool
    plan: dict[str, Any]
    occurred_at: datetime

    @property
    def subject(self) -> tuple[str, str]:
        return ("order", self.order_id)

    def audit_action(self) -> str:
        return "order.allocated" if self.reserved else "order.allocation_failed"

    def payload(self) -> dict[str, Any]:
        return {"reserved": self.reserved, "plan": self.plan}


@dataclass(frozen=True, slots=True)
class ReservationsClosed(Event):
    """An order's reservations gave their stock back (released, expired) or left with it (consumed)."""

    order_id: str
    status: str
    items: tuple[dict[str, Any], ...]
    occurred_at: datetime

    @property
    def subject(self) -> tuple[str, str]:
        return ("order", self.order_id)

    def audit_action(self) -> str:
        return f"reservations.{self.status}"

    def payload(self) -> dict[str, Any]:
        return {"status": self.status, "items": list(self.items)}


@dataclass(frozen=True, slots=True)
class StockChanged(Event):
    """An operator set or adjusted a stock row (receipt, count, damage, correction, repair)."""

    warehouse: str
    sku: str
    kind: str
    on_hand_before: int | None
    on_hand_after: int
    safety_stock: int
    reason: str | None
    occurred_at: datetime

    @property
    def subject(self) -> tuple[str, str]:
        return ("stock", f"{self.warehouse}/{self.sku}")

    def audit_action(self) -> str:
        return f"stock.{self.kind}"

    def reason_text(self) -> str | None:
        return self.reason

    def payload(self) -> dict[str, Any]:
        return {"warehouse": self.warehouse, "sku": self.sku, "kind": self.kind, "on_hand_before": self.on_hand_before,
                "on_hand_after": self.on_hand_after, "safety_stock": self.safety_stock}


@dataclass(frozen=True, slots=True)
class WarehouseCreated(Event):
    """A warehouse was added."""

    warehouse_id: str
    code: str
    name: str
    occurred_at: datetime

    @property
    def subject(self) -> tuple[str, str]:
        return ("warehouse", self.warehouse_id)

    def audit_action(self) -> str:
        return "warehouse.created"

    def payload(self) -> dict[str, Any]:
        return {"code": self.code, "name": self.name}


# --------------------------------------------------------------------------- fulfillment
# Shipment events carry ``order_id`` so the order's timeline can show its shipments' steps.
@dataclass(frozen=True, slots=True)
class ShipmentCreated(Event):
    """A shipment was created for (part of) an order, with its lines and routing."""

    shipment_id: str
    order_id: str
    warehouse: str
    carrier: str | None
    service: str | None
    routing_rule: str | None
    wave: str | None
    priority: int
    expected_weight_g: int
    lines: tuple[dict[str, Any], ...]
    occurred_at: datetime

    @property
    def subject(self) -> tuple[str, str]:
        return ("shipment", self.shipment_id)

    def audit_action(self) -> str:
        return "shipment.created"

    def statuses(self) -> tuple[str | None, str | None]:
        return (None, "created")

    def payload(self) -> dict[str, Any]:
        return {"order_id": self.order_id, "warehouse": self.warehouse, "carrier": self.carrier,
                "service": self.service, "routing_rule": self.routing_rule, "wave": self.wave,
                "priority": self.priority, "expected_weight_g": self.expected_weight_g, "lines": list(self.lines)}


@dataclass(frozen=True, slots=True)
class WaybillIssued(Event):
    """The carrier issued a waybill (tracking) number for a shipment."""

    shipment_id: str
    order_id: str
    waybill_no: str
    carrier: str | None
    from_status: str
    to_status: str
    occurred_at: datetime

    @property
    def subject(self) -> tuple[str, str]:
        return ("shipment", self.shipment_id)

    def audit_action(self) -> str:
        return "shipment.waybill_issued"

    def statuses(self) -> tuple[str | None, str | None]:
        return (self.from_status, self.to_status)

    def payload(self) -> dict[str, Any]:
        return {"order_id": self.order_id, "waybill_no": self.waybill_no, "carrier": self.carrier}


@dataclass(frozen=True, slots=True)
class ShipmentScanned(Event):
    """A warehouse scan (pick, verify, pack, weigh, handover) was accepted. ``from_status`` /
    ``to_status`` are set only when the scan changed the shipment's status."""

    shipment_id: str
    order_id: str
    scan_id: str
    step: str
    operator: str
    device_id: str | None
    barcode: str | None
    quantity: int
    weight_g: int | None
    flags: tuple[str, ...]
    line_no: int | None
    from_status: str | None
    to_status: str | None
    version: int
    occurred_at: datetime

    @property
    def subject(self) -> tuple[str, str]:
        return ("shipment", self.shipment_id)

    def audit_action(self) -> str:
        return "shipment.scanned"

    def statuses(self) -> tuple[str | None, str | None]:
        return (self.from_status, self.to_status)

    def payload(self) -> dict[str, Any]:
        return {"order_id": self.order_id, "scan_id": self.scan_id, "step": self.step, "operator": self.operator,
                "device_id": self.device_id, "barcode": self.barcode, "quantity": self.quantity,
                "weight_g": self.weight_g, "flags": list(self.flags), "line_no": self.line_no,
                "version": self.version, "occurred_at": self.occurred_at.isoformat()}


@dataclass(frozen=True, slots=True)
class TrackingUpdated(Event):
    """A carrier tracking event was applied to a shipment, or recorded without effect
    (``outcome`` stale or ignored). ``implicit_handover`` is set when the carrier reported the
    parcel before the warehouse's handover scan arrived and the shipment was taken as handed over."""

    shipment_id: str
    order_id: str
    waybill_no: str | None
    code: str
    milestone: str
    sub_status: str
    outcome: str
    from_status: str | None
    to_status: str | None
    implicit_handover: bool
    description: str
    occurred_at: datetime

    @property
    def subject(self) -> tuple[str, str]:
        return ("shipment", self.shipment_id)

    def audit_action(self) -> str:
        return "shipment.tracking_updated"

    def statuses(self) -> tuple[str | None, str | None]:
        return (self.from_status, self.to_status)

    def reason_text(self) -> str | None:
        if self.outcome == "stale":
            return f"carrier event {self.code} is older than the newest one applied; recorded, not applied"
        if self.outcome == "ignored":
            return f"carrier event {self.code} arrived after the shipment was closed; recorded, not applied"
        if self.implicit_handover:
            return "the carrier reported the parcel before the handover scan arrived: taken as handed over"
        return None

    def payload(self) -> dict[str, Any]:
        return {"order_id": self.order_id, "waybill_no": self.waybill_no, "code": self.code,
                "milestone": self.milestone, "sub_status": self.sub_status, "outcome": self.outcome,
                "implicit_handover": self.implicit_handover, "description": self.description,
                "occurred_at": self.occurred_at.isoformat()}


@dataclass(frozen=True, slots=True)
class ShipmentStalled(Event):
    """A shipment made no progress for longer than its stall policy allows; ``level`` 3 also
    flags it for compensation."""

    shipment_id: str
    order_id: str
    level: int
    milestone: str | None
    since: datetime
    compensation: bool
    occurred_at: datetime

    @property
    def subject(self) -> tuple[str, str]:
        return ("shipment", self.shipment_id)

    def audit_action(self) -> str:
        return "shipment.stalled"

    def reason_text(self) -> str | None:
        return f"no progress since {self.since.isoformat()} (milestone {self.milestone or 'none'})"

    def payload(self) -> dict[str, Any]:
        return {"order_id": self.order_id, "level": self.level, "milestone": self.milestone,
                "since": self.since.isoformat(), "compensation": self.compensation}


@dataclass(frozen=True, slots=True)
class ShipmentCancelled(Event):
    """A shipment was cancelled before it left the warehouse."""

    shipment_id: str
    order_id: str
    from_status: str
    reason: str
    occurred_at: datetime

    @property
    def subject(self) -> tuple[str, str]:
        return ("shipment", self.shipment_id)

    def audit_action(self) -> str:
        return "shipment.cancelled"

    def statuses(self) -> tuple[str | None, str | None]:
        return (self.from_status, "cancelled")

    def reason_text(self) -> str | None:
        return self.reason

    def payload(self) -> dict[str, Any]:
        return {"order_id": self.order_id, "reason": self.reason}


@dataclass(frozen=True, slots=True)
class OperatorLocked(Event):
    """An operator's account was locked: it was used from too many devices within the
    account-lock window (a shared or leaked login)."""

    operator: str
    devices: tuple[str, ...]
    window_minutes: int
    occurred_at: datetime

    @property
    def subject(self) -> tuple[str, str]:
        return ("operator", self.operator)

    def audit_action(self) -> str:
        return "operator.locked"

    def statuses(self) -> tuple[str | None, str | None]:
        return ("active", "locked")

    def reason_text(self) -> str | None:
        return f"seen on {len(self.devices)} devices within {self.window_minutes} minutes"

    def payload(self) -> dict[str, Any]:
        return {"operator": self.operator, "devices": list(self.devices), "window_minutes": self.window_minutes}

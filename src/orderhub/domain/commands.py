"""Commands: imperative requests to the service layer, frozen. Exactly one handler each."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from orderhub.domain.access import Role


@dataclass(frozen=True, slots=True)
class Actor:
    """Who is acting and through what: recorded on every audit entry."""

    tenant_id: str
    actor: str          # e.g. "key:kid_…", "cli", "worker:outbox"
    source: str         # e.g. "api", "cli", "channel:shopify"
    trace_id: str | None = None
    role: Role = Role.ADMIN


@dataclass(frozen=True, slots=True)
class LineInput:
    """One order line as given: money as decimal strings in the order's currency."""

    sku: str
    quantity: int
    unit_price: str
    title: str | None = None
    discount: str = "0"
    tax: str = "0"


@dataclass(frozen=True, slots=True)
class CreateOrder:
    """Store a canonical order (own site / API). ``idempotency_key`` + ``request_hash`` make
    retries safe."""

    actor: Actor
    channel: str
    shop: str
    external_id: str
    currency: str
    status: str
    placed_at: datetime
    lines: tuple[LineInput, ...]
    paid_at: datetime | None = None
    buyer: dict[str, str | None] = field(default_factory=dict)
    shipping_address: dict[str, str | None] | None = None
    shipping_fee: str = "0"
    discount: str = "0"
    tags: tuple[str, ...] = ()
    idempotency_key: str | None = None
    request_hash: str | None = None


@dataclass(frozen=True, slots=True)
class ApplyOrderEvent:
    """Apply a status event (cancel, hold, release, mark_paid…) to an order."""

    actor: Actor
    order_id: str
    type: str
    reason: str | None = None
    key: str | None = None
    occurred_at: datetime | None = None
    expected_version: int | None = None


@dataclass(frozen=True, slots=True)
class CreateTenant:
    """Create a tenant (or reuse an existing one of that name) and issue an admin key."""

    name: str


@dataclass(frozen=True, slots=True)
class CreateApiKey:
    """Issue an API key with ``role`` for the tenant named ``tenant``."""

    tenant: str
    role: str
    label: str | None = None


@dataclass(frozen=True, slots=True)
class RegisterWebhookEndpoint:
    """Subscribe an HTTP endpoint to a tenant's domain events (delivered via the outbox)."""

    actor: Actor
    url: str
    secret: str
    events: tuple[str, ...] = ("*",)


@dataclass(frozen=True, slots=True)
class RequeueDeadMessages:
    """Give dead-lettered outbox messages of the actor's tenant a fresh set of attempts."""

    actor: Actor


# --------------------------------------------------------------------------- channel gateway
@dataclass(frozen=True, slots=True)
class RegisterShop:
    """Register a shop on a sales channel; its ``secret`` authenticates the channel's pushes."""

    actor: Actor
    code: str
    channel: str
    name: str
    secret: str
    timezone: str | None = None
    settings: dict[str, object] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ReceiveChannelMessage:
    """Store one channel message (webhook push, polled or backfilled order, imported row) in
    the inbox, exactly once per dedup key.

    ``verify`` is True for webhook pushes: the channel's signature is checked on ``body``,
    the raw bytes as received. Polls, backfills and imports come from OrderHub itself.
    """

    channel: str
    shop_code: str
    source: str                       # webhook | poll | backfill | import
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)
    url: str | None = None            # the full URL the push was sent to (Shopee signs it)
    verify: bool = True
    tenant_id: str | None = None      # when known (poll, import): the shop must belong to it


@dataclass(frozen=True, slots=True)
class ReplayInbox:
    """Send inbox messages in ``statuses`` (dead-lettered or parked) through the normalizer
    again, e.g. after their channel's mapping was fixed."""

    actor: Actor
    statuses: tuple[str, ...] = ("dead",)
    channel: str | None = None


@dataclass(frozen=True, slots=True)
class ResumeChannel:
    """Close a channel's circuit breaker: parked messages are processed again."""

    actor: Actor
    channel: str


@dataclass(frozen=True, slots=True)
class PutRuleSet:
    """Store a new version of the tenant's rule set of ``kind`` (e.g. ``order_filters``)."""

    actor: Actor
    kind: str
    body: dict[str, object]


# --------------------------------------------------------------------------- inventory
@dataclass(frozen=True, slots=True)
class CreateWarehouse:
    """Add a warehouse. Coordinates, on-time rate and handling cost are decimal text as given
    (``"30.2741"``, ``"0.97"``, ``"3.50"`` CNY); the handler converts them exactly."""

    actor: Actor
    code: str
    name: str
    province: str | None = None
    city: str | None = None
    lat: str | None = None
    lon: str | None = None
    on_time_rate: str | None = None
    handling_cost: str | None = None


@dataclass(frozen=True, slots=True)
class SetStock:
    """Set a stock row's on_hand (and safety stock), creating the row if it is new; the
    difference is recorded as a ``count`` movement."""

    actor: Actor
    warehouse: str                    # the warehouse's code
    sku: str
    on_hand: int
    safety_stock: int | None = None
    expected_version: int | None = None
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class AdjustStock:
    """Post an adjustment to a stock row: ``receipt`` (``quantity`` units arrived),
    ``damage`` (``quantity`` units lost), ``correction`` (``quantity`` is a signed delta) or
    ``count`` (``quantity`` is the counted figure)."""

    actor: Actor
    warehouse: str                    # the warehouse's code
    sku: str
    kind: str
    quantity: int
    reason: str
    expected_version: int | None = None


# --------------------------------------------------------------------------- fulfillment
@dataclass(frozen=True, slots=True)
class AddCarrierAccount:
    """Connect the tenant to a carrier (or replace its connection): where its API is, the
    key OrderHub calls it with and the secret its tracking pushes are signed with."""

    actor: Actor
    carrier: str
    api_base_url: str
    api_key: str
    push_secret: str
    protocol: str = "simulated"


@dataclass(frozen=True, slots=True)
class PlanFulfilment:
    """Give paid, released orders their shipments: one per warehouse their stock is
    reserved in, with a carrier and wave chosen by the routing rules (a timer's work)."""

    limit: int = 50


@dataclass(frozen=True, slots=True)
class RecordWaybill:
    """Store the waybill a carrier issued for a shipment (the carrier relay's result)."""

    tenant_id: str
    shipment_id: str
    waybill_no: str


@dataclass(frozen=True, slots=True)
class ScanInput:
    """One warehouse scan as a handheld sent it (validated by the handler)."""

    scan_id: str
    step: str
    operator: str
    occurred_at: datetime | None = None
    barcode: str | None = None
    quantity: int = 1
    weight_g: int | None = None


@dataclass(frozen=True, slots=True)
class RecordScan:
    """Apply one online scan to a shipment (``POST /shipments/{id}/scans``)."""

    actor: Actor
    shipment_id: str
    scan: ScanInput
    device_id: str | None = None
    expected_version: int | None = None


@dataclass(frozen=True, slots=True)
class SyncItemInput:
    """One item of an offline device's batch: a scan and the shipment version it saw. Fields
    are raw (the item may be malformed: it is answered per item, never fails the batch)."""

    index: int
    raw: dict[str, object]


@dataclass(frozen=True, slots=True)
class SyncDevice:
    """Apply a batch of scans recorded offline on ``device_id``, in order, item by item."""

    actor: Actor
    device_id: str
    items: tuple[SyncItemInput, ...]


@dataclass(frozen=True, slots=True)
class DeviceHeartbeat:
    """A handheld says it is alive (and who is signed in on it)."""

    actor: Actor
    device_id: str
    operator: str | None = None
    app_version: str | None = None


@dataclass(frozen=True, slots=True)
class UnlockOperator:
    """Give a locked warehouse account its write access back."""

    actor: Actor
    operator: str


@dataclass(frozen=True, slots=True)
class CarrierEventInput:
    """One carrier event as parsed from a push or a poll (raw code, UTC time)."""

    waybill_no: str
    code: str
    description: str
    occurred_at: datetime
    location: str | None = None
    raw: dict[str, object] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ReceiveTrackingEvents:
    """Normalize and apply carrier events. ``verify`` (push only) checks the push's signature
    with each involved tenant's account secret before anything is stored."""

    carrier: str
    events: tuple[CarrierEventInput, ...]
    source: str = "push"
    verify: object | None = None      # Callable[[str], bool]: secret -> signature ok
    tenant_id: str | None = None      # polls know the tenant; pushes don't


@dataclass(frozen=True, slots=True)
class ReplayUnknownTracking:
    """Apply stored events whose code was unknown, now that the tenant's overrides changed."""

    tenant_id: str
    carrier: str | None = None


@dataclass(frozen=True, slots=True)
class CheckStalls:
    """Raise stall levels of parcels that stopped moving (a timer's work)."""

    limit: int = 200


@dataclass(frozen=True, slots=True)
class CompleteDelivered:
    """Complete delivered orders whose after-sale window has passed (a timer's work)."""

    limit: int = 200


# --------------------------------------------------------------------------- after-sale
@dataclass(frozen=True, slots=True)
class AfterSaleLineInput:
    """A line of an after-sale request: an order line (``line_no``) or a SKU on the order,
    a quantity and optionally an amount (decimal text in the order's currency)."""

    quantity: int
    line_no: int | None = None
    sku: str | None = None
    amount: str | None = None


@dataclass(frozen=True, slots=True)
class RequestAfterSale:
    """Open an after-sale case on an order through the API; the refund policy decides it.
    ``idempotency_key`` + ``request_hash`` make retries safe (one case per key)."""

    actor: Actor
    order_id: str
    type: str
    reason: str
    amount: str | None = None
    lines: tuple[AfterSaleLineInput, ...] = ()
    note: str | None = None
    idempotency_key: str | None = None
    request_hash: str | None = None


@dataclass(frozen=True, slots=True)
class ActOnAfterSale:
    """Take an action on a case: approve, reject, negotiate, choose, cancel, assign,
    return_shipped, receive_return or retry_refund (``params`` carries the action's fields,
    e.g. ``{"reason": …}``, ``{"option": "half"}``, ``{"received": [...], "warehouse": "HZ1"}``)."""

    actor: Actor
    case_id: str
    action: str
    params: dict[str, object] = field(default_factory=dict)
    expected_version: int | None = None


@dataclass(frozen=True, slots=True)
class ConfirmRefund:
    """Record that the channel or payment provider executed a case's refund (``ref`` is
    its refund id); repeated confirmations change nothing."""

    tenant_id: str
    case_id: str
    ref: str
    amount: int
    via: str = "gateway"


@dataclass(frozen=True, slots=True)
class CheckAfterSaleSla:
    """Raise the SLA level (and the alert) of open cases whose next level is due."""

    limit: int = 500

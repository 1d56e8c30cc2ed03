"""Request and response shapes of the HTTP API (Pydantic v2). Money goes in as decimal
strings in the order's currency and comes out as ``{"amount": <minor units>, "currency": …}``."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints

from orderhub.domain.orders.model import ApplyOutcome
from orderhub.domain.orders.states import OrderEventType, OrderStatus


def clean_text(value: str) -> str:
    """Refuse text no database should store: NUL characters (PostgreSQL can't) and lone
    surrogates (not encodable as UTF-8). Used for every string the API takes in."""
    if "\x00" in value:
        raise ValueError("must not contain NUL (\\u0000) characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ValueError("must be valid Unicode text (it contains a lone surrogate)") from exc
    return value


Clean = AfterValidator(clean_text)
Text = Annotated[str, StringConstraints(max_length=200), Clean]
LongText = Annotated[str, StringConstraints(max_length=500), Clean]
MoneyText = Annotated[str, Field(strict=True, min_length=1, max_length=40, examples=["59.90"],
                                 description="decimal string in major units of the order's currency"), Clean]
NonBlank = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200), Clean]
EventKey = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=150), Clean]


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class BuyerIn(_In):
    """Who bought; phone and e-mail are kept as given (masked values are fine)."""

    name: Text | None = None
    phone: Text | None = None
    email: Text | None = None


class AddressIn(_In):
    """Shipping address; Chinese addresses fill province / city / district."""

    country: Annotated[str, StringConstraints(min_length=2, max_length=2, to_upper=True), Clean]
    province: Text | None = None
    city: Text | None = None
    district: Text | None = None
    detail: LongText | None = None
    postcode: Text | None = None
    name: Text | None = None
    phone: Text | None = None


class LineIn(_In):
    """One order line."""

    sku: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100), Clean]
    title: LongText | None = None
    quantity: Annotated[int, Field(strict=True, gt=0, le=1_000_000)]
    unit_price: MoneyText
    discount: MoneyText = "0"
    tax: MoneyText = "0"


class OrderIn(_In):
    """A canonical order (own site / API integrations). See DESIGN.md §8."""

    external_id: NonBlank
    channel: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=40), Clean] = "own_site"
    shop: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100), Clean] = "main"
    currency: Annotated[str, StringConstraints(min_length=1, max_length=8), Clean]
    status: OrderStatus = OrderStatus.PENDING_PAYMENT
    placed_at: AwareDatetime
    paid_at: AwareDatetime | None = None
    buyer: BuyerIn = Field(default_factory=BuyerIn)
    shipping_address: AddressIn | None = None
    lines: Annotated[list[LineIn], Field(min_length=1, max_length=500)]
    shipping_fee: MoneyText = "0"
    discount: MoneyText = "0"
    tags: Annotated[list[Annotated[str, StringConstraints(min_length=1, max_length=40), Clean]],
                    Field(max_length=50)] = []


class OrderEventIn(_In):
    """An order event: ``{"type": "cancel", "reason": "buyer request"}``."""

    type: OrderEventType
    reason: LongText | None = None
    key: EventKey | None = Field(default=None, description="dedup key; the same key applied twice changes nothing "
                                                           "(defaults to the Idempotency-Key header)")
    occurred_at: AwareDatetime | None = None
    expected_version: Annotated[int, Field(strict=True, ge=1)] | None = None


class MoneyOut(BaseModel):
    """An exact amount: integer minor units and its ISO 4217 currency."""

    amount: int
    currency: str


class LineOut(BaseModel):
    """An order line as stored."""

    line_no: int
    sku: str
    title: str | None
    quantity: int
    unit_price: MoneyOut
    discount: MoneyOut
    tax: MoneyOut
    total: MoneyOut


class OrderOut(BaseModel):
    """A canonical order."""

    id: str
    tenant: str
    channel: str
    shop: str
    external_id: str
    status: OrderStatus
    payment_status: str
    currency: str
    subtotal: MoneyOut
    shipping_fee: MoneyOut
    discount: MoneyOut
    total: MoneyOut
    lines: list[LineOut]
    buyer: dict[str, Any]
    shipping_address: dict[str, Any] | None
    tags: list[str]
    channel_status: str | None
    placed_at: str
    paid_at: str | None
    shipped_at: str | None
    delivered_at: str | None
    cancelled_at: str | None
    completed_at: str | None
    created_at: str
    updated_at: str
    version: int
    hold_reason: str | None
    held_from: str | None
    cancel_reason: str | None
    conflict_count: int
    raw_ref: str | None = Field(default=None,
                                description="inbox message the order came from: GET /api/v1/inbox/{raw_ref}")
    shipments: list[dict[str, Any]] = []
    aftersales: list[dict[str, Any]] = []
    reservations: list[dict[str, Any]] = []
    allocation: dict[str, Any] | None = Field(default=None, description="the chosen warehouses per line and "
                                                                        "every candidate's score")


class OrderPage(BaseModel):
    """A page of orders; pass ``next_cursor`` as ``cursor`` for the next page."""

    items: list[OrderOut]
    next_cursor: str | None


class OrderEventOut(BaseModel):
    """What an order event did and the order afterwards."""

    outcome: ApplyOutcome
    order: OrderOut


class TimelineItem(BaseModel):
    """One audit entry about the order, with its place in the tenant's hash chain."""

    id: str
    seq: int
    action: str
    actor: str
    source: str
    trace_id: str | None
    from_status: str | None
    to_status: str | None
    reason: str | None
    payload: dict[str, Any]
    payload_digest: str
    occurred_at: str
    prev_hash: str
    hash: str
    verified: bool


class Timeline(BaseModel):
    """The order's timeline; ``verified`` is false when any entry fails its hash check."""

    order_id: str
    items: list[TimelineItem]
    verified: bool


class WebhookEndpointIn(_In):
    """Subscribe an endpoint to events (``*``, exact topics like ``order.created``, or ``order.*``)."""

    url: Annotated[str, StringConstraints(min_length=8, max_length=2000), Clean]
    secret: Annotated[str, StringConstraints(min_length=16, max_length=200), Clean]
    events: Annotated[list[Annotated[str, StringConstraints(pattern=r"^(\*|[a-z_]+(\.[a-z_*]+)*)$", max_length=80)]],
                      Field(min_length=1, max_length=50)] = ["*"]


class WebhookEndpointOut(BaseModel):
    """A subscription (the secret is never returned)."""

    id: str
    url: str
    events: list[str]
    active: bool
    created_at: str


class ShopIn(BaseModel):
    """``POST /api/v1/shops``: a shop on a sales channel."""

    model_config = ConfigDict(extra="forbid")

    code: NonBlank = Field(examples=["sh-1"])
    channel: NonBlank = Field(examples=["shopify"])
    name: NonBlank
    secret: Annotated[str, StringConstraints(min_length=8, max_length=500), Clean]
    timezone: Text | None = Field(default=None, examples=["Asia/Shanghai"])
    settings: dict[str, Any] = Field(default_factory=dict, description="api_base_url, app_key, access_token, poll")


class ShopOut(BaseModel):
    """A registered shop (its secret is never returned)."""

    id: str
    code: str
    channel: str
    name: str
    timezone: str | None
    active: bool
    webhook_path: str
    created_at: str | None

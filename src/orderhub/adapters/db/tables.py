"""The database schema (SQLAlchemy Core). Alembic migrations are the source of truth for
deployed databases; tests check that these tables and the migrations agree.

Every row carries ``tenant_id``: it leads every primary key and index so that a future
Citus deployment can distribute by it.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    Date,
    ForeignKeyConstraint,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from orderhub.adapters.db.types import JSONType, UTCDateTime

metadata = MetaData(naming_convention={
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
})

tenants = Table(
    "tenants", metadata,
    Column("id", String(40), primary_key=True),
    Column("name", String(100), nullable=False, unique=True),
    Column("created_at", UTCDateTime(), nullable=False),
    # Head of the tenant's audit hash chain; locked FOR NO KEY UPDATE while appending.
    Column("audit_head_seq", BigInteger, nullable=False, default=0),
    Column("audit_head_hash", String(64), nullable=False),
)

api_keys = Table(
    "api_keys", metadata,
    Column("id", String(40), primary_key=True),
    Column("tenant_id", String(40), nullable=False),
    Column("prefix", String(24), nullable=False),
    Column("key_hash", String(64), nullable=False, unique=True),
    Column("role", String(20), nullable=False),
    Column("label", String(200)),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("revoked_at", UTCDateTime()),
    ForeignKeyConstraint(["tenant_id"], ["tenants.id"]),
    Index(None, "tenant_id"),
)

orders = Table(
    "orders", metadata,
    Column("tenant_id", String(40), primary_key=True),
    Column("id", String(40), primary_key=True),
    Column("channel", String(40), nullable=False),
    Column("shop", String(100), nullable=False),
    Column("external_id", String(200), nullable=False),
    Column("currency", String(3), nullable=False),
    Column("status", String(24), nullable=False),
    Column("payment_status", String(16), nullable=False),
    Column("subtotal_minor", BigInteger, nullable=False),
    Column("shipping_fee_minor", BigInteger, nullable=False),
    Column("discount_minor", BigInteger, nullable=False),
    Column("total_minor", BigInteger, nullable=False),
    Column("buyer", JSONType, nullable=False),
    Column("shipping_address", JSONType),
    Column("tags", JSONType, nullable=False),
    Column("channel_status", String(100)),
    Column("placed_at", UTCDateTime(), nullable=False),
    Column("paid_at", UTCDateTime()),
    Column("shipped_at", UTCDateTime()),
    Column("delivered_at", UTCDateTime()),
    Column("cancelled_at", UTCDateTime()),
    Column("completed_at", UTCDateTime()),
    Column("status_changed_at", UTCDateTime(), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
    Column("version", Integer, nullable=False),
    Column("held_from", String(24)),
    Column("hold_reason", String(500)),
    Column("cancel_reason", String(500)),
    Column("conflict_count", Integer, nullable=False, default=0),
    Column("raw_ref", String(100)),
    # Lower-cased text the `q` filter searches: ids, buyer, recipient, SKUs.
    Column("search_text", Text, nullable=False),
    # ``<channel>:<email | phone | name>``: a buyer's orders, for the after-sale policy's history.
    Column("buyer_key", String(300)),
    UniqueConstraint("tenant_id", "channel", "shop", "external_id"),
    ForeignKeyConstraint(["tenant_id"], ["tenants.id"]),
    Index(None, "tenant_id", "created_at", "id"),
    Index(None, "tenant_id", "status", "created_at"),
    Index(None, "status", "delivered_at"),               # completing delivered orders after the window
    # Statement matching: an order number found in a memo (any channel), payments by date.
    Index(None, "tenant_id", "external_id"),
    Index(None, "tenant_id", "paid_at"),
    Index(None, "tenant_id", "buyer_key"),
)

order_lines = Table(
    "order_lines", metadata,
    Column("tenant_id", String(40), primary_key=True),
    Column("order_id", String(40), primary_key=True),
    Column("line_no", Integer, primary_key=True),
    Column("sku", String(100), nullable=False),
    Column("title", String(500)),
    Column("quantity", Integer, nullable=False),
    Column("unit_price_minor", BigInteger, nullable=False),
    Column("discount_minor", BigInteger, nullable=False),
    Column("tax_minor", BigInteger, nullable=False),
    ForeignKeyConstraint(["tenant_id", "order_id"], ["orders.tenant_id", "orders.id"], ondelete="CASCADE"),
    Index(None, "tenant_id", "sku"),
)

order_event_keys = Table(
    "order_event_keys", metadata,
    Column("tenant_id", String(40), primary_key=True),
    Column("order_id", String(40), primary_key=True),
    Column("event_key", String(200), primary_key=True),
    Column("created_at", UTCDateTime(), nullable=False),
    ForeignKeyConstraint(["tenant_id", "order_id"], ["orders.tenant_id", "orders.id"], ondelete="CASCADE"),
)

idempotency_keys = Table(
    "idempotency_keys", metadata,
    Column("tenant_id", String(40), primary_key=True),
    Column("scope", String(40), primary_key=True),
    Column("key", String(200), primary_key=True),
    Column("request_hash", String(64), nullable=False),
    Column("resource_id", String(40), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    ForeignKeyConstraint(["tenant_id"], ["tenants.id"]),
)

audit_events = Table(
    "audit_events", metadata,
    Column("tenant_id", String(40), primary_key=True),
    Column("seq", BigInteger, primary_key=True),
    Column("id", String(40), nullable=False, unique=True),
    Column("subject_type", String(40), nullable=False),
    Column("subject_id", String(100), nullable=False),
    Column("action", String(80), nullable=False),
    Column("actor", String(100), nullable=False),
    Column("source", String(100), nullable=False),
    Column("trace_id", String(100)),
    Column("from_status", String(40)),
    Column("to_status", String(40)),
    Column("reason", String(500)),
    Column("payload", JSONType, nullable=False),
    Column("payload_digest", String(64), nullable=False),
    Column("occurred_at", UTCDateTime(), nullable=False),
    Column("prev_hash", String(64), nullable=False),
    Column("hash", String(64), nullable=False),
    ForeignKeyConstraint(["tenant_id"], ["tenants.id"]),
    Index(None, "tenant_id", "subject_type", "subject_id", "seq"),
)

webhook_endpoints = Table(
    "webhook_endpoints", metadata,
    Column("tenant_id", String(40), primary_key=True),
    Column("id", String(40), primary_key=True),
    Column("url", String(2000), nullable=False),
    Column("secret", String(200), nullable=False),
    Column("events", JSONType, nullable=False),
    Column("active", Boolean, nullable=False, default=True),
    Column("created_at", UTCDateTime(), nullable=False),
    ForeignKeyConstraint(["tenant_id"], ["tenants.id"]),
)

outbox = Table(
    "outbox", metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("tenant_id", String(40), nullable=False),
    Column("message_id", String(40), nullable=False, unique=True),
    Column("kind", String(20), nullable=False),          # "webhook" today; "amqp", "channel"… later
    Column("target", String(200), nullable=False),       # e.g. the webhook endpoint id, "taobao:SKU-1"
    Column("topic", String(80), nullable=False),         # e.g. "order.created"
    Column("payload", JSONType, nullable=False),
    Column("status", String(16), nullable=False),        # pending | in_progress | done | dead
    Column("attempts", Integer, nullable=False, default=0),
    Column("next_attempt_at", UTCDateTime(), nullable=False),
    Column("locked_by", String(100)),
    Column("locked_until", UTCDateTime()),
    Column("last_error", Text),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("delivered_at", UTCDateTime()),
    ForeignKeyConstraint(["tenant_id"], ["tenants.id"]),
    Index(None, "status", "next_attempt_at"),
    Index(None, "tenant_id", "status"),
    Index(None, "tenant_id", "kind", "target", "status"),   # coalescing pending channel stock rows
)

worker_leases = Table(
    "worker_leases", metadata,
    Column("name", String(100), primary_key=True),
    Column("holder", String(100), nullable=False),
    Column("expires_at", UTCDateTime(), nullable=False),
)


# --------------------------------------------------------------------------- channel gateway
shops = Table(
    "shops", metadata,
    Column("tenant_id", String(40), primary_key=True),
    Column("id", String(40), primary_key=True),
    Column("code", String(64), nullable=False),
    Column("channel", String(40), nullable=False),
    Column("name", String(200), nullable=False),
    Column("secret", String(500), nullable=False),
    Column("timezone", String(64)),
    # Channel API access for polling: api_base_url, app_key, access_token, poll settings.
    Column("settings", JSONType, nullable=False),
    Column("active", Boolean, nullable=False, default=True),
    Column("signature_failures", BigInteger, nullable=False, default=0),
    Column("created_at", UTCDateTime(), nullable=False),
    # The webhook URL is /webhooks/{channel}/{code}, without a tenant: (channel, code) is
    # unique across tenants so a push finds its shop (and secret) from the URL alone.
    UniqueConstraint("channel", "code"),
    ForeignKeyConstraint(["tenant_id"], ["tenants.id"]),
)

inbox = Table(
    "inbox", metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("tenant_id", String(40), nullable=False),
    Column("message_id", String(40), nullable=False, unique=True),
    Column("channel", String(40), nullable=False),
    Column("shop", String(64), nullable=False),
    Column("source", String(16), nullable=False),        # webhook | poll | backfill | import
    # The dedup key: the same order version from webhook, poll or backfill is one row.
    Column("external_id", String(200), nullable=False),
    Column("event_version", String(100), nullable=False),
    Column("kind", String(16), nullable=False),          # order | status | ignore | unknown
    Column("status", String(16), nullable=False),        # see domain/channels/inbox.py
    Column("attempts", Integer, nullable=False, default=0),
    Column("next_attempt_at", UTCDateTime(), nullable=False),
    Column("locked_by", String(100)),
    Column("locked_until", UTCDateTime()),
    Column("headers", JSONType, nullable=False),
    Column("body", LargeBinary, nullable=False),         # the raw bytes, exactly as received
    Column("content_hash", String(64), nullable=False),
    Column("error_code", String(60)),
    Column("error_field", String(200)),
    Column("last_error", Text),
    Column("order_id", String(40)),
    Column("outcome", String(24)),
    Column("received_at", UTCDateTime(), nullable=False),
    Column("processed_at", UTCDateTime()),
    UniqueConstraint("tenant_id", "channel", "shop", "external_id", "event_version"),
    ForeignKeyConstraint(["tenant_id"], ["tenants.id"]),
    Index(None, "status", "next_attempt_at"),
    Index(None, "tenant_id", "channel", "status"),
    Index(None, "tenant_id", "order_id"),
)

poll_cursors = Table(
    "poll_cursors", metadata,
    Column("tenant_id", String(40), primary_key=True),
    Column("shop_id", String(40), primary_key=True),
    # Everything updated before this instant has been pulled (minus the overlap window).
    Column("updated_until", UTCDateTime()),
    Column("next_poll_at", UTCDateTime(), nullable=False),
    Column("last_polled_at", UTCDateTime()),
    Column("last_error", Text),
    Column("pages", BigInteger, nullable=False, default=0),
    Column("messages", BigInteger, nullable=False, default=0),
    ForeignKeyConstraint(["tenant_id", "shop_id"], ["shops.tenant_id", "shops.id"], ondelete="CASCADE"),
)

channel_breakers = Table(
    "channel_breakers", metadata,
    Column("tenant_id", String(40), primary_key=True),
    Column("channel", String(40), primary_key=True),
    Column("state", String(16), nullable=False),         # closed | open
    Column("reason", String(500)),
    Column("opened_at", UTCDateTime()),
    Column("resumed_at", UTCDateTime()),
    Column("resumed_by", String(100)),
    ForeignKeyConstraint(["tenant_id"], ["tenants.id"]),
)

channel_conflicts = Table(
    "channel_conflicts", metadata,
    Column("tenant_id", String(40), primary_key=True),
    Column("channel", String(40), primary_key=True),
    Column("day", String(10), primary_key=True),         # UTC date, YYYY-MM-DD
    Column("count", Integer, nullable=False, default=0),
    ForeignKeyConstraint(["tenant_id"], ["tenants.id"]),
)

alerts = Table(
    "alerts", metadata,
    Column("tenant_id", String(40), primary_key=True),
    Column("id", String(40), primary_key=True),
    Column("kind", String(60), nullable=False),          # e.g. channel_breaker_open
    Column("severity", String(16), nullable=False),      # info | warning | critical
    Column("subject", String(200), nullable=False),      # e.g. "channel:shopify"
    Column("message", Text, nullable=False),
    Column("details", JSONType, nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("resolved_at", UTCDateTime()),
    ForeignKeyConstraint(["tenant_id"], ["tenants.id"]),
    Index(None, "tenant_id", "created_at"),
)

rule_sets = Table(
    "rule_sets", metadata,
    Column("tenant_id", String(40), primary_key=True),
    Column("kind", String(60), primary_key=True),        # e.g. order_filters
    Column("version", Integer, primary_key=True),
    Column("body", JSONType, nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("created_by", String(100), nullable=False),
    ForeignKeyConstraint(["tenant_id"], ["tenants.id"]),
)


# --------------------------------------------------------------------------- inventory
warehouses = Table(
    "warehouses", metadata,
    Column("tenant_id", String(40), primary_key=True),
    Column("id", String(40), primary_key=True),
    Column("code", String(64), nullable=False),
    Column("name", String(200), nullable=False),
    Column("province", String(100)),
    Column("city", String(100)),
    # Coordinates in micro-degrees (integers: no floats in stored figures).
    Column("lat_e6", Integer),
    Column("lon_e6", Integer),
    # Allocation inputs: share of on-time shipments (per mille) and handling cost per order.
    Column("on_time_permille", Integer, nullable=False, default=1000),
    Column("handling_cost_minor", BigInteger, nullable=False, default=0),
    Column("active", Boolean, nullable=False, default=True),
    Column("created_at", UTCDateTime(), nullable=False),
    UniqueConstraint("tenant_id", "code"),
    ForeignKeyConstraint(["tenant_id"], ["tenants.id"]),
)

stock_levels = Table(
    "stock_levels", metadata,
    Column("tenant_id", String(40), primary_key=True),
    Column("warehouse_id", String(40), primary_key=True),
    Column("sku", String(100), primary_key=True),
    Column("on_hand", BigInteger, nullable=False),
    Column("reserved", BigInteger, nullable=False, default=0),
    Column("presale_reserved", BigInteger, nullable=False, default=0),
    Column("safety_stock", BigInteger, nullable=False, default=0),
    Column("version", Integer, nullable=False, default=1),
    Column("updated_at", UTCDateTime(), nullable=False),
    # The last line of defence: whatever the code does, no figure goes negative and no more is
    # reserved than is on hand.
    CheckConstraint("on_hand >= 0", name="on_hand_not_negative"),
    CheckConstraint("reserved >= 0", name="reserved_not_negative"),
    CheckConstraint("presale_reserved >= 0", name="presale_not_negative"),
    CheckConstraint("safety_stock >= 0", name="safety_not_negative"),
    CheckConstraint("on_hand - reserved - presale_reserved >= 0", name="available_not_negative"),
    ForeignKeyConstraint(["tenant_id", "warehouse_id"], ["warehouses.tenant_id", "warehouses.id"]),
    Index(None, "tenant_id", "sku"),
)

stock_movements = Table(
    "stock_movements", metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("tenant_id", String(40), nullable=False),
    Column("warehouse_id", String(40), nullable=False),
    Column("sku", String(100), nullable=False),
    Column("kind", String(24), nullable=False),
    Column("on_hand_delta", BigInteger, nullable=False, default=0),
    Column("reserved_delta", BigInteger, nullable=False, default=0),
    Column("presale_delta", BigInteger, nullable=False, default=0),
    Column("reason", String(500)),
    Column("order_id", String(40)),
    Column("reservation_id", String(40)),
    Column("actor", String(100), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    ForeignKeyConstraint(["tenant_id"], ["tenants.id"]),
    Index(None, "tenant_id", "warehouse_id", "sku"),
)

reservations = Table(
    "reservations", metadata,
    Column("tenant_id", String(40), primary_key=True),
    Column("id", String(40), primary_key=True),
    Column("order_id", String(40), nullable=False),
    Column("line_no", Integer, nullable=False),
    Column("warehouse_id", String(40), nullable=False),
    Column("sku", String(100), nullable=False),
    Column("quantity", BigInteger, nullable=False),
    Column("bucket", String(16), nullable=False),        # stock | presale
    Column("status", String(16), nullable=False),        # active | released | expired | consumed
    Column("expires_at", UTCDateTime()),
    Column("promise_date", Date()),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("closed_at", UTCDateTime()),
    CheckConstraint("quantity > 0", name="quantity_positive"),
    ForeignKeyConstraint(["tenant_id"], ["tenants.id"]),
    Index(None, "tenant_id", "order_id"),
    Index(None, "status", "expires_at"),
    Index(None, "tenant_id", "warehouse_id", "sku", "status"),
)

allocations = Table(
    "allocations", metadata,
    Column("tenant_id", String(40), primary_key=True),
    Column("order_id", String(40), primary_key=True),
    Column("plan", JSONType, nullable=False),            # chosen warehouses per line + every candidate's score
    Column("created_at", UTCDateTime(), nullable=False),
    ForeignKeyConstraint(["tenant_id"], ["tenants.id"]),
)

channel_stock = Table(
    "channel_stock", metadata,
    Column("tenant_id", String(40), primary_key=True),
    Column("channel", String(40), primary_key=True),
    Column("sku", String(100), primary_key=True),
    Column("quantity", BigInteger, nullable=False),      # the last quantity sent to the channel
    Column("updated_at", UTCDateTime(), nullable=False),
    ForeignKeyConstraint(["tenant_id"], ["tenants.id"]),
)


# --------------------------------------------------------------------------- fulfillment
carrier_accounts = Table(
    "carrier_accounts", metadata,
    Column("tenant_id", String(40), primary_key=True),
    Column("carrier", String(20), primary_key=True),     # sf, zto, usps… (adapters/carriers/codes)
    Column("protocol", String(20), nullable=False),      # how OrderHub talks to it (adapters/carriers/registry)
    Column("api_base_url", String(500), nullable=False),
    Column("api_key", String(200), nullable=False),
    Column("push_secret", String(200), nullable=False),  # verifies the carrier's tracking pushes
    Column("created_at", UTCDateTime(), nullable=False),
    ForeignKeyConstraint(["tenant_id"], ["tenants.id"]),
)

shipments = Table(
    "shipments", metadata,
    Column("tenant_id", String(40), primary_key=True),
    Column("id", String(40), primary_key=True),
    Column("order_id", String(40), nullable=False),
    Column("warehouse", String(40), nullable=False),     # warehouse code
    Column("status", String(20), nullable=False),
    Column("version", Integer, nullable=False),
    Column("carrier", String(20)),
    Column("service", String(40)),
    Column("routing_rule", String(100)),                 # the carrier_routing rule that chose the carrier
    Column("wave", String(60)),
    Column("priority", Integer, nullable=False),
    Column("waybill_no", String(60)),
    Column("expected_weight_g", BigInteger, nullable=False),
    Column("weight_g", BigInteger),
    Column("weight_flagged", Boolean, nullable=False),
    Column("milestone", String(24)),
    Column("sub_status", String(40)),
    Column("last_event_at", UTCDateTime()),
    Column("last_progress_at", UTCDateTime(), nullable=False),
    Column("stall_level", Integer, nullable=False),
    Column("compensation_flag", Boolean, nullable=False),
    Column("next_poll_at", UTCDateTime()),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
    Column("handed_over_at", UTCDateTime()),
    Column("delivered_at", UTCDateTime()),
    Column("cancel_reason", Text),
    ForeignKeyConstraint(["tenant_id"], ["tenants.id"]),
    # A carrier's waybill number names one parcel: pushes (which carry no tenant) find it by this.
    UniqueConstraint("carrier", "waybill_no"),
    Index(None, "tenant_id", "order_id"),
    Index(None, "status", "last_progress_at"),
    Index(None, "next_poll_at"),
)

shipment_lines = Table(
    "shipment_lines", metadata,
    Column("tenant_id", String(40), primary_key=True),
    Column("shipment_id", String(40), primary_key=True),
    Column("line_no", Integer, primary_key=True),
    Column("sku", String(100), nullable=False),
    Column("quantity", BigInteger, nullable=False),
    Column("kind", String(10), nullable=False),          # goods | gift | promo
    Column("barcode", String(100)),
    Column("unit_weight_g", BigInteger, nullable=False),
    Column("picked", BigInteger, nullable=False),
    Column("verified", BigInteger, nullable=False),
    CheckConstraint("picked >= 0 AND picked <= quantity", name="picked_within_quantity"),
    CheckConstraint("verified >= 0 AND verified <= picked", name="verified_within_picked"),
    ForeignKeyConstraint(["tenant_id", "shipment_id"], ["shipments.tenant_id", "shipments.id"]),
)

shipment_scans = Table(
    "shipment_scans", metadata,
    Column("tenant_id", String(40), primary_key=True),
    Column("scan_id", String(100), primary_key=True),    # the device's id: a resend is a duplicate
    Column("shipment_id", String(40), nullable=False),
    Column("step", String(10), nullable=False),
    Column("operator", String(100), nullable=False),
    Column("device_id", String(100)),
    Column("barcode", String(100)),
    Column("quantity", BigInteger, nullable=False),
    Column("weight_g", BigInteger),
    Column("flags", JSONType, nullable=False),
    Column("result", JSONType, nullable=False),          # the answer given, repeated for a resend
    Column("occurred_at", UTCDateTime(), nullable=False),
    Column("received_at", UTCDateTime(), nullable=False),
    ForeignKeyConstraint(["tenant_id"], ["tenants.id"]),
    Index(None, "tenant_id", "shipment_id"),
)

scan_rejections = Table(
    "scan_rejections", metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("tenant_id", String(40), nullable=False),
    Column("scan_id", String(100)),
    Column("shipment_id", String(40)),
    Column("device_id", String(100)),
    Column("operator", String(100)),
    Column("status", String(12), nullable=False),        # rejected | conflict
    Column("code", String(60), nullable=False),
    Column("detail", Text, nullable=False),
    Column("item", JSONType, nullable=False),            # the item as the device sent it: never lost
    Column("received_at", UTCDateTime(), nullable=False),
    ForeignKeyConstraint(["tenant_id"], ["tenants.id"]),
    Index(None, "tenant_id", "device_id", "received_at"),
)

tracking_events = Table(
    "tracking_events", metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("tenant_id", String(40), nullable=False),
    Column("dedup_key", String(64), nullable=False),     # carrier|waybill|code|time: a repeated push is one row
    Column("shipment_id", String(40), nullable=False),
    Column("carrier", String(20), nullable=False),
    Column("waybill_no", String(60), nullable=False),
    Column("code", String(100), nullable=False),
    Column("description", Text, nullable=False),
    Column("location", String(200)),
    Column("occurred_at", UTCDateTime(), nullable=False),
    Column("milestone", String(24)),                     # NULL: a code no table or override knows
    Column("sub_status", String(40)),
    Column("outcome", String(12), nullable=False),       # applied | stale | unchanged | ignored | unknown
    Column("source", String(10), nullable=False),        # push | poll | replay
    Column("raw", JSONType, nullable=False),
    Column("received_at", UTCDateTime(), nullable=False),
    ForeignKeyConstraint(["tenant_id"], ["tenants.id"]),
    UniqueConstraint("tenant_id", "dedup_key"),
    Index(None, "tenant_id", "shipment_id", "occurred_at"),
    Index(None, "tenant_id", "outcome", "carrier"),
)

devices = Table(
    "devices", metadata,
    Column("tenant_id", String(40), primary_key=True),
    Column("device_id", String(100), primary_key=True),
    Column("last_operator", String(100)),
    Column("app_version", String(40)),
    Column("last_heartbeat_at", UTCDateTime()),
    Column("last_sync_at", UTCDateTime()),
    Column("created_at", UTCDateTime(), nullable=False),
    ForeignKeyConstraint(["tenant_id"], ["tenants.id"]),
)

device_sightings = Table(
    "device_sightings", metadata,
    Column("tenant_id", String(40), primary_key=True),
    Column("operator", String(100), primary_key=True),
    Column("device_id", String(100), primary_key=True),
    Column("seen_at", UTCDateTime(), nullable=False),    # the latest time the operator used this device
    ForeignKeyConstraint(["tenant_id"], ["tenants.id"]),
)

operator_locks = Table(
    "operator_locks", metadata,
    Column("tenant_id", String(40), primary_key=True),
    Column("operator", String(100), primary_key=True),
    Column("locked_at", UTCDateTime(), nullable=False),
    Column("reason", Text, nullable=False),
    Column("devices", JSONType, nullable=False),
    ForeignKeyConstraint(["tenant_id"], ["tenants.id"]),
)

# Registers the after-sale and finance tables on ``metadata`` (kept in their own module for size).
from orderhub.adapters.db import aftersale_tables as _aftersale_tables  # noqa: E402,F401

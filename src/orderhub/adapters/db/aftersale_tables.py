"""Tables for after-sale cases, returned stock, the finance voucher ledger and imported
statements. They share ``tables.metadata`` (``tables`` imports this module at its end, so
every table is registered wherever the schema is used)."""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, ForeignKeyConstraint, Index, Integer, String, Table, Text, UniqueConstraint

from orderhub.adapters.db.tables import metadata
from orderhub.adapters.db.types import JSONType, UTCDateTime

aftersale_cases = Table(
    "aftersale_cases", metadata,
    Column("tenant_id", String(40), primary_key=True),
    Column("id", String(40), primary_key=True),
    Column("order_id", String(40), nullable=False),
    Column("channel", String(40), nullable=False),
    Column("shop", String(100), nullable=False),
    Column("type", String(24), nullable=False),
    Column("status", String(24), nullable=False),
    Column("reason", String(200), nullable=False),
    Column("currency", String(3), nullable=False),
    Column("amount_minor", BigInteger, nullable=False),
    Column("refunded_minor", BigInteger, nullable=False, default=0),
    Column("lines", JSONType, nullable=False),
    Column("source", String(40), nullable=False),
    Column("external_ref", String(100)),              # the channel's own case / refund id
    Column("channel_status", String(100)),
    Column("buyer_key", String(300)),
    Column("note", String(1000)),
    Column("decision", JSONType),
    # What the refund policy saw when it decided (case, order, customer): the sandbox replays
    # a proposed policy on exactly these.
    Column("policy_facts", JSONType),
    Column("decision_action", String(24)),
    Column("decision_rule", String(100)),
    Column("queue", String(60)),
    Column("choice", String(40)),
    Column("refund_ref", String(100)),
    Column("refunded_at", UTCDateTime()),
    Column("refund_via", String(24)),
    Column("return_parcel", JSONType),
    Column("return_waybill", String(60)),
    Column("resolution", String(500)),
    Column("sla_level", String(8), nullable=False, default="none"),
    Column("sla_rank", Integer, nullable=False, default=0),
    Column("sla_due", JSONType, nullable=False),
    # When the next SLA level is reached while the merchant owes the next step; NULL otherwise.
    Column("next_sla_at", UTCDateTime()),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
    Column("closed_at", UTCDateTime()),
    Column("version", Integer, nullable=False),
    # One case per channel case id: a channel event delivered twice can't open two cases.
    UniqueConstraint("tenant_id", "channel", "external_ref"),
    ForeignKeyConstraint(["tenant_id", "order_id"], ["orders.tenant_id", "orders.id"]),
    Index(None, "tenant_id", "order_id"),
    Index(None, "tenant_id", "status", "sla_rank", "created_at"),
    Index(None, "next_sla_at"),
    Index(None, "tenant_id", "buyer_key"),
    Index(None, "tenant_id", "refund_ref"),
)

# Returned goods that came back damaged: counted per warehouse and SKU, never sellable.
damaged_stock = Table(
    "damaged_stock", metadata,
    Column("tenant_id", String(40), primary_key=True),
    Column("warehouse_id", String(40), primary_key=True),
    Column("sku", String(100), primary_key=True),
    Column("quantity", BigInteger, nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
    ForeignKeyConstraint(["tenant_id", "warehouse_id"], ["warehouses.tenant_id", "warehouses.id"]),
)

# Append-only: the repository has no update or delete, and a database trigger refuses them.
finance_vouchers = Table(
    "finance_vouchers", metadata,
    Column("seq", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("tenant_id", String(40), nullable=False),
    Column("id", String(40), nullable=False),
    Column("kind", String(24), nullable=False),
    Column("case_id", String(40), nullable=False),
    Column("order_id", String(40), nullable=False),
    Column("debit", String(80), nullable=False),
    Column("credit", String(80), nullable=False),
    Column("amount_minor", BigInteger, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("tags", JSONType, nullable=False),
    Column("reference", String(100)),
    Column("memo", String(500), nullable=False),
    Column("posted_at", UTCDateTime(), nullable=False),
    UniqueConstraint("tenant_id", "id"),
    UniqueConstraint("tenant_id", "case_id", "kind"),
    ForeignKeyConstraint(["tenant_id"], ["tenants.id"]),
    Index(None, "tenant_id", "posted_at"),
)

statement_imports = Table(
    "statement_imports", metadata,
    Column("tenant_id", String(40), primary_key=True),
    Column("id", String(40), primary_key=True),
    Column("filename", String(500), nullable=False),
    Column("file_digest", String(80), nullable=False),
    Column("counts", JSONType, nullable=False),
    Column("errors", JSONType, nullable=False),
    Column("imported_at", UTCDateTime(), nullable=False),
    ForeignKeyConstraint(["tenant_id"], ["tenants.id"]),
)

statement_lines = Table(
    "statement_lines", metadata,
    Column("tenant_id", String(40), primary_key=True),
    # A digest of the row's content and its occurrence in the file: the same row imported
    # again is recognised, two identical rows in one file are both kept.
    Column("line_key", String(80), primary_key=True),
    Column("import_id", String(40), nullable=False),
    Column("line_no", Integer, nullable=False),
    Column("booked_at", UTCDateTime(), nullable=False),
    Column("amount_minor", BigInteger, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("memo", Text, nullable=False),
    Column("counterparty", String(300), nullable=False),
    Column("reference", String(200), nullable=False),
    Column("status", String(16), nullable=False),        # matched | ambiguous | unmatched
    Column("match_rule", String(24)),                     # reference | memo_order | amount_date
    Column("matched_kind", String(16)),                   # refund | payment
    Column("matched_id", String(40)),
    Column("candidates", JSONType, nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    # A refund or payment is matched by one statement line at most.
    UniqueConstraint("tenant_id", "matched_kind", "matched_id"),
    ForeignKeyConstraint(["tenant_id"], ["tenants.id"]),
    Index(None, "tenant_id", "status"),
)

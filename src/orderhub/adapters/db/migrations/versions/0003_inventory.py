"""inventory

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22 02:39:17.688855
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.alter_column("target", existing_type=sa.String(length=100), type_=sa.String(length=200),
                              existing_nullable=False)
        batch_op.create_index(batch_op.f("ix_outbox_tenant_id_kind_target_status"),
                              ["tenant_id", "kind", "target", "status"], unique=False)
    op.create_table(
        "allocations",
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("order_id", sa.String(length=40), nullable=False),
        sa.Column("plan", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], name=op.f("fk_allocations_tenant_id_tenants")),
        sa.PrimaryKeyConstraint("tenant_id", "order_id", name=op.f("pk_allocations")),
    )
    op.create_table(
        "channel_stock",
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("channel", sa.String(length=40), nullable=False),
        sa.Column("sku", sa.String(length=100), nullable=False),
        sa.Column("quantity", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], name=op.f("fk_channel_stock_tenant_id_tenants")),
        sa.PrimaryKeyConstraint("tenant_id", "channel", "sku", name=op.f("pk_channel_stock")),
    )
    op.create_table(
        "reservations",
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("order_id", sa.String(length=40), nullable=False),
        sa.Column("line_no", sa.Integer(), nullable=False),
        sa.Column("warehouse_id", sa.String(length=40), nullable=False),
        sa.Column("sku", sa.String(length=100), nullable=False),
        sa.Column("quantity", sa.BigInteger(), nullable=False),
        sa.Column("bucket", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("promise_date", sa.Date(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("quantity > 0", name="quantity_positive"),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], name=op.f("fk_reservations_tenant_id_tenants")),
        sa.PrimaryKeyConstraint("tenant_id", "id", name=op.f("pk_reservations")),
    )
    with op.batch_alter_table("reservations", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_reservations_status_expires_at"), ["status", "expires_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_reservations_tenant_id_order_id"), ["tenant_id", "order_id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_reservations_tenant_id_warehouse_id_sku_status"),
            ["tenant_id", "warehouse_id", "sku", "status"],
            unique=False,
        )

    op.create_table(
        "stock_movements",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("warehouse_id", sa.String(length=40), nullable=False),
        sa.Column("sku", sa.String(length=100), nullable=False),
        sa.Column("kind", sa.String(length=24), nullable=False),
        sa.Column("on_hand_delta", sa.BigInteger(), nullable=False),
        sa.Column("reserved_delta", sa.BigInteger(), nullable=False),
        sa.Column("presale_delta", sa.BigInteger(), nullable=False),
        sa.Column("reason", sa.String(length=500), nullable=True),
        sa.Column("order_id", sa.String(length=40), nullable=True),
        sa.Column("reservation_id", sa.String(length=40), nullable=True),
        sa.Column("actor", sa.String(length=100), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], name=op.f("fk_stock_movements_tenant_id_tenants")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_stock_movements")),
    )
    with op.batch_alter_table("stock_movements", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_stock_movements_tenant_id_warehouse_id_sku"),
            ["tenant_id", "warehouse_id", "sku"],
            unique=False,
        )

    op.create_table(
        "warehouses",
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("code", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("province", sa.String(length=100), nullable=True),
        sa.Column("city", sa.String(length=100), nullable=True),
        sa.Column("lat_e6", sa.Integer(), nullable=True),
        sa.Column("lon_e6", sa.Integer(), nullable=True),
        sa.Column("on_time_permille", sa.Integer(), nullable=False),
        sa.Column("handling_cost_minor", sa.BigInteger(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], name=op.f("fk_warehouses_tenant_id_tenants")),
        sa.PrimaryKeyConstraint("tenant_id", "id", name=op.f("pk_warehouses")),
        sa.UniqueConstraint("tenant_id", "code", name=op.f("uq_warehouses_tenant_id_code")),
    )
    op.create_table(
        "stock_levels",
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("warehouse_id", sa.String(length=40), nullable=False),
        sa.Column("sku", sa.String(length=100), nullable=False),
        sa.Column("on_hand", sa.BigInteger(), nullable=False),
        sa.Column("reserved", sa.BigInteger(), nullable=False),
        sa.Column("presale_reserved", sa.BigInteger(), nullable=False),
        sa.Column("safety_stock", sa.BigInteger(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("on_hand - reserved - presale_reserved >= 0", name="available_not_negative"),
        sa.CheckConstraint("on_hand >= 0", name="on_hand_not_negative"),
        sa.CheckConstraint("presale_reserved >= 0", name="presale_not_negative"),
        sa.CheckConstraint("reserved >= 0", name="reserved_not_negative"),
        sa.CheckConstraint("safety_stock >= 0", name="safety_not_negative"),
        sa.ForeignKeyConstraint(
            ["tenant_id", "warehouse_id"],
            ["warehouses.tenant_id", "warehouses.id"],
            name=op.f("fk_stock_levels_tenant_id_warehouses"),
        ),
        sa.PrimaryKeyConstraint("tenant_id", "warehouse_id", "sku", name=op.f("pk_stock_levels")),
    )
    with op.batch_alter_table("stock_levels", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_stock_levels_tenant_id_sku"), ["tenant_id", "sku"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_outbox_tenant_id_kind_target_status"))
        batch_op.alter_column("target", existing_type=sa.String(length=200), type_=sa.String(length=100),
                              existing_nullable=False)
    with op.batch_alter_table("stock_levels", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_stock_levels_tenant_id_sku"))

    op.drop_table("stock_levels")
    op.drop_table("warehouses")
    with op.batch_alter_table("stock_movements", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_stock_movements_tenant_id_warehouse_id_sku"))

    op.drop_table("stock_movements")
    with op.batch_alter_table("reservations", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_reservations_tenant_id_warehouse_id_sku_status"))
        batch_op.drop_index(batch_op.f("ix_reservations_tenant_id_order_id"))
        batch_op.drop_index(batch_op.f("ix_reservations_status_expires_at"))

    op.drop_table("reservations")
    op.drop_table("channel_stock")
    op.drop_table("allocations")

"""Who may do what: roles and the permissions they carry."""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum


class Role(StrEnum):
    """API key roles (DESIGN.md §6)."""

    ADMIN = "admin"
    OPERATOR = "operator"
    WAREHOUSE = "warehouse"
    FINANCE = "finance"
    VIEWER = "viewer"


class Permission(StrEnum):
    """Actions guarded by a role check."""

    ORDERS_READ = "orders:read"
    ORDERS_WRITE = "orders:write"
    AUDIT_READ = "audit:read"
    KEYS_MANAGE = "keys:manage"
    WEBHOOKS_MANAGE = "webhooks:manage"
    SHOPS_MANAGE = "shops:manage"            # register shops and their secrets
    CHANNELS_OPERATE = "channels:operate"    # replay the inbox, resume a channel's breaker
    RULES_MANAGE = "rules:manage"            # change filter, routing and policy rule sets
    INVENTORY_MANAGE = "inventory:manage"    # add warehouses, set and adjust stock
    WAREHOUSE_SCAN = "warehouse:scan"        # scan shipments, sync handhelds, send heartbeats
    CARRIERS_MANAGE = "carriers:manage"      # connect carrier accounts
    OPERATORS_MANAGE = "operators:manage"    # unlock warehouse accounts
    AFTERSALE_DECIDE = "aftersale:decide"    # approve, reject, negotiate after-sale cases
    FINANCE_READ = "finance:read"            # read the voucher ledger and statement matches
    FINANCE_MANAGE = "finance:manage"        # import statements


_READ = frozenset({Permission.ORDERS_READ, Permission.AUDIT_READ})

GRANTS: Mapping[Role, frozenset[Permission]] = {
    Role.ADMIN: frozenset(Permission),
    Role.OPERATOR: _READ | {Permission.ORDERS_WRITE, Permission.CHANNELS_OPERATE, Permission.INVENTORY_MANAGE,
                            Permission.WAREHOUSE_SCAN, Permission.AFTERSALE_DECIDE},
    Role.WAREHOUSE: _READ | {Permission.INVENTORY_MANAGE, Permission.WAREHOUSE_SCAN},
    Role.FINANCE: _READ | {Permission.AFTERSALE_DECIDE, Permission.FINANCE_READ, Permission.FINANCE_MANAGE},
    Role.VIEWER: _READ,
}


def allows(role: Role, permission: Permission) -> bool:
    """True when ``role`` carries ``permission``."""
    return permission in GRANTS[role]

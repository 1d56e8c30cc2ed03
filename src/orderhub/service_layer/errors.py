"""The service layer's error tree.

Adapters translate driver errors into these (``raise … from exc``) and the API maps each
``code`` to an HTTP status in exactly one place (``entrypoints/api/errors.py``).
"""

from __future__ import annotations


class ServiceError(Exception):
    """Base of every error a command or query can raise besides domain rule violations."""

    code = "service_error"

    def __init__(self, message: str, *, field: str | None = None, extra: dict[str, object] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        self.extra = extra or {}


class NotFound(ServiceError):
    """Raised when a resource doesn't exist for the caller's tenant (another tenant's data
    is reported as not found, never as forbidden, so its existence doesn't leak)."""

    code = "not_found"


class OrderNotFound(NotFound):
    """Raised when an order id is unknown in the caller's tenant."""

    code = "order_not_found"


class TenantNotFound(NotFound):
    """Raised when a CLI command names a tenant that doesn't exist."""

    code = "tenant_not_found"


class Conflict(ServiceError):
    """Base for requests that clash with the current state of stored data."""

    code = "conflict"


class OrderAlreadyExists(Conflict):
    """Raised when an order with the same channel, shop and external id is created again
    without the original Idempotency-Key."""

    code = "order_already_exists"


class IdempotencyKeyReused(Conflict):
    """Raised when an Idempotency-Key is sent again with a different request body."""

    code = "idempotency_key_reused"


class ConcurrencyConflict(Conflict):
    """Raised when another writer changed the same row first (optimistic version check or
    unique key race); the caller may reload and retry."""

    code = "concurrent_update"


class InvalidApiKey(ServiceError):
    """Raised when a request carries no API key, an unknown one, or a revoked one."""

    code = "invalid_api_key"


class PermissionDenied(ServiceError):
    """Raised when the caller's role does not carry the permission an action needs."""

    code = "permission_denied"


class InvalidInput(ServiceError):
    """Raised when a command's input is malformed in a way the domain doesn't model
    (e.g. an unknown role name)."""

    code = "invalid_input"


class ShopNotFound(NotFound):
    """No shop with that code is registered on that channel (webhook URL or ``--shop``)."""

    code = "shop_not_found"


class ChannelNotFound(NotFound):
    """The channel name has no mapping spec (built-in or in ``$ORDERHUB_HOME/channels``)."""

    code = "channel_not_found"


class ShopAlreadyExists(Conflict):
    """A shop with that code is already registered on that channel (codes are unique per channel)."""

    code = "shop_already_exists"


class InboxMessageNotFound(NotFound):
    """No inbox message with that id belongs to the caller's tenant."""

    code = "inbox_message_not_found"


class WarehouseNotFound(NotFound):
    """No warehouse with that code belongs to the caller's tenant."""

    code = "warehouse_not_found"


class StockNotFound(NotFound):
    """The warehouse has no stock row for that SKU (damage and corrections need one; a
    receipt, count or set creates it)."""

    code = "stock_not_found"


class WarehouseAlreadyExists(Conflict):
    """The tenant already has a warehouse with that code."""

    code = "warehouse_already_exists"


class StockVersionMismatch(Conflict):
    """A stock write named an ``expected_version`` the row has moved past; reload and retry."""

    code = "stock_version_mismatch"


class ShipmentNotFound(NotFound):
    """A shipment id is unknown in the caller's tenant (scans, device sync items, lookups)."""

    code = "shipment_not_found"


class ShipmentVersionMismatch(Conflict):
    """A scan named the shipment version its device saw and the shipment has changed since
    (someone else scanned, or it was re-planned): nothing was applied; ``extra.current``
    holds the shipment as it is now."""

    code = "shipment_version_mismatch"


class OperatorLocked(ServiceError):
    """A warehouse account's write access is locked (it was seen on too many devices at once,
    or an admin locked it); an admin unlocks it with ``POST /operators/{operator}/unlock``."""

    code = "operator_locked"


class CarrierAccountNotFound(NotFound):
    """The tenant has no account with that carrier (add one with ``POST /carrier-accounts``
    or ``orderhub carriers add``)."""

    code = "carrier_account_not_found"


class WaybillNotFound(NotFound):
    """A carrier push or poll names waybill numbers no shipment carries."""

    code = "unknown_waybill"


class AfterSaleNotFound(NotFound):
    """Raised when an after-sale case id is unknown in the caller's tenant."""

    code = "aftersale_not_found"


class AfterSaleVersionMismatch(Conflict):
    """Raised when an action names an ``expected_version`` the case has moved past (someone
    else acted on it first); ``current_version`` says where it is."""

    code = "aftersale_version_mismatch"

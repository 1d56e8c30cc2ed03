"""The domain's error tree.

Every error the domain raises derives from :class:`DomainError` and carries a stable
``code`` (used verbatim in problem+json responses) and, where a specific input is at
fault, the ``field`` path that names it. Outer layers translate these at their
boundaries; nothing outside ``domain/`` should need to invent a code for a domain rule.
"""

from __future__ import annotations


class DomainError(Exception):
    """Base of every rule violation detected by the pure domain model."""

    code = "domain_error"

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


class InvalidMoney(DomainError):
    """Raised when an amount can't be represented exactly in its currency's minor units."""

    code = "invalid_money"


class UnknownCurrency(DomainError):
    """Raised when a currency code is not an active ISO 4217 code."""

    code = "unknown_currency"


class CurrencyMismatch(DomainError):
    """Raised when amounts in two different currencies are combined."""

    code = "currency_mismatch"


class InvalidOrder(DomainError):
    """Raised when an order or one of its lines breaks a structural rule (quantity, SKU…)."""

    code = "invalid_order"


class InvalidTransition(DomainError):
    """Raised when an event asks for a status change that the transition table forbids."""

    code = "invalid_transition"


class UnknownOrderEvent(DomainError):
    """Raised when an order event type is not one the state machine knows."""

    code = "unknown_event_type"


class VersionMismatch(DomainError):
    """Raised when a caller's expected version is not the order's current version."""

    code = "version_mismatch"


class InvalidTime(DomainError):
    """Raised when a timestamp is naive (no timezone) where an aware UTC time is required."""

    code = "invalid_time"


class InvalidEventKey(DomainError):
    """Raised when an order event's dedup key is blank, too long or has control characters."""

    code = "invalid_event_key"


class EventKeyReused(DomainError):
    """Raised when an order event's dedup key was already used for a different event type
    on the same order (a replay must repeat the same event)."""

    code = "event_key_reused"


class MappingFailed(DomainError):
    """A channel message could not be mapped to a canonical order: a required field is
    missing or a value can't be converted. ``field`` is the path in the channel payload
    (e.g. ``line_items[0].price``); the message is dead-lettered, never dropped."""

    code = "mapping_failed"


class SignatureInvalid(DomainError):
    """A webhook push's signature doesn't match the shop's secret (or is missing)."""

    code = "signature_invalid"


class UnreadableMessage(DomainError):
    """A channel message body can't be parsed at all (not JSON, wrong encoding…); it is kept
    in the inbox as rejected."""

    code = "unreadable_message"


class InvalidShop(DomainError):
    """A shop registration is malformed: bad code, empty name, short secret, unknown zone."""

    code = "invalid_shop"


class InvalidStock(DomainError):
    """A stock figure is negative, too large, or would leave less on hand than is reserved."""

    code = "invalid_stock"


class InsufficientStock(DomainError):
    """A reservation asks for more than is available (the order is held ``out_of_stock``
    rather than failing, except where stock is reserved directly)."""

    code = "insufficient_stock"


# --------------------------------------------------------------------------- fulfillment
class InvalidShipmentTransition(DomainError):
    """Raised when a shipment status change is not in the shipment transition table
    (``domain/fulfillment/states.py``), e.g. cancelling a shipment the carrier already has."""

    code = "invalid_shipment_transition"


class InvalidShipment(DomainError):
    """Raised when a shipment or one of its inputs breaks a structural rule: no lines, a
    quantity below one, a duplicate line number, a second different waybill number."""

    code = "invalid_shipment"


class ScanRejected(DomainError):
    """Raised when a warehouse scan doesn't fit the shipment: unknown barcode, more than is
    left to pick, a step out of order. ``expected`` says what the device should scan instead
    (e.g. ``{"barcodes": {"6901234": 2}}`` or ``{"step": "verify"}``); nothing was changed."""

    code = "scan_rejected"

    def __init__(self, message: str, *, field: str | None = None, expected: dict[str, object] | None = None) -> None:
        super().__init__(message, field=field)
        self.expected: dict[str, object] = dict(expected or {})


class ShipmentClosed(DomainError):
    """Raised when a warehouse scan (or a warehouse-side change) arrives for a shipment that
    has left the warehouse (handed over or later) or was cancelled."""

    code = "shipment_closed"

    def __init__(self, message: str, *, field: str | None = None, status: str | None = None) -> None:
        super().__init__(message, field=field)
        self.status = status


class InvalidPolicy(DomainError):
    """Raised when a fulfillment policy (stall hours, account lock) read from a rule set is
    malformed; ``field`` is the path of the bad value, e.g. ``stall_hours.in_transit[1]``."""

    code = "invalid_policy"


class UnknownCarrier(DomainError):
    """Raised when a carrier id has no code table (a tracking update, an override or a
    lookup names a carrier OrderHub doesn't know); the message lists the known carriers."""

    code = "unknown_carrier"


class InvalidCaseTransition(DomainError):
    """Raised when an after-sale case status change is not in the case transition table
    (``domain/aftersale/states.py``), e.g. refunding a case that was rejected."""

    code = "invalid_case_transition"


class InvalidAfterSale(DomainError):
    """Raised when an after-sale request breaks a structural rule: an unknown type, a line
    that isn't on the order, a quantity above what was ordered, a type that needs an amount
    without one."""

    code = "invalid_aftersale"


class RefundExceedsRemaining(DomainError):
    """Raised when a refund (whole case or one line) is above what is still refundable on
    the order after the other cases; ``remaining`` is what could still be refunded (minor
    units)."""

    code = "refund_exceeds_remaining"

    def __init__(self, message: str, *, field: str | None = None, remaining: int = 0) -> None:
        super().__init__(message, field=field)
        self.remaining = remaining


class ActionNotAllowed(DomainError):
    """Raised when an after-sale action doesn't fit the case's status (approving a refunded
    case, choosing an option nobody offered); ``allowed`` lists the actions that would."""

    code = "action_not_allowed"

    def __init__(self, message: str, *, field: str | None = None, allowed: tuple[str, ...] = ()) -> None:
        super().__init__(message, field=field)
        self.allowed = allowed


class InvalidStatement(DomainError):
    """Raised when a bank or payment-platform statement file can't be read at all (no
    header, missing required columns); single bad rows are reported per line instead."""

    code = "invalid_statement"

"""The carrier adapters' error tree.

Every error a carrier adapter or push format raises on purpose derives from
:class:`CarrierError` and carries a stable ``code`` (safe to show and to branch on) and a
``message``. What a caller should do follows from the class: :class:`CarrierUnavailable`
means *retry later*; :class:`CarrierRejected` (and its :class:`CarrierAuthFailed`) means
*the request itself is wrong, don't retry it unchanged*.
"""

from __future__ import annotations


class CarrierError(Exception):
    """Base of every error a carrier adapter or push format raises on purpose."""

    code = "carrier_error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class CarrierUnavailable(CarrierError):
    """Raised when the carrier can't answer now: a network error or timeout, a 5xx, a 429,
    or an answer too garbled to read. Retry later, after ``retry_after`` seconds when the
    carrier said how long (``Retry-After``), else with the caller's own backoff."""

    code = "carrier_unavailable"

    def __init__(self, message: str, *, retry_after: float | None = None, status: int | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after
        self.status = status


class CarrierRejected(CarrierError):
    """Raised when the carrier refused the request as wrong (a 4xx other than 429): an
    unserviceable address, a bad weight, a parcel already picked up. Retrying the same
    request won't help; ``message`` is the carrier's own words."""

    code = "carrier_rejected"

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class CarrierAuthFailed(CarrierRejected):
    """Raised when the carrier refused the account's credentials (401/403): the tenant's
    ``api_key`` is wrong or revoked. A :class:`CarrierRejected`, so nothing retries it, but
    told apart so an operator is asked to fix the account rather than the shipment."""

    code = "carrier_auth_failed"


class WaybillNotFound(CarrierError):
    """Raised when the carrier doesn't know the waybill number asked about (404)."""

    code = "waybill_not_found"

    def __init__(self, message: str, *, waybill_no: str) -> None:
        super().__init__(message)
        self.waybill_no = waybill_no


class PushUnreadable(CarrierError):
    """Raised when a carrier push body can't be parsed; ``path`` names the field at fault
    (``events[2].occurred_at``), or is empty when the body as a whole is unreadable."""

    code = "push_unreadable"

    def __init__(self, message: str, *, path: str = "") -> None:
        super().__init__(f"{path}: {message}" if path else message)
        self.path = path


class PushSignatureInvalid(CarrierError):
    """Raised by the webhook when a carrier push's signature does not hold for the secret
    of the account it is about (push formats' ``verify`` returns a bool; this is what a
    caller raises on ``False``)."""

    code = "push_signature_invalid"

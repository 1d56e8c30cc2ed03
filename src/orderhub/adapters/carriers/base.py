"""The one shape every carrier adapter has, and the value objects it speaks in.

A carrier adapter books waybills (:meth:`CarrierAdapter.create_waybill`), cancels them and
fetches tracking; a push format reads a carrier's tracking push. Both hand back
:class:`CarrierEvent` values with the carrier's RAW status code: turning codes into
milestones is the code tables' job (``adapters/carriers/codes``), not the adapters'.

Weights are integer grams, money integer minor units, times aware UTC (DESIGN.md §3).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from orderhub.domain.time import ensure_utc


@dataclass(frozen=True, slots=True)
class Party:
    """A sender or recipient as a carrier needs it (masked phones are passed as given)."""

    name: str | None
    phone: str | None
    country: str
    province: str | None
    city: str | None
    district: str | None
    detail: str | None
    postcode: str | None


@dataclass(frozen=True, slots=True)
class WaybillRequest:
    """What a waybill is booked from. ``shipment_id`` is the idempotency key: asking twice
    for the same shipment gets the same waybill back."""

    shipment_id: str
    carrier: str
    service: str | None
    sender: Party
    recipient: Party
    weight_g: int
    declared_value_minor: int
    currency: str
    reference: str


@dataclass(frozen=True, slots=True)
class Waybill:
    """A booked waybill: the tracking number the carrier issued and where its label is."""

    waybill_no: str
    carrier: str
    label_url: str | None


@dataclass(frozen=True, slots=True)
class CarrierEvent:
    """One tracking event as the carrier reported it: ``code`` is the carrier's RAW code,
    ``occurred_at`` is converted to UTC on construction (a naive time is refused with
    ``InvalidTime``), ``raw`` is the carrier's item it was read from."""

    waybill_no: str
    code: str
    description: str
    occurred_at: datetime
    location: str | None
    raw: dict[str, Any] = field(compare=False, hash=False)

    def __post_init__(self) -> None:
        # Frozen: the UTC conversion has to go through object.__setattr__.
        object.__setattr__(self, "occurred_at", ensure_utc(self.occurred_at, field="occurred_at"))


@dataclass(frozen=True, slots=True)
class CarrierAccount:
    """A tenant's account with a carrier: which ``protocol`` talks to it (see
    ``registry.PROTOCOLS``), where, with which API key, and the secret its pushes are
    signed with. Secrets stay out of ``repr`` so accounts can be logged."""

    carrier: str
    protocol: str
    api_base_url: str
    api_key: str = field(repr=False)
    push_secret: str = field(repr=False)


class CarrierAdapter(Protocol):
    """What OrderHub asks of any carrier. Errors are the ``errors`` module's tree:
    ``CarrierUnavailable`` (retry later), ``CarrierRejected`` (don't), ``WaybillNotFound``."""

    carrier: str

    def create_waybill(self, req: WaybillRequest) -> Waybill:
        """Book a waybill; idempotent per ``req.shipment_id`` (a retry gets the same waybill)."""
        ...

    def cancel_waybill(self, waybill_no: str) -> None:
        """Void a waybill the carrier has not picked up yet (``CarrierRejected`` once it has)."""
        ...

    def fetch_tracking(self, waybill_no: str) -> list[CarrierEvent]:
        """Every event the carrier has for the waybill, oldest first, RAW codes, UTC times."""
        ...

    def close(self) -> None:
        """Release connections the adapter opened itself."""
        ...


class PushFormat(Protocol):
    """How one kind of carrier push is read and authenticated.

    Parsing and verifying are separate on purpose: the webhook must parse first to learn
    which waybills (hence which tenant's account secret) the push is about, then verify
    with that secret before anything is applied.
    """

    name: str

    def parse(self, body: bytes, headers: Mapping[str, str]) -> list[CarrierEvent]:
        """The push's events; raise ``PushUnreadable`` naming the field path at fault."""
        ...

    def verify(self, body: bytes, headers: Mapping[str, str], secret: str) -> bool:
        """Whether the push was signed with ``secret`` (constant-time compare)."""
        ...

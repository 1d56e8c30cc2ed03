"""After-sale events: one class, one audit action per step (``aftersale.<action>``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from orderhub.domain.events import Event


@dataclass(frozen=True, slots=True)
class AfterSaleChanged(Event):
    """Something happened to an after-sale case: ``action`` is requested, decided,
    approved, negotiating, chosen, rejected, cancelled, return_shipped, return_received,
    refunding, refunded, resolved or escalated; ``data`` carries its details."""

    case_id: str
    order_id: str
    action: str
    from_status: str | None
    to_status: str | None
    reason: str | None
    occurred_at: datetime
    data: dict[str, Any] = field(default_factory=dict, compare=False)

    @property
    def subject(self) -> tuple[str, str]:
        return ("aftersale", self.case_id)

    def audit_action(self) -> str:
        return f"aftersale.{self.action}"

    def statuses(self) -> tuple[str | None, str | None]:
        return (self.from_status, self.to_status)

    def reason_text(self) -> str | None:
        return self.reason

    def payload(self) -> dict[str, Any]:
        return {"order_id": self.order_id, **self.data}

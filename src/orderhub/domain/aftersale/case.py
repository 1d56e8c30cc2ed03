"""The after-sale case aggregate (DESIGN.md §3): one buyer request on one order, its
decision, its return parcel and its refund.

Every status change goes through :func:`~orderhub.domain.aftersale.states.transition` and
records an :class:`AfterSaleChanged` event. The case never talks to a channel or a bank:
it says what must happen next (``refund_due``), and the service layer sends the refund
through the outbox and confirms it here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from orderhub.domain.aftersale.amounts import CaseLine
from orderhub.domain.aftersale.events import AfterSaleChanged
from orderhub.domain.aftersale.states import (
    MERCHANT_TURN,
    OPEN,
    AfterSaleStatus,
    AfterSaleType,
    PolicyAction,
    SlaLevel,
    transition,
)
from orderhub.domain.errors import ActionNotAllowed, InvalidAfterSale

S = AfterSaleStatus

# The actions an operator (or the buyer, through the channel) may take, by status.
ACTIONS: dict[AfterSaleStatus, tuple[str, ...]] = {
    S.REQUESTED: ("approve", "reject", "negotiate", "cancel", "assign"),
    S.NEGOTIATING: ("choose", "approve", "reject", "cancel"),
    S.APPROVED: ("send_replacement", "cancel"),
    S.AWAITING_RETURN: ("return_shipped", "receive_return", "cancel"),
    S.RETURN_RECEIVED: ("send_replacement",),
    S.REFUNDING: ("retry_refund",),
    S.REFUNDED: (),
    S.RESOLVED: (),
    S.REJECTED: (),
    S.CANCELLED: (),
}


@dataclass(frozen=True, slots=True)
class Option:
    """A choice offered while negotiating: ``kind`` is partial_refund (``percent`` of the
    case amount), full_refund, reship or points (``points``)."""

    id: str
    kind: str
    percent: int | None = None
    points: int | None = None
    label: str = ""

    KINDS = ("partial_refund", "full_refund", "reship", "points")

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form."""
        out: dict[str, Any] = {"id": self.id, "kind": self.kind, "label": self.label or self.describe()}
        if self.percent is not None:
            out["percent"] = self.percent
        if self.points is not None:
            out["points"] = self.points
        return out

    def describe(self) -> str:
        """A short human label."""
        if self.kind == "partial_refund":
            return f"refund {self.percent}% and keep the goods"
        if self.kind == "points":
            return f"{self.points} points"
        return {"full_refund": "full refund", "reship": "send a replacement"}.get(self.kind, self.kind)

    @classmethod
    def from_dict(cls, raw: dict[str, Any], where: str = "option") -> Option:
        """Parse one offered option; :class:`InvalidAfterSale` names the bad field."""
        if not isinstance(raw, dict):
            raise InvalidAfterSale(f"{where}: expected an object such as {{\"id\": \"half\", \"kind\": "
                                   "\"partial_refund\", \"percent\": 50}", field=where)
        kind = raw.get("kind")
        if kind not in cls.KINDS:
            raise InvalidAfterSale(f"{where}.kind: one of {', '.join(cls.KINDS)}, got {kind!r}", field=f"{where}.kind")
        option_id = raw.get("id") or kind
        if not isinstance(option_id, str) or not 1 <= len(option_id) <= 40:
            raise InvalidAfterSale(f"{where}.id: 1–40 characters", field=f"{where}.id")
        percent = raw.get("percent")
        if kind == "partial_refund" and (type(percent) is not int or not 1 <= percent <= 99):
            raise InvalidAfterSale(f"{where}.percent: a whole number 1–99 for a partial refund, got {percent!r}",
                                   field=f"{where}.percent")
        points = raw.get("points")
        if kind == "points" and (type(points) is not int or points < 1):
            raise InvalidAfterSale(f"{where}.points: a positive whole number, got {points!r}",
                                   field=f"{where}.points")
        label = raw.get("label") or ""
        return cls(id=option_id, kind=kind, percent=percent if kind == "partial_refund" else None,
                   points=points if kind == "points" else None, label=str(label)[:200])


@dataclass(frozen=True, slots=True)
class Decision:
    """What the refund policy (or a person) decided, and why: ``rule`` is the rule that
    fired (``manual:<actor>`` for a person), ``policy_version`` the rule set's version."""

    action: PolicyAction
    rule: str
    reason: str | None = None
    queue: str | None = None
    options: tuple[Option, ...] = ()
    policy_version: int = 0
    explanation: str = ""

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form (stored on the case, shown by the API)."""
        return {"action": self.action.value, "rule": self.rule, "reason": self.reason, "queue": self.queue,
                "options": [o.to_dict() for o in self.options], "policy_version": self.policy_version,
                "explanation": self.explanation}

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> Decision:
        """The inverse of :meth:`to_dict`."""
        return cls(action=PolicyAction(raw["action"]), rule=raw["rule"], reason=raw.get("reason"),
                   queue=raw.get("queue"), options=tuple(Option.from_dict(o) for o in raw.get("options") or ()),
                   policy_version=int(raw.get("policy_version") or 0), explanation=raw.get("explanation") or "")


@dataclass(frozen=True, slots=True)
class SlaPolicy:
    """Hours after a case opens at which it turns yellow, orange and red."""

    yellow_hours: float = 12
    orange_hours: float = 24
    red_hours: float = 36

    def due(self, opened_at: datetime) -> dict[SlaLevel, datetime]:
        """The time each level is reached."""
        return {SlaLevel.YELLOW: opened_at + timedelta(hours=self.yellow_hours),
                SlaLevel.ORANGE: opened_at + timedelta(hours=self.orange_hours),
                SlaLevel.RED: opened_at + timedelta(hours=self.red_hours)}

    def level_at(self, opened_at: datetime, now: datetime) -> SlaLevel:
        """The level a case opened at ``opened_at`` has at ``now``."""
        level = SlaLevel.NONE
        for candidate, at in self.due(opened_at).items():
            if now >= at:
                level = candidate
        return level


@dataclass
class AfterSaleCase:
    """One after-sale case. Build new ones with :meth:`open`."""

    id: str
    tenant_id: str
    order_id: str
    channel: str
    shop: str
    type: AfterSaleType
    status: AfterSaleStatus
    reason: str
    currency: str
    amount: int
    lines: tuple[CaseLine, ...]
    source: str
    created_at: datetime
    updated_at: datetime
    external_ref: str | None = None
    channel_status: str | None = None
    buyer_key: str | None = None
    note: str | None = None
    decision: Decision | None = None
    # The facts the policy decided on (kept so a proposed policy can be replayed on them).
    policy_facts: dict[str, Any] | None = None
    queue: str | None = None
    choice: str | None = None
    refunded_amount: int = 0
    refund_ref: str | None = None
    refunded_at: datetime | None = None
    refund_via: str | None = None
    return_parcel: dict[str, Any] | None = None
    resolution: str | None = None
    sla_level: SlaLevel = SlaLevel.NONE
    sla_due: dict[str, datetime] = field(default_factory=dict)
    closed_at: datetime | None = None
    version: int = 1
    events: list[AfterSaleChanged] = field(default_factory=list)

    # ------------------------------------------------------------------ creation
    @classmethod
    def open(cls, *, case_id: str, tenant_id: str, order_id: str, channel: str, shop: str, type: AfterSaleType,
             reason: str, currency: str, amount: int, lines: tuple[CaseLine, ...], source: str, now: datetime,
             sla: SlaPolicy, external_ref: str | None = None, channel_status: str | None = None,
             buyer_key: str | None = None, note: str | None = None) -> AfterSaleCase:
        """A new case in ``requested``, its SLA clock started at ``now``."""
        if not reason or not reason.strip():
            raise InvalidAfterSale("reason: required, e.g. changed_mind, damaged, not_received", field="reason")
        case = cls(id=case_id, tenant_id=tenant_id, order_id=order_id, channel=channel, shop=shop, type=type,
                   status=S.REQUESTED, reason=reason.strip()[:200], currency=currency, amount=amount, lines=lines,
                   source=source, created_at=now, updated_at=now, external_ref=external_ref,
                   channel_status=channel_status, buyer_key=buyer_key, note=note,
                   sla_due={level.value: at for level, at in sla.due(now).items()})
        case._record("requested", None, S.REQUESTED, case.reason, now, {
            "type": type.value, "amount": amount, "currency": currency, "source": source,
            "lines": [cl.to_dict() for cl in lines], "external_ref": external_ref})
        return case

    # ------------------------------------------------------------------ queries
    @property
    def is_open(self) -> bool:
        """True until the case is refunded, resolved, rejected or cancelled."""
        return self.status in OPEN

    @property
    def refund_due(self) -> bool:
        """True when the refund should be (or is being) sent: the case is ``refunding``."""
        return self.status is S.REFUNDING

    def allowed_actions(self) -> tuple[str, ...]:
        """The actions :meth:`check_action` accepts now (a replacement only for an approved
        reship or an exchange whose return came back)."""
        actions = ACTIONS[self.status]
        if "send_replacement" in actions and self.type not in (AfterSaleType.RESHIP, AfterSaleType.EXCHANGE):
            actions = tuple(a for a in actions if a != "send_replacement")
        return actions

    def check_action(self, action: str) -> None:
        """Raise :class:`ActionNotAllowed` when ``action`` doesn't fit the current status."""
        allowed = self.allowed_actions()
        if action not in allowed:
            listed = ", ".join(allowed) or "none (the case is closed)"
            raise ActionNotAllowed(f"action {action!r} is not allowed on a case in status {self.status.value!r}; "
                                   f"allowed now: {listed}", field="action", allowed=allowed)

    # ------------------------------------------------------------------ decisions
    def decide(self, decision: Decision, *, now: datetime, by: str = "policy") -> None:
        """Record the policy's decision and act on it: auto_approve approves, negotiate
        offers the options, manual_review assigns the queue, reject rejects."""
        self.decision = decision
        self._record("decided", self.status, self.status, decision.reason, now,
                     {"decision": decision.to_dict(), "by": by, "type": self.type.value})
        if decision.action is PolicyAction.AUTO_APPROVE:
            self.approve(now=now, by=by)
        elif decision.action is PolicyAction.NEGOTIATE:
            self._move(S.NEGOTIATING, "negotiating", decision.reason, now,
                       {"options": [o.to_dict() for o in decision.options]})
        elif decision.action is PolicyAction.MANUAL_REVIEW:
            self.queue = decision.queue or "after_sale"
        else:
            self.reject(reason=decision.reason or f"refused by rule {decision.rule}", now=now)

    def approve(self, *, now: datetime, by: str, amount: int | None = None) -> None:
        """Approve the case (optionally for a smaller ``amount``) and move to its next step:
        the return parcel is expected (return_refund, exchange), the refund is due
        (refund_only, price_protection), or a replacement is due (reship: stays approved
        until :meth:`resolve`)."""
        if amount is not None:
            if amount < 0 or amount > self.amount:
                raise InvalidAfterSale(f"amount: approve at most the {self.amount} asked (minor units), "
                                       f"got {amount}", field="amount")
            if amount == 0 and self.type.moves_money:
                raise InvalidAfterSale("amount: approving a refund of zero; reject the case instead", field="amount")
            self._scale_to(amount)
        self._move(S.APPROVED, "approved", None, now, {"by": by, "amount": self.amount})
        if self.type.needs_return:
            self.return_parcel = {"status": "expected", "lines": [cl.to_dict() for cl in self.lines],
                                  "carrier": None, "waybill_no": None, "shipped_at": None, "received_at": None,
                                  "received": []}
            self._move(S.AWAITING_RETURN, "awaiting_return", None, now, {"expected": self.return_parcel["lines"]})
        elif self.type.moves_money:
            self._move(S.REFUNDING, "refunding", None, now, {"amount": self.amount})

    def negotiate(self, options: tuple[Option, ...], *, now: datetime, by: str, reason: str | None = None) -> None:
        """Offer the buyer ``options`` (an operator's counter-offer)."""
        if not options:
            raise InvalidAfterSale("options: offer at least one choice", field="options")
        self.decision = Decision(action=PolicyAction.NEGOTIATE, rule=f"manual:{by}", reason=reason,
                                 options=options, policy_version=self.decision.policy_version if self.decision else 0)
        self._move(S.NEGOTIATING, "negotiating", reason, now, {"options": [o.to_dict() for o in options], "by": by})

    def choose(self, option_id: str, *, now: datetime, by: str) -> Option:
        """Apply the buyer's choice among the offered options and return it. A partial
        refund scales the amount and approves; full refund approves; reship turns the case
        into a reship (approved, replacement due); points resolve it."""
        offered = {o.id: o for o in (self.decision.options if self.decision else ())}
        option = offered.get(option_id)
        if option is None:
            raise ActionNotAllowed(f"option: {option_id!r} was not offered; offered: {', '.join(offered) or 'none'}",
                                   field="option", allowed=tuple(offered))
        self.choice = option.id
        self._record("chosen", self.status, self.status, None, now, {"option": option.to_dict(), "by": by})
        if option.kind == "partial_refund":
            assert option.percent is not None
            self.type = AfterSaleType.REFUND_ONLY if self.type.moves_money else self.type
            self._scale_to(self.amount * option.percent // 100)
            self.approve(now=now, by=by)
        elif option.kind == "full_refund":
            self.approve(now=now, by=by)
        elif option.kind == "reship":
            self.type = AfterSaleType.RESHIP
            self._scale_to(0)
            self._move(S.APPROVED, "approved", "buyer chose a replacement", now, {"by": by})
        else:
            self._scale_to(0)
            self._move(S.APPROVED, "approved", "buyer chose points", now, {"by": by})
            self.resolve(f"{option.points} points granted instead of a refund", now=now)
        return option

    def reject(self, *, reason: str, now: datetime) -> None:
        """Refuse the case (a reason is required: the buyer sees it)."""
        if not reason or not reason.strip():
            raise InvalidAfterSale("reason: say why the case is rejected", field="reason")
        self._move(S.REJECTED, "rejected", reason.strip()[:500], now, {})

    def cancel(self, *, reason: str, now: datetime) -> None:
        """Close the case without money (the buyer withdrew it, or never returned the goods)."""
        self._move(S.CANCELLED, "cancelled", (reason or "cancelled").strip()[:500], now, {})

    def assign(self, queue: str, *, now: datetime, by: str) -> None:
        """Put the case in a review queue."""
        self.queue = queue
        self._record("assigned", self.status, self.status, None, now, {"queue": queue, "by": by})

    # ------------------------------------------------------------------ return parcel
    def return_shipped(self, *, carrier: str | None, waybill_no: str, now: datetime) -> None:
        """The buyer sent the goods back with ``waybill_no``."""
        self.check_action("return_shipped")
        assert self.return_parcel is not None
        self.return_parcel = {**self.return_parcel, "status": "in_transit", "carrier": carrier,
                              "waybill_no": waybill_no, "shipped_at": now.isoformat()}
        self._record("return_shipped", self.status, self.status, None, now,
                     {"carrier": carrier, "waybill_no": waybill_no})

    def receive_return(self, received: list[dict[str, Any]], *, warehouse: str, now: datetime, by: str) -> None:
        """The return parcel was scanned in at ``warehouse``: ``received`` lists
        ``{line_no, sku, quantity, condition}`` (sellable or damaged). Return-and-refund
        cases then owe the refund; exchanges a replacement."""
        self.check_action("receive_return")
        assert self.return_parcel is not None
        self.return_parcel = {**self.return_parcel, "status": "received", "received_at": now.isoformat(),
                              "received": received, "warehouse": warehouse}
        self._move(S.RETURN_RECEIVED, "return_received", None, now,
                   {"warehouse": warehouse, "received": received, "by": by})
        if self.type.moves_money:
            self._move(S.REFUNDING, "refunding", None, now, {"amount": self.amount})

    # ------------------------------------------------------------------ refund
    def refunded(self, *, ref: str, amount: int, via: str, now: datetime) -> bool:
        """The refund went through (``via`` the gateway, or the channel settled it). Returns
        False, changing nothing, when the case was already refunded (a repeated
        confirmation)."""
        if self.status is S.REFUNDED:
            return False
        if amount < 0 or (amount > self.amount and via != "channel"):
            raise InvalidAfterSale(f"amount: refunded {amount}, the case is for {self.amount}", field="amount")
        self.refunded_amount = amount
        self.refund_ref = ref
        self.refunded_at = now
        self.refund_via = via
        self._move(S.REFUNDED, "refunded", None, now, {"amount": amount, "ref": ref, "via": via,
                                                       "channel": self.channel, "currency": self.currency})
        return True

    def resolve(self, resolution: str, *, now: datetime, replacement_order_id: str | None = None) -> None:
        """Close an approved case that moved no money (replacement sent, points granted)."""
        self.resolution = resolution[:500]
        self._move(S.RESOLVED, "resolved", resolution[:500], now,
                   {"replacement_order_id": replacement_order_id} if replacement_order_id else {})

    # ------------------------------------------------------------------ SLA
    def escalate(self, level: SlaLevel, *, now: datetime) -> bool:
        """Raise the SLA level to ``level`` (never lower it); True when it rose. Only while
        the merchant owes the next step."""
        if self.status not in MERCHANT_TURN or level.rank <= self.sla_level.rank:
            return False
        before = self.sla_level
        self.sla_level = level
        self._record("escalated", self.status, self.status, f"SLA {before.value} → {level.value}", now,
                     {"level": level.value, "due": {k: v.isoformat() for k, v in self.sla_due.items()}})
        return True

    # ------------------------------------------------------------------ internals
    def _scale_to(self, amount: int) -> None:
        if amount == self.amount:
            return
        full = self.amount
        scaled: list[CaseLine] = []
        given = 0
        for i, cl in enumerate(self.lines):
            share = amount - given if i == len(self.lines) - 1 else (cl.amount * amount // full if full else 0)
            given += share
            scaled.append(CaseLine(cl.line_no, cl.sku, cl.quantity, share))
        self.lines = tuple(scaled)
        self.amount = amount

    def _move(self, target: AfterSaleStatus, action: str, reason: str | None, now: datetime,
              data: dict[str, Any]) -> None:
        before = self.status
        self.status = transition(before, target)
        if target not in OPEN:
            self.closed_at = now
        self._record(action, before, target, reason, now, data)

    def _record(self, action: str, before: AfterSaleStatus | None, after: AfterSaleStatus,  # noqa: PLR0917
                reason: str | None, now: datetime, data: dict[str, Any]) -> None:
        self.updated_at = now
        self.events.append(AfterSaleChanged(
            tenant_id=self.tenant_id, case_id=self.id, order_id=self.order_id, action=action,
            from_status=before.value if before else None, to_status=after.value, reason=reason, occurred_at=now,
            data=data))

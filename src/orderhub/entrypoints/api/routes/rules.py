"""Rule-set routes (DESIGN.md §4, §6): thin — parse, build a command, hand it to the bus."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Path, Query
from pydantic import BaseModel

from orderhub.domain import commands
from orderhub.domain.access import Permission
from orderhub.entrypoints.api.deps import CanReadOrders, Hub, Principal, require
from orderhub.entrypoints.api.schemas import Clean
from orderhub.service_layer.aftersale_sandbox import replay_refund_policy
from orderhub.service_layer.errors import InvalidInput
from orderhub.service_layer.handlers.rules import StoredRuleSet, check_kind, current_rule_set

router = APIRouter(prefix="/api/v1/rules", tags=["rules"])

CanManageRules = Annotated[Principal, Depends(require(Permission.RULES_MANAGE))]
Kind = Annotated[str, Path(min_length=1, max_length=60, description="rule-set kind, e.g. order_filters"), Clean]
RuleSetBody = Annotated[dict[str, Any], Body(
    description="the rule set: {params?, rules: [{name, when (CEL), action: hold|tag, reason?, tag?}]} "
                "(docs/rules.md)",
    examples=[{"params": {"accepted_payment_methods": ["alipay", "wechat_pay"]},
               "rules": [{"name": "unlisted_payment_method", "action": "hold",
                          "when": "size(params.accepted_payment_methods) > 0 && "
                                  "!(order.payment_method in params.accepted_payment_methods)",
                          "reason": "payment method not accepted"}]}])]


class RuleSetOut(BaseModel):
    """A rule set as stored; version 0 is the shipped default (nothing stored yet)."""

    kind: str
    version: int
    body: dict[str, Any]


def _out(stored: StoredRuleSet) -> dict[str, Any]:
    return {"kind": stored.kind, "version": stored.version, "body": stored.body}


@router.get("/{kind}", response_model=RuleSetOut)
def get_rule_set(kind: Kind, principal: CanReadOrders, hub: Hub) -> dict[str, Any]:
    """The tenant's current rule set of ``kind`` (the shipped default as version 0 until one is stored)."""
    return _out(current_rule_set(hub.engine, principal.tenant_id, kind))


@router.put("/{kind}", response_model=RuleSetOut)
def put_rule_set(kind: Kind, body: RuleSetBody, principal: CanManageRules, hub: Hub) -> dict[str, Any]:
    """Store a new version of the rule set; refused with the field path (``rules[2].when``) if any rule is invalid."""
    stored: StoredRuleSet = hub.bus.handle(commands.PutRuleSet(actor=principal.actor(), kind=kind, body=body))
    return _out(stored)


@router.post("/{kind}/sandbox")
def sandbox(kind: Kind, body: RuleSetBody, principal: CanManageRules, hub: Hub,
            limit: Annotated[int, Query(ge=1, le=10_000)] = 1000) -> dict[str, Any]:
    """Replay a proposed rule set on the stored decisions it would have made (refund_policy:
    the facts each case was decided on): per rule, how many decisions change, with example
    cases. Nothing is stored or changed."""
    check_kind(kind)
    if kind != "refund_policy":
        raise InvalidInput(f"kind: the sandbox replays refund_policy so far, not {kind!r}", field="kind")
    return replay_refund_policy(hub.queries, principal.tenant_id, body, limit=limit)

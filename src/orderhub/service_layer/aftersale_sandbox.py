"""The refund policy sandbox (DESIGN.md §4): replay a proposed ``refund_policy`` on the facts
stored cases were decided on, and report what would change — per rule, with examples —
without touching anything.

Each case keeps the facts the policy saw when it was opened (``policy_facts``: the case, the
order as it was then, the buyer's history), so the replay answers "what would this policy
have decided", not "what would it decide on today's data".
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Mapping
from typing import Any

from orderhub.adapters.refund_policy import REFUND_POLICY, compile_refund_policy
from orderhub.service_layer.aftersale_queries import AfterSaleQueries
from orderhub.service_layer.errors import InvalidInput

MAX_CASES = 10_000
EXAMPLES = 5


def replay_refund_policy(queries: AfterSaleQueries, tenant_id: str, body: Mapping[str, Any], *,
                         limit: int = 1000) -> dict[str, Any]:
    """Decide the tenant's ``limit`` most recent cases again with the proposed ``body``.

    Raises RuleInvalid (with the field path) when the body isn't a valid refund policy and
    InvalidInput for a bad limit. Reads only."""
    if not 1 <= limit <= MAX_CASES:
        raise InvalidInput(f"limit: 1 to {MAX_CASES} cases", field="limit")
    proposed = compile_refund_policy(body, version=-1)
    rows = queries.decided_facts(tenant_id, limit=limit)
    before_rules: Counter[str] = Counter()
    after_rules: Counter[str] = Counter()
    changes: dict[tuple[str, str, str, str], list[str]] = defaultdict(list)
    for case_id, was, facts in rows:
        now = proposed.decide(facts)
        before_rules[str(was.get("rule"))] += 1
        after_rules[now.rule] += 1
        key = (str(was.get("action")), str(was.get("rule")), now.action.value, now.rule)
        if key[:2] != key[2:]:
            changes[key].append(case_id)
    rules = sorted(set(before_rules) | set(after_rules))
    return {
        "kind": REFUND_POLICY,
        "cases": len(rows),
        "changed": sum(len(ids) for ids in changes.values()),
        "rules": [{"rule": r, "before": before_rules[r], "after": after_rules[r],
                   "difference": after_rules[r] - before_rules[r]} for r in rules],
        "changes": [{"from": {"action": a, "rule": b}, "to": {"action": x, "rule": y}, "count": len(ids),
                     "examples": ids[:EXAMPLES]}
                    for (a, b, x, y), ids in sorted(changes.items(), key=lambda kv: -len(kv[1]))],
    }

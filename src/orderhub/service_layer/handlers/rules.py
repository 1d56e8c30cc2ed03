"""Rule sets (DESIGN.md §4): store a new version of a tenant's rule set, read the current one.

A rule set is validated and its conditions compiled before it is stored, so a version that
exists is a version the workers can run. Until a tenant stores its own, the shipped
default (``adapters/rules_defaults/<kind>.yaml``) applies, reported as version 0.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine

from orderhub.adapters.db.errors import DuplicateKeyError
from orderhub.adapters.db.rules import SqlRuleSetRepository
from orderhub.adapters.rules import default_rule_set, rule_kinds, validate_rule_set
from orderhub.domain.commands import PutRuleSet
from orderhub.domain.events import RuleSetUpdated
from orderhub.service_layer.errors import ConcurrencyConflict, NotFound
from orderhub.service_layer.unit_of_work import SqlAlchemyUnitOfWork


class UnknownRuleKind(NotFound):
    """Raised when a rule-set kind (``/rules/{kind}``) is not one OrderHub knows."""

    code = "unknown_rule_kind"


@dataclass(frozen=True, slots=True)
class StoredRuleSet:
    """A tenant's rule set of ``kind`` at ``version`` (0: the shipped default, never stored)."""

    kind: str
    version: int
    body: dict[str, Any]


def check_kind(kind: str) -> None:
    """Raise UnknownRuleKind (listing the known kinds) unless ``kind`` is one."""
    if kind not in rule_kinds():
        raise UnknownRuleKind(f"unknown rule kind {kind!r}; known kinds: {', '.join(rule_kinds())}", field="kind")


def put_rule_set(cmd: PutRuleSet, uow: SqlAlchemyUnitOfWork) -> StoredRuleSet:
    """Validate ``cmd.body`` as a rule set of ``cmd.kind`` and store it as the next version.

    Raises UnknownRuleKind, RuleInvalid (with the field path, e.g. ``rules[2].when``) or,
    when another request stored a version at the same moment, ConcurrencyConflict.
    """
    check_kind(cmd.kind)
    body: dict[str, Any] = copy.deepcopy(dict(cmd.body))
    validate_rule_set(cmd.kind, body)
    with uow:
        uow.act_as(cmd.actor)
        now = uow.clock.now()
        repo = uow.rules
        try:
            version = repo.add(cmd.actor.tenant_id, cmd.kind, body, created_by=cmd.actor.actor, now=now)
        except DuplicateKeyError as exc:
            raise ConcurrencyConflict(f"{exc.message}; fetch the rule set again and retry") from exc
        uow.record(RuleSetUpdated(tenant_id=cmd.actor.tenant_id, kind=cmd.kind, version=version, occurred_at=now,
                                  body=body))
        uow.commit()
    return StoredRuleSet(kind=cmd.kind, version=version, body=body)


def current_rule_set(engine: Engine, tenant_id: str, kind: str) -> StoredRuleSet:
    """The tenant's newest rule set of ``kind``, or the shipped default as version 0.

    Read-only; belongs with the other queries (``Queries.rule_set``) once that is wired.
    """
    check_kind(kind)
    with engine.connect() as conn:
        latest = SqlRuleSetRepository(conn).latest(tenant_id, kind)
        # End the read with COMMIT: on psycopg a pool ROLLBACK also drops prepared statements.
        if conn.in_transaction():
            conn.commit()
    if latest is None:
        return StoredRuleSet(kind=kind, version=0, body=default_rule_set(kind))
    version, body = latest
    return StoredRuleSet(kind=kind, version=version, body=body)

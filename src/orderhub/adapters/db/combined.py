"""PostgreSQL statements that do several steps of one command in a single round trip.

A command's transaction is a handful of small statements; on PostgreSQL each costs a round
trip and, more than that on a small machine, a fixed amount of client and server CPU. These
statements chain the steps as data-modifying CTEs, each gated on the one before, so the
rows are written (and the locks taken) in the same order as by the separate statements
they replace:

- create: look up the Idempotency-Key → claim it → insert the order → insert its lines →
  lock the tenant's audit chain head (and read its active webhook endpoints);
- save: update the order (optimistic version check) → insert its new event key → lock the
  chain head (and read the endpoints).

The head is locked only when the writes went through, so a command that fails or replays
an earlier result doesn't hold it. The unit of work then writes the audit entries and
outbox rows at commit without locking the head again (see ``SqlAuditRepository``).

SQLite has no data-modifying CTEs and no round trips to save: it runs the separate
statements.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from functools import cache
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    ColumnElement,
    Row,
    Select,
    String,
    TextualSelect,
    and_,
    bindparam,
    column,
    exists,
    literal,
    select,
    text,
    true,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.types import TypeEngine

from orderhub.adapters.db.audit import LockedHead, subscriptions
from orderhub.adapters.db.tables import (
    order_event_keys,
    orders,
    tenants,
    webhook_endpoints,
)
from orderhub.adapters.db.types import UTCDateTime


def _param(name: str, column: Any) -> Any:
    return bindparam(name, type_=column.type)


def _lock_head(gate: ColumnElement[bool]) -> Any:
    """CTE ``head``: the chain head of ``:head_tenant_id`` locked FOR NO KEY UPDATE, if ``gate``.

    (Not ``:tenant_id``: SQLAlchemy would take a parameter named like a column of an UPDATE's
    table for one more SET column.)"""
    return (select(tenants.c.id, tenants.c.audit_head_seq, tenants.c.audit_head_hash)
            .where(tenants.c.id == bindparam("head_tenant_id"), gate)
            .with_for_update(key_share=True, of=tenants).cte("head"))


def _with_head(head: Any, *flags: ColumnElement[Any]) -> Select[Any]:
    """The main query: ``flags`` and the locked head with the tenant's active webhook
    subscriptions, in subscription order (one row per endpoint; one row even when nothing
    was locked)."""
    one = select(literal(1).label("one")).subquery("one")
    joined = one.outerjoin(head, true()).outerjoin(
        webhook_endpoints, and_(webhook_endpoints.c.tenant_id == head.c.id, webhook_endpoints.c.active.is_(True)))
    return (select(*flags, head.c.audit_head_seq.label("head_seq"), head.c.audit_head_hash.label("head_hash"),
                   webhook_endpoints.c.id.label("endpoint_id"), webhook_endpoints.c.events.label("endpoint_events"))
            .select_from(joined).order_by(webhook_endpoints.c.created_at, webhook_endpoints.c.id))


def locked_head(rows: Sequence[Row[Any]]) -> LockedHead | None:
    """The head a combined statement locked (None when its gate kept it from locking)."""
    first = rows[0]
    if first.head_seq is None:
        return None
    return LockedHead(first.head_seq, first.head_hash, subscriptions(rows))


def _create_sql(claim: bool) -> str:
    # The order row and its lines come as two JSON parameters, whatever the number of lines:
    # the statement stays short and its parameters few, so psycopg caches its conversion to
    # PostgreSQL's placeholders (it re-parses statements over 4 kB or 50 parameters on every
    # execution). JSON columns are taken with ``->``, which keeps a JSON ``null`` as stored
    # by the separate statements (jsonb_populate_record would turn it into SQL NULL).
    json_columns = {c.name for c in orders.c if isinstance(c.type, JSON)}
    columns = ", ".join(c.name for c in orders.c)
    values = ", ".join(f"o.j -> '{c.name}'" if c.name in json_columns else f"r.{c.name}" for c in orders.c)
    steps = []
    gate = "true"
    if claim:
        steps += [
            """previous AS (
    SELECT request_hash, resource_id FROM idempotency_keys
    WHERE tenant_id = :tenant_id AND scope = :key_scope AND key = :key_key)""",
            """claimed AS (
    INSERT INTO idempotency_keys (tenant_id, scope, key, request_hash, resource_id, created_at)
    SELECT :tenant_id, :key_scope, :key_key, :key_request_hash, :order_id, :key_created_at
    WHERE NOT EXISTS (SELECT FROM previous)
    ON CONFLICT DO NOTHING RETURNING key)"""]
        gate = "EXISTS (SELECT FROM claimed)"
    steps += [  # the SQL is made of table and column names only: no injection vector
        f"""new_order AS (
    INSERT INTO orders ({columns})
    SELECT {values}
    FROM (SELECT :order AS j) AS o, jsonb_populate_record(NULL::orders, o.j) AS r
    WHERE {gate}
    ON CONFLICT DO NOTHING RETURNING id)""",  # noqa: S608
        """new_lines AS (
    INSERT INTO order_lines SELECT * FROM jsonb_populate_recordset(NULL::order_lines, :lines)
    WHERE EXISTS (SELECT FROM new_order))""",
        """head AS (
    SELECT id, audit_head_seq, audit_head_hash FROM tenants
    WHERE id = :tenant_id AND EXISTS (SELECT FROM new_order)
    FOR NO KEY UPDATE)"""]
    flags = ["EXISTS (SELECT FROM new_order) AS inserted"]
    if claim:
        flags = ["(SELECT request_hash FROM previous) AS previous_request_hash",
                 "(SELECT resource_id FROM previous) AS previous_resource_id",
                 "EXISTS (SELECT FROM claimed) AS claimed", *flags]
    return f"""WITH {", ".join(steps)}
SELECT {", ".join(flags)}, head.audit_head_seq AS head_seq, head.audit_head_hash AS head_hash,
    e.id AS endpoint_id, e.events AS endpoint_events
FROM (SELECT 1) AS one
LEFT JOIN head ON true
LEFT JOIN webhook_endpoints AS e ON e.tenant_id = head.id AND e.active
ORDER BY e.created_at, e.id"""  # noqa: S608


@cache
def create(claim: bool) -> TextualSelect:
    """Insert an order (``:order``, its row as JSON; see ``order_json``) and its lines
    (``:lines``, a JSON array of their rows); with ``claim``, first look up and claim the
    Idempotency-Key (``:key_scope``, ``:key_key``, ``:key_request_hash``, ``:key_created_at``)
    for ``:order_id``. ``:tenant_id`` is the order's tenant. Returns rows with
    ``previous_request_hash`` and ``previous_resource_id`` (the key's earlier record, if
    any) and ``claimed`` (with ``claim``), ``inserted``, and the locked head."""
    result_types: dict[str, TypeEngine[Any]] = {}
    if claim:
        result_types.update(previous_request_hash=String(), previous_resource_id=String(), claimed=Boolean())
    result_types.update(inserted=Boolean(), head_seq=BigInteger(), head_hash=String())
    result_types.update(endpoint_id=webhook_endpoints.c.id.type, endpoint_events=webhook_endpoints.c.events.type)
    # Result columns given in order (not by keyword): SQLAlchemy then matches them by position
    # and caches the result metadata instead of matching names on every execution.
    return text(_create_sql(claim)).bindparams(
        bindparam("order", type_=JSONB()), bindparam("lines", type_=JSONB()),
        *([bindparam("key_created_at", type_=UTCDateTime())] if claim else [])).columns(
        *(column(name, type_) for name, type_ in result_types.items()))


def order_json(row: dict[str, Any]) -> dict[str, Any]:
    """An ``orders`` row for ``:order``: datetimes as ISO 8601 text (checked aware, as the
    UTCDateTime column type checks them)."""
    out = dict(row)
    for name, value in row.items():
        if isinstance(value, datetime):
            if value.tzinfo is None:
                raise ValueError("naive datetime given to a UTC column; convert to aware UTC first")
            out[name] = value.astimezone(UTC).isoformat()
    return out


@cache
def save(columns: tuple[str, ...], with_key: bool) -> Select[Any]:
    """Update the order ``:where_tenant_id``/``:where_id`` if it is at ``:where_version``
    (setting ``columns`` from ``set_{column}``) and, ``with_key``, insert its new event key
    ``:event_key`` (at ``:key_created_at``) if it did. Returns rows with ``updated``,
    ``key_inserted`` and the locked head (``:head_tenant_id``)."""
    updated = (orders.update()
               .where(orders.c.tenant_id == bindparam("where_tenant_id"), orders.c.id == bindparam("where_id"),
                      orders.c.version == bindparam("where_version"))
               .values({orders.c[name]: _param(f"set_{name}", orders.c[name]) for name in columns})
               .returning(orders.c.id).cte("updated_order"))
    gate: ColumnElement[bool] = exists(select(updated.c.id))
    flags: list[ColumnElement[Any]] = [gate.label("updated")]
    if with_key:
        key = (pg_insert(order_event_keys).from_select(
            ["tenant_id", "order_id", "event_key", "created_at"],
            select(_param("where_tenant_id", order_event_keys.c.tenant_id),
                   _param("where_id", order_event_keys.c.order_id),
                   _param("event_key", order_event_keys.c.event_key),
                   _param("key_created_at", order_event_keys.c.created_at)).where(gate))
            .on_conflict_do_nothing().returning(order_event_keys.c.event_key).cte("new_event_key"))
        gate = exists(select(key.c.event_key))
        flags.append(gate.label("key_inserted"))
    return _with_head(_lock_head(gate), *flags)

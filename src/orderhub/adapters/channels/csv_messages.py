"""CSV import rows grouped into one channel message per order (the ``csv`` channel's payload).

A CSV file has one row per order line; :func:`csv_rows_to_messages` turns the rows into
``{"order_no": ..., "rows": [{column: value, ...}, ...]}`` messages, the shape the ``csv``
mapping spec reads (columns: docs/channels.md §9). Rows are grouped by ``order_no`` in
order of first appearance; a row without ``order_no`` is an order of its own, and its id is
then derived from its content by the spec (never from the clock or randomness).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any


def clean_row(row: Mapping[Any, Any]) -> dict[str, str]:
    """Trim names and values; drop empty cells (so an empty column changes neither the mapping
    nor the content hash) and the overflow cells ``csv.DictReader`` files under ``None``."""
    cleaned: dict[str, str] = {}
    for name, value in row.items():
        if name is None or value is None or isinstance(value, list):
            continue
        text = str(value).strip()
        if text:
            cleaned[str(name).strip().lstrip("\ufeff")] = text
    return cleaned


def csv_rows_to_messages(reader_rows: Iterable[Mapping[Any, Any]]) -> list[dict[str, Any]]:
    """Group CSV rows (e.g. from ``csv.DictReader``) into one message per order."""
    messages: list[dict[str, Any]] = []
    by_order: dict[str, dict[str, Any]] = {}
    for row in reader_rows:
        cleaned = clean_row(row)
        if not cleaned:
            continue
        order_no = cleaned.get("order_no")
        if order_no is None:
            messages.append({"rows": [cleaned]})
            continue
        message = by_order.get(order_no)
        if message is None:
            message = {"order_no": order_no, "rows": []}
            by_order[order_no] = message
            messages.append(message)
        message["rows"].append(cleaned)
    return messages

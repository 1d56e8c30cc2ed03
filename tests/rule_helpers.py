"""Helpers shared by the rule-set tests (routing, refund policy…)."""

from __future__ import annotations

from typing import Any


def with_value(body: dict[str, Any], path: list[Any], value: Any) -> dict[str, Any]:
    """``body`` with the value at ``path`` replaced, or removed when ``value`` is ``...``
    (changed in place and returned, so pass a fresh copy)."""
    target: Any = body
    for step in path[:-1]:
        target = target[step]
    if value is ...:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return body

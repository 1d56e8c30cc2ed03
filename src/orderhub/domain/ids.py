"""Identifiers: deterministic where replay must be stable, random elsewhere."""

from __future__ import annotations

import base64
import hashlib
import secrets


def _b32(digest: bytes) -> str:
    return base64.b32encode(digest).decode("ascii").rstrip("=").lower()


def order_id(tenant_id: str, channel: str, shop: str, external_id: str) -> str:
    """OrderHub's unified order id: the same inputs always give the same id.

    A replayed or re-polled channel order therefore lands on the same row instead of
    creating a second one.
    """
    material = "\x1f".join((tenant_id, channel, shop, external_id)).encode("utf-8")
    return "ord_" + _b32(hashlib.sha256(material).digest()[:15])


def new_id(prefix: str) -> str:
    """A random, URL-safe identifier such as ``ten_…`` or ``evt_…`` (120 bits)."""
    return f"{prefix}_{_b32(secrets.token_bytes(15))}"
